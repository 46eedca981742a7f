// The read cache in front of the SQLite store: hits, invalidation by another process's commits,
// and that the replay guard stays the store's.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CachedStore, type EpochStore } from "../../../src/store/cache.ts";
import { openStore } from "../../../src/store/open.ts";
import type { Store } from "../../../src/store/types.ts";

let dir: string;
let server: Store; // the server's connection, behind the cache
let cli: Store; // a second connection, as the admin CLI in another process
let cache: CachedStore;
const nextTurn = () => new Promise<void>((r) => setImmediate(r));
const SEED = new Uint8Array(20).fill(7);

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "portcullis-cache-"));
  const key = Buffer.alloc(32, 9).toString("base64");
  const env = { PORTCULLIS_KEY: key };
  server = await openStore({ driver: "sqlite", path: join(dir, "p.db"), dataDir: dir, env });
  cli = await openStore({ driver: "sqlite", path: join(dir, "p.db"), dataDir: dir, env });
  const user = await cli.users.add({ username: "alice", passwordHash: null, type: "totp", phone: null, email: null, disabled: false, expiresAt: null, directory: null, externalId: null, directoryPhone: null });
  await cli.tokens.add({ serial: "T1", userId: user.id, kind: "totp", secret: SEED, algorithm: "SHA1", digits: 6, period: 30, state: "active" });
  cache = new CachedStore(server as EpochStore);
  expect(await cache.preload()).toBe(1);
});

afterEach(async () => {
  await cache.close();
  await cli.close();
  rmSync(dir, { recursive: true, force: true });
});

test("preloaded users and tokens are served; unknown names need no query", async () => {
  const alice = await cache.users.findByName("alice");
  expect(alice?.username).toBe("alice");
  expect((await cache.tokens.activeForUser(alice!.id)).map((t) => t.serial)).toEqual(["T1"]);
  expect(await cache.users.findByName("nobody")).toBeUndefined();
  expect(await cache.lockouts.get("alice", "code")).toBeUndefined();
});

test("a token disabled by another process is no longer offered", async () => {
  const alice = (await cache.users.findByName("alice"))!;
  const [token] = await cache.tokens.activeForUser(alice.id);
  await cli.tokens.setState(token!.id, "disabled");
  await nextTurn();
  expect(await cache.tokens.activeForUser(alice.id)).toEqual([]);
});

test("a user added or removed by another process is seen on the next turn", async () => {
  await cli.users.add({ username: "bob", passwordHash: null, type: "totp", phone: null, email: null, disabled: false, expiresAt: null, directory: null, externalId: null, directoryPhone: null });
  await cli.users.remove("alice");
  await nextTurn();
  expect((await cache.users.findByName("bob"))?.username).toBe("bob");
  expect(await cache.users.findByName("alice")).toBeUndefined();
});

test("user unlock from another process clears a cached lockout", async () => {
  await cache.lockouts.recordFailure("alice", "password", 1000, () => 10_000);
  expect((await cache.lockouts.get("alice", "password"))?.lockedUntil).toBe(10_000);
  expect(await cli.lockouts.clear("alice")).toBe(true);
  await nextTurn();
  expect(await cache.lockouts.get("alice", "password")).toBeUndefined();
});

test("the high-water mark stays the store's: racing uses of one step, one winner; the cache follows", async () => {
  const alice = (await cache.users.findByName("alice"))!;
  const [token] = await cache.tokens.activeForUser(alice.id);
  const results = await Promise.all([cache.tokens.advanceTOTP(token!.id, 100, 0), cache.tokens.advanceTOTP(token!.id, 100, 0), cache.tokens.advanceTOTP(token!.id, 99, 0)]);
  expect(results).toEqual([true, false, false]);
  expect((await cache.tokens.activeForUser(alice.id))[0]!.lastStep).toBe(100);
  // another connection's write wins the next step; the cached mark is then dropped and re-read
  expect(await cli.tokens.advanceTOTP(token!.id, 101, 0)).toBe(true);
  expect(await cache.tokens.advanceTOTP(token!.id, 101, 0)).toBe(false);
  await nextTurn();
  expect((await cache.tokens.activeForUser(alice.id))[0]!.lastStep).toBe(101);
});

test("stale lockout counters are purged from the store and from memory, live ones stay", async () => {
  await cache.lockouts.recordFailure("old", "password", 1_000, () => 0);
  await cache.lockouts.recordFailure("locked", "password", 1_000, () => 10_000_000);
  await cache.lockouts.recordFailure("recent", "code", 500_000, () => 0);
  expect(await cache.lockouts.purgeStale(100_000, 200_000)).toBe(1);
  expect(await cache.lockouts.get("old", "password")).toBeUndefined();
  expect((await cache.lockouts.get("locked", "password"))?.failures).toBe(1);
  expect((await cache.lockouts.get("recent", "code"))?.failures).toBe(1);
  expect((await cli.lockouts.list()).map((l) => l.key).sort()).toEqual(["locked", "recent"]);
});

describe("findByExternal", () => {
  const GUID = "0f8fad5b-d9cb-469f-a165-70867728950e";
  const linked = { username: "bob", passwordHash: null, type: null, phone: null, email: null, disabled: false, expiresAt: null, directory: "corp", externalId: GUID, directoryPhone: null };

  test("served from memory after preload: hits and misses need no query", async () => {
    await cli.users.add(linked);
    await nextTurn();
    expect(await cache.preload()).toBe(2);
    const inner = server.users;
    const original = inner.findByExternal.bind(inner);
    let queries = 0;
    inner.findByExternal = async (d, e) => {
      queries++;
      return original(d, e);
    };
    expect((await cache.users.findByExternal("corp", GUID))?.username).toBe("bob");
    expect(await cache.users.findByExternal("corp", "other-id")).toBeUndefined();
    expect(await cache.users.findByExternal("lab", GUID)).toBeUndefined();
    expect(queries).toBe(0);
  });

  test("without preload: read through once, then remembered (absence too)", async () => {
    await cli.users.add(linked);
    const cold = new CachedStore(server as EpochStore);
    const inner = server.users;
    const original = inner.findByExternal.bind(inner);
    let queries = 0;
    inner.findByExternal = async (d, e) => {
      queries++;
      return original(d, e);
    };
    expect((await cold.users.findByExternal("corp", GUID))?.username).toBe("bob");
    expect((await cold.users.findByExternal("corp", GUID))?.username).toBe("bob");
    expect(await cold.users.findByExternal("corp", "nobody")).toBeUndefined();
    expect(await cold.users.findByExternal("corp", "nobody")).toBeUndefined();
    expect(queries).toBe(2);
  });

  test("a link made by another process is seen on the next turn; one made through the cache at once", async () => {
    const bob = await cli.users.add({ ...linked, externalId: null });
    await nextTurn();
    await cache.preload();
    expect(await cache.users.findByExternal("corp", GUID)).toBeUndefined();
    await cli.users.update(bob.id, { externalId: GUID });
    await nextTurn();
    expect((await cache.users.findByExternal("corp", GUID))?.id).toBe(bob.id);
    await cache.users.update(bob.id, { externalId: "renumbered" });
    expect(await cache.users.findByExternal("corp", GUID)).toBeUndefined();
    expect((await cache.users.findByExternal("corp", "renumbered"))?.id).toBe(bob.id);
  });
});
