// HOTP: RFC 4226 Appendix D vectors, look-ahead verification, resync and input checks.
import { describe, expect, test } from "bun:test";
import { createHmac, randomBytes } from "node:crypto";
import vectors from "../../vectors/rfc4226-appendix-d.json" with { type: "json" };
import { generateHOTP, OTPError, resyncHOTP, verifyHOTP, type OTPParams } from "../../../src/otp/index.ts";

const secret = new TextEncoder().encode(vectors.secretAscii);
const params: OTPParams = { secret, algorithm: "SHA1", digits: 6 };

/** Independent RFC 4226 §5.3 reference (node:crypto HMAC + dynamic truncation). */
function referenceHOTP(p: OTPParams, counter: number): string {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const h = createHmac(p.algorithm.toLowerCase(), p.secret).update(msg).digest();
  const offset = h[h.length - 1]! & 0x0f;
  const bin = h.readUInt32BE(offset) & 0x7fffffff;
  return String(bin % 10 ** p.digits).padStart(p.digits, "0");
}

describe("generateHOTP", () => {
  test.each(vectors.vectors)("$title", ({ count, hotp }) => {
    expect(generateHOTP(params, count)).toBe(hotp);
  });

  test("matches the RFC 4226 §5.3 reference on random seeds, counters, algorithms and lengths", () => {
    const algorithms = ["SHA1", "SHA256", "SHA512"] as const;
    for (let i = 0; i < 300; i++) {
      const p: OTPParams = {
        secret: new Uint8Array(randomBytes(16 + (i % 49))),
        algorithm: algorithms[i % 3]!,
        digits: i % 2 === 0 ? 6 : 8,
      };
      const counter = i % 5 === 0 ? Number.MAX_SAFE_INTEGER - i : Math.floor(Math.random() * 2 ** 40);
      expect(generateHOTP(p, counter)).toBe(referenceHOTP(p, counter));
    }
  });

  test.each([
    ["secret under 80 bits", { ...params, secret: new Uint8Array(9) }, 0],
    ["secret too long", { ...params, secret: new Uint8Array(65) }, 0],
    ["digits 7", { ...params, digits: 7 as 6 }, 0],
    ["unknown algorithm", { ...params, algorithm: "MD5" as "SHA1" }, 0],
    ["negative counter", params, -1],
    ["fractional counter", params, 1.5],
  ])("throws bad_params: %s", (_name, p, counter) => {
    expect(() => generateHOTP(p, counter)).toThrow(OTPError);
    try {
      generateHOTP(p, counter);
    } catch (e) {
      expect((e as OTPError).code).toBe("bad_params");
    }
  });
});

describe("verifyHOTP", () => {
  test("accepts the code at the counter and returns next = counter + 1", () => {
    expect(verifyHOTP({ ...params, counter: 0 }, "755224")).toEqual({ ok: true, next: 1 });
  });

  test("look-ahead finds a code up to counter + 10 by default (RFC 4226 §7.4)", () => {
    expect(verifyHOTP({ ...params, counter: 0 }, generateHOTP(params, 10))).toEqual({ ok: true, next: 11 });
    expect(verifyHOTP({ ...params, counter: 0 }, generateHOTP(params, 11))).toEqual({ ok: false, reason: "invalid" });
  });

  test("lookAhead option widens or narrows the window", () => {
    expect(verifyHOTP({ ...params, counter: 0 }, "969429", { lookAhead: 2 })).toEqual({ ok: false, reason: "invalid" });
    expect(verifyHOTP({ ...params, counter: 0 }, "969429", { lookAhead: 3 })).toEqual({ ok: true, next: 4 });
    expect(verifyHOTP({ ...params, counter: 5 }, generateHOTP(params, 25), { lookAhead: 20 })).toEqual({ ok: true, next: 26 });
  });

  test("a code below the counter (already used) is invalid", () => {
    expect(verifyHOTP({ ...params, counter: 3 }, "359152")).toEqual({ ok: false, reason: "invalid" });
  });

  test.each(["", "75522", "7552240", " 755224", "755224 ", "75522a", "７５５２２４", "+55224", "755\u0000224"])(
    "format error for %j",
    (code) => {
      expect(verifyHOTP({ ...params, counter: 0 }, code)).toEqual({ ok: false, reason: "format" });
    },
  );

  test("8-digit token rejects a 6-digit code as format", () => {
    expect(verifyHOTP({ ...params, digits: 8, counter: 0 }, "755224")).toEqual({ ok: false, reason: "format" });
    expect(verifyHOTP({ ...params, digits: 8, counter: 0 }, "84755224")).toEqual({ ok: true, next: 1 });
  });
});

describe("resyncHOTP", () => {
  test("finds two consecutive codes ahead and returns counter s + 2", () => {
    const token = { ...params, counter: 0 };
    expect(resyncHOTP(token, generateHOTP(params, 500), generateHOTP(params, 501))).toEqual({ counter: 502 });
    expect(resyncHOTP(token, "755224", "287082")).toEqual({ counter: 2 });
  });

  test("non-consecutive or out-of-range codes are not found", () => {
    const token = { ...params, counter: 0 };
    expect(resyncHOTP(token, generateHOTP(params, 500), generateHOTP(params, 502))).toBeUndefined();
    expect(resyncHOTP(token, generateHOTP(params, 1200), generateHOTP(params, 1201))).toBeUndefined();
    expect(resyncHOTP(token, generateHOTP(params, 1200), generateHOTP(params, 1201), { range: 1500 })).toEqual({ counter: 1202 });
  });

  test("codes behind the counter are not found", () => {
    expect(resyncHOTP({ ...params, counter: 5 }, "755224", "287082")).toBeUndefined();
  });

  test("malformed codes return undefined", () => {
    expect(resyncHOTP({ ...params, counter: 0 }, "755224", "28708")).toBeUndefined();
  });
});
