// Message-Authenticator and request authenticity (RFC 3579 §3.2, RFC 5997 §3, RFC 2866 §3): real-peer vectors and policy table.
import { describe, expect, test } from "bun:test";
import vectors from "../../../vectors/rfc3579-message-authenticator.json" with { type: "json" };
import {
  Attr,
  Code,
  decodePacket,
  encodeRequest,
  encodeResponse,
  getAttribute,
  revealUserPassword,
  textAttribute,
  verifyRequest,
  verifyResponse,
} from "../../../../src/radius/codec/index.ts";
import { errorCode, flipBit, hex, toHex, utf8 } from "./helpers.ts";

const secret = utf8.encode(vectors.secret);
const verify = (raw: Uint8Array, requireMessageAuthenticator: boolean, key = secret) =>
  errorCode(() => verifyRequest(decodePacket(raw), raw, key, { requireMessageAuthenticator }));

interface RequestVector {
  title: string;
  hex: string;
  code: number;
  userName?: string;
  userPassword?: string;
  hasMessageAuthenticator: boolean;
  hasProxyState: boolean;
}
const requests = vectors.requests as RequestVector[];
const replies = vectors.replies as { title: string; requestHex: string; hex: string; code: number; replyMessage?: string }[];

describe("radclient requests (RFC 3579 §3.2, RFC 5997 §3, RFC 2866 §3)", () => {
  test.each(requests.map((v) => [v.title, v] as const))("%s: authentic with the right secret", (_t, v) => {
    const raw = hex(v.hex);
    const p = decodePacket(raw);
    expect(p.code).toBe(v.code);
    expect(getAttribute(p, Attr.MessageAuthenticator) !== undefined).toBe(v.hasMessageAuthenticator);
    expect(verify(raw, false)).toBe(v.hasProxyState && !v.hasMessageAuthenticator ? "proxy_state_without_message_authenticator" : "no error");
    if (v.userPassword !== undefined) {
      const plain = revealUserPassword(getAttribute(p, Attr.UserPassword)!, secret, p.authenticator);
      expect(new TextDecoder().decode(plain)).toBe(v.userPassword);
      expect(new TextDecoder().decode(getAttribute(p, Attr.UserName))).toBe(v.userName!);
    }
  });

  test.each(requests.map((v) => [v.title, v] as const))("%s: the wrong secret fails", (_t, v) => {
    const wrong = v.code === Code.AccountingRequest ? "bad_authenticator" : v.hasMessageAuthenticator ? "bad_message_authenticator" : "no error";
    expect(verify(hex(v.hex), false, utf8.encode("testing124"))).toBe(wrong);
  });

  // Every octet of a signed request is covered: flipping any bit after the header fails.
  const signed = requests.filter((v) => v.hasMessageAuthenticator || v.code === Code.AccountingRequest);
  test.each(signed.map((v) => [v.title, v] as const))("%s: flipping any one bit fails", (_t, v) => {
    const raw = hex(v.hex);
    const results = new Set<string>();
    for (let i = 0; i < raw.length; i++) {
      if (i === 2 || i === 3) continue; // Length: covered by the malformed table instead
      let code: string;
      try {
        code = verify(flipBit(raw, i), false);
      } catch {
        code = "threw";
      }
      results.add(code);
    }
    expect(results.has("no error")).toBe(false);
  });
});

// The Message-Authenticator of an Access-Request / Status-Server is checked by zeroing its value in
// the datagram itself for the HMAC and restoring it: the datagram must come back unchanged, whether
// the check passes or fails (the dedupe cache and the handler read it afterwards).
describe("verifyRequest leaves the datagram unchanged", () => {
  const withMA = requests.filter((v) => v.hasMessageAuthenticator && v.code !== Code.AccountingRequest);
  test.each(withMA.map((v) => [v.title, v] as const))("%s: right secret, wrong secret, Buffer and Uint8Array", (_t, v) => {
    for (const raw of [hex(v.hex), Buffer.from(hex(v.hex))]) {
      const before = toHex(raw);
      expect(verify(raw, true)).toBe("no error");
      expect(toHex(raw)).toBe(before);
      expect(verify(raw, true, utf8.encode("testing124"))).toBe("bad_message_authenticator");
      expect(toHex(raw)).toBe(before);
      expect(verify(raw, true)).toBe("no error");
    }
  });
});

describe("replies accepted by radclient", () => {
  test.each(replies.map((v) => [v.title, v] as const))("%s: re-encodes byte for byte and verifies", (_t, v) => {
    const req = decodePacket(hex(v.requestHex));
    const attributes = v.replyMessage ? [textAttribute(Attr.ReplyMessage, v.replyMessage)] : [];
    const bytes = encodeResponse({ code: v.code, identifier: req.identifier, attributes }, req.authenticator, secret);
    expect(toHex(bytes)).toBe(v.hex);
    expect(verifyResponse(bytes, req.authenticator, secret, { requireMessageAuthenticator: true })).toBe(true);
  });

  test.each(replies.map((v) => [v.title, v] as const))("%s: flipping any one bit fails verifyResponse", (_t, v) => {
    const req = decodePacket(hex(v.requestHex));
    const raw = hex(v.hex);
    for (let i = 0; i < raw.length; i++) {
      expect(verifyResponse(flipBit(raw, i), req.authenticator, secret)).toBe(false);
    }
  });
});

