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

/** A failure policy for store tests: `until` for every counter, never stale. */
const policy = (until: number) => ({ staleBefore: 0, lockedUntil: () => until });
const SRC = "csid:203.0.113.7";

test("user unlock from another process clears a cached lockout", async () => {
  await cache.lockouts.recordFailure("alice", "password", SRC, 1000, policy(10_000));
  expect((await cache.lockouts.get("alice", "password"))?.lockedUntil).toBe(10_000);
  expect(await cli.lockouts.clear("alice")).toBe(true);
  await nextTurn();
  expect(await cache.lockouts.get("alice", "password")).toBeUndefined();
  expect(await cache.lockouts.get("alice", "password", SRC)).toBeUndefined();
});

test("counters by source: the warm read sees either counter; unlock through the cache drops every source's", async () => {
  expect(cache.warm.counted("alice", "code", SRC)).toBe(false);
  await cache.lockouts.recordFailure("alice", "code", SRC, 1000, policy(0));
  expect(cache.warm.counted("alice", "code", SRC)).toBe(true);
  expect(cache.warm.counted("alice", "code", "nas:vpn")).toBe(true); // the identity's counter
  expect(cache.warm.counted("alice", "password", SRC)).toBe(false);
  expect(cache.warm.counted("bob", "code", SRC)).toBe(false);
  await cache.lockouts.recordFailure("alice", "password", "nas:vpn", 1000, policy(0));
  expect(await cache.lockouts.clear("alice")).toBe(true);
  for (const [kind, source] of [["code", SRC], ["code", ""], ["password", "nas:vpn"], ["password", ""]] as const) {
    expect(await cache.lockouts.get("alice", kind, source)).toBeUndefined();
  }
  expect(cache.warm.counted("alice", "code", SRC)).toBe(false);
  expect(await cli.lockouts.list()).toEqual([]);
  // a counter cleared by a success leaves nothing behind in complete memory: the warm read is back to building no key
  await cache.lockouts.recordFailure("alice", "code", SRC, 1000, policy(0));
  await cache.lockouts.reset("alice", "code", SRC);
  await cache.lockouts.reset("alice", "code");
  expect((cache as unknown as { locks: Map<string, unknown> }).locks.size).toBe(0);
});

