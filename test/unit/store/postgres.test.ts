// PostgreSQL-only properties: the replay guards under real concurrency from many connections,
// reachability errors that never show the password, and the writable probe across a restart.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { openPostgres, redactUrl } from "../../../src/runtime/postgres.ts";
import { openPgStore, type PgStore } from "../../../src/store/postgres/store.ts";
import { StoreError } from "../../../src/store/types.ts";
import { POSTGRES_SKIP_REASON, type PostgresServer } from "../../integration/helpers/postgres.ts";
import { cleanup, newToken, newUser, postgresServer, tempDir } from "./helpers.ts";

const NODES = 8;

describe.skipIf(POSTGRES_SKIP_REASON !== undefined)("PostgreSQL store", () => {
  let pg: PostgresServer;
  let dir: string;
  let url: string;
  const stores: PgStore[] = [];

  beforeAll(async () => {
    pg = await postgresServer();
    dir = tempDir();
    url = await pg.createDatabase();
    // Eight stores (as eight nodes), each with its own pool of connections.
    for (let i = 0; i < NODES; i++) stores.push(await openPgStore({ url, dataDir: dir, env: {}, poolSize: 4 }));
  }, 120_000);
  afterAll(async () => {
    for (const s of stores) await s.close();
    cleanup(dir);
  });

  test("one TOTP code tried from many connections at once is accepted exactly once, step after step", async () => {
    const user = await stores[0]!.users.add(newUser("race"));
    const token = await stores[0]!.tokens.add(newToken("RACE-1", { userId: user.id }));
    for (let step = 1; step <= 40; step++) {
      const attempts = stores.flatMap((s) => Array.from({ length: 4 }, () => s.tokens.advanceTOTP(token.id, step, 0)));
      const won = await Promise.all(attempts);
      expect(won.filter(Boolean).length).toBe(1);
    }
    // An older step never goes through again, from any node.
    expect(await Promise.all(stores.map((s) => s.tokens.advanceTOTP(token.id, 39, 0)))).toEqual(Array(NODES).fill(false));
    expect((await stores[3]!.tokens.findById(token.id))!.lastStep).toBe(40);
  });

  test("one HOTP counter value and one challenge are each taken by exactly one connection", async () => {
    const token = await stores[0]!.tokens.add(newToken("RACE-H", { kind: "hotp" }));
    for (let next = 1; next <= 20; next++) {
      const won = await Promise.all(stores.flatMap((s) => [s.tokens.advanceHOTP(token.id, next), s.tokens.advanceHOTP(token.id, next)]));
      expect(won.filter(Boolean).length).toBe(1);
    }
    const user = await stores[0]!.users.add(newUser("chal"));
    for (let i = 0; i < 20; i++) {
      await stores[i % NODES]!.challenges.put({ id: `c${i}`, clientName: "vpn", userId: user.id, username: "chal", expiresAt: 10_000, failures: 0, data: "{}" });
      const got = await Promise.all(stores.map((s) => s.challenges.consume(`c${i}`, 5_000)));
      expect(got.filter((c) => c !== undefined).length).toBe(1);
    }
  });

  test("a change on one node is seen by another without a restart (the shared generation)", async () => {
    const before = await stores[5]!.generation();
    await stores[0]!.users.add(newUser("gen-change"));
    expect(await stores[5]!.generation()).not.toBe(before);
    const after = await stores[5]!.generation();
    const t = await stores[0]!.tokens.add(newToken("GEN-T"));
    const changed = await stores[5]!.generation();
    expect(changed).not.toBe(after);
    // A login's writes are not configuration changes.
    await stores[0]!.tokens.advanceTOTP(t.id, 5, 0);
    expect(await stores[5]!.generation()).toBe(changed);
  });

  test("sealed secrets are stored sealed", async () => {
    await stores[0]!.tokens.add(newToken("SEALED-1"));
    const db = openPostgres(url, { max: 1 });
    try {
      const { rows } = await db.query<{ secret: string }>("SELECT secret FROM tokens WHERE serial = $1", ["SEALED-1"]);
      expect(rows[0]!.secret).toStartWith("v1.");
      expect(rows[0]!.secret).not.toContain(Buffer.from(newToken("SEALED-1").secret).toString("base64"));
    } finally {
      await db.close();
    }
  });

  test("an unreachable server is StoreError unavailable, naming the URL without its password", async () => {
    const dead = url.replace(`:${pg.port}/`, ":1/");
    let err: unknown;
    try {
      await openPgStore({ url: dead, dataDir: dir, env: {}, connectTimeoutS: 2 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).code).toBe("unavailable");
    expect((err as StoreError).message).toContain("127.0.0.1:1");
    expect((err as StoreError).message).not.toContain("test-password");
    expect(redactUrl("postgres://u:pw@h:5/d")).toBe("postgres://u:***@h:5/d");
  });

  test("an idempotency record written by one node is read by another until it expires; the first record stands", async () => {
    const reply = new Uint8Array([2, 7, 0, 20, ...Array.from({ length: 16 }, (_, i) => i)]);
    await stores[0]!.radiusReplies.put("k1", reply, 10_000);
    expect(await stores[1]!.radiusReplies.get("k1", 9_999)).toEqual(reply);
    expect(await stores[1]!.radiusReplies.get("k1", 10_000)).toBeUndefined();
    expect(await stores[1]!.radiusReplies.get("other", 0)).toBeUndefined();
    // A second node that evaluated the same packet meanwhile does not replace the first answer.
    await stores[2]!.radiusReplies.put("k1", new Uint8Array([3, 7, 0, 20]), 20_000);
    expect(await stores[3]!.radiusReplies.get("k1", 0)).toEqual(reply);
    await stores[0]!.radiusReplies.put("k2", reply, 50_000);
    expect(await stores[4]!.radiusReplies.purgeExpired(10_000)).toBe(1);
    expect(await stores[4]!.radiusReplies.get("k2", 0)).toEqual(reply);
    // Writes and reads of one turn share a statement each; a key twice in one batch keeps the first.
    const keys = Array.from({ length: 50 }, (_, i) => `m${i}`);
    await Promise.all([...keys.map((k) => stores[5]!.radiusReplies.put(k, reply, 10_000)), stores[5]!.radiusReplies.put("m0", new Uint8Array([3]), 10_000)]);
    const got = await Promise.all([...keys, "missing"].map((k) => stores[6]!.radiusReplies.get(k, 0)));
    expect(got.slice(0, 50).every((g) => g !== undefined && Buffer.from(g).equals(Buffer.from(reply)))).toBe(true);
    expect(got[50]).toBeUndefined();
  });

  test("rate limits: eight nodes calling at once across a calendar-minute boundary never admit more than the limit in any 60 s", async () => {
    const minute = (key: string, limit: number) => ({ key, windowMs: 60_000, limit });
    const boundary = 1_700_000_100_000 - (1_700_000_100_000 % 60_000) + 60_000;
    const admitted: number[] = [];
    // Rounds 10 s apart from 30 s before a calendar minute to 60 s after it; every node calls four
    // times at once per round, with overlapping buckets taken in different orders.
    for (let t = boundary - 30_000; t <= boundary + 60_000; t += 10_000) {
      const calls = stores.flatMap((s, n) =>
        Array.from({ length: 4 }, (_, i) => s.rateLimits.consume((n + i) % 2 ? [minute("nodes", 5), minute(`own${n}`, 100)] : [minute(`own${n}`, 100), minute("nodes", 5)], t)),
      );
      for (const d of await Promise.all(calls)) if (d.allowed) admitted.push(t);
    }
    // Five at the first round; then nothing until those are a minute (and a one-second slot) old.
    expect(admitted).toEqual([...Array(5).fill(boundary - 30_000), ...Array(5).fill(boundary + 40_000)]);
  });

  test("an approval answered or expired on one node is announced to the others (LISTEN/NOTIFY); creating one is not", async () => {
    const heard: Array<[string, string]> = [];
    const unwatch = await stores[0]!.watchApprovals((id, state) => heard.push([id, state]));
    const approval = (id: string) => ({
      id,
      kind: "radius" as const,
      user: `w-${id}`,
      client: "vpn",
      source: null,
      msisdn: null,
      apiKeyId: null,
      state: "pending" as const,
      channel: null,
      linkHash: null,
      texts: "{}",
      numberMatch: null,
      createdAt: 100,
      expiresAt: 10_000,
      answeredAt: null,
    });
    await stores[1]!.approvals.create(approval("n1"));
    await stores[1]!.approvals.create(approval("n2"));
    expect(await stores[2]!.approvals.answer("n1", "approved", 200)).toBe(true);
    expect(await stores[3]!.approvals.markExpired("n2", 20_000)).toBe(true);
    for (let i = 0; i < 100 && heard.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    await unwatch();
    expect(heard).toEqual([
      ["n1", "approved"],
      ["n2", "expired"],
    ]);
  });

  test("writable() is false while the server is down and true again after it restarts, without reopening", async () => {
    const s = stores[7]!;
    expect(await s.writable()).toBe(true);
    pg.stop();
    try {
      expect(await s.writable()).toBe(false);
      const user = await s.users.findByName("race").catch((e: unknown) => e);
      expect(user).toBeInstanceOf(StoreError);
      expect((user as StoreError).code).toBe("unavailable");
    } finally {
      pg.start();
    }
    let ok = false;
    for (let i = 0; i < 50 && !ok; i++) {
      ok = await s.writable();
      if (!ok) await new Promise((r) => setTimeout(r, 100));
    }
    expect(ok).toBe(true);
    expect((await s.users.findByName("race"))?.username).toBe("race");
  }, 60_000);
});
