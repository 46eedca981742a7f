// PSKC (RFC 6030) token import: plain, pre-shared-key, PBKDF2 and RSA key-transport protected seeds.
//
//   KeyContainer Version="1.0"
//   ├─ EncryptionKey      ds:KeyName (§6.1) | xenc11:DerivedKey/PBKDF2-params (§6.2) | ds:X509Data (§6.3)
//   ├─ MACMethod          hmac-sha1 …, MACKey = the MAC key encrypted with the encryption key (§6.1.1)
//   └─ KeyPackage*        DeviceInfo/SerialNo, DeviceInfo/UserId
//      └─ Key @Algorithm  AlgorithmParameters/ResponseFormat@Length, Suite
//         ├─ Data/Secret  PlainValue (base64) | EncryptedValue + ValueMAC
//         ├─ Data/Counter, Data/TimeInterval (PlainValue)
//         └─ UserId
//
// The XML parser runs with entity processing off, and any document carrying a DOCTYPE or an
// ENTITY declaration is refused before parsing (no XXE, no billion laughs).

import { createDecipheriv, createHmac, pbkdf2Sync, privateDecrypt, constants, timingSafeEqual } from "node:crypto";
import { XMLParser } from "fast-xml-parser";
import { OTPError } from "./errors.ts";
import type { OTPAlgorithm } from "./hotp.ts";
import { isValidSecretLength, isValidSerial, SECRET_LENGTH_RULE, type ImportedToken } from "./imported-token.ts";

export interface PSKCOptions {
  /** §6.1 pre-shared key (the key named by ds:KeyName), raw bytes. */
  preSharedKey?: Uint8Array;
  /** §6.2 password for the PBKDF2-derived key. */
  password?: string;
  /** §6.3 PEM private key matching the certificate the file was encrypted to. */
  privateKeyPem?: string;
}

type XNode = Record<string, unknown>;

const XMLENC = "http://www.w3.org/2001/04/xmlenc#";
const XMLENC11 = "http://www.w3.org/2009/xmlenc11#";
const CBC: Record<string, { cipher: string; keyLength: number }> = {
  [`${XMLENC}aes128-cbc`]: { cipher: "aes-128-cbc", keyLength: 16 },
  [`${XMLENC}aes192-cbc`]: { cipher: "aes-192-cbc", keyLength: 24 },
  [`${XMLENC}aes256-cbc`]: { cipher: "aes-256-cbc", keyLength: 32 },
};
const KEY_WRAP: Record<string, { cipher: string; keyLength: number }> = {
  [`${XMLENC}kw-aes128`]: { cipher: "aes-128-ecb", keyLength: 16 },
  [`${XMLENC}kw-aes192`]: { cipher: "aes-192-ecb", keyLength: 24 },
  [`${XMLENC}kw-aes256`]: { cipher: "aes-256-ecb", keyLength: 32 },
};
const RSA_1_5 = `${XMLENC}rsa_1_5`;
const RSA_OAEP = [`${XMLENC}rsa-oaep-mgf1p`, `${XMLENC11}rsa-oaep`];
const MAC_ALGORITHMS: Record<string, string> = {
  "http://www.w3.org/2000/09/xmldsig#hmac-sha1": "sha1",
  "http://www.w3.org/2001/04/xmldsig-more#hmac-sha224": "sha224",
  "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256": "sha256",
  "http://www.w3.org/2001/04/xmldsig-more#hmac-sha384": "sha384",
  "http://www.w3.org/2001/04/xmldsig-more#hmac-sha512": "sha512",
};
const PBKDF2 = "http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#pbkdf2";
const KIND: Record<string, "hotp" | "totp" | "pin"> = {
  "urn:ietf:params:xml:ns:keyprov:pskc:hotp": "hotp",
  "urn:ietf:params:xml:ns:keyprov:pskc#hotp": "hotp",
  "urn:ietf:params:xml:ns:keyprov:pskc:totp": "totp",
  "urn:ietf:params:xml:ns:keyprov:pskc#totp": "totp",
  "http://www.ietf.org/keyprov/pskc#hotp": "hotp",
  "http://www.ietf.org/keyprov/pskc#totp": "totp",
  "urn:ietf:params:xml:ns:keyprov:pskc:pin": "pin",
  "urn:ietf:params:xml:ns:keyprov:pskc#pin": "pin",
};
const MAX_PBKDF2_ITERATIONS = 10_000_000;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "@_",
  removeNSPrefix: true,
  processEntities: false,
  htmlEntities: false,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  isArray: (name) => name === "KeyPackage" || name === "Key",
});

