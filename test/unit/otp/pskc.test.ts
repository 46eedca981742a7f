// PSKC import: RFC 6030 example documents, MAC-before-decrypt, RSA key transport, XXE refusal.
import { afterAll, describe, expect, spyOn, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  constants,
  createCipheriv,
  createHmac,
  generateKeyPairSync,
  publicEncrypt,
  randomBytes,
} from "node:crypto";
import examples from "../../vectors/rfc6030-examples.json" with { type: "json" };
import { OTPError, parsePSKC, type ImportedToken, type PSKCOptions } from "../../../src/otp/index.ts";

const vectorsDir = path.join(import.meta.dirname, "../../vectors");
const read = (file: string) => fs.readFileSync(path.join(vectorsDir, file), "utf8");
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

function toOptions(o: { preSharedKeyHex?: string; password?: string }): PSKCOptions {
  return {
    ...(o.preSharedKeyHex ? { preSharedKey: new Uint8Array(Buffer.from(o.preSharedKeyHex, "hex")) } : {}),
    ...(o.password !== undefined ? { password: o.password } : {}),
  };
}

function errorOf(fn: () => unknown): OTPError {
  try {
    fn();
  } catch (e) {
    if (e instanceof OTPError) return e;
    throw e;
  }
  throw new Error("expected an OTPError");
}

function view(tokens: ImportedToken[]) {
  return tokens.map(({ secret, ...rest }) => ({ ...rest, secretHex: hex(secret) }));
}

describe("RFC 6030 examples", () => {
  test.each(examples.examples)("$title", (ex) => {
    const xml = read(ex.file);
    const options = toOptions(ex.options);
    if ("tokens" in ex && ex.tokens) {
      expect(view(parsePSKC(xml, options)) as unknown[]).toEqual(ex.tokens);
    } else {
      const e = errorOf(() => parsePSKC(xml, options));
      if ("errorOneOf" in ex && ex.errorOneOf) expect(ex.errorOneOf as string[]).toContain(e.code as string);
      else expect(e.code as string).toBe((ex as { error: string }).error);
      // Never leak key material in messages.
      expect(e.message).not.toContain("3132333435363738393031323334353637383930");
      expect(e.message).not.toContain("qwerty");
    }
  });
});

// ---- documents built in the test ------------------------------------------------------------

const NS = `xmlns="urn:ietf:params:xml:ns:keyprov:pskc" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:xenc="http://www.w3.org/2001/04/xmlenc#"`;
const SEED = Buffer.from("3132333435363738393031323334353637383930", "hex");

function cbc(key: Buffer, plain: Buffer, bits = 128): Buffer {
  const iv = randomBytes(16);
  const c = createCipheriv(`aes-${bits}-cbc`, key, iv);
  return Buffer.concat([iv, c.update(plain), c.final()]);
}

function keyXML(opts: { secretXML: string; algorithm?: string; params?: string; data?: string; serial?: string; userId?: string }) {
  return `<KeyPackage><DeviceInfo><SerialNo>${opts.serial ?? "TOK-1"}</SerialNo></DeviceInfo>
    <Key Id="k1" Algorithm="${opts.algorithm ?? "urn:ietf:params:xml:ns:keyprov:pskc:hotp"}">
      <AlgorithmParameters>${opts.params ?? '<ResponseFormat Length="6" Encoding="DECIMAL"/>'}</AlgorithmParameters>
      <Data><Secret>${opts.secretXML}</Secret>${opts.data ?? ""}</Data>
      ${opts.userId ? `<UserId>${opts.userId}</UserId>` : ""}
    </Key></KeyPackage>`;
}

function pskDocument(psk: Buffer, opts: { tamper?: boolean; omitMAC?: boolean; bits?: number } = {}) {
  const bits = opts.bits ?? 128;
  const macKey = randomBytes(20);
  const encMacKey = cbc(psk, macKey, bits);
  const encSeed = cbc(psk, SEED, bits);
  const mac = createHmac("sha1", macKey).update(encSeed).digest();
  if (opts.tamper) encSeed[encSeed.length - 1]! ^= 1;
  const alg = `http://www.w3.org/2001/04/xmlenc#aes${bits}-cbc`;
  return `<?xml version="1.0"?><KeyContainer Version="1.0" ${NS}>
    <EncryptionKey><ds:KeyName>PSK</ds:KeyName></EncryptionKey>
    <MACMethod Algorithm="http://www.w3.org/2000/09/xmldsig#hmac-sha1"><MACKey>
      <xenc:EncryptionMethod Algorithm="${alg}"/><xenc:CipherData><xenc:CipherValue>${encMacKey.toString("base64")}</xenc:CipherValue></xenc:CipherData>
    </MACKey></MACMethod>
    ${keyXML({
      secretXML: `<EncryptedValue><xenc:EncryptionMethod Algorithm="${alg}"/><xenc:CipherData><xenc:CipherValue>${encSeed.toString("base64")}</xenc:CipherValue></xenc:CipherData></EncryptedValue>${opts.omitMAC ? "" : `<ValueMAC>${mac.toString("base64")}</ValueMAC>`}`,
    })}
  </KeyContainer>`;
}

