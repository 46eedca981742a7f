// The bun:test shim for Deno (test/deno/bun-test.ts) against bun:test itself: this file runs under
// both `bun test` and `deno test` (scripts/test-deno), so each expectation here holds for both.

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";

const order: string[] = [];

describe("hooks", () => {
  beforeAll(() => void order.push("beforeAll"));
  beforeEach(() => void order.push("beforeEach"));
  afterEach(() => void order.push("afterEach"));
  afterAll(() => void order.push("afterAll"));
  describe("inner", () => {
    beforeEach(() => void order.push("inner beforeEach"));
    afterEach(() => void order.push("inner afterEach"));
    test("first", () => void order.push("first"));
  });
  test("second", () => void order.push("second"));
});

test("hooks ran in bun:test's order, afterAll after the group's last test", () => {
  expect(order).toEqual([
    "beforeAll",
    "beforeEach",
    "inner beforeEach",
    "first",
    "inner afterEach",
    "afterEach",
    "beforeEach",
    "second",
    "afterEach",
    "afterAll",
  ]);
});

test("a failed expectation throws (so a test can fail)", () => {
  expect(() => expect(1).toBe(2)).toThrow();
  expect(() => expect({ a: 1 }).toEqual({ a: 2 })).toThrow();
  expect(() => expect([1, 2]).toEqual([1, 2, 3])).toThrow();
  expect(() => expect("abc").toStartWith("b")).toThrow();
  expect(() => expect(null).toBeUndefined()).toThrow();
  expect(() => expect(() => {}).toThrow()).toThrow();
  expect(() => expect({ a: { b: 1 } }).toMatchObject({ a: { b: 2 } })).toThrow();
  expect(() => expect(new Uint8Array([1])).toEqual(new Uint8Array([2]))).toThrow();
  expect(() => expect(1).not.toBe(1)).toThrow();
});

test("toEqual ignores undefined properties and a null prototype; octets compare by value", () => {
  expect({ a: 1, b: undefined } as Record<string, unknown>).toEqual({ a: 1 });
  const row = Object.assign(Object.create(null), { id: 1 });
  expect(row).toEqual({ id: 1 });
  expect(new Uint8Array([1, 2])).toEqual(new Uint8Array([1, 2]));
  expect(new Map([["k", { v: 1 }]])).toEqual(new Map([["k", { v: 1 }]]));
});

test("asymmetric matchers, toMatchObject, toContain, toThrow forms", () => {
  expect({ id: "x", n: 3, at: "2026-01-01" }).toEqual({ id: expect.any(String), n: expect.any(Number), at: expect.stringContaining("2026") });
  expect({ a: 1, b: { c: 2, d: 3 } }).toMatchObject({ b: { c: 2 } });
  expect([{ a: 1 }, { a: 2 }]).toContainEqual({ a: 2 });
  expect([1, 2, 3]).toEqual(expect.arrayContaining([3, 1]));
  expect("hello world").toMatch(/wor/);
  expect(() => {
    throw new TypeError("bad thing");
  }).toThrow(TypeError);
  expect(() => {
    throw new Error("bad thing");
  }).toThrow("bad");
});

test("resolves and rejects", async () => {
  await expect(Promise.resolve(5)).resolves.toBe(5);
  await expect(Promise.reject(new RangeError("nope"))).rejects.toThrow(RangeError);
  await expect(Promise.reject(new Error("nope"))).rejects.toThrow("nope");
  let threw = false;
  try {
    await expect(Promise.resolve(1)).rejects.toThrow();
  } catch {
    threw = true;
  }
  expect(threw).toBe(true);
});

describe.each([
  [1, 2, 3],
  [2, 3, 5],
])("describe.each %d + %d", (a, b, sum) => {
  test.each([[10]])("test.each with %d", (k) => {
    expect((a + b) * k).toBe(sum * k);
  });
});