function fail(message: string): never {
  throw new OTPError("pskc_format", message);
}

function child(node: unknown, name: string): XNode | undefined {
  if (node === null || typeof node !== "object") return undefined;
  const v = (node as XNode)[name];
  if (Array.isArray(v)) return v[0] as XNode | undefined;
  if (typeof v === "string") return { "#text": v };
  return v !== null && typeof v === "object" ? (v as XNode) : v === undefined ? undefined : { "#text": String(v) };
}

function text(node: unknown, name: string): string | undefined {
  const c = child(node, name);
  if (c === undefined) return undefined;
  const t = c["#text"];
  return typeof t === "string" ? t.trim() : t === undefined ? "" : String(t).trim();
}

function attr(node: unknown, name: string): string | undefined {
  if (node === null || typeof node !== "object") return undefined;
  const v = (node as XNode)[`@_${name}`];
  return typeof v === "string" ? v.trim() : undefined;
}

function base64(s: string, what: string): Buffer {
  const compact = s.replace(/\s+/g, "");
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(compact)) fail(`${what} is not valid base64`);
  return Buffer.from(compact, "base64");
}

function integer(s: string | undefined, what: string, fallback: number, min: number, max: number): number {
  if (s === undefined || s === "") return fallback;
  if (!/^\d{1,16}$/.test(s)) fail(`${what} must be an integer`);
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < min || n > max) fail(`${what} is out of range`);
  return n;
}

/** Symmetric decryption context: the document's key, resolved lazily from the options. */
interface KeyMaterial {
  symmetric(): Buffer;
  privateKeyPem(): string;
  mac(): { key: Buffer; hash: string } | undefined;
}

function derivePBKDF2(derived: XNode, password: string | undefined): Buffer {
  const method = child(derived, "KeyDerivationMethod");
  if (attr(method, "Algorithm") !== PBKDF2) fail("unsupported key derivation method");
  const params = child(method, "PBKDF2-params");
  const saltB64 = text(child(params, "Salt"), "Specified");
  if (saltB64 === undefined) fail("PBKDF2 salt missing");
  const salt = base64(saltB64, "PBKDF2 salt");
  const iterations = integer(text(params, "IterationCount"), "PBKDF2 IterationCount", -1, 1, MAX_PBKDF2_ITERATIONS);
  const keyLength = integer(text(params, "KeyLength"), "PBKDF2 KeyLength", 16, 16, 32);
  if (iterations < 1) fail("PBKDF2 IterationCount missing");
  // PKCS #5 v2.0 (RFC 2898 §A.2): the PRF defaults to HMAC-SHA1.
  const prf = attr(child(params, "PRF"), "Algorithm") ?? "";
  const hash = prf === "" || prf.endsWith("hmac-sha1") ? "sha1" : /hmac-sha(224|256|384|512)$/.exec(prf)?.[1];
  if (hash === undefined) fail("unsupported PBKDF2 PRF");
  if (password === undefined) throw new OTPError("pskc_key", "this PSKC file is protected by a password; supply one");
  return pbkdf2Sync(password, salt, iterations, keyLength, hash === "sha1" ? "sha1" : `sha${hash}`);
}

function cbcDecrypt(key: Buffer, cipherName: string, data: Buffer): Buffer {
  if (data.length < 32 || data.length % 16 !== 0) throw new OTPError("pskc_key", "encrypted value has a bad length");
  try {
    const d = createDecipheriv(cipherName, key, data.subarray(0, 16));
    d.setAutoPadding(false);
    const plain = Buffer.concat([d.update(data.subarray(16)), d.final()]);
    // XML Encryption §5.2 padding: the last byte says how many bytes to drop (1-16); the
    // others are arbitrary, so PKCS#7's equal-bytes check would reject valid files.
    const pad = plain[plain.length - 1]!;
    if (pad < 1 || pad > 16) throw new Error("padding");
    return plain.subarray(0, plain.length - pad);
  } catch {
    throw new OTPError("pskc_key", "cannot decrypt: wrong key or corrupt data");
  }
}

