// An approver-app client without a browser: a P-256 key pair made with WebCrypto (the private key
// non-extractable, as the app makes it) and requests signed per docs/app.md "Signed requests".

import { createHash } from "node:crypto";

const b64u = (b: Uint8Array) => Buffer.from(b).toString("base64url");

/** P-256 group order n: (r, n − s) verifies wherever (r, s) does (ECDSA malleability). */
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

/** The other valid form of a P1363 signature: (r, n − s). */
export function malleate(signature: string): string {
  const sig = Buffer.from(signature, "base64url");
  const s = BigInt(`0x${sig.subarray(32).toString("hex")}`);
  const other = Buffer.from((N - s).toString(16).padStart(64, "0"), "hex");
  return b64u(Buffer.concat([sig.subarray(0, 32), other]));
}

export interface SignOptions {
  /** Portcullis-Time in seconds; default now. */
  time?: number;
  /** Sign this path instead of the one requested (to prove the path is covered). */
  signPath?: string;
  /** Sign this body instead of the one sent. */
  signBody?: string;
}

export class DeviceClient {
  id = "";

  private constructor(
    readonly keys: CryptoKeyPair,
    readonly publicJwk: { kty: string; crv: string; x: string; y: string; ext?: boolean; key_ops?: string[] },
  ) {}

  static async create(): Promise<DeviceClient> {
    const keys = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"])) as CryptoKeyPair;
    const jwk = (await crypto.subtle.exportKey("jwk", keys.publicKey)) as DeviceClient["publicJwk"];
    return new DeviceClient(keys, jwk);
  }

  /** The three headers for METHOD PATH BODY (docs/app.md). */
  async headers(method: string, path: string, body = "", { time = Math.floor(Date.now() / 1000), signPath, signBody }: SignOptions = {}): Promise<Record<string, string>> {
    const digest = createHash("sha256").update(signBody ?? body, "utf8").digest("base64url");
    const text = `${method.toUpperCase()}\n${signPath ?? path}\n${time}\n${digest}`;
    const sig = new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, this.keys.privateKey, new TextEncoder().encode(text)));
    return { "Portcullis-Device": this.id, "Portcullis-Time": String(time), "Portcullis-Signature": b64u(sig) };
  }

  /** A signed Request for `base` + `path` (JSON body when given). */
  async request(base: string, method: string, path: string, body?: unknown, options: SignOptions & { headers?: Record<string, string> } = {}): Promise<Request> {
    const text = body === undefined ? "" : JSON.stringify(body);
    const headers: Record<string, string> = { ...(await this.headers(method, path, text, options)), ...(body === undefined ? {} : { "Content-Type": "application/json" }), ...options.headers };
    return new Request(base + path, { method, headers, ...(body === undefined ? {} : { body: text }) });
  }
}