describe("pre-shared key (§6.1)", () => {
  const psk = randomBytes(16);

  test.each([128, 192, 256])("AES-%d-CBC with HMAC-SHA1 ValueMAC", (bits) => {
    const key = randomBytes(bits / 8);
    const tokens = parsePSKC(pskDocument(key, { bits }), { preSharedKey: key });
    expect(hex(tokens[0]!.secret)).toBe(SEED.toString("hex"));
  });

  test("a tampered ciphertext fails the MAC check before any decryption", () => {
    expect(errorOf(() => parsePSKC(pskDocument(psk, { tamper: true }), { preSharedKey: psk })).code).toBe("pskc_mac");
  });

  test("a CBC value without ValueMAC is refused", () => {
    expect(errorOf(() => parsePSKC(pskDocument(psk, { omitMAC: true }), { preSharedKey: psk })).code).toBe("pskc_mac");
  });

  test("a key of the wrong length for the algorithm is refused", () => {
    expect(errorOf(() => parsePSKC(pskDocument(psk), { preSharedKey: randomBytes(32) })).code).toBe("pskc_key");
  });

  test("RFC 6030 Figure 6 with a flipped ValueMAC byte is pskc_mac", () => {
    const xml = read("rfc6030-figure6.xml").replace("Su+NvtQfmvfJzF6bmQiJqoLRExc=", "Tu+NvtQfmvfJzF6bmQiJqoLRExc=");
    const psk6 = new Uint8Array(Buffer.from(examples.keys.preSharedKeyHex, "hex"));
    expect(errorOf(() => parsePSKC(xml, { preSharedKey: psk6 })).code).toBe("pskc_mac");
  });

  // RFC 3394 §4.1 and §4.6 vectors (KEK, key data, wrapped), placed in a PSKC document.
  test.each([
    ["§4.1 128-bit KEK, 128-bit key", "kw-aes128", "000102030405060708090A0B0C0D0E0F", "00112233445566778899AABBCCDDEEFF", "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"],
    ["§4.6 256-bit KEK, 256-bit key", "kw-aes256", "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F", "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"],
  ])("AES key wrap, RFC 3394 %s, needs no MAC", (_t, alg, kek, plain, wrapped) => {
    const xml = `<KeyContainer Version="1.0" ${NS}><EncryptionKey><ds:KeyName>K</ds:KeyName></EncryptionKey>${keyXML({
      secretXML: `<EncryptedValue><xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#${alg}"/><xenc:CipherData><xenc:CipherValue>${Buffer.from(wrapped, "hex").toString("base64")}</xenc:CipherValue></xenc:CipherData></EncryptedValue>`,
    })}</KeyContainer>`;
    const k = new Uint8Array(Buffer.from(kek, "hex"));
    expect(hex(parsePSKC(xml, { preSharedKey: k })[0]!.secret)).toBe(plain.toLowerCase());
    const wrong = new Uint8Array(k.length).fill(9);
    expect(errorOf(() => parsePSKC(xml, { preSharedKey: wrong })).code).toBe("pskc_key");
  });
});

describe("asymmetric key transport (§6.3)", () => {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const other = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();

  function rsaDocument(algorithm: string, padding: number) {
    const ct = publicEncrypt({ key: publicKey, padding, ...(padding === constants.RSA_PKCS1_OAEP_PADDING ? { oaepHash: "sha1" } : {}) }, SEED);
    return `<KeyContainer Version="1.0" ${NS}><EncryptionKey><ds:X509Data><ds:X509Certificate>MIIB</ds:X509Certificate></ds:X509Data></EncryptionKey>${keyXML({
      secretXML: `<EncryptedValue><xenc:EncryptionMethod Algorithm="${algorithm}"/><xenc:CipherData><xenc:CipherValue>${ct.toString("base64")}</xenc:CipherValue></xenc:CipherData></EncryptedValue>`,
    })}</KeyContainer>`;
  }

  test.each([
    ["RSA-1_5", "http://www.w3.org/2001/04/xmlenc#rsa_1_5", constants.RSA_PKCS1_PADDING],
    ["RSA-OAEP (MGF1-SHA1)", "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p", constants.RSA_PKCS1_OAEP_PADDING],
  ])("%s decrypts with the matching private key and fails with another", (_n, algorithm, padding) => {
    const xml = rsaDocument(algorithm, padding);
    expect(hex(parsePSKC(xml, { privateKeyPem: pem })[0]!.secret)).toBe(SEED.toString("hex"));
    expect(errorOf(() => parsePSKC(xml, { privateKeyPem: other })).code).toBe("pskc_key");
    expect(errorOf(() => parsePSKC(xml)).code).toBe("pskc_key");
  });

  test("RFC 6030 Figure 8 with an unrelated private key is pskc_key", () => {
    const small = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    expect(errorOf(() => parsePSKC(read("rfc6030-figure8.xml"), { privateKeyPem: small })).code).toBe("pskc_key");
  });
});

describe("token attributes", () => {
  test("TOTP with Suite, TimeInterval and DeviceInfo UserId", () => {
    const xml = `<KeyContainer Version="1.0" ${NS}><KeyPackage><DeviceInfo><SerialNo>TOTP-9</SerialNo><UserId>alice</UserId></DeviceInfo>
      <Key Id="x" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:totp"><AlgorithmParameters><Suite>HMAC-SHA256</Suite><ResponseFormat Length="8" Encoding="DECIMAL"/></AlgorithmParameters>
      <Data><Secret><PlainValue>${Buffer.alloc(32, 0x31).toString("base64")}</PlainValue></Secret><Time><PlainValue>0</PlainValue></Time><TimeInterval><PlainValue>60</PlainValue></TimeInterval></Data></Key></KeyPackage></KeyContainer>`;
    expect(view(parsePSKC(xml))).toEqual([
      { serial: "TOTP-9", kind: "totp", algorithm: "SHA256", digits: 8, period: 60, counter: 0, userId: "alice", secretHex: "31".repeat(32) },
    ]);
  });

  test("Key Id is the serial when DeviceInfo has none; HOTP counter is kept", () => {
    const xml = `<KeyContainer Version="1.0" ${NS}><KeyPackage><Key Id="KID-7" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:hotp">
      <Data><Secret><PlainValue>${SEED.toString("base64")}</PlainValue></Secret><Counter><PlainValue>42</PlainValue></Counter></Data></Key></KeyPackage></KeyContainer>`;
    expect(view(parsePSKC(xml))).toEqual([
      { serial: "KID-7", kind: "hotp", algorithm: "SHA1", digits: 6, period: 30, counter: 42, secretHex: SEED.toString("hex") },
    ]);
  });

  test.each([
    ["wrong version", `<KeyContainer Version="2.0" ${NS}></KeyContainer>`],
    ["not PSKC", `<html/>`],
    ["not XML", `<<<`],
    ["unsupported key algorithm", `<KeyContainer Version="1.0" ${NS}>${keyXML({ secretXML: `<PlainValue>${SEED.toString("base64")}</PlainValue>`, algorithm: "urn:ietf:params:xml:ns:keyprov:pskc:ocra" })}</KeyContainer>`],
    ["7 digits", `<KeyContainer Version="1.0" ${NS}>${keyXML({ secretXML: `<PlainValue>${SEED.toString("base64")}</PlainValue>`, params: '<ResponseFormat Length="7" Encoding="DECIMAL"/>' })}</KeyContainer>`],
    ["bad base64", `<KeyContainer Version="1.0" ${NS}>${keyXML({ secretXML: `<PlainValue>!!!</PlainValue>` })}</KeyContainer>`],
    ["duplicate serial", `<KeyContainer Version="1.0" ${NS}>${keyXML({ secretXML: `<PlainValue>${SEED.toString("base64")}</PlainValue>` }).repeat(2)}</KeyContainer>`],
  ])("pskc_format: %s", (_name, xml) => {
    expect(errorOf(() => parsePSKC(xml)).code).toBe("pskc_format");
  });
});

describe("XML external entities", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pskc-xxe-"));
  const secretFile = path.join(dir, "secret.txt");
  fs.writeFileSync(secretFile, "XXE-MARKER-7f3a");
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const payloads = [
    `<?xml version="1.0"?><!DOCTYPE KeyContainer [<!ENTITY xxe SYSTEM "file://${secretFile}">]><KeyContainer Version="1.0" ${NS}>${keyXML({ secretXML: "<PlainValue>&xxe;</PlainValue>", serial: "&xxe;" })}</KeyContainer>`,
    `<?xml version="1.0"?><!doctype KeyContainer SYSTEM "file://${secretFile}"><KeyContainer Version="1.0" ${NS}/>`,
    `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><KeyContainer Version="1.0" ${NS}/>`,
    `<KeyContainer Version="1.0" ${NS}><!ENTITY x SYSTEM "file://${secretFile}"></KeyContainer>`,
  ];

  test.each(payloads.map((p, i) => [i, p]))("payload %d is refused and no file is opened", (_i, xml) => {
    const spies = [spyOn(fs, "readFileSync"), spyOn(fs, "openSync"), spyOn(fs, "readFile"), spyOn(fs, "open")];
    try {
      const e = errorOf(() => parsePSKC(xml as string));
      expect(e.code).toBe("pskc_format");
      expect(e.message).not.toContain("XXE-MARKER");
      for (const s of spies) expect(s).not.toHaveBeenCalled();
    } finally {
      for (const s of spies) s.mockRestore();
    }
  });

  test("an entity reference without a DTD stays literal text and is not expanded", () => {
    const xml = `<KeyContainer Version="1.0" ${NS}>${keyXML({ secretXML: `<PlainValue>${SEED.toString("base64")}</PlainValue>`, userId: "&xxe;" })}</KeyContainer>`;
    expect(parsePSKC(xml)[0]!.userId).toBe("&xxe;");
  });
});