/**
 * AES key unwrap, RFC 3394 §2.2.2 (index-based), with the §2.2.3 integrity check. Written out
 * because BoringSSL (Bun) has no id-aesNNN-wrap cipher; only single-block AES-ECB is used.
 */
function keyWrapDecrypt(key: Buffer, cipherName: string, data: Buffer): Buffer {
  const n = data.length / 8 - 1;
  if (!Number.isInteger(n) || n < 2) throw new OTPError("pskc_key", "wrapped value has a bad length");
  const ecb = createDecipheriv(cipherName, key, null);
  ecb.setAutoPadding(false);
  const a = Buffer.from(data.subarray(0, 8));
  const r = Buffer.from(data.subarray(8));
  const block = Buffer.alloc(16);
  for (let j = 5; j >= 0; j--) {
    for (let i = n; i >= 1; i--) {
      const t = BigInt(n * j + i);
      a.writeBigUInt64BE(a.readBigUInt64BE(0) ^ t, 0);
      a.copy(block, 0);
      r.copy(block, 8, (i - 1) * 8, i * 8);
      const b = ecb.update(block);
      b.copy(a, 0, 0, 8);
      b.copy(r, (i - 1) * 8, 8, 16);
    }
  }
  if (!timingSafeEqual(a, Buffer.from("A6A6A6A6A6A6A6A6", "hex"))) {
    throw new OTPError("pskc_key", "cannot decrypt: wrong key or corrupt data");
  }
  return r;
}

/**
 * RSAES-PKCS1-v1_5 (RFC 8017 §7.2.2). Bun, like Node ≥ 20, refuses PKCS#1 v1.5 private
 * decryption because of the Marvin timing attack on servers that decrypt attacker-chosen
 * ciphertexts. An import of an administrator's file offers no such oracle, so the padding is
 * removed here after a raw RSA operation, scanning every byte the same way regardless.
 */
function rsa15Decrypt(pem: string, data: Buffer): Buffer {
  let raw: Buffer;
  try {
    raw = privateDecrypt({ key: pem, padding: constants.RSA_NO_PADDING }, data);
  } catch {
    throw new OTPError("pskc_key", "cannot decrypt: wrong key or corrupt data");
  }
  let bad = (raw[0]! !== 0 ? 1 : 0) | (raw[1]! !== 2 ? 1 : 0);
  let sep = 0;
  for (let i = 2; i < raw.length; i++) {
    const isZero = raw[i] === 0 ? 1 : 0;
    if (sep === 0 && isZero) sep = i;
  }
  if (sep < 10) bad |= 1; // at least 8 non-zero padding bytes
  if (bad) throw new OTPError("pskc_key", "cannot decrypt: wrong key or corrupt data");
  return raw.subarray(sep + 1);
}

