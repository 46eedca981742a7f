// TOTP (RFC 6238): generation, verification with high-water mark and learned drift, resync.

import { OTPError } from "./errors.ts";
import { codesEqual, deriveCode, deriveValue, isCodeFormat, validateOTPParams, type OTPParams } from "./hotp.ts";

export type TOTPParams = OTPParams & { period: number };

function validatePeriod(period: number): void {
  if (!Number.isSafeInteger(period) || period < 1) throw new OTPError("bad_params", "period must be a positive integer");
}

function validateNow(now: number): void {
  if (!Number.isFinite(now) || now < 0) throw new OTPError("bad_params", "now must be a non-negative unix time in ms");
}

/** RFC 6238 §4.2: T = floor((unix seconds - T0) / X) with T0 = 0. `now` is unix ms. */
export function timeStep(now: number, period: number): number {
  return Math.floor(Math.floor(now / 1000) / period);
}

/**
 * RFC 6238 TOTP value at `now` (unix ms): HOTP with the time step as counter (§4.2).
 * Throws OTPError("bad_params") for bad parameters.
 */
export function generateTOTP(p: TOTPParams, { now }: { now: number }): string {
  validateOTPParams(p);
  validatePeriod(p.period);
  validateNow(now);
  return deriveCode(p, timeStep(now, p.period));
}

export type VerifyTOTPResult =
  | { ok: true; step: number; drift: number }
  | { ok: false; reason: "invalid" | "replay" | "format" };

/**
 * TOTP check with high-water mark and learned drift (RFC 6238 §5.2, §6). Searches steps
 * (currentStep + drift) - window .. + window, the expected step first, then outwards.
 * A code matching a step <= lastStep is { ok:false, reason:"replay" } — an older step inside
 * the window is a replay too. On success returns the matched step and the new drift
 * (matchedStep - currentStep), which the caller commits atomically with
 * `UPDATE … WHERE last_step < step` before replying.
 * A wrong or malformed code is a result, not a throw; throws OTPError("bad_params") only for
 * bad token parameters or options.
 */
export function verifyTOTP(
  token: TOTPParams & { lastStep: number; drift: number },
  code: string,
  { now, window = 1 }: { now: number; window?: number },
): VerifyTOTPResult {
  validateOTPParams(token);
  validatePeriod(token.period);
  validateNow(now);
  if (!Number.isSafeInteger(window) || window < 0) throw new OTPError("bad_params", "window must be a non-negative integer");
  if (!Number.isSafeInteger(token.drift)) throw new OTPError("bad_params", "drift must be an integer");
  if (!Number.isSafeInteger(token.lastStep)) throw new OTPError("bad_params", "lastStep must be an integer");
  if (!isCodeFormat(code, token.digits)) return { ok: false, reason: "format" };

  const current = timeStep(now, token.period);
  const center = current + token.drift;
  // exactly `digits` ASCII digits (checked above), so the number identifies the code; the XOR
  // compare below has no data-dependent branch before its single test, like codesEqual
  const typed = Number(code);
  let replay = false;
  // Every candidate is computed even after a replay hit, so that a (1 in 10^digits) collision
  // with a fresh step still succeeds and the loop's cost does not depend on lastStep.
  for (let i = 0; i <= 2 * window; i++) {
    // 0, -1, +1, -2, +2 … around the expected step.
    const offset = i === 0 ? 0 : i % 2 === 1 ? -((i + 1) >> 1) : i >> 1;
    const step = center + offset;
    if (step < 0) continue;
    if ((deriveValue(token, step) ^ typed) === 0) {
      if (step > token.lastStep) return { ok: true, step, drift: step - current };
      replay = true;
    }
  }
  return { ok: false, reason: replay ? "replay" : "invalid" };
}

/**
 * TOTP resynchronisation from two consecutive codes: searches steps s within ±range
 * (default 1440 ≈ 12 h at 30 s) around the current step, nearest first, with code1 at s and
 * code2 at s+1. Returns { lastStep: s+1, drift: s+1-currentStep } to commit, or undefined when
 * not found or malformed. When the token's `lastStep` is given, only s > lastStep qualifies, so
 * already-used codes cannot move the token backwards.
 * Throws OTPError("bad_params") only for bad token parameters or options.
 */
export function resyncTOTP(
  token: TOTPParams & { lastStep?: number },
  code1: string,
  code2: string,
  { now, range = 1440 }: { now: number; range?: number },
): { lastStep: number; drift: number } | undefined {
  validateOTPParams(token);
  validatePeriod(token.period);
  validateNow(now);
  if (!Number.isSafeInteger(range) || range < 0) throw new OTPError("bad_params", "range must be a non-negative integer");
  if (!isCodeFormat(code1, token.digits) || !isCodeFormat(code2, token.digits)) return undefined;
  const current = timeStep(now, token.period);
  const floor = token.lastStep ?? -1;
  for (let i = 0; i <= 2 * range; i++) {
    const offset = i === 0 ? 0 : i % 2 === 1 ? -((i + 1) >> 1) : i >> 1;
    const s = current + offset;
    if (s < 0 || s <= floor) continue;
    if (codesEqual(deriveCode(token, s), code1) && codesEqual(deriveCode(token, s + 1), code2)) {
      return { lastStep: s + 1, drift: s + 1 - current };
    }
  }
  return undefined;
}
