// SMS one-time codes: alphabets without look-alikes, lengths, uniform characters (exactly uniform over
// every byte value, and a chi-square bound over a seeded stream that cannot flake), the keyed hash
// and its binding, and the message template.

import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import {
  DEFAULT_SMS_CODE_FORMAT,
  generateSmsCode,
  hashSmsCode,
  normalizeSmsCode,
  smsCodeText,
  SMS_CODE_ALPHABETS,
  type SmsCodeAlphabet,
} from "../../../src/approvals/sms-code.ts";

/** A deterministic byte stream: SHA-256(seed ‖ counter) blocks. The same seed always gives the same bytes. */
function seeded(seed: string): (n: number) => Uint8Array {
  let counter = 0;
  let pool = new Uint8Array(0);
  return (n) => {
    while (pool.length < n) {
      const block = createHash("sha256").update(`${seed}:${counter++}`).digest();
      const next = new Uint8Array(pool.length + block.length);
      next.set(pool);
      next.set(block, pool.length);
      pool = next;
    }
    const out = pool.slice(0, n);
    pool = pool.slice(n);
    return out;
  };
}

/** Every byte value 0..255 in turn, forever: a perfectly uniform source. */
function everyByte(): (n: number) => Uint8Array {
  let next = 0;
  return (n) => Uint8Array.from({ length: n }, () => next++ & 0xff);
}

const ALPHABETS = Object.keys(SMS_CODE_ALPHABETS) as SmsCodeAlphabet[];

describe("alphabets", () => {
  test("exactly these characters", () => {
    expect(SMS_CODE_ALPHABETS).toEqual({
      numeric: "0123456789",
      alphabetic: "ABCDEFGHJKMNPQRSTUVWXYZ",
      alphanumeric: "23456789ABCDEFGHJKMNPQRSTUVWXYZ",
    });
  });

  test("no look-alikes where letters and digits meet; no repeats; upper case only", () => {
    for (const name of ALPHABETS) {
      const chars = SMS_CODE_ALPHABETS[name];
      expect(new Set(chars).size).toBe(chars.length);
      expect(chars).toBe(chars.toUpperCase());
      if (name !== "numeric") for (const c of "IL O") expect(chars).not.toContain(c);
    }
    for (const c of "01ILO") expect(SMS_CODE_ALPHABETS.alphanumeric).not.toContain(c);
  });
});

