// TOTP: RFC 6238 Appendix B vectors, window, replay (high-water mark), drift learning and resync.
import { describe, expect, test } from "bun:test";
import { generateSync } from "otplib";
import { NodeCryptoPlugin } from "@otplib/plugin-crypto-node";
import vectors from "../../vectors/rfc6238-appendix-b.json" with { type: "json" };
import { generateTOTP, OTPError, resyncTOTP, timeStep, verifyTOTP, type TOTPParams } from "../../../src/otp/index.ts";

type Mode = "SHA1" | "SHA256" | "SHA512";
const seed = (mode: Mode) => new TextEncoder().encode(vectors.seedsAscii[mode]);

describe("generateTOTP", () => {
  test.each(vectors.vectors)("$title", ({ time, mode, totp, T }) => {
    const p: TOTPParams = { secret: seed(mode as Mode), algorithm: mode as Mode, digits: 8, period: vectors.period };
    expect(timeStep(time * 1000, 30)).toBe(parseInt(T, 16));
    expect(generateTOTP(p, { now: time * 1000 })).toBe(totp);
  });

  test("agrees with otplib's own TOTP strategy for other periods and 6 digits", () => {
    const crypto = new NodeCryptoPlugin();
    for (const period of [15, 30, 60, 90]) {
      for (const epoch of [0, 59, 1_700_000_000, 1_700_000_059]) {
        const p: TOTPParams = { secret: seed("SHA256"), algorithm: "SHA256", digits: 6, period };
        const expected = generateSync({ secret: p.secret, algorithm: "sha256", digits: 6, period, epoch, crypto });
        expect(generateTOTP(p, { now: epoch * 1000 + 999 })).toBe(expected);
      }
    }
  });

  test("throws bad_params for a zero period", () => {
    expect(() => generateTOTP({ secret: seed("SHA1"), algorithm: "SHA1", digits: 6, period: 0 }, { now: 0 })).toThrow(OTPError);
  });
});

describe("verifyTOTP on the RFC 6238 vectors", () => {
  // codes are compared as the numbers they spell; "07081804" and "00000000"-like codes must still match exactly
  test.each(vectors.vectors)("$title", ({ time, mode, totp, T }) => {
    const token = { secret: seed(mode as Mode), algorithm: mode as Mode, digits: 8 as const, period: vectors.period, lastStep: -1, drift: 0 };
    expect(verifyTOTP(token, totp, { now: time * 1000, window: 0 })).toEqual({ ok: true, step: parseInt(T, 16), drift: 0 });
    // the same digits one off, and the code without its leading digit padded back, are both refused
    const last = Number(totp[7]);
    const wrong = totp.slice(0, 7) + String((last + 1) % 10);
    expect(verifyTOTP(token, wrong, { now: time * 1000, window: 0 })).toEqual({ ok: false, reason: "invalid" });
    expect(verifyTOTP(token, totp.slice(1) + "0", { now: time * 1000, window: 0 }).ok).toBe(false);
  });
});

