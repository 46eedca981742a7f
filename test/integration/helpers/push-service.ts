// A Web Push service of the tests' own (RFC 8030 §5), on 127.0.0.1, and an implementation of
// RFC 8291 (aes128gcm message encryption) and RFC 8292 (VAPID) written here with node:crypto alone,
// independent of the web-push package the appliance sends with.
//
// The service checks each POST the way a real push service and the receiving browser together do:
// the VAPID token (ES256 signature by the `k` key, `aud` = this service's origin, `exp` in the
// future and at most 24 hours ahead, `sub` present), Content-Encoding aes128gcm, TTL and Urgency,
// then decrypts the body with the subscription's private key and auth secret. Each subscription
// answers 201 by default, or what the test sets (404, 410, 500, a redirect, or never).

import { createCipheriv, createDecipheriv, createECDH, createPublicKey, hkdfSync, randomBytes, verify } from "node:crypto";

const b64u = (b: Uint8Array) => Buffer.from(b).toString("base64url");
const unb64u = (s: string) => new Uint8Array(Buffer.from(s, "base64url"));
const concat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
const text = (s: string) => new TextEncoder().encode(s);

/** RFC 8291 §3.3-3.4: the content encryption key and nonce of one message. */
function deriveKeys(ecdhSecret: Uint8Array, authSecret: Uint8Array, uaPublic: Uint8Array, asPublic: Uint8Array, salt: Uint8Array): { cek: Uint8Array; nonce: Uint8Array } {
  const keyInfo = concat(text("WebPush: info\0"), uaPublic, asPublic);
  const ikm = new Uint8Array(hkdfSync("sha256", ecdhSecret, authSecret, keyInfo, 32));
  // RFC 8188 §2.2-2.3: CEK and NONCE from HKDF(salt, IKM).
  const cek = new Uint8Array(hkdfSync("sha256", ikm, salt, text("Content-Encoding: aes128gcm\0"), 16));
  const nonce = new Uint8Array(hkdfSync("sha256", ikm, salt, text("Content-Encoding: nonce\0"), 12));
  return { cek, nonce };
}

/**
 * RFC 8291 encryption with a given sender key and salt, one record of size `rs` (RFC 8188 §2):
 * salt(16) ‖ rs(4) ‖ idlen(1) ‖ keyid = as_public(65) ‖ AES-128-GCM(plaintext ‖ 0x02).
 */
export function encryptRFC8291({ plaintext, uaPublic, authSecret, asPrivate, salt, rs = 4096 }: { plaintext: Uint8Array; uaPublic: Uint8Array; authSecret: Uint8Array; asPrivate: Uint8Array; salt: Uint8Array; rs?: number }): Uint8Array {
  const as = createECDH("prime256v1");
  as.setPrivateKey(asPrivate);
  const asPublic = new Uint8Array(as.getPublicKey());
  const { cek, nonce } = deriveKeys(new Uint8Array(as.computeSecret(uaPublic)), authSecret, uaPublic, asPublic, salt);
  const cipher = createCipheriv("aes-128-gcm", cek, nonce);
  const body = concat(cipher.update(concat(plaintext, new Uint8Array([2]))), cipher.final(), cipher.getAuthTag());
  const header = new Uint8Array(21);
  header.set(salt, 0);
  new DataView(header.buffer).setUint32(16, rs);
  header[20] = asPublic.length;
  return concat(header, asPublic, body);
}

