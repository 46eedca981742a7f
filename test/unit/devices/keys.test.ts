// Device IDs: 22 base64url characters from 128 random bits, never with a leading dash (an
// administrator types them after `device remove`, where "-…" would read as an option).

import { expect, test } from "bun:test";
import { DEVICE_ID, newDeviceId } from "../../../src/devices/keys.ts";

test("a draw that would start with '-' is drawn again", () => {
  // 0xF8 >> 2 = 62, the base64url digit "-".
  const draws = [new Uint8Array(16).fill(0xf8), new Uint8Array(16).fill(0xfb), new Uint8Array(16).fill(0x41)];
  let n = 0;
  const id = newDeviceId(() => draws[n++]!);
  expect(n).toBe(3);
  expect(id).toBe(Buffer.from(draws[2]!).toString("base64url"));
  expect(id).toMatch(DEVICE_ID);
});

test("random IDs have the documented shape and never a leading dash", () => {
  for (let i = 0; i < 2000; i++) {
    const id = newDeviceId((k) => crypto.getRandomValues(new Uint8Array(k)));
    expect(id).toMatch(DEVICE_ID);
    expect(id.startsWith("-")).toBe(false);
  }
});
