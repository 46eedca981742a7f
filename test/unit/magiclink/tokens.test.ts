// Link tokens, CSRF tokens (constant-time, bound to the link) and number-matching choices.

import { describe, expect, test } from "bun:test";
import { csrfToken, generateLinkToken, hashLinkToken, LINK_TOKEN_PATTERN, matchChoices, verifyCsrfToken } from "../../../src/magiclink/tokens.ts";

const SECRET = new Uint8Array(32).fill(7);

describe("link token", () => {
  test("256 bits as 43 base64url characters; only its SHA-256 is stored", () => {
    const t = generateLinkToken((n) => new Uint8Array(n).fill(0xfb));
    expect(t).toMatch(LINK_TOKEN_PATTERN);
    expect(Buffer.from(t, "base64url")).toHaveLength(32);
    expect(hashLinkToken(t)).toMatch(/^[0-9a-f]{64}$/);
    expect(hashLinkToken(t)).not.toContain(t);
  });
  test("a short random source is a programming error", () => {
    expect(() => generateLinkToken(() => new Uint8Array(8))).toThrow(TypeError);
  });
});

describe("CSRF token", () => {
  const link = "a".repeat(43);
  test.each([
    ["the right token", csrfToken(SECRET, link), true],
    ["another link's token", csrfToken(SECRET, "b".repeat(43)), false],
    ["another secret's token", csrfToken(new Uint8Array(32), link), false],
    ["a truncated token", csrfToken(SECRET, link).slice(1), false],
    ["empty", "", false],
    ["missing", undefined, false],
  ])("%s → %p", (_name, presented, ok) => {
    expect(verifyCsrfToken(SECRET, link, presented)).toBe(ok);
  });
});

describe("number matching", () => {
  test.each([10, 42, 99])("choices for %p: three distinct numbers in 10-99 including it, stable per session", (n) => {
    const a = matchChoices(SECRET, "session-1", n);
    expect(a).toHaveLength(3);
    expect(a).toContain(n);
    expect(new Set(a).size).toBe(3);
    for (const x of a) expect(x >= 10 && x <= 99).toBe(true);
    expect(matchChoices(SECRET, "session-1", n)).toEqual(a);
  });
  test("the right number is not always in the same place", () => {
    const places = new Set(Array.from({ length: 30 }, (_, i) => matchChoices(SECRET, `s${i}`, 50).indexOf(50)));
    expect(places.size).toBeGreaterThan(1);
  });
  test.each([9, 100, 4.5])("%p is out of range", (n) => {
    expect(() => matchChoices(SECRET, "s", n)).toThrow(TypeError);
  });
});
