// RFC 2865 §5.2 User-Password hiding: round trips at the block boundaries, padding, length limits.
import { describe, expect, test } from "bun:test";
import { hideUserPassword, revealUserPassword } from "../../../../src/radius/codec/index.ts";
import { errorCode, hex, utf8 } from "./helpers.ts";

const secret = utf8.encode("xyzzy5461");
const ra = hex("0f403f9473978057bd83d5cb98f4227a");
const password = (n: number) => Uint8Array.from({ length: n }, (_, i) => 0x21 + (i % 90));

describe("User-Password (RFC 2865 §5.2)", () => {
  test.each([
    [1, 16],
    [15, 16],
    [16, 16],
    [17, 32],
    [31, 32],
    [64, 64],
    [127, 128],
    [128, 128],
  ])("%d octets hide to %d and round-trip", (n, hiddenLength) => {
    const hidden = hideUserPassword(password(n), secret, ra);
    expect(hidden.length).toBe(hiddenLength);
    expect(Array.from(revealUserPassword(hidden, secret, ra))).toEqual(Array.from(password(n)));
  });

  test("the empty password hides to 16 octets and reveals empty", () => {
    const hidden = hideUserPassword(new Uint8Array(0), secret, ra);
    expect(hidden.length).toBe(16);
    expect(revealUserPassword(hidden, secret, ra).length).toBe(0);
  });

  test("RFC 2865 §7.1: \"arctangent\" hides to the RFC's octets", () => {
    expect(Buffer.from(hideUserPassword(utf8.encode("arctangent"), secret, ra)).toString("hex")).toBe(
      "0dbe708d93d413ce3196e43f782a0aee",
    );
  });

  test("more than 128 octets is refused when hiding (TypeError, no password in the message)", () => {
    const secretish = utf8.encode("P".repeat(129));
    expect(() => hideUserPassword(secretish, secret, ra)).toThrow(TypeError);
    try {
      hideUserPassword(secretish, secret, ra);
    } catch (err) {
      expect((err as Error).message).not.toContain("PPPP");
    }
  });

  test.each([0, 1, 15, 17, 33, 127, 129, 144, 253])("a hidden value of %d octets is malformed", (n) => {
    expect(errorCode(() => revealUserPassword(new Uint8Array(n), secret, ra))).toBe("malformed");
  });

  test("only trailing NULs are stripped: an inner NUL stays", () => {
    const pw = Uint8Array.from([0x61, 0x00, 0x62]);
    expect(Array.from(revealUserPassword(hideUserPassword(pw, secret, ra), secret, ra))).toEqual([0x61, 0x00, 0x62]);
  });

  test("a wrong secret reveals something else", () => {
    const hidden = hideUserPassword(utf8.encode("arctangent"), secret, ra);
    expect(new TextDecoder().decode(revealUserPassword(hidden, utf8.encode("xyzzy5462"), ra))).not.toBe("arctangent");
  });

  test("an authenticator that is not 16 octets is a TypeError", () => {
    expect(() => hideUserPassword(password(4), secret, ra.subarray(0, 8))).toThrow(TypeError);
    expect(() => revealUserPassword(new Uint8Array(16), secret, ra.subarray(0, 8))).toThrow(TypeError);
  });
});
