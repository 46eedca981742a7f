// The stored audit log on SQLite and PostgreSQL: batches appended, read back newest first with each
// filter and with paging, two connections (nodes) writing one log, per-minute counts added up across
// them, pruning by age and by row count; and the pending-approval counts.

import { describe, expect, test } from "bun:test";
import type { SqliteStore } from "../../../../src/store/sqlite/store.ts";
import { auditLogOf, type Approval, type NewAuditRecord } from "../../../../src/store/types.ts";
import { BACKENDS, storesPerTest, runOn } from "../helpers.ts";

const T0 = 1_700_000_000_000;

function rec(i: number, patch: Partial<NewAuditRecord> = {}): NewAuditRecord {
  return { at: T0 + i * 1000, event: "auth.failure", actor: null, user: `u${i % 3}`, client: "vpn", outcome: "reject", node: "n1", fields: { reason: "bad_password", i }, ...patch };
}

for (const backend of BACKENDS) {
  describe(backend, () => {
    runOn(backend);

    const stores = storesPerTest();
    const open = () => stores.open();

    test("append in batches; read newest first with every filter; page with (at, id)", async () => {
      const repo = auditLogOf(await open())!;
      await repo.append(Array.from({ length: 10 }, (_, i) => rec(i)));
      await repo.append([
        rec(20, { event: "admin.user_added", actor: "ui:root1", user: "carol", client: null, outcome: null, fields: { user: "carol", by: "ui:root1" } }),
        rec(21, { event: "admin.user_unlocked", actor: "ops", user: "carol", client: null, outcome: null, fields: { cleared: true } }),
        rec(22, { event: "auth.success", outcome: "accept", user: "carol", fields: { factors: ["password", "totp"] } }),
      ]);
      const all = await repo.list({ limit: 100 });
      expect(all).toHaveLength(13);
      expect(all[0]).toMatchObject({ event: "auth.success", user: "carol", outcome: "accept", node: "n1", fields: { factors: ["password", "totp"] }, at: T0 + 22_000 });
      expect(all.map((r) => r.at)).toEqual([...all.map((r) => r.at)].sort((a, b) => b - a));
      expect((await repo.list({ limit: 100, event: "admin." })).map((r) => r.event)).toEqual(["admin.user_unlocked", "admin.user_added"]);
      expect(await repo.list({ limit: 100, event: "admin" })).toHaveLength(0);
      expect((await repo.list({ limit: 100, event: "auth.failure" })).length).toBe(10);
      expect((await repo.list({ limit: 100, actor: "ops" })).map((r) => r.event)).toEqual(["admin.user_unlocked"]);
      expect((await repo.list({ limit: 100, user: "u1" })).map((r) => r.fields.i)).toEqual([7, 4, 1]);
      expect((await repo.list({ limit: 100, outcome: "accept" })).map((r) => r.user)).toEqual(["carol"]);
      expect((await repo.list({ limit: 100, client: "nope" })).length).toBe(0);
      expect((await repo.list({ limit: 100, from: T0 + 3000, to: T0 + 6000 })).map((r) => r.fields.i)).toEqual([5, 4, 3]);
      // Paging: each page continues below the last one's (at, id), also where times are equal.
      await repo.append([rec(30, { user: "same" }), rec(30, { user: "same" }), rec(30, { user: "same" })]);
      const seen: number[] = [];
      let before: { at: number; id: number } | undefined;
      for (let i = 0; i < 10; i++) {
        const page = await repo.list({ limit: 2, user: "same", ...(before ? { before } : {}) });
        seen.push(...page.map((r) => r.id));
        if (page.length < 2) break;
        before = { at: page[1]!.at, id: page[1]!.id };
      }
      expect(new Set(seen).size).toBe(3);
    });

    test("two connections (nodes) write one log; per-minute counts add up across them", async () => {
      const a = await open();
      const b = await open();
      await auditLogOf(a)!.append([rec(1, { node: "a" })]);
      await auditLogOf(b)!.append([rec(2, { node: "b" })]);
      expect((await auditLogOf(a)!.list({ limit: 10 })).map((r) => r.node)).toEqual(["b", "a"]);
      const minute = Math.floor(T0 / 60_000) * 60_000;
      await Promise.all([
        auditLogOf(a)!.addCounts([{ minute, outcome: "accept", n: 5 }, { minute, outcome: "reject", n: 1 }]),
        auditLogOf(b)!.addCounts([{ minute, outcome: "accept", n: 7 }, { minute: minute + 60_000, outcome: "challenge", n: 2 }]),
      ]);
      const counts = await auditLogOf(b)!.minutes(minute);
      expect(counts.sort((x, y) => x.minute - y.minute || x.outcome.localeCompare(y.outcome))).toEqual([
        { minute, outcome: "accept", n: 12 },
        { minute, outcome: "reject", n: 1 },
        { minute: minute + 60_000, outcome: "challenge", n: 2 },
      ]);
      expect(await auditLogOf(a)!.minutes(minute + 60_000)).toEqual([{ minute: minute + 60_000, outcome: "challenge", n: 2 }]);
    });

    test("prune: older than the retention first, then the oldest beyond the row cap, in batches", async () => {
      const repo = auditLogOf(await open())!;
      await repo.append(Array.from({ length: 20 }, (_, i) => rec(i)));
      await repo.addCounts([{ minute: 0, outcome: "accept", n: 1 }, { minute: T0 + 60_000, outcome: "accept", n: 1 }]);
      expect(await repo.prune(T0 + 5000, 1_000_000, 100)).toBe(5);
      expect((await repo.list({ limit: 100 })).at(-1)!.fields.i).toBe(5);
      expect(await repo.minutes(0)).toEqual([{ minute: T0 + 60_000, outcome: "accept", n: 1 }]);
      // 15 left; a cap of 10 deletes the 5 oldest, 3 per call.
      expect(await repo.prune(0, 10, 3)).toBe(3);
      expect(await repo.prune(0, 10, 3)).toBe(2);
      expect(await repo.prune(0, 10, 3)).toBe(0);
      const left = await repo.list({ limit: 100 });
      expect(left.map((r) => r.fields.i)).toEqual([19, 18, 17, 16, 15, 14, 13, 12, 11, 10]);
    });

    test("pendingCounts: pending and unexpired approvals by kind", async () => {
      const s = await open();
      const base: Approval = { id: "", kind: "radius", user: "u", client: "vpn", source: null, msisdn: null, apiKeyId: null, state: "pending", channel: null, linkHash: null, texts: "{}", numberMatch: null, createdAt: T0, expiresAt: T0 + 60_000, answeredAt: null };
      await s.approvals.create({ ...base, id: "a1" });
      await s.approvals.create({ ...base, id: "a2", user: "v" });
      await s.approvals.create({ ...base, id: "a3", user: "w", expiresAt: T0 + 1000 });
      await s.approvals.create({ ...base, id: "m1", kind: "magic-link", user: null });
      await s.approvals.create({ ...base, id: "a4", user: "x" });
      expect(await s.approvals.answer("a4", "approved", T0 + 10)).toBe(true);
      expect(await s.approvals.pendingCounts(T0 + 2000)).toEqual({ radius: 2, "magic-link": 1 });
    });
  });
}
