// The delivery repositories of both back-ends: atomic sliding-window rate counters shared across connections and nodes, and the delivery log.
import { afterAll, beforeAll, afterEach, beforeEach, describe, expect, test } from "bun:test";
import * as path from "node:path";
import { openDatabase } from "../../../../src/runtime/sqlite.ts";
import { openPostgres } from "../../../../src/runtime/postgres.ts";
import { MIGRATIONS, MIGRATIONS_TABLE_SQL, migrationSQL } from "../../../../src/store/migrations.ts";
import type { SqliteStore } from "../../../../src/store/sqlite/store.ts";
import type { NewDeliveryLogEntry, RateBucket } from "../../../../src/store/types.ts";
import { BACKENDS, useBackend, cleanup, databaseFor, openIn, tempDir } from "../helpers.ts";

for (const backend of BACKENDS) {
  describe(backend, () => {
    beforeAll(() => useBackend(backend), 120_000);
    afterAll(() => useBackend("sqlite"));
    /** A test of SQLite internals (its file, its group commit, its raw handle). */
    const onlySqlite = backend === "sqlite" ? test : test.skip;

    let dir: string;
    let store: SqliteStore;
    const T0 = 1_700_000_040_000; // some instant inside a minute window

    beforeEach(async () => {
      dir = tempDir();
      store = await openIn(dir);
    });
    afterEach(async () => {
      await store.close();
      cleanup(dir);
    });

    const minute = (key: string, limit: number): RateBucket => ({ key, windowMs: 60_000, limit });

    describe("rate limits", () => {
      test("counts up to the limit and refuses the next until the oldest hit's one-second slot is a minute old", async () => {
        for (let i = 0; i < 3; i++) expect(await store.rateLimits.consume([minute("n", 3)], T0 + i)).toEqual({ allowed: true });
        // The three hits sit in the slot [T0, T0 + 1 s): it is counted until T0 + 1 s + 60 s.
        expect(await store.rateLimits.consume([minute("n", 3)], T0 + 10)).toEqual({ allowed: false, bucket: "n", retryAt: T0 + 61_000 });
        expect((await store.rateLimits.consume([minute("n", 3)], T0 + 60_999)).allowed).toBe(false);
        expect(await store.rateLimits.consume([minute("n", 3)], T0 + 61_000)).toEqual({ allowed: true });
      });

      test("a burst across a calendar-minute boundary is refused: never more than the limit in any 60 s", async () => {
        const minuteEnd = Math.floor(T0 / 60_000) * 60_000 + 60_000;
        for (let i = 0; i < 3; i++) expect((await store.rateLimits.consume([minute("edge", 3)], minuteEnd - 500 + i)).allowed).toBe(true);
        // A new calendar minute has begun, but the three hits are less than a minute old.
        for (const t of [minuteEnd, minuteEnd + 1_000, minuteEnd + 30_000, minuteEnd + 59_000]) {
          expect(await store.rateLimits.consume([minute("edge", 3)], t)).toEqual({ allowed: false, bucket: "edge", retryAt: minuteEnd + 60_000 });
        }
        expect((await store.rateLimits.consume([minute("edge", 3)], minuteEnd + 60_000)).allowed).toBe(true);
      });

      test("the pattern a two-window weighted estimate lets through (twice the limit within 60 s) is refused after the limit", async () => {
        // A weighted estimate (previous minute's count × the part of it still in the window + this
        // minute's count) admits N at the very end of one minute and then, in the next, the k-th hit
        // once (k − 1) / N of that minute has passed: 2N hits within (N − 1) / N of a minute.
        const n = 4;
        const minuteEnd = Math.floor(T0 / 60_000) * 60_000 + 60_000;
        const times = [...Array.from({ length: n }, () => minuteEnd - 1), ...Array.from({ length: n }, (_, k) => minuteEnd + (k * 60_000) / n + 1)];
        const got: boolean[] = [];
        for (const t of times) got.push((await store.rateLimits.consume([minute("wx", n)], t)).allowed);
        expect(times.at(-1)! - times[0]!).toBeLessThan(60_000);
        expect(got).toEqual([true, true, true, true, false, false, false, false]);
      });

      test("retryAt is when enough old slots have left the window for one more hit", async () => {
        const b = minute("r", 4);
        for (const t of [T0, T0 + 2_000, T0 + 2_500, T0 + 7_000]) expect((await store.rateLimits.consume([b], t)).allowed).toBe(true);
        expect(await store.rateLimits.consume([b], T0 + 30_000)).toEqual({ allowed: false, bucket: "r", retryAt: T0 + 61_000 });
        expect((await store.rateLimits.consume([b], T0 + 61_000)).allowed).toBe(true);
        // Full again (T0 + 2 s, 2.5 s, 7 s, 61 s): the slot [T0 + 2 s, T0 + 3 s) holds two.
        expect(await store.rateLimits.consume([b], T0 + 61_500)).toEqual({ allowed: false, bucket: "r", retryAt: T0 + 63_000 });
      });

      test("an hour limit counts in one-minute slots", async () => {
        const b: RateBucket = { key: "hr", windowMs: 3_600_000, limit: 2 };
        const slot = Math.floor(T0 / 60_000) * 60_000;
        expect((await store.rateLimits.consume([b], T0)).allowed).toBe(true);
        expect((await store.rateLimits.consume([b], T0 + 1_800_000)).allowed).toBe(true);
        expect(await store.rateLimits.consume([b], T0 + 3_599_999)).toEqual({ allowed: false, bucket: "hr", retryAt: slot + 3_660_000 });
        expect((await store.rateLimits.consume([b], slot + 3_660_000)).allowed).toBe(true);
      });

      test("under an injected clock, no span of 60 s ever holds more than the limit, and a refusal is never more than a slot late", async () => {
        // A deterministic pseudo-random caller: bursts and pauses over ten minutes.
        let seed = 12345;
        const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
        for (const limit of [1, 3, 7]) {
          const b = minute(`prop${limit}`, limit);
          const admitted: number[] = [];
          let t = T0 - 30_000;
          for (let i = 0; i < 120; i++) {
            t += rand() < 0.7 ? Math.floor(rand() * 2_000) : Math.floor(rand() * 40_000);
            const d = await store.rateLimits.consume([b], t);
            if (d.allowed) {
              admitted.push(t);
            } else {
              // Refused only when the limit was reached within the last minute and one slot.
              expect(admitted.filter((a) => a >= t - 61_000).length).toBeGreaterThanOrEqual(limit);
              expect(d.retryAt).toBeGreaterThan(t);
              expect(d.retryAt).toBeLessThanOrEqual(t + 61_000);
            }
          }
          // Every closed span [a, a + 60 s] starting at an admitted hit holds at most `limit`.
          for (const a of admitted) expect(admitted.filter((x) => x >= a && x <= a + 60_000).length).toBeLessThanOrEqual(limit);
          expect(admitted.length).toBeGreaterThan(limit);
        }
      });

      test("a refusal by one bucket counts nothing in the others", async () => {
        expect(await store.rateLimits.consume([minute("a", 5), minute("b", 1)], T0)).toEqual({ allowed: true });
        // b is full: a must not be counted.
        for (let i = 0; i < 10; i++) expect((await store.rateLimits.consume([minute("a", 5), minute("b", 1)], T0)).allowed).toBe(false);
        for (let i = 0; i < 4; i++) expect(await store.rateLimits.consume([minute("a", 5)], T0)).toEqual({ allowed: true });
        expect((await store.rateLimits.consume([minute("a", 5)], T0)).allowed).toBe(false);
      });

      test("limit 0 refuses everything; an empty list allows", async () => {
        expect((await store.rateLimits.consume([minute("z", 0)], T0)).allowed).toBe(false);
        expect(await store.rateLimits.consume([], T0)).toEqual({ allowed: true });
      });

      test("a second store on the same data shares the counters", async () => {
        const other = await openIn(dir);
        try {
          expect((await store.rateLimits.consume([minute("shared", 2)], T0)).allowed).toBe(true);
          expect((await other.rateLimits.consume([minute("shared", 2)], T0 + 20_000)).allowed).toBe(true);
          expect((await store.rateLimits.consume([minute("shared", 2)], T0 + 40_000)).allowed).toBe(false);
          expect((await other.rateLimits.consume([minute("shared", 2)], T0 + 60_500)).allowed).toBe(false);
          // The first hit has left the window (on either store's view), the second has not.
          expect((await other.rateLimits.consume([minute("shared", 2)], T0 + 61_000)).allowed).toBe(true);
          expect((await store.rateLimits.consume([minute("shared", 2)], T0 + 61_000)).allowed).toBe(false);
        } finally {
          await other.close();
        }
      });

      test("parallel calls from two stores take exactly the limit and count nothing more", async () => {
        const other = await openIn(dir);
        try {
          const calls = (key: string) =>
            Array.from({ length: 40 }, (_, i) => (i % 2 ? other : store).rateLimits.consume([minute(`${key}:own${i % 3}`, 100), minute(key, 7)], T0 + (i % 5)));
          const got = await Promise.all(calls("par"));
          expect(got.filter((d) => d.allowed).length).toBe(7);
          // Exactly seven were counted: a limit of 8 takes one more, then refuses.
          expect((await store.rateLimits.consume([minute("par", 8)], T0 + 10)).allowed).toBe(true);
          expect((await other.rateLimits.consume([minute("par", 8)], T0 + 10)).allowed).toBe(false);
          // The refused calls counted nothing in their other bucket either: 40 calls, 7 counted over three buckets.
          let counted = 0;
          for (let k = 0; k < 3; k++) {
            for (let n = 0; n < 100; n++) {
              if (!(await store.rateLimits.consume([minute(`par:own${k}`, 100)], T0 + 20)).allowed) break;
              counted++;
            }
          }
          expect(300 - counted).toBe(7);
        } finally {
          await other.close();
        }
      });

      test("purgeExpired drops slots once they have left their window only", async () => {
        await store.rateLimits.consume([minute("m", 5), { key: "h", windowMs: 3_600_000, limit: 5 }], T0 + 500);
        const minuteSlot = Math.floor((T0 + 500) / 1_000) * 1_000;
        const hourSlot = Math.floor((T0 + 500) / 60_000) * 60_000;
        expect(await store.rateLimits.purgeExpired(minuteSlot + 60_999)).toBe(0);
        expect(await store.rateLimits.purgeExpired(minuteSlot + 61_000)).toBe(1);
        expect(await store.rateLimits.purgeExpired(hourSlot + 3_659_999)).toBe(0);
        expect(await store.rateLimits.purgeExpired(hourSlot + 3_660_000)).toBe(1);
      });

      test.each([
        [{ key: "x", windowMs: 0, limit: 1 }],
        [{ key: "x", windowMs: 1000, limit: -1 }],
        [{ key: "x", windowMs: 1.5, limit: 1 }],
      ])("a malformed bucket is a TypeError: %o", async (b) => {
        await expect(store.rateLimits.consume([b], T0)).rejects.toBeInstanceOf(TypeError);
      });

      test("migration 23 keeps each calendar-window counter, in its window's last slot", async () => {
        await store.close();
        cleanup(dir);
        dir = tempDir();
        const minuteStart = Math.floor(T0 / 60_000) * 60_000;
        const hourStart = Math.floor(T0 / 3_600_000) * 3_600_000;
        const rows: [string, number, number, number][] = [
          ["old:m", minuteStart, 60_000, 3],
          ["old:h", hourStart, 3_600_000, 2],
        ];
        const before = MIGRATIONS.filter((m) => m.version <= 22);
        if (backend === "sqlite") {
          const db = openDatabase(path.join(dir, "portcullis.db"));
          db.exec(MIGRATIONS_TABLE_SQL);
          for (const m of before) {
            db.exec(migrationSQL(m, "sqlite"));
            db.prepare("INSERT INTO schema_migrations VALUES (?, ?, 0)").run(m.version, m.name);
          }
          for (const r of rows) db.prepare("INSERT INTO rate_limits (bucket, window_start, window_ms, hits) VALUES (?, ?, ?, ?)").run(...r);
          db.close();
        } else {
          const db = openPostgres(await databaseFor(dir), { max: 1 });
          try {
            await db.exec(MIGRATIONS_TABLE_SQL);
            for (const m of before) {
              await db.exec(migrationSQL(m, "postgres"));
              await db.query("INSERT INTO schema_migrations VALUES ($1, $2, 0)", [m.version, m.name]);
            }
            for (const r of rows) await db.query("INSERT INTO rate_limits (bucket, window_start, window_ms, hits) VALUES ($1, $2, $3, $4)", r);
          } finally {
            await db.close();
          }
        }
        store = await openIn(dir);
        // The minute's three hits count as if made in its last second, until that second is a minute old.
        expect(await store.rateLimits.consume([minute("old:m", 3)], minuteStart + 10_000)).toEqual({ allowed: false, bucket: "old:m", retryAt: minuteStart + 120_000 });
        expect((await store.rateLimits.consume([minute("old:m", 3)], minuteStart + 120_000)).allowed).toBe(true);
        const h: RateBucket = { key: "old:h", windowMs: 3_600_000, limit: 2 };
        expect(await store.rateLimits.consume([h], hourStart + 60_000)).toEqual({ allowed: false, bucket: "old:h", retryAt: hourStart + 7_200_000 });
      });
    });

    describe("delivery log", () => {
      const entry = (at: number, patch: Partial<NewDeliveryLogEntry> = {}): NewDeliveryLogEntry => ({
        at,
        channel: "sms",
        destination: "+46…34",
        country: "SE",
        endpoint: "default",
        apiKeyId: "k1",
        result: "sent",
        reason: null,
        detail: null,
        providerId: "abc",
        ...patch,
      });

      test("append, recent newest first with paging, purgeBefore", async () => {
        await store.deliveryLog.append(entry(1000));
        await store.deliveryLog.append(entry(2000, { channel: "email", destination: "…@example.com", country: null, result: "failed", reason: "timeout", detail: "after 5000 ms", providerId: null }));
        await store.deliveryLog.append(entry(3000, { channel: null, result: "refused", reason: "rate_limited", providerId: null }));
        const all = await store.deliveryLog.recent(10);
        expect(all.map((e) => [e.at, e.channel, e.result, e.reason])).toEqual([
          [3000, null, "refused", "rate_limited"],
          [2000, "email", "failed", "timeout"],
          [1000, "sms", "sent", null],
        ]);
        expect(all[2]).toEqual({ ...entry(1000), id: all[2]!.id });
        expect((await store.deliveryLog.recent(1, all[1]!.id)).map((e) => e.at)).toEqual([1000]);
        expect(await store.deliveryLog.purgeBefore(2500)).toBe(2);
        expect((await store.deliveryLog.recent(10)).map((e) => e.at)).toEqual([3000]);
      });
    });
  });
}