/** RFC 8291 decryption by the user agent (one record). Throws when the body does not authenticate or is malformed. */
export function decryptRFC8291(body: Uint8Array, uaPrivate: Uint8Array, authSecret: Uint8Array): Uint8Array {
  if (body.length < 21 + 65 + 17) throw new Error("body too short");
  const salt = body.subarray(0, 16);
  const rs = new DataView(body.buffer, body.byteOffset).getUint32(16);
  const idlen = body[20]!;
  if (idlen !== 65 || rs < 18) throw new Error("bad header");
  const asPublic = body.subarray(21, 21 + idlen);
  const record = body.subarray(21 + idlen);
  if (record.length > rs) throw new Error("more than one record");
  const ua = createECDH("prime256v1");
  ua.setPrivateKey(uaPrivate);
  const uaPublic = new Uint8Array(ua.getPublicKey());
  const { cek, nonce } = deriveKeys(new Uint8Array(ua.computeSecret(asPublic)), authSecret, uaPublic, asPublic, salt);
  const decipher = createDecipheriv("aes-128-gcm", cek, nonce);
  decipher.setAuthTag(record.subarray(record.length - 16));
  const padded = concat(decipher.update(record.subarray(0, record.length - 16)), decipher.final());
  // RFC 8188 §2: strip trailing zero padding; the last record's delimiter is 0x02.
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  if (end < 0 || padded[end] !== 2) throw new Error("bad padding delimiter");
  return padded.subarray(0, end);
}

export interface VapidClaims {
  aud: string;
  exp: number;
  sub: string;
}

/**
 * Verifies a VAPID token (RFC 8292 §2-3): JWS compact form, header {typ JWT, alg ES256}, ES256
 * signature (r ‖ s) by the P-256 key `k` (base64url uncompressed point). Returns the header and claims,
 * or throws naming what failed. Claims are not judged here (the caller checks aud and exp).
 */
export function verifyVapidToken(jwt: string, k: string): { header: Record<string, unknown>; claims: VapidClaims } {
  const parts = jwt.split(".");
  if (parts.length !== 3) throw new Error("not a JWS compact serialisation");
  const point = unb64u(k);
  if (point.length !== 65 || point[0] !== 4) throw new Error("k is not an uncompressed P-256 point");
  const key = createPublicKey({ key: { kty: "EC", crv: "P-256", x: b64u(point.subarray(1, 33)), y: b64u(point.subarray(33)) }, format: "jwk" });
  const ok = verify("sha256", text(`${parts[0]}.${parts[1]}`), { key, dsaEncoding: "ieee-p1363" }, unb64u(parts[2]!));
  if (!ok) throw new Error("bad signature");
  const header = JSON.parse(Buffer.from(parts[0]!, "base64url").toString("utf8")) as Record<string, unknown>;
  const claims = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8")) as VapidClaims;
  return { header, claims };
}

/** Parses `Authorization: vapid t=JWT, k=KEY` (RFC 8292 §3). */
export function parseVapidAuthorization(value: string): { t: string; k: string } | undefined {
  const m = /^vapid\s+(.+)$/i.exec(value.trim());
  if (!m) return undefined;
  const params = new Map(m[1]!.split(",").map((p) => p.trim().split("=", 2) as [string, string]));
  const t = params.get("t");
  const k = params.get("k");
  return t && k ? { t, k } : undefined;
}

/** A subscription made by the test service: what a browser would hand to the app, plus its private key. */
export interface TestSubscription {
  endpoint: string;
  keys: { p256dh: string; auth: string };
  privateKey: Uint8Array;
  /** What the service answers for this subscription. */
  answer: number | "redirect" | "hang";
}

/** One delivered (decrypted) message. */
export interface PushedMessage {
  path: string;
  payload: string;
  ttl: number;
  urgency: string | null;
  claims: VapidClaims;
  k: string;
  at: number;
}

/** The test push service. Dispose (or stop) to close it. */
export class TestPushService implements Disposable {
  readonly messages: PushedMessage[] = [];
  /** Requests refused by the checks (what failed), and every request seen per path. */
  readonly refusals: string[] = [];
  readonly hits = new Map<string, number>();
  private readonly subs = new Map<string, TestSubscription>();
  private readonly server: ReturnType<typeof Bun.serve>;
  private waiters: Array<() => void> = [];

