import { describe, expect, test } from "bun:test";
import {
  dummyVerify,
  hashPassword,
  isPrehashed,
  passwordConcurrency,
  Semaphore,
  setPasswordConcurrency,
  verifyPassword,
} from "../../../src/runtime/password.ts";

describe("hashPassword / verifyPassword", () => {
  test("argon2id with the documented parameters, verified", async () => {
    const hash = await hashPassword("correct horse");
    expect(hash).toStartWith("$argon2id$v=19$m=19456,t=2,p=1$");
    expect(isPrehashed(hash)).toBe(true);
    expect(await verifyPassword("correct horse", hash)).toBe(true);
    expect(await verifyPassword("correct horsE", hash)).toBe(false);
  });

  // This file also runs under Deno (scripts/test-deno), where hash-wasm replaces Bun.password:
  // each runtime must verify what the other one stored.
  test.each([
    ["Bun.password (32-octet salt)", "$argon2id$v=19$m=19456,t=2,p=1$zKqK3UrGUAgb/klDtnUvMIe7aJfsPIkBgTa5IQwRuK0$RsMW1PJj02SwTi1GtkCt2j0EiWFNaydkhsszgMg1saA"],
    ["hash-wasm under Deno (16-octet salt)", "$argon2id$v=19$m=19456,t=2,p=1$UM6B1mFbgsZDbllPF0qayA$ohaJTSijKGp5ag+fzHjUUwefUUsLElAhWw4SB6GhVuc"],
  ])("an argon2id hash made by %s verifies on this runtime", async (_maker, hash) => {
    expect(isPrehashed(hash)).toBe(true);
    expect(await verifyPassword("correct horse", hash)).toBe(true);
    expect(await verifyPassword("correct horsE", hash)).toBe(false);
  });

  test("two hashes of one password differ (random salt)", async () => {
    expect(await hashPassword("x")).not.toBe(await hashPassword("x"));
  });

  // jBCrypt's published test vectors (also used by OpenBSD-compatible implementations).
  test.each([
    ["a", "$2a$06$m0CrhHm10qJ3lXRY.5zDGO3rS2KdeeWLuGmsfGlMfOxih58VYVfxe"],
    ["abc", "$2a$06$If6bvum7DFjUnE9p2uDeDu0YHzrHM6tf.iqN8.yx.jNN1ILEf7h0i"],
  ])("imported bcrypt %p verifies under $2a$, $2b$ and $2y$", async (password, hash) => {
    for (const prefix of ["$2a$", "$2b$", "$2y$"]) {
      const h = prefix + hash.slice(4);
      expect(isPrehashed(h)).toBe(true);
      expect(await verifyPassword(password, h)).toBe(true);
      expect(await verifyPassword(password + "x", h)).toBe(false);
    }
  });

  test("bcrypt ignores bytes after the 72nd, as the systems that made the hash did", async () => {
    const first72 = "p".repeat(72);
    // Bun.password.hash(first72, { algorithm: "bcrypt", cost: 4 }), fixed so that the test also runs under Deno
    const hash = "$2b$04$TqF2E3Yg/gsqDP2PEtJSFuHZjn/3IKKSL2WNW5henhEWX6kPFr49e";
    expect(await verifyPassword(first72 + "anything beyond", hash)).toBe(true);
    expect(await verifyPassword("q" + first72.slice(1) + "tail", hash)).toBe(false);
  });

  test.each([
    ["empty", ""],
    ["garbage", "not a hash"],
    ["truncated argon2id", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA"],
    ["bad argon2id encoding", "$argon2id$v=19$m=1,t=1,p=1$xx$yy"],
    ["short bcrypt", "$2b$04$short"],
    ["argon2i is not accepted", "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"],
    ["md5-crypt", "$1$saltsalt$2vjUzYnHi8Tm9LWHYs1tZ1"],
  ])("a malformed hash (%s) returns false and never throws", async (_name, hash) => {
    expect(await verifyPassword("pw", hash)).toBe(false);
  });
});

describe("isPrehashed", () => {
  test.each([
    ["$argon2id$v=19$m=19456,t=2,p=1$/gkCE0JhbpkZnRcX153xUbf8IRdCxSEvm2zApRUcqdg$LEpKHqCTdUscK57UsKt2/vttT1r8Ky1SLHfo/2bSB5I", true],
    ["$2b$10$IwWzFP/ZUK86I1R98RKRSON4Y2qXrtjk7s8cbUGlaMQWwJ8WIDjaW", true],
    ["$2y$12$IwWzFP/ZUK86I1R98RKRSON4Y2qXrtjk7s8cbUGlaMQWwJ8WIDjaW", true],
    ["$2x$10$IwWzFP/ZUK86I1R98RKRSON4Y2qXrtjk7s8cbUGlaMQWwJ8WIDjaW", false],
    ["$argon2i$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", false],
    ["plaintext password", false],
    ["", false],
  ])("%p → %p", (s, expected) => {
    expect(isPrehashed(s)).toBe(expected);
  });
});

describe("dummyVerify", () => {
  test("always false", async () => {
    expect(await dummyVerify("anything")).toBe(false);
    expect(await dummyVerify("")).toBe(false);
  });
});

describe("bounded concurrency", () => {
  test("Semaphore never runs more than its limit and runs everything", async () => {
    const sem = new Semaphore(2);
    let active = 0;
    let peak = 0;
    const gates: (() => void)[] = [];
    const tasks = Array.from({ length: 6 }, (_, i) =>
      sem.run(async () => {
        active++;
        peak = Math.max(peak, active);
        await new Promise<void>((resolve) => gates.push(resolve));
        active--;
        return i;
      }),
    );
    // Release one task at a time, waiting until a waiting task has taken the slot.
    for (let released = 0; released < 6; released++) {
      while (gates.length === 0) await Promise.resolve();
      expect(active).toBeLessThanOrEqual(2);
      gates.shift()!();
      await Promise.resolve();
    }
    expect(await Promise.all(tasks)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(peak).toBe(2);
  });

  test("a raised limit wakes waiters", async () => {
    const sem = new Semaphore(1);
    let active = 0;
    let peak = 0;
    const release: (() => void)[] = [];
    const tasks = Array.from({ length: 3 }, () =>
      sem.run(async () => {
        active++;
        peak = Math.max(peak, active);
        await new Promise<void>((resolve) => release.push(resolve));
        active--;
      }),
    );
    await Promise.resolve();
    expect(active).toBe(1);
    sem.limit = 3;
    sem.drain();
    while (release.length < 3) await Promise.resolve();
    expect(active).toBe(3);
    release.forEach((r) => r());
    await Promise.all(tasks);
    expect(peak).toBe(3);
  });

  test("a failing task releases its slot", async () => {
    const sem = new Semaphore(1);
    await expect(sem.run(async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await sem.run(async () => 7)).toBe(7);
  });

  test("setPasswordConcurrency validates and applies; hashing still completes at limit 1", async () => {
    const before = passwordConcurrency();
    expect(() => setPasswordConcurrency(0)).toThrow(TypeError);
    expect(() => setPasswordConcurrency(1.5)).toThrow(TypeError);
    setPasswordConcurrency(1);
    try {
      expect(passwordConcurrency()).toBe(1);
      const hashes = await Promise.all([hashPassword("a"), hashPassword("b"), hashPassword("c")]);
      expect(await Promise.all(hashes.map((h, i) => verifyPassword("abc"[i]!, h)))).toEqual([true, true, true]);
    } finally {
      setPasswordConcurrency(before);
    }
  });
});

test("a semaphore with maxWaiting sheds load instead of queueing without bound", async () => {
  const { Semaphore, PasswordOverloadedError } = await import("../../../src/runtime/password.ts");
  const sem = new Semaphore(1);
  let release!: () => void;
  const first = sem.run(() => new Promise<void>((r) => (release = r)));
  const second = sem.run(async () => "queued", { maxWaiting: 1 });
  await expect(sem.run(async () => "third", { maxWaiting: 1 })).rejects.toBeInstanceOf(PasswordOverloadedError);
  release();
  await first;
  expect(await second).toBe("queued");
});
