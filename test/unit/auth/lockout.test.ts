// Back-off schedule: nothing under the threshold, then doubling up to the maximum.
import { expect, test } from "bun:test";
import { DEFAULT_LOCKOUT, backoffDelay, knownRefreshMs } from "../../../src/auth/lockout.ts";

test.each([
  [1, 0],
  [4, 0],
  [5, 2_000],
  [6, 4_000],
  [7, 8_000],
  [13, 512_000],
  [14, 900_000],
  [1000, 900_000],
])("password failures %d → delay %d ms", (failures, delay) => {
  expect(backoffDelay(DEFAULT_LOCKOUT, "password", failures)).toBe(delay);
});

test("code and password thresholds are separate", () => {
  const policy = { ...DEFAULT_LOCKOUT, passwordThreshold: 3, codeThreshold: 10 };
  expect(backoffDelay(policy, "password", 3)).toBe(2_000);
  expect(backoffDelay(policy, "code", 3)).toBe(0);
});

test.each([
  [30, 86_400_000],
  [4, 86_400_000],
  [1, 21_600_000],
])("a source known for %d days is written again once its record is %d ms old", (days, refresh) => {
  expect(knownRefreshMs({ ...DEFAULT_LOCKOUT, knownSourceMs: days * 86_400_000 })).toBe(refresh);
});

test("the defaults keep the cap across sources plus one source's threshold below Active Directory's default lockout threshold (10)", () => {
  expect(DEFAULT_LOCKOUT.passwordIdentityCap + DEFAULT_LOCKOUT.passwordThreshold).toBeLessThan(10);
});