describe("generateSmsCode", () => {
  test("the default is six digits", () => {
    expect(DEFAULT_SMS_CODE_FORMAT).toEqual({ alphabet: "numeric", length: 6 });
    expect(generateSmsCode(DEFAULT_SMS_CODE_FORMAT, seeded("d"))).toMatch(/^\d{6}$/);
  });

  test.each(ALPHABETS.flatMap((alphabet) => [4, 6, 8, 12].map((length) => [alphabet, length] as const)))("%s, %d characters", (alphabet, length) => {
    const random = seeded(`${alphabet}${length}`);
    for (let i = 0; i < 200; i++) {
      const code = generateSmsCode({ alphabet, length }, random);
      expect(code).toHaveLength(length);
      for (const c of code) expect(SMS_CODE_ALPHABETS[alphabet]).toContain(c);
    }
  });

  test.each([3, 13, 0, 6.5, -1])("length %p is refused", (length) => {
    expect(() => generateSmsCode({ alphabet: "numeric", length }, seeded("x"))).toThrow(TypeError);
  });

  test("an unknown alphabet is refused", () => {
    expect(() => generateSmsCode({ alphabet: "hex" as SmsCodeAlphabet, length: 6 }, seeded("x"))).toThrow(TypeError);
  });

  test("a broken random source is an error, not an endless loop", () => {
    expect(() => generateSmsCode({ alphabet: "numeric", length: 6 }, () => new Uint8Array(0))).toThrow("no bytes");
    // 255 is always rejected for ten digits (256 - 256 % 10 = 250).
    expect(() => generateSmsCode({ alphabet: "numeric", length: 6 }, (n) => new Uint8Array(n).fill(255))).toThrow("rejected");
  });

  test.each(ALPHABETS)("%s: every byte value once per cycle gives every character exactly equally often (no modulo bias)", (alphabet) => {
    const chars = SMS_CODE_ALPHABETS[alphabet];
    const n = chars.length;
    const accepted = 256 - (256 % n);
    const random = everyByte();
    const counts = new Map<string, number>();
    // Dozens of cycles of 256 bytes. Each cycle's accepted bytes (0..accepted-1) name every character
    // accepted/n times; b % n without rejection would give the first 256 % n characters one more
    // each cycle, and the spread would grow with every cycle.
    const codes = 64 * n;
    for (let i = 0; i < codes; i++) {
      for (const c of generateSmsCode({ alphabet, length: 4 }, random)) counts.set(c, (counts.get(c) ?? 0) + 1);
    }
    const values = [...counts.values()];
    expect(counts.size).toBe(n);
    // Uniform: the most and least frequent differ by at most the partial cycle at the end.
    expect(Math.max(...values) - Math.min(...values)).toBeLessThanOrEqual(1);
    expect(values.reduce((a, b) => a + b, 0)).toBe(codes * 4);
    expect(accepted % n).toBe(0);
  });

  test.each(ALPHABETS)("%s: chi-square over 60,000 characters from a seeded stream stays far inside the bound", (alphabet) => {
    const chars = SMS_CODE_ALPHABETS[alphabet];
    const random = seeded(`chi-${alphabet}`);
    const counts = new Map<string, number>([...chars].map((c) => [c, 0]));
    for (let i = 0; i < 5000; i++) for (const c of generateSmsCode({ alphabet, length: 12 }, random)) counts.set(c, counts.get(c)! + 1);
    const expected = 60_000 / chars.length;
    let chi2 = 0;
    for (const o of counts.values()) chi2 += (o - expected) ** 2 / expected;
    const df = chars.length - 1;
    // Mean df, standard deviation sqrt(2 df): six deviations is p < 1e-6 for a uniform source. The
    // stream is seeded, so the value is the same on every run.
    expect(chi2).toBeLessThan(df + 6 * Math.sqrt(2 * df));
  });
});

describe("hash and binding", () => {
  const secret = new Uint8Array(32).fill(7);
  const b = { state: "a".repeat(64), client: "vpn", user: "alice" };

  test("a keyed hash: hex, not the code, and different under another secret", () => {
    const h = hashSmsCode(secret, b, "123456");
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(h).not.toContain("123456");
    expect(hashSmsCode(new Uint8Array(32).fill(8), b, "123456")).not.toBe(h);
  });

  test.each([
    ["another State", { ...b, state: "b".repeat(64) }],
    ["another client", { ...b, client: "wifi" }],
    ["another user", { ...b, user: "bob" }],
  ])("bound: %s gives another hash", (_what, other) => {
    expect(hashSmsCode(secret, other, "123456")).not.toBe(hashSmsCode(secret, b, "123456"));
  });

  test("typed spaces, hyphens and lower case do not matter", () => {
    expect(normalizeSmsCode(" abc-def 23 ")).toBe("ABCDEF23");
    expect(hashSmsCode(secret, b, "abc def")).toBe(hashSmsCode(secret, b, "ABCDEF"));
  });
});

describe("the message", () => {
  test("{code} and {client} are filled; no other placeholder is", () => {
    expect(smsCodeText("{code} is your {client} code. {username} {password}", "123456", "VPN")).toBe("123456 is your VPN code. {username} {password}");
  });

  test("a template without {code} gets it appended; a client label holding {code} stays text", () => {
    expect(smsCodeText("Your code:", "123456")).toBe("Your code: 123456");
    expect(smsCodeText("{client}: {code}", "123456", "{code}")).toBe("{code}: 123456");
  });

  test("the client label is cleaned of control and bidirectional characters and cut", () => {
    expect(smsCodeText("{client} {code}", "1234", "\u202eNPV\u202c\n" + "x".repeat(100))).toBe(`NPV ${"x".repeat(28)} 1234`);
  });
});
