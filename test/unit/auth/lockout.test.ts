// Back-off schedule: nothing under the threshold, then doubling up to the maximum.
import { expect, test } from "bun:test";
import { DEFAULT_LOCKOUT, backoffDelay } from "../../../src/auth/lockout.ts";

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
