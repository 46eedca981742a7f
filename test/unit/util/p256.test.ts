// util/p256.ts: the curve equation, checked on the base point and on points that must fail.

import { describe, expect, test } from "bun:test";
import { isP256Point, isUncompressedP256Point } from "../../../src/util/p256.ts";

const hex = (s: string) => Uint8Array.from(Buffer.from(s, "hex"));
// the base point G (NIST SP 800-186 §3.2.1.3)
const GX = hex("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296");
const GY = hex("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5");
const P = hex("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff");

describe("isP256Point", () => {
  test("the base point is on the curve, and a key WebCrypto generates", async () => {
    expect(isP256Point(GX, GY)).toBe(true);
    const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
    const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
    expect(isUncompressedP256Point(raw)).toBe(true);
  });

  test("points off the curve, out of range or of the wrong size are refused", () => {
    const y1 = GY.slice();
    y1[31]! ^= 1;
    expect(isP256Point(GX, y1)).toBe(false);
    expect(isP256Point(GX, GX)).toBe(false);
    expect(isP256Point(P, GY)).toBe(false);
    expect(isP256Point(GX.subarray(1), GY)).toBe(false);
    expect(isUncompressedP256Point(new Uint8Array([0x04, ...GX, ...GY]))).toBe(true);
    expect(isUncompressedP256Point(new Uint8Array([0x03, ...GX, ...GY]))).toBe(false);
    expect(isUncompressedP256Point(new Uint8Array([0x04, ...GX]))).toBe(false);
  });
});
