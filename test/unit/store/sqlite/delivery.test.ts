// The SQLite delivery repositories: atomic fixed-window rate counters shared across connections, and the delivery log.
import { beforeEach, describe, expect, test } from "bun:test";
import type { SqliteStore } from "../../../../src/store/sqlite/store.ts";
import type { NewDeliveryLogEntry, RateBucket } from "../../../../src/store/types.ts";
import { BACKENDS, openIn, storesPerTest, runOn } from "../helpers.ts";

for (const backend of BACKENDS) {
  describe(backend, () => {
    /** A test of SQLite internals (its file, its group commit, its raw handle). */
    const onlySqlite = runOn(backend);

    let store: SqliteStore;
    const T0 = 1_700_000_040_000; // some instant inside a minute window

    const stores = storesPerTest();
    beforeEach(async () => {
      store = await stores.open();
    });

    const minute = (key: string, limit: number): RateBucket => ({ key, windowMs: 60_000, limit });

    describe("rate limits", () => {
      test("counts up to the limit, refuses the next, and a new window starts again", async () => {
        const start = Math.floor(T0 / 60_000) * 60_000;
        for (let i = 0; i < 3; i++) expect(await store.rateLimits.consume([minute("n", 3)], T0 + i)).toEqual({ allowed: true });
        expect(await store.rateLimits.consume([minute("n", 3)], T0 + 10)).toEqual({ allowed: false, bucket: "n", retryAt: start + 60_000 });
        expect(await store.rateLimits.consume([minute("n", 3)], start + 60_000)).toEqual({ allowed: true });
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

      test("a second connection to the same file shares the counters", async () => {
        const other = await openIn(stores.dir);
        try {
          expect((await store.rateLimits.consume([minute("shared", 2)], T0)).allowed).toBe(true);
          expect((await other.rateLimits.consume([minute("shared", 2)], T0)).allowed).toBe(true);
          expect((await store.rateLimits.consume([minute("shared", 2)], T0)).allowed).toBe(false);
          expect((await other.rateLimits.consume([minute("shared", 2)], T0)).allowed).toBe(false);
        } finally {
          await other.close();
        }
      });

      test("purgeExpired drops ended windows only", async () => {
        await store.rateLimits.consume([minute("m", 5), { key: "h", windowMs: 3_600_000, limit: 5 }], T0);
        expect(await store.rateLimits.purgeExpired(T0 + 60_000)).toBe(1);
        expect(await store.rateLimits.purgeExpired(T0 + 3_600_000)).toBe(1);
      });

      test.each([
        [{ key: "x", windowMs: 0, limit: 1 }],
        [{ key: "x", windowMs: 1000, limit: -1 }],
        [{ key: "x", windowMs: 1.5, limit: 1 }],
      ])("a malformed bucket is a TypeError: %o", async (b) => {
        await expect(store.rateLimits.consume([b], T0)).rejects.toBeInstanceOf(TypeError);
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