  constructor(readonly expectedSubject?: string) {
    this.server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req) => this.handle(req) });
  }

  get origin(): string {
    return `http://127.0.0.1:${this.server.port}`;
  }

  /** A new subscription at /push/<random>. */
  subscribe(answer: TestSubscription["answer"] = 201): TestSubscription {
    const ua = createECDH("prime256v1");
    ua.generateKeys();
    const path = `/push/${b64u(randomBytes(24))}`;
    const sub: TestSubscription = { endpoint: `${this.origin}${path}`, keys: { p256dh: b64u(ua.getPublicKey()), auth: b64u(randomBytes(16)) }, privateKey: new Uint8Array(ua.getPrivateKey()), answer };
    this.subs.set(path, sub);
    return sub;
  }

  /** The subscription JSON a browser sends (PushSubscription.toJSON()). */
  static json(sub: TestSubscription): { endpoint: string; keys: { p256dh: string; auth: string } } {
    return { endpoint: sub.endpoint, keys: sub.keys };
  }

  private async handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    this.hits.set(url.pathname, (this.hits.get(url.pathname) ?? 0) + 1);
    const sub = this.subs.get(url.pathname);
    if (!sub) return new Response("no such subscription", { status: 404 });
    if (sub.answer === "hang") return new Promise<Response>(() => {});
    if (sub.answer === "redirect") return new Response(null, { status: 307, headers: { Location: `${this.origin}/elsewhere` } });
    const refuse = (why: string, status = 400) => {
      this.refusals.push(why);
      this.notify();
      return new Response(why, { status });
    };
    if (req.method !== "POST") return refuse("method");
    const auth = parseVapidAuthorization(req.headers.get("authorization") ?? "");
    if (!auth) return refuse("no vapid authorization", 401);
    let verified;
    try {
      verified = verifyVapidToken(auth.t, auth.k);
    } catch (e) {
      return refuse(`vapid: ${(e as Error).message}`, 403);
    }
    const { header, claims } = verified;
    const now = Math.floor(Date.now() / 1000);
    if (header.alg !== "ES256" || header.typ !== "JWT") return refuse("vapid header", 403);
    if (claims.aud !== this.origin) return refuse(`vapid aud ${claims.aud}`, 403);
    if (!(claims.exp > now && claims.exp <= now + 24 * 3600)) return refuse("vapid exp", 403);
    if (typeof claims.sub !== "string" || !/^(mailto|https):/.test(claims.sub) || (this.expectedSubject !== undefined && claims.sub !== this.expectedSubject)) return refuse("vapid sub", 403);
    if (req.headers.get("content-encoding") !== "aes128gcm") return refuse("content-encoding", 415);
    const ttl = req.headers.get("ttl");
    if (ttl === null || !/^\d+$/.test(ttl)) return refuse("ttl");
    let payload: string;
    try {
      payload = new TextDecoder().decode(decryptRFC8291(new Uint8Array(await req.arrayBuffer()), sub.privateKey, unb64u(sub.keys.auth)));
    } catch (e) {
      return refuse(`decrypt: ${(e as Error).message}`);
    }
    this.messages.push({ path: url.pathname, payload, ttl: Number(ttl), urgency: req.headers.get("urgency"), claims, k: auth.k, at: Date.now() });
    this.notify();
    return new Response(null, { status: typeof sub.answer === "number" ? sub.answer : 201 });
  }

  private notify() {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Waits until `n` messages arrived (bounded by `timeoutMs`); throws with the refusals on expiry. */
  async waitFor(n: number, timeoutMs = 5000): Promise<PushedMessage[]> {
    const end = Date.now() + timeoutMs;
    while (this.messages.length < n) {
      const left = end - Date.now();
      if (left <= 0) throw new Error(`expected ${n} push messages, got ${this.messages.length}; refusals: ${this.refusals.join("; ")}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 100));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.messages;
  }

  stop(): void {
    this.server.stop(true);
  }

  [Symbol.dispose](): void {
    this.stop();
  }
}