test("known sources: preloaded, remembered after a write as the store keeps them, forgotten when expired", async () => {
  await cli.lockouts.recordSuccess("alice", "nas:vpn", 5_000, { keep: 2, forgetBefore: 0 });
  await nextTurn();
  expect(await cache.preload()).toBe(1);
  expect(cache.warm.knownSource("alice", "nas:vpn")).toBe(5_000);
  expect(cache.warm.knownSource("alice", SRC)).toBeNull();
  expect(cache.warm.knownSource("nobody", SRC)).toBeNull();
  await cache.lockouts.recordSuccess("alice", SRC, 6_000, { keep: 2, forgetBefore: 0 });
  await cache.lockouts.recordSuccess("alice", "nas:fw", 7_000, { keep: 2, forgetBefore: 0 });
  expect(cache.warm.knownSource("alice", "nas:vpn")).toBeNull(); // the store kept the two most recent
  expect(await cache.lockouts.knownSource("alice", SRC)).toBe(6_000);
  expect(await cache.lockouts.forgetSources(6_500)).toBe(1);
  expect(cache.warm.knownSource("alice", SRC)).toBeNull();
  expect(cache.warm.knownSource("alice", "nas:fw")).toBe(7_000);
  // another process's write empties the cache: the read goes to the store again
  await cli.lockouts.recordSuccess("alice", SRC, 8_000, { keep: 2, forgetBefore: 0 });
  await nextTurn();
  expect(cache.warm.knownSource("alice", SRC)).toBeUndefined();
  expect(await cache.lockouts.knownSource("alice", SRC)).toBe(8_000);
  expect(cache.warm.knownSource("alice", SRC)).toBe(8_000);
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

test("known sources in memory after a series of writes are exactly what the store holds", async () => {
  const steps: [string, number, number][] = [
    ["nas:a", 1_000, 0],
    ["nas:b", 2_000, 0],
    ["nas:a", 1_500, 0], // older: no move back
    ["nas:c", 3_000, 0],
    ["nas:d", 4_000, 0], // a fourth: the oldest goes (keep 3)
    ["nas:e", 9_000, 3_500], // b and c expired
    ["nas:a", 9_000, 0], // a tie with e: ordered by source
    ["nas:f", 9_000, 0],
    ["nas:g", 9_500, 0],
  ];
  const all = ["nas:a", "nas:b", "nas:c", "nas:d", "nas:e", "nas:f", "nas:g"];
  for (const [source, at, forgetBefore] of steps) {
    await cache.lockouts.recordSuccess("alice", source, at, { keep: 3, forgetBefore });
    const stored = new Map((await server.lockouts.knownSources("alice")).map((k) => [k.source, k.lastSuccessAt]));
    for (const s of all) expect([source, s, cache.warm.knownSource("alice", s)]).toEqual([source, s, stored.get(s) ?? null]);
  }
});

test("stale lockout counters are purged from the store and from memory, live ones stay", async () => {
  await cache.lockouts.recordFailure("old", "password", SRC, 1_000, policy(0));
  await cache.lockouts.recordFailure("locked", "password", SRC, 1_000, policy(10_000_000));
  await cache.lockouts.recordFailure("recent", "code", SRC, 500_000, policy(0));
  expect(await cache.lockouts.purgeStale(100_000, 200_000)).toBe(2); // the source's counter and the identity's
  expect(await cache.lockouts.get("old", "password")).toBeUndefined();
  expect((await cache.lockouts.get("locked", "password"))?.failures).toBe(1);
  expect((await cache.lockouts.get("recent", "code"))?.failures).toBe(1);
  expect(await cache.lockouts.get("old", "password", SRC)).toBeUndefined();
  expect([...new Set((await cli.lockouts.list()).map((l) => l.key))].sort()).toEqual(["locked", "recent"]);
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

describe("commits by other processes that leave the cache warm (cache_epoch)", () => {
  test("another connection's high-water-mark commit (another RADIUS worker's login) empties nothing; the replay guard still holds", async () => {
    const alice = (await cache.users.findByName("alice"))!;
    const [token] = await cache.tokens.activeForUser(alice.id);
    expect(await cli.tokens.advanceTOTP(token!.id, 200, 0)).toBe(true);
    await nextTurn();
    // still answered from memory, without the store
    expect(cache.warm.userByName("alice")?.username).toBe("alice");
    expect(cache.warm.activeTokens(alice.id)?.map((t) => t.serial)).toEqual(["T1"]);
    // the stale mark in memory only lets the engine try the write, which the store refuses
    expect(await cache.tokens.advanceTOTP(token!.id, 200, 0)).toBe(false);
  });

  test("a drift set by another connection (token resync) empties it", async () => {
    const alice = (await cache.users.findByName("alice"))!;
    const [token] = await cache.tokens.activeForUser(alice.id);
    await cli.tokens.resync(token!.id, { lastStep: 300, drift: 1 });
    await nextTurn();
    expect(cache.warm.activeTokens(alice.id)).toBeUndefined();
    expect((await cache.tokens.activeForUser(alice.id))[0]!.drift).toBe(1);
  });

  test("a failure counted by another connection (another worker's reject) empties it", async () => {
    expect(cache.warm.counted("alice", "code", SRC)).toBe(false);
    await cli.lockouts.recordFailure("alice", "code", SRC, 1000, policy(0));
    await nextTurn();
    expect(cache.warm.counted("alice", "code", SRC)).toBeUndefined();
    expect((await cache.lockouts.get("alice", "code", SRC))?.failures).toBe(1);
    expect(cache.warm.counted("alice", "code", SRC)).toBe(true);
  });

  test("a commit elsewhere that touches nothing cached (a heartbeat) empties nothing", async () => {
    expect(await cli.writable()).toBe(true);
    await nextTurn();
    expect(cache.warm.userByName("alice")?.username).toBe("alice");
  });
});
