// Known answers for Web Push message encryption (RFC 8291 §5) and VAPID (RFC 8292 §2.4), and proof
// that what the web-push package builds (and the sender sends) decrypts and verifies with an
// independent implementation (test/integration/helpers/push-service.ts, node:crypto only).

import { describe, expect, test } from "bun:test";
import { createECDH, randomBytes } from "node:crypto";
import webpush from "web-push";
// web-push's own encryption engine; it takes the salt and sender key that web-push draws at random.
// @ts-expect-error http_ece ships no type declarations
import ece from "http_ece";
import rfc8291 from "../../vectors/rfc8291-section5.json" with { type: "json" };
import rfc8292 from "../../vectors/rfc8292-section2.4.json" with { type: "json" };
import { decryptRFC8291, encryptRFC8291, verifyVapidToken } from "../../integration/helpers/push-service.ts";

const unb64u = (s: string) => new Uint8Array(Buffer.from(s, "base64url"));
const b64u = (b: Uint8Array) => Buffer.from(b).toString("base64url");

describe("RFC 8291 §5: push message encryption example", () => {
  test("the independent implementation reproduces the example body byte for byte", () => {
    const body = encryptRFC8291({
      plaintext: unb64u(rfc8291.plaintext),
      uaPublic: unb64u(rfc8291.ua_public),
      authSecret: unb64u(rfc8291.auth_secret),
      asPrivate: unb64u(rfc8291.as_private),
      salt: unb64u(rfc8291.salt),
      rs: rfc8291.record_size,
    });
    expect(b64u(body)).toBe(rfc8291.body);
  });

  test("the independent decoder opens the example body with the user agent's keys", () => {
    const plaintext = decryptRFC8291(unb64u(rfc8291.body), unb64u(rfc8291.ua_private), unb64u(rfc8291.auth_secret));
    expect(new TextDecoder().decode(plaintext)).toBe("When I grow up, I want to be a watermelon");
    // One flipped ciphertext bit and the record no longer authenticates.
    const tampered = unb64u(rfc8291.body);
    tampered[tampered.length - 20]! ^= 1;
    expect(() => decryptRFC8291(tampered, unb64u(rfc8291.ua_private), unb64u(rfc8291.auth_secret))).toThrow();
  });

  test("web-push's engine (http_ece) given the example's salt and sender key produces the example body", () => {
    const sender = createECDH("prime256v1");
    sender.setPrivateKey(unb64u(rfc8291.as_private));
    const body: Buffer = ece.encrypt(Buffer.from(unb64u(rfc8291.plaintext)), {
      version: "aes128gcm",
      dh: rfc8291.ua_public,
      privateKey: sender,
      salt: rfc8291.salt,
      authSecret: rfc8291.auth_secret,
    });
    expect(body.toString("base64url")).toBe(rfc8291.body);
  });

  test("what web-push builds (fresh salt and key each time) decrypts with the independent decoder", () => {
    const ua = createECDH("prime256v1");
    ua.generateKeys();
    const auth = randomBytes(16);
    const payload = '{"v":1,"id":"abc"}';
    const bodies = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const d = webpush.generateRequestDetails({ endpoint: "https://fcm.googleapis.com/fcm/send/x", keys: { p256dh: ua.getPublicKey().toString("base64url"), auth: auth.toString("base64url") } }, payload, {
        TTL: 30,
        contentEncoding: "aes128gcm",
        vapidDetails: null as unknown as undefined,
      });
      expect(d.headers["Content-Encoding"]).toBe("aes128gcm");
      const body = new Uint8Array(d.body as Buffer);
      bodies.add(b64u(body));
      expect(new TextDecoder().decode(decryptRFC8291(body, new Uint8Array(ua.getPrivateKey()), new Uint8Array(auth)))).toBe(payload);
    }
    // RFC 8291 §4: a new salt and sender key per message.
    expect(bodies.size).toBe(3);
  });
});

describe("RFC 8292 §2.4: VAPID", () => {
  test("the example token verifies with the example key, and its claims are the RFC's", () => {
    const { header, claims } = verifyVapidToken(rfc8292.jwt, rfc8292.k);
    expect(header).toEqual(rfc8292.header);
    expect(claims).toEqual(rfc8292.claims);
  });

  test("a changed claim or another key no longer verifies", () => {
    const [h, , s] = rfc8292.jwt.split(".");
    const forged = b64u(new TextEncoder().encode(JSON.stringify({ ...rfc8292.claims, exp: rfc8292.claims.exp + 1 })));
    expect(() => verifyVapidToken(`${h}.${forged}.${s}`, rfc8292.k)).toThrow("bad signature");
    const other = createECDH("prime256v1");
    other.generateKeys();
    expect(() => verifyVapidToken(rfc8292.jwt, other.getPublicKey().toString("base64url"))).toThrow("bad signature");
  });
});
