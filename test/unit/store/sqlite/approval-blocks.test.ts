// The approver app's back-off rows, on SQLite and PostgreSQL: read-modify-write strikes that
// concurrent callers on several connections (nodes) apply one after the other, clear and purge.

import { describe, expect, test } from "bun:test";
import type { SqliteStore } from "../../../../src/store/sqlite/store.ts";
import type { ApprovalBlock } from "../../../../src/store/types.ts";
import { BACKENDS, storesPerTest, runOn } from "../helpers.ts";

for (const backend of BACKENDS) {
  describe(backend, () => {
    runOn(backend);

    const stores = storesPerTest();
    const fresh = () => stores.open();

    /** One more strike: the streak grows by one, blocked for streak × 1000 ms after `now`. */
    const bump =
      (user: string, now: number) =>
      (cur: ApprovalBlock | undefined): ApprovalBlock => {
        const strikes = (cur?.strikes ?? 0) + 1;
        return { user, strikes, blockedUntil: now + strikes * 1000, reason: "rejected", updatedAt: now };
      };

    describe("approval blocks", () => {
      test("get answers undefined for a user without a row; strike creates it, then sees it", async () => {
        const s = await fresh();
        expect(await s.approvalBlocks.get("alice")).toBeUndefined();
        const seen: (ApprovalBlock | undefined)[] = [];
        const first = await s.approvalBlocks.strike("alice", (cur) => {
          seen.push(cur);
          return bump("alice", 100)(cur);
        });
        expect(first).toEqual({ user: "alice", strikes: 1, blockedUntil: 1100, reason: "rejected", updatedAt: 100 });
        expect(await s.approvalBlocks.get("alice")).toEqual(first);
        await s.approvalBlocks.strike("alice", (cur) => {
          seen.push(cur);
          return { ...bump("alice", 200)(cur), reason: "reported" };
        });
        expect(seen).toEqual([undefined, first]);
        expect(await s.approvalBlocks.get("alice")).toEqual({ user: "alice", strikes: 2, blockedUntil: 2200, reason: "reported", updatedAt: 200 });
      });

      test("a strike whose function throws stores nothing", async () => {
        const s = await fresh();
        await expect(
          s.approvalBlocks.strike("bob", () => {
            throw new Error("no");
          }),
        ).rejects.toThrow("no");
        expect(await s.approvalBlocks.get("bob")).toBeUndefined();
      });

      test("clear deletes the user's row only; purgeExpired deletes rows whose block ended and whose last strike is old", async () => {
        const s = await fresh();
        await s.approvalBlocks.strike("a", bump("a", 100)); // until 1100
        await s.approvalBlocks.strike("b", bump("b", 5_000)); // until 6000
        await s.approvalBlocks.strike("c", bump("c", 100));
        expect(await s.approvalBlocks.clear("c")).toBe(true);
        expect(await s.approvalBlocks.clear("c")).toBe(false);
        expect(await s.approvalBlocks.purgeExpired(2_000)).toBe(1);
        expect(await s.approvalBlocks.get("a")).toBeUndefined();
        expect((await s.approvalBlocks.get("b"))?.strikes).toBe(1);
      });

      test("concurrent strikes from two connections are each applied: none is lost", async () => {
        const a = await fresh();
        const b = await fresh();
        const n = 20;
        await Promise.all(Array.from({ length: n }, (_, i) => (i % 2 ? a : b).approvalBlocks.strike("carol", bump("carol", 100))));
        expect((await a.approvalBlocks.get("carol"))?.strikes).toBe(n);
      });
    });
  });
}
