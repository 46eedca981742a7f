// Base32 (RFC 4648), seed generation, otpauth URIs (compared with otplib) and QR rendering.
import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { generateURI, ScureBase32Plugin } from "otplib";
import {
  decodeBase32,
  encodeBase32,
  generateSecret,
  OTPError,
  otpauthURI,
  svgQR,
  terminalQR,
} from "../../../src/otp/index.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

describe("base32", () => {
  // RFC 4648 §10 test vectors (our encoder omits the padding).
  test.each([
    ["", ""],
    ["f", "MY======"],
    ["fo", "MZXQ===="],
    ["foo", "MZXW6==="],
    ["foob", "MZXW6YQ="],
    ["fooba", "MZXW6YTB"],
    ["foobar", "MZXW6YTBOI======"],
  ])("RFC 4648 §10: BASE32(%j) = %j", (plain, encoded) => {
    expect(encodeBase32(bytes(plain))).toBe(encoded.replace(/=+$/, ""));
    expect(decodeBase32(encoded)).toEqual(bytes(plain));
    expect(decodeBase32(encoded.replace(/=+$/, ""))).toEqual(bytes(plain));
  });

  test("decoding is case-insensitive and tolerates spaces", () => {
    expect(decodeBase32("gezd gnbv gy3t qojq gezd gnbv gy3t qojq")).toEqual(bytes("12345678901234567890"));
  });

  test("set bits after the last whole octet are ignored, as they always were (RFC 4648 §3.5 lets a decoder refuse them)", () => {
    // "MZ": 10 bits, one octet ("f") and two spare bits that are 01 here, 00 in the canonical "MY"
    expect(decodeBase32("MZ")).toEqual(bytes("f"));
    expect(decodeBase32("mz======")).toEqual(bytes("f"));
    expect(decodeBase32("MZXR")).toEqual(bytes("fo")); // 4 spare bits
    expect(decodeBase32("MZXW7")).toEqual(bytes("foo")); // 1 spare bit
    expect(decodeBase32("MZXW6YR")).toEqual(bytes("foob")); // 3 spare bits
  });

  test("round-trips random seeds and agrees with otplib's base32 plugin", () => {
    const plugin = new ScureBase32Plugin();
    for (let n = 1; n <= 64; n++) {
      const b = new Uint8Array(randomBytes(n));
      const e = encodeBase32(b);
      expect(decodeBase32(e)).toEqual(b);
      expect(e).toBe(plugin.encode(b, { padding: false }));
    }
  });

  test.each(["GEZD1", "GEZ!DGNBV", "GEZDGNB=V", "A", "ABC", "ABCDEF", "ÄBCD", "ıIII", "GEZD\tGNBV", "=GEZDGNBV"])("rejects %j with bad_secret and no echo", (s) => {
    let error: unknown;
    try {
      decodeBase32(s);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(OTPError);
    expect((error as OTPError).code).toBe("bad_secret");
    expect((error as OTPError).message).not.toContain(s);
  });
});

describe("generateSecret", () => {
  test("defaults to 20 random bytes", () => {
    const a = generateSecret();
    expect(a).toBeInstanceOf(Uint8Array);
    expect(a.length).toBe(20);
    expect(generateSecret()).not.toEqual(a);
  });

  test("uses the injected random source", () => {
    expect(generateSecret({ bytes: 32, random: (n) => new Uint8Array(n).fill(7) })).toEqual(new Uint8Array(32).fill(7));
  });

  test.each([8, 15, 65])("refuses %d bytes", (n) => {
    expect(() => generateSecret({ bytes: n })).toThrow(OTPError);
  });
});

describe("otpauthURI", () => {
  const secret = bytes("12345678901234567890");
  test.each([
    { kind: "totp", issuer: "ACME Co", account: "john@example.com", algorithm: "SHA1", digits: 6 },
    { kind: "totp", issuer: "Portcullis", account: "alice", algorithm: "SHA256", digits: 8, period: 60 },
    { kind: "totp", issuer: "Ex/ample & Co", account: "jö hn+1@x", algorithm: "SHA512", digits: 6, period: 30 },
    { kind: "hotp", issuer: "ACME", account: "bob", algorithm: "SHA1", digits: 6, counter: 5 },
    { kind: "hotp", issuer: "ACME", account: "bob", algorithm: "SHA1", digits: 8, counter: 0 },
  ] as const)("matches otplib generateURI: $kind $issuer $account", (t) => {
    const ours = otpauthURI({ ...t, secret });
    const theirs = generateURI({
      strategy: t.kind,
      issuer: t.issuer,
      label: t.account,
      secret: encodeBase32(secret),
      algorithm: t.algorithm.toLowerCase() as "sha1",
      digits: t.digits,
      ...("period" in t ? { period: t.period } : {}),
      ...("counter" in t ? { counter: t.counter } : {}),
    });
    expect(ours).toBe(theirs);
  });

  test("a colon in the issuer is percent-encoded so the label stays unambiguous", () => {
    expect(otpauthURI({ kind: "totp", issuer: "A:B", account: "c", secret, algorithm: "SHA1", digits: 6 })).toBe(
      "otpauth://totp/A%3AB:c?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=A%3AB",
    );
  });

  test("empty issuer or account is bad_params", () => {
    expect(() => otpauthURI({ kind: "totp", issuer: "", account: "a", secret, algorithm: "SHA1", digits: 6 })).toThrow(OTPError);
    expect(() => otpauthURI({ kind: "totp", issuer: "i", account: "", secret, algorithm: "SHA1", digits: 6 })).toThrow(OTPError);
  });
});

describe("QR rendering", () => {
  const uri = "otpauth://totp/ACME:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME";
  test("terminalQR returns a non-empty multi-line block", async () => {
    const out = await terminalQR(uri);
    expect(out.length).toBeGreaterThan(100);
    expect(out.split("\n").length).toBeGreaterThan(10);
  });

  test("svgQR returns an SVG document", async () => {
    const out = await svgQR(uri);
    expect(out.startsWith("<svg")).toBe(true);
    expect(out).toContain("</svg>");
  });
});
