// API keys: 256-bit generation, SHA-256 storage form, verification outcomes.

import { afterEach, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { API_KEY_BYTES, digestsEqual, generateApiKey, hashApiKey, rolesAtLeast, verifyApiKey } from "../../../src/http/api-keys.ts";
import type { SqliteStore } from "../../../src/store/sqlite/store.ts";
import { cleanup, openIn, tempDir } from "../store/helpers.ts";

describe("generateApiKey", () => {
  test("pcl_ + base64url of 32 random bytes; hash is SHA-256 hex of the key; prefix is its start", () => {
    const bytes = new Uint8Array(API_KEY_BYTES).map((_, i) => i * 7);
    const g = generateApiKey(() => bytes.slice());
    expect(API_KEY_BYTES * 8).toBeGreaterThanOrEqual(256);
    expect(g.key).toBe("pcl_" + Buffer.from(bytes).toString("base64url"));
    expect(g.key).toHaveLength(4 + 43);
    expect(g.hash).toBe(createHash("sha256").update(g.key).digest("hex"));
    expect(hashApiKey(g.key)).toBe(g.hash);
    expect(g.prefix).toBe(g.key.slice(0, 10));
  });

  test("a short random source is a programming error", () => {
    expect(() => generateApiKey(() => new Uint8Array(16))).toThrow(TypeError);
  });

  test("keys from the real source differ", () => {
    const seen = new Set(Array.from({ length: 100 }, () => generateApiKey((n) => new Uint8Array(randomBytes(n))).key));
    expect(seen.size).toBe(100);
  });
});

test.each([
  ["abc", "abc", true],
  ["abc", "abd", false],
  ["abc", "abcd", false],
  ["", "", true],
])("digestsEqual(%p, %p) = %p", (a, b, expected) => {
  expect(digestsEqual(a, b)).toBe(expected);
});

test("rolesAtLeast", () => {
  expect(rolesAtLeast("operator")).toEqual(["operator", "admin", "root"]);
  expect(rolesAtLeast("admin")).toEqual(["admin", "root"]);
  expect(rolesAtLeast("root")).toEqual(["root"]);
});

describe("verifyApiKey", () => {
  let dir: string;
  let store: SqliteStore;
  afterEach(async () => {
    await store.close();
    cleanup(dir);
  });

  test.each([
    ["valid", { expiresAt: null, disabled: false }, "magiclink", 1000, { ok: true }],
    ["expires later", { expiresAt: 1001, disabled: false }, "magiclink", 1000, { ok: true }],
    ["expired at the instant", { expiresAt: 1000, disabled: false }, "magiclink", 1000, { ok: false, reason: "expired" }],
    ["disabled", { expiresAt: null, disabled: true }, "magiclink", 1000, { ok: false, reason: "disabled" }],
    ["wrong role", { expiresAt: null, disabled: false }, "admin", 1000, { ok: false, reason: "role" }],
  ] as const)("%s", async (_what, patch, role, now, expected) => {
    dir = tempDir();
    store = await openIn(dir);
    const g = generateApiKey((n) => new Uint8Array(randomBytes(n)));
    await store.apiKeys.add({ name: "k", role: "magiclink", endpoint: null, hash: g.hash, prefix: g.prefix, ...patch });
    const r = await verifyApiKey(store, g.key, { now, roles: [role] });
    expect(r).toMatchObject(expected);
    if (r.ok) expect(r.key.name).toBe("k");
  });

  test.each([
    ["missing", undefined, "missing"],
    ["empty", "", "missing"],
    ["unknown", "pcl_nope", "unknown"],
    ["the stored hash itself is not a key", "HASH", "unknown"],
    ["over-long input", "x".repeat(10_000), "unknown"],
  ])("%s → %s", async (_what, presented, reason) => {
    dir = tempDir();
    store = await openIn(dir);
    const g = generateApiKey((n) => new Uint8Array(randomBytes(n)));
    await store.apiKeys.add({ name: "k", role: "magiclink", endpoint: null, hash: g.hash, prefix: g.prefix, expiresAt: null });
    const r = await verifyApiKey(store, presented === "HASH" ? g.hash : presented, { now: 0, roles: ["magiclink"] });
    expect(r).toEqual({ ok: false, reason } as never);
  });
});