describe("verifyRequest policy table", () => {
  const id = 7;
  const proxy = { type: Attr.ProxyState, value: utf8.encode("px") };
  const eap = { type: Attr.EAPMessage, value: Uint8Array.of(2, 1, 0, 5, 1) };
  const user = textAttribute(Attr.UserName, "alice");
  const cases: [string, Uint8Array, boolean, string][] = [
    ["Access-Request, MA valid, required", encodeRequest({ code: Code.AccessRequest, identifier: id, attributes: [user] }, secret), true, "no error"],
    ["Access-Request, MA valid, exempt client", encodeRequest({ code: Code.AccessRequest, identifier: id, attributes: [user] }, secret), false, "no error"],
    ["Access-Request, MA missing, required", encodeRequest({ code: Code.AccessRequest, identifier: id, attributes: [user] }, secret, { messageAuthenticator: false }), true, "missing_message_authenticator"],
    ["Access-Request, MA missing, exempt client", encodeRequest({ code: Code.AccessRequest, identifier: id, attributes: [user] }, secret, { messageAuthenticator: false }), false, "no error"],
    ["Access-Request, MA missing, exempt client, Proxy-State", encodeRequest({ code: Code.AccessRequest, identifier: id, attributes: [user, proxy] }, secret, { messageAuthenticator: false }), false, "proxy_state_without_message_authenticator"],
    ["Access-Request, MA missing, required, Proxy-State", encodeRequest({ code: Code.AccessRequest, identifier: id, attributes: [user, proxy] }, secret, { messageAuthenticator: false }), true, "missing_message_authenticator"],
    ["Access-Request, MA missing, exempt client, EAP-Message (RFC 3579 §3.1)", encodeRequest({ code: Code.AccessRequest, identifier: id, attributes: [user, eap] }, secret, { messageAuthenticator: false }), false, "eap_without_message_authenticator"],
    ["Access-Request, MA missing, required, EAP-Message", encodeRequest({ code: Code.AccessRequest, identifier: id, attributes: [user, eap] }, secret, { messageAuthenticator: false }), true, "missing_message_authenticator"],
    ["Access-Request, MA valid, EAP-Message", encodeRequest({ code: Code.AccessRequest, identifier: id, attributes: [user, eap] }, secret), false, "no error"],
    ["Access-Request, MA valid, Proxy-State", encodeRequest({ code: Code.AccessRequest, identifier: id, attributes: [user, proxy] }, secret), false, "no error"],
    ["Access-Request, MA wrong (bit flipped), exempt client", flipBit(encodeRequest({ code: Code.AccessRequest, identifier: id, attributes: [user] }, secret), 22), false, "bad_message_authenticator"],
    ["Access-Request, attribute changed after signing", flipBit(encodeRequest({ code: Code.AccessRequest, identifier: id, attributes: [user] }, secret), 40), true, "bad_message_authenticator"],
    ["Status-Server, MA valid", encodeRequest({ code: Code.StatusServer, identifier: id, attributes: [] }, secret), false, "no error"],
    ["Status-Server, MA missing, exempt client", encodeRequest({ code: Code.StatusServer, identifier: id, attributes: [] }, secret, { messageAuthenticator: false }), false, "missing_message_authenticator"],
    ["Status-Server, MA wrong", flipBit(encodeRequest({ code: Code.StatusServer, identifier: id, attributes: [] }, secret), 30), false, "bad_message_authenticator"],
    ["Accounting-Request, no MA", encodeRequest({ code: Code.AccountingRequest, identifier: id, attributes: [user] }, secret, { messageAuthenticator: false }), true, "no error"],
    ["Accounting-Request, with MA", encodeRequest({ code: Code.AccountingRequest, identifier: id, attributes: [user] }, secret), true, "no error"],
    ["Accounting-Request, authenticator wrong", flipBit(encodeRequest({ code: Code.AccountingRequest, identifier: id, attributes: [user] }, secret, { messageAuthenticator: false }), 4), false, "bad_authenticator"],
    ["Access-Accept sent to the server", encodeResponse({ code: Code.AccessAccept, identifier: id, attributes: [] }, new Uint8Array(16), secret), false, "unknown_code"],
  ];
  test.each(cases)("%s", (_name, raw, required, expected) => {
    expect(verify(raw, required)).toBe(expected);
  });

  test("raw that does not match the decoded packet's code is malformed", () => {
    const raw = encodeRequest({ code: Code.AccessRequest, identifier: 1, attributes: [] }, secret);
    const other = encodeRequest({ code: Code.StatusServer, identifier: 1, attributes: [] }, secret);
    expect(errorCode(() => verifyRequest(decodePacket(raw), other, secret, { requireMessageAuthenticator: true }))).toBe("malformed");
  });

  test("padding after Length is outside the Message-Authenticator", () => {
    const raw = encodeRequest({ code: Code.AccessRequest, identifier: 1, attributes: [user] }, secret);
    const padded = new Uint8Array(raw.length + 7).fill(0xaa);
    padded.set(raw);
    expect(verify(padded, true)).toBe("no error");
  });
});
