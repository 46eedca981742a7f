// The RADIUS hot path's statement on PostgreSQL: the idempotency-record lookups, the records and the
// login cache's guarded high-water-mark writes share one statement, and while it is in flight the
// work of later turns waits for the next one; each part keeps its meaning (a record stands once
// committed, a mark is written once). Also the schema of the records (UNLOGGED, key index only) and
// the guarded write's plan (index lookups whatever the number of users).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { openPostgres, type PgDatabase } from "../../../src/runtime/postgres.ts";
import { openPgStore, type PgStore } from "../../../src/store/postgres/store.ts";
import { FULL_BATCH, statementText } from "../../../src/store/postgres/turn-statement.ts";
import { POSTGRES_SKIP_REASON, type PostgresServer } from "../../integration/helpers/postgres.ts";
import { cleanup, newToken, newUser, postgresServer, tempDir } from "./helpers.ts";

const SOURCE = "csid:198.51.100.9";

describe.skipIf(POSTGRES_SKIP_REASON !== undefined)("PostgreSQL hot-path statement", () => {
  let pg: PostgresServer;
  let dir: string;
  let url: string;
  let store: PgStore;
  let other: PgStore;
  let admin: PgDatabase;
  /** The hot-path statements `store` sent (those touching the records or the marks). */
  const sent: string[] = [];

  beforeAll(async () => {
    pg = await postgresServer();
    dir = tempDir();
    url = await pg.createDatabase();
    store = await openPgStore({ url, dataDir: dir, env: {}, poolSize: 4 });
    other = await openPgStore({ url, dataDir: dir, env: {}, poolSize: 2 });
    admin = openPostgres(url, { max: 2 });
    const query = store.db.query.bind(store.db);
    store.db.query = ((text: string, params?: readonly (string | number | boolean | null)[]) => {
      if (/radius_replies|token_marks/.test(text)) sent.push(text);
      return query(text, params);
    }) as typeof store.db.query;
    store.enableLoginCache();
  }, 120_000);
  afterAll(async () => {
    await admin?.close();
    await store?.close();
    await other?.close();
    cleanup(dir);
  });

  test("the idempotency-record table is UNLOGGED and has no index besides its key", async () => {
    const { rows } = await admin.query<{ relpersistence: string }>("SELECT relpersistence FROM pg_class WHERE relname = 'radius_replies'");
    expect(rows).toEqual([{ relpersistence: "u" }]);
    const idx = await admin.query<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE tablename = 'radius_replies'");
    expect(idx.rows.map((r) => r.indexname)).toEqual(["radius_replies_pkey"]);
  });

  test("a turn's lookups, records and guarded writes are one statement; later turns wait for the next one", async () => {
    const user = await store.users.add(newUser("turn-a"));
    const token = await store.tokens.add(newToken("TURN-A", { userId: user.id }));
    const user2 = await store.users.add(newUser("turn-b"));
    const token2 = await store.tokens.add(newToken("TURN-B", { userId: user2.id }));
    await store.loginReads("turn-a", SOURCE);
    await store.loginReads("turn-b", SOURCE);
    const reply = new Uint8Array([2, 9, 0, 20, 1, 2, 3]);
    await other.radiusReplies.put("seen-1", reply, 10_000);

    sent.length = 0;
    const cached = store.cachedLogin("turn-a", SOURCE)!;
    const [got, missing, , won] = await Promise.all([
      store.radiusReplies.get("seen-1", 0),
      store.radiusReplies.get("unseen-1", 0),
      Promise.all(Array.from({ length: 40 }, (_, i) => store.radiusReplies.put(`turn-${i}`, reply, 10_000))),
      cached.advance(cached.tokens[0]!, 100, 0),
    ]);
    expect(sent.length).toBe(1);
    expect(got).toEqual(reply);
    expect(missing).toBeUndefined();
    expect(won.won).toBe(true);
    // committed before put() resolved: another node reads every record
    const fromOther = await Promise.all(Array.from({ length: 40 }, (_, i) => other.radiusReplies.get(`turn-${i}`, 0)));
    expect(fromOther.every((r) => r !== undefined && Buffer.from(r).equals(Buffer.from(reply)))).toBe(true);

    // A statement held in flight (its write waits for a row lock): the work of the following turns
    // goes into one more statement, not one per turn.
    sent.length = 0;
    const lock = admin.transaction(async () => {
      await admin.query("SELECT 1 FROM token_marks WHERE token_id = $1 FOR UPDATE", [token.id]);
      const first = store.cachedLogin("turn-a", SOURCE)!;
      const blocked = first.advance(first.tokens[0]!, 101, 0);
      const later: Promise<unknown>[] = [];
      // fewer items than would start a second statement beside the first
      const turns = Math.floor((FULL_BATCH - 2) / 2);
      for (let turn = 0; turn < turns; turn++) {
        await new Promise((r) => setImmediate(r));
        later.push(store.radiusReplies.get(`turn-${turn}`, 0), store.radiusReplies.put(`later-${turn}`, reply, 10_000));
      }
      const second = store.cachedLogin("turn-b", SOURCE)!;
      later.push(second.advance(second.tokens[0]!, 7, 0));
      // the first statement is still waiting for the lock, so nothing else has been sent
      expect(sent.length).toBe(1);
      return { blocked, later };
    });
    const { blocked, later } = await lock;
    expect((await blocked).won).toBe(true);
    const results = await Promise.all(later);
    expect(sent.length).toBe(2);
    expect(results.filter((r) => r instanceof Uint8Array).length).toBe(Math.floor((FULL_BATCH - 2) / 2));
    expect((results.at(-1) as { won: boolean }).won).toBe(true);
    expect((await store.tokens.findById(token.id))!.lastStep).toBe(101);
    expect((await store.tokens.findById(token2.id))!.lastStep).toBe(7);
  });

  test("while a statement is held in flight, a full batch of waiting work starts another beside it", async () => {
    const user = await store.users.add(newUser("turn-c"));
    const token = await store.tokens.add(newToken("TURN-C", { userId: user.id }));
    await store.loginReads("turn-c", SOURCE);
    sent.length = 0;
    const blocked = await admin.transaction(async () => {
      await admin.query("SELECT 1 FROM token_marks WHERE token_id = $1 FOR UPDATE", [token.id]);
      const c = store.cachedLogin("turn-c", SOURCE)!;
      const first = c.advance(c.tokens[0]!, 200, 0);
      await new Promise((r) => setImmediate(r));
      expect(sent.length).toBe(1);
      // answered while the first statement still waits for the lock
      const got = await Promise.all(Array.from({ length: FULL_BATCH }, (_, i) => store.radiusReplies.get(`absent-${i}`, 0)));
      expect(got.every((g) => g === undefined)).toBe(true);
      expect(sent.length).toBe(2);
      return { first };
    });
    expect((await blocked.first).won).toBe(true);
  });

  test("one token written twice in a turn: the second write goes into the next statement and meets the new mark", async () => {
    const user = await store.users.add(newUser("turn-twice"));
    const token = await store.tokens.add(newToken("TURN-TWICE", { userId: user.id }));
    await store.loginReads("turn-twice", SOURCE);
    const a = store.cachedLogin("turn-twice", SOURCE)!;
    const b = store.cachedLogin("turn-twice", SOURCE)!;
    sent.length = 0;
    const [first, second] = await Promise.all([a.advance(a.tokens[0]!, 50, 0), b.advance({ ...b.tokens[0]!, drift: 0 }, 50, 0)]);
    expect([first.won, second.won]).toEqual([true, false]);
    expect(sent.length).toBe(2);
    expect((await store.tokens.findById(token.id))!.lastStep).toBe(50);
  });

  describe("a guarded write that carries its request's idempotency record", () => {
    const reply = new Uint8Array([2, 7, 0, 20, 9, 9, 9]);
    const NOW = 200_000_000;
    async function cachedUser(name: string, knownAt: number | null = NOW - 1000) {
      const user = await store.users.add(newUser(name));
      const token = await store.tokens.add(newToken(name.toUpperCase(), { userId: user.id }));
      if (knownAt !== null) await store.lockouts.recordSuccess(name, SOURCE, knownAt, { keep: 10, forgetBefore: 0 });
      await store.loginReads(name, SOURCE);
      return { token, login: store.cachedLogin(name, SOURCE)! };
    }
    const record = (key: string, knownSince = NOW - 86_400_000) => ({ key, reply, expiresAt: NOW + 30_000, now: NOW, knownSince });

    test("no record yet: the mark and the record are written by one statement, and another node reads the record", async () => {
      const { token, login } = await cachedUser("fused-a");
      sent.length = 0;
      const r = await login.advance(login.tokens[0]!, 300, 0, record("fused-key-a"));
      expect(r).toEqual({ won: true, known: NOW - 1000, recorded: true });
      expect(sent.length).toBe(1);
      expect(await other.radiusReplies.get("fused-key-a", NOW)).toEqual(reply);
      expect((await store.tokens.findById(token.id))!.lastStep).toBe(300);
    });

    test("a live record of the key (another node answered the packet): nothing is written, the record is returned", async () => {
      const { token, login } = await cachedUser("fused-b");
      const theirs = new Uint8Array([2, 7, 0, 20, 1, 1, 1]);
      await other.radiusReplies.put("fused-key-b", theirs, NOW + 5_000);
      sent.length = 0;
      const r = await login.advance(login.tokens[0]!, 300, 0, record("fused-key-b"));
      expect(r.won).toBe(false);
      expect(r.existing).toEqual(theirs);
      expect(sent.length).toBe(1);
      expect((await store.tokens.findById(token.id))!.lastStep).toBe(-1);
      // memory is not stale for that: the entry stays
      expect(store.cachedLogin("fused-b", SOURCE)).toBeDefined();
    });

    test("an expired record of the key does not stand: the mark is written", async () => {
      const { token, login } = await cachedUser("fused-c");
      await other.radiusReplies.put("fused-key-c", new Uint8Array([1]), NOW - 1);
      const r = await login.advance(login.tokens[0]!, 300, 0, record("fused-key-c"));
      expect(r.won).toBe(true);
      expect(r.existing).toBeUndefined();
      expect((await store.tokens.findById(token.id))!.lastStep).toBe(300);
    });

    test("a source not known recently enough: the mark is written without the record, which the caller writes once decided", async () => {
      for (const [name, knownAt] of [["fused-d", NOW - 90_000_000], ["fused-e", null]] as const) {
        const { login } = await cachedUser(name, knownAt);
        const r = await login.advance(login.tokens[0]!, 300, 0, record(`fused-key-${name}`));
        expect(r).toEqual({ won: true, known: knownAt, recorded: false });
        expect(await other.radiusReplies.get(`fused-key-${name}`, NOW)).toBeUndefined();
      }
    });

    test("a replayed code: neither the mark nor the record is written", async () => {
      const { login } = await cachedUser("fused-f");
      expect((await login.advance(login.tokens[0]!, 300, 0, record("fused-key-f1"))).recorded).toBe(true);
      const again = store.cachedLogin("fused-f", SOURCE)!;
      const r = await again.advance({ ...again.tokens[0]!, lastStep: 0 }, 300, 0, record("fused-key-f2"));
      expect(r).toEqual({ won: false, known: null, recorded: false });
      expect(await other.radiusReplies.get("fused-key-f2", NOW)).toBeUndefined();
    });
  });

  test("the guarded write's generic plan looks each row up by index once, whatever the number of users and records and whatever the statistics say", async () => {
    await admin.exec(`
INSERT INTO users (username, type, created_at) SELECT 'plan-' || g, 'totp', 0 FROM generate_series(1, 2000) g;
INSERT INTO tokens (serial, user_id, kind, secret, algorithm, digits, period, state, created_at)
  SELECT 'PLAN-' || u.id, u.id, 'totp', 'x', 'SHA1', 6, 30, 'active', 0 FROM users u WHERE u.username LIKE 'plan-%';
INSERT INTO token_marks (token_id) SELECT id FROM tokens WHERE serial LIKE 'PLAN-%';
`);
    const ROWS = 32;
    const { rows } = await admin.query<{ j: string }>(
      `SELECT json_agg(json_build_object('token_id', t.id, 'step', 5, 'drift', 0, 'was_drift', 0, 'user_id', u.id, 'name', u.username,
         'source', 'x', 'type', u.type, 'expires_at', u.expires_at, 'key', 'plan-key-' || t.id, 'reply', 'AgcAFA==', 'until', 9000000000000,
         'now', 0, 'known_since', 0))::text AS j
       FROM (SELECT * FROM tokens WHERE serial LIKE 'PLAN-%' ORDER BY id LIMIT ${ROWS}) t JOIN users u ON u.id = t.user_id`,
    );
    type Node = { "Shared Hit Blocks": number; "Actual Rows": number; "Actual Loops": number; "Subplan Name"?: string; Plans?: Node[] };
    /** The most times any subplan or scan below `n` ran. */
    const maxLoops = (n: Node): number => Math.max(n["Actual Loops"], ...(n.Plans ?? []).map(maxLoops));
    const explain = async (): Promise<Node> => {
      let plan = "";
      await admin
        .transaction(async () => {
          await admin.exec("SET LOCAL plan_cache_mode = force_generic_plan");
          await admin.exec(`PREPARE guarded(text) AS ${statementText(true, false, false)}`);
          const r = await admin.query<{ "QUERY PLAN": unknown }>(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE guarded('${rows[0]!.j.replaceAll("'", "''")}')`);
          plan = JSON.stringify(r.rows[0]!["QUERY PLAN"]);
          await admin.exec("DEALLOCATE guarded");
          throw new Error("rollback");
        })
        .catch((err: unknown) => {
          if (!(err instanceof Error && err.message === "rollback")) throw err;
        });
      return (JSON.parse(plan) as Array<{ Plan: Node }>)[0]!.Plan;
    };
    // Statistics taken while the records and counters were empty (a quiet night), then 20,000
    // records and 2,000 counters; then statistics that know them.
    await admin.exec("ANALYZE users; ANALYZE tokens; ANALYZE token_marks; ANALYZE radius_replies; ANALYZE lockouts");
    await admin.exec(`
INSERT INTO radius_replies (key, reply, expires_at) SELECT 'plan-record-' || g, 'AgcAFA==', 9000000000000 FROM generate_series(1, 20000) g;
INSERT INTO lockouts (subject, kind, source, failures, last_failure_at, locked_until)
  SELECT 'other-' || g, 'code', 'x', 1, 0, 0 FROM generate_series(1, 2000) g;
`);
    for (const analyze of [false, true]) {
      if (analyze) await admin.exec("ANALYZE radius_replies; ANALYZE lockouts");
      const plan = await explain();
      expect(plan["Actual Rows"]).toBe(ROWS);
      // Each row's checks run once (a join that re-ran them for every pair of rows ran them 1,024 times).
      expect(maxLoops(plan)).toBeLessThanOrEqual(ROWS);
      // A few index pages a row. A scan of every user and token, or of the records, reads thousands.
      expect(plan["Shared Hit Blocks"]).toBeLessThan(ROWS * 25);
    }
  });
});