/** Decrypts an EncryptedValue-shaped node with whichever key its EncryptionMethod names. No MAC check here. */
function decryptNode(enc: XNode, keys: KeyMaterial, what: string): Buffer {
  const algorithm = attr(child(enc, "EncryptionMethod"), "Algorithm");
  const cv = text(child(enc, "CipherData"), "CipherValue");
  if (algorithm === undefined || cv === undefined) fail(`${what}: EncryptionMethod or CipherValue missing`);
  const cipherValue = base64(cv, `${what} CipherValue`);
  const cbc = CBC[algorithm];
  if (cbc) {
    const key = keys.symmetric();
    if (key.length !== cbc.keyLength) throw new OTPError("pskc_key", `${what}: key length does not fit the encryption algorithm`);
    return cbcDecrypt(key, cbc.cipher, cipherValue);
  }
  const kw = KEY_WRAP[algorithm];
  if (kw) {
    const key = keys.symmetric();
    if (key.length !== kw.keyLength) throw new OTPError("pskc_key", `${what}: key length does not fit the encryption algorithm`);
    return keyWrapDecrypt(key, kw.cipher, cipherValue);
  }
  if (algorithm === RSA_1_5) return rsa15Decrypt(keys.privateKeyPem(), cipherValue);
  if (RSA_OAEP.includes(algorithm)) {
    const digest = attr(child(child(enc, "EncryptionMethod"), "DigestMethod"), "Algorithm");
    if (digest !== undefined && digest !== "http://www.w3.org/2000/09/xmldsig#sha1") fail(`${what}: unsupported OAEP digest`);
    try {
      return privateDecrypt({ key: keys.privateKeyPem(), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" }, cipherValue);
    } catch (e) {
      if (e instanceof OTPError) throw e;
      throw new OTPError("pskc_key", "cannot decrypt: wrong key or corrupt data");
    }
  }
  fail(`${what}: unsupported encryption algorithm`);
}

/**
 * Decrypts one EncryptedValue. For CBC (no integrity of its own) the ValueMAC is required and
 * is checked, in constant time, over IV || ciphertext *before* anything is decrypted (§6.1.1).
 */
function decryptValue(enc: XNode, valueMAC: string | undefined, keys: KeyMaterial, what: string): Buffer {
  const algorithm = attr(child(enc, "EncryptionMethod"), "Algorithm") ?? "";
  const cbc = CBC[algorithm];
  if (!cbc) return decryptNode(enc, keys, what);
  const cv = text(child(enc, "CipherData"), "CipherValue");
  if (cv === undefined) fail(`${what}: CipherValue missing`);
  const cipherValue = base64(cv, `${what} CipherValue`);
  const key = keys.symmetric();
  if (key.length !== cbc.keyLength) throw new OTPError("pskc_key", `${what}: key length does not fit the encryption algorithm`);
  const mac = keys.mac();
  if (mac === undefined || valueMAC === undefined) throw new OTPError("pskc_mac", `${what}: CBC-encrypted value without MACMethod/ValueMAC`);
  const expected = createHmac(mac.hash, mac.key).update(cipherValue).digest();
  const given = base64(valueMAC, `${what} ValueMAC`);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new OTPError("pskc_mac", `${what}: MAC check failed (wrong key or tampered file)`);
  }
  return cbcDecrypt(key, cbc.cipher, cipherValue);
}

function keyMaterial(container: XNode, options: PSKCOptions): KeyMaterial {
  const encryptionKey = child(container, "EncryptionKey");
  let symmetric: Buffer | undefined;
  let mac: { key: Buffer; hash: string } | null | undefined;
  const km: KeyMaterial = {
    symmetric() {
      if (symmetric) return symmetric;
      const derived = child(encryptionKey, "DerivedKey");
      if (derived) symmetric = derivePBKDF2(derived, options.password);
      else if (options.preSharedKey) symmetric = Buffer.from(options.preSharedKey);
      else throw new OTPError("pskc_key", "this PSKC file is encrypted with a pre-shared key; supply it");
      return symmetric;
    },
    privateKeyPem() {
      if (options.privateKeyPem === undefined) throw new OTPError("pskc_key", "this PSKC file is encrypted to a certificate; supply the private key");
      return options.privateKeyPem;
    },
    mac() {
      if (mac !== undefined) return mac ?? undefined;
      const method = child(container, "MACMethod");
      if (!method) {
        mac = null;
        return undefined;
      }
      const hash = MAC_ALGORITHMS[attr(method, "Algorithm") ?? ""];
      if (!hash) fail("unsupported MACMethod algorithm");
      const macKey = child(method, "MACKey");
      if (!macKey) throw new OTPError("pskc_mac", "MACMethod without MACKey");
      // The MAC key is itself encrypted with the document key (§6.1.1) and carries no MAC.
      const plain = decryptNode(macKey, km, "MACKey");
      if (plain.length === 0) throw new OTPError("pskc_mac", "empty MAC key");
      mac = { key: plain, hash };
      return mac;
    },
  };
  return km;
}

function algorithmFromSuite(suite: string | undefined, what: string): OTPAlgorithm {
  if (suite === undefined || suite === "") return "SHA1";
  const s = suite.toUpperCase().replace(/[^A-Z0-9]/g, "");
  if (s === "HMACSHA1" || s === "SHA1") return "SHA1";
  if (s === "HMACSHA256" || s === "SHA256") return "SHA256";
  if (s === "HMACSHA512" || s === "SHA512") return "SHA512";
  fail(`${what}: unsupported Suite`);
}

/**
 * Parses an RFC 6030 PSKC document into tokens. Keys with the PIN algorithm are skipped;
 * any other non-HOTP/TOTP key is an error. Throws OTPError with code
 *  - "pskc_format": not PSKC 1.0, DOCTYPE/ENTITY present, missing or malformed elements,
 *    unsupported algorithms, duplicate serials;
 *  - "pskc_key": a needed key/password is missing, or decryption fails;
 *  - "pskc_mac": a CBC-encrypted value has no MAC or a wrong one;
 *  - "bad_secret": a decrypted seed is outside 16-64 bytes.
 * Messages name the key by position and serial only, never a secret.
 */
export function parsePSKC(xml: string, options: PSKCOptions = {}): ImportedToken[] {
  if (/<!DOCTYPE/i.test(xml) || /<!ENTITY/i.test(xml)) fail("DOCTYPE and ENTITY declarations are not allowed");
  let doc: XNode;
  try {
    doc = parser.parse(xml, true) as XNode;
  } catch {
    fail("not well-formed XML");
  }
  const container = child(doc, "KeyContainer");
  if (!container) fail("no KeyContainer element");
  if (attr(container, "Version") !== "1.0") fail("KeyContainer Version must be 1.0");
  const keys = keyMaterial(container, options);
  const packages = (container["KeyPackage"] ?? []) as XNode[];
  const out: ImportedToken[] = [];
  const serials = new Set<string>();
  let index = 0;
  for (const pkg of packages) {
    const device = child(pkg, "DeviceInfo");
    for (const key of (pkg["Key"] ?? []) as XNode[]) {
      index++;
      const algorithmURI = attr(key, "Algorithm") ?? "";
      const kind = KIND[algorithmURI];
      const serial = text(device, "SerialNo") || attr(key, "Id") || "";
      const what = `key ${index}${serial && isValidSerial(serial) ? ` (serial ${serial})` : ""}`;
      if (kind === "pin") continue;
      if (kind === undefined) fail(`${what}: unsupported key algorithm`);
      if (!isValidSerial(serial)) fail(`${what}: SerialNo or Key Id missing or invalid`);
      if (serials.has(serial)) fail(`${what}: duplicate serial`);

      const params = child(key, "AlgorithmParameters");
      const format = child(params, "ResponseFormat");
      const encoding = attr(format, "Encoding");
      if (encoding !== undefined && encoding !== "DECIMAL") fail(`${what}: ResponseFormat Encoding must be DECIMAL`);
      const length = integer(attr(format, "Length"), `${what} ResponseFormat Length`, 6, 1, 10);
      if (length !== 6 && length !== 8) fail(`${what}: ResponseFormat Length must be 6 or 8`);
      const algorithm = algorithmFromSuite(text(params, "Suite"), what);

      const data = child(key, "Data");
      const secretNode = child(data, "Secret");
      if (!secretNode) fail(`${what}: Data/Secret missing`);
      const plain = text(secretNode, "PlainValue");
      const encrypted = child(secretNode, "EncryptedValue");
      let secret: Buffer;
      if (encrypted) secret = decryptValue(encrypted, text(secretNode, "ValueMAC"), keys, what);
      else if (plain !== undefined) secret = base64(plain, `${what} Secret`);
      else fail(`${what}: Secret has neither PlainValue nor EncryptedValue`);
      if (!isValidSecretLength(secret)) throw new OTPError("bad_secret", `${what}: ${SECRET_LENGTH_RULE}`);

      if (child(child(data, "Counter"), "EncryptedValue")) fail(`${what}: encrypted Counter is not supported`);
      const counter = integer(text(child(data, "Counter"), "PlainValue"), `${what} Counter`, 0, 0, Number.MAX_SAFE_INTEGER);
      const period = integer(text(child(data, "TimeInterval"), "PlainValue"), `${what} TimeInterval`, 30, 1, 86_400);
      const t0 = integer(text(child(data, "Time"), "PlainValue"), `${what} Time`, 0, 0, Number.MAX_SAFE_INTEGER);
      if (kind === "totp" && t0 !== 0) fail(`${what}: a TOTP Time (T0) other than 0 is not supported`);

      const userId = text(key, "UserId") || text(device, "UserId") || undefined;
      serials.add(serial);
      out.push({
        serial,
        kind,
        secret: new Uint8Array(secret),
        algorithm,
        digits: length,
        period,
        counter: kind === "hotp" ? counter : 0,
        ...(userId !== undefined ? { userId } : {}),
      });
    }
  }
  return out;
}