describe("verifyTOTP", () => {
  const base: TOTPParams = { secret: seed("SHA1"), algorithm: "SHA1", digits: 6, period: 30 };
  const now = 1_700_000_000_000;
  const step = timeStep(now, 30);
  const codeAt = (s: number) => generateTOTP(base, { now: s * 30_000 });
  const fresh = { ...base, lastStep: -1, drift: 0 };

  test("accepts the current step and returns step and drift 0", () => {
    expect(verifyTOTP(fresh, codeAt(step), { now })).toEqual({ ok: true, step, drift: 0 });
  });

  test.each([
    [-1, { ok: true, step: step - 1, drift: -1 }],
    [1, { ok: true, step: step + 1, drift: 1 }],
    [-2, { ok: false, reason: "invalid" }],
    [2, { ok: false, reason: "invalid" }],
  ] as const)("window ±1 by default: offset %d", (offset, expected) => {
    expect(verifyTOTP(fresh, codeAt(step + offset), { now })).toEqual(expected);
  });

  test("window option widens the search", () => {
    expect(verifyTOTP(fresh, codeAt(step + 3), { now, window: 3 })).toEqual({ ok: true, step: step + 3, drift: 3 });
    expect(verifyTOTP(fresh, codeAt(step + 1), { now, window: 0 })).toEqual({ ok: false, reason: "invalid" });
  });

  test("replay: the same step again is refused", () => {
    const first = verifyTOTP(fresh, codeAt(step), { now });
    expect(first).toEqual({ ok: true, step, drift: 0 });
    expect(verifyTOTP({ ...base, lastStep: step, drift: 0 }, codeAt(step), { now })).toEqual({ ok: false, reason: "replay" });
  });

  test("replay: an older step inside the window is refused once a newer one was accepted", () => {
    expect(verifyTOTP({ ...base, lastStep: step, drift: 0 }, codeAt(step - 1), { now })).toEqual({ ok: false, reason: "replay" });
    expect(verifyTOTP({ ...base, lastStep: step + 1, drift: 0 }, codeAt(step), { now })).toEqual({ ok: false, reason: "replay" });
  });

  test("a newer step than the high-water mark is still accepted", () => {
    expect(verifyTOTP({ ...base, lastStep: step, drift: 0 }, codeAt(step + 1), { now })).toEqual({ ok: true, step: step + 1, drift: 1 });
  });

  test("learned drift recentres the window", () => {
    // Token clock runs 5 steps fast: with drift 5 the window is step+4 .. step+6.
    const drifted = { ...base, lastStep: -1, drift: 5 };
    expect(verifyTOTP(drifted, codeAt(step + 5), { now })).toEqual({ ok: true, step: step + 5, drift: 5 });
    expect(verifyTOTP(drifted, codeAt(step + 6), { now })).toEqual({ ok: true, step: step + 6, drift: 6 });
    expect(verifyTOTP(drifted, codeAt(step), { now })).toEqual({ ok: false, reason: "invalid" });
  });

  test("drift is learned across logins: each success reports matchedStep - currentStep", () => {
    let token = { ...base, lastStep: -1, drift: 0 };
    // The token's clock drifts one step further ahead every hour.
    for (let hour = 0; hour < 4; hour++) {
      const t = now + hour * 3_600_000;
      const current = timeStep(t, 30);
      const r = verifyTOTP(token, codeAt(current + hour + 1), { now: t });
      expect(r).toEqual({ ok: true, step: current + hour + 1, drift: hour + 1 });
      if (r.ok) token = { ...token, lastStep: r.step, drift: r.drift };
    }
  });

  test.each(["", "12345", "1234567", " 123456", "123456\n", "12345x", "-12345"])("format error for %j", (code) => {
    expect(verifyTOTP(fresh, code, { now })).toEqual({ ok: false, reason: "format" });
  });

  test("wrong code is invalid", () => {
    const good = codeAt(step);
    const wrong = String((Number(good) + 1) % 1_000_000).padStart(6, "0");
    expect(verifyTOTP({ ...fresh }, wrong, { now, window: 0 })).toEqual({ ok: false, reason: "invalid" });
  });
});

describe("resyncTOTP", () => {
  const base: TOTPParams = { secret: seed("SHA1"), algorithm: "SHA1", digits: 6, period: 30 };
  const now = 1_700_000_000_000;
  const step = timeStep(now, 30);
  const codeAt = (s: number) => generateTOTP(base, { now: s * 30_000 });

  test.each([0, 100, -100, 1439, -1440])("finds consecutive codes at offset %d", (offset) => {
    const s = step + offset;
    expect(resyncTOTP(base, codeAt(s), codeAt(s + 1), { now })).toEqual({ lastStep: s + 1, drift: offset + 1 });
  });

  test("beyond the range or non-consecutive codes are not found", () => {
    expect(resyncTOTP(base, codeAt(step + 2000), codeAt(step + 2001), { now })).toBeUndefined();
    expect(resyncTOTP(base, codeAt(step + 2000), codeAt(step + 2001), { now, range: 2000 })).toEqual({ lastStep: step + 2001, drift: 2001 });
    expect(resyncTOTP(base, codeAt(step), codeAt(step + 2), { now })).toBeUndefined();
  });

  test("codes at or below the high-water mark cannot move the token back", () => {
    expect(resyncTOTP({ ...base, lastStep: step }, codeAt(step - 10), codeAt(step - 9), { now })).toBeUndefined();
    expect(resyncTOTP({ ...base, lastStep: step }, codeAt(step + 1), codeAt(step + 2), { now })).toEqual({ lastStep: step + 2, drift: 2 });
  });

  test("malformed codes return undefined", () => {
    expect(resyncTOTP(base, "abcdef", codeAt(step), { now })).toBeUndefined();
  });
});
