// The approvals repository (migrations 9): every state transition, one pending approval per kind, user
// and client (also when two connections or four processes race to create it), the waiter poll's
// read, and Magic Link sessions of a version-8 database carried over as approvals.

import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { openDatabase } from "../../../../src/runtime/sqlite.ts";
import { MIGRATIONS, migrationSQL } from "../../../../src/store/migrations.ts";
import type { SqliteStore } from "../../../../src/store/sqlite/store.ts";
import type { Approval, ApprovalOutcome, ApprovalState } from "../../../../src/store/types.ts";
import { BACKENDS, openIn, storesPerTest, runOn } from "../helpers.ts";

for (const backend of BACKENDS) {
  describe(backend, () => {
    /** A test of SQLite internals (its file, its group commit, its raw handle). */
    const onlySqlite = runOn(backend);

    const stores = storesPerTest({ now: () => 1_000 });
    const fresh = () => stores.open();

    function approval(id: string, patch: Partial<Approval> = {}): Approval {
      return {
        id,
        kind: "radius",
        user: "alice",
        client: "vpn",
        source: "203.0.113.7",
        msisdn: null,
        apiKeyId: null,
        state: "pending",
        channel: null,
        linkHash: `link-${id}`.padEnd(64, "0"),
        texts: '{"title":"Sign in"}',
        numberMatch: null,
        createdAt: 100,
        expiresAt: 10_000,
        answeredAt: null,
        ...patch,
      };
    }

    describe("transitions", () => {
      const FINAL: ApprovalOutcome[] = ["approved", "rejected", "reported", "expired", "cancelled", "failed"];

      test.each(FINAL)("pending → %s once; nothing moves it again", async (to) => {
        const s = await fresh();
        await s.approvals.create(approval("a"));
        expect(await s.approvals.answer("a", to, 5_000)).toBe(true);
        expect(await s.approvals.get("a")).toEqual(approval("a", { state: to, answeredAt: 5_000 }));
        for (const again of FINAL) expect(await s.approvals.answer("a", again, 5_001)).toBe(false);
        expect(await s.approvals.markExpired("a", 20_000)).toBe(false);
        expect((await s.approvals.get("a"))!.state).toBe(to);
      });

      test.each([
        ["before its expiry", 9_999, true],
        ["at its expiry instant", 10_000, false],
        ["after its expiry", 10_001, false],
      ] as const)("answer %s", async (_when, now, ok) => {
        const s = await fresh();
        await s.approvals.create(approval("a"));
        expect(await s.approvals.answer("a", "approved", now)).toBe(ok);
      });

      test.each([
        ["before its expiry", 9_999, false],
        ["at its expiry instant", 10_000, true],
      ] as const)("markExpired %s", async (_when, now, ok) => {
        const s = await fresh();
        await s.approvals.create(approval("a"));
        expect(await s.approvals.markExpired("a", now)).toBe(ok);
        expect((await s.approvals.get("a"))!.state).toBe(ok ? "expired" : "pending");
      });

      test("an unknown ID changes nothing", async () => {
        const s = await fresh();
        expect(await s.approvals.answer("nope", "approved", 1)).toBe(false);
        expect(await s.approvals.markExpired("nope", 1)).toBe(false);
        expect(await s.approvals.get("nope")).toBeUndefined();
      });

      test("the table refuses an unknown state, kind or channel", async () => {
        const s = await fresh();
        await expect(s.approvals.create(approval("a", { state: "accepted" as ApprovalState }))).rejects.toThrow();
        await expect(s.approvals.create(approval("b", { kind: "push" as never }))).rejects.toThrow();
        await expect(s.approvals.create(approval("c", { channel: "carrier-pigeon" as never }))).rejects.toThrow();
      });

      test("setChannel records how the request reached the user, whatever the state", async () => {
        const s = await fresh();
        await s.approvals.create(approval("a"));
        await s.approvals.answer("a", "approved", 500);
        await s.approvals.setChannel("a", "sms-link");
        expect((await s.approvals.get("a"))!.channel).toBe("sms-link");
      });

      test("answeredSince: only ended approvals answered at or after the time; purge by expiry", async () => {
        const s = await fresh();
        await s.approvals.create(approval("a", { user: "a" }));
        await s.approvals.create(approval("b", { user: "b" }));
        await s.approvals.create(approval("c", { user: "c", expiresAt: 400 }));
        await s.approvals.answer("a", "rejected", 300);
        await s.approvals.markExpired("c", 500);
        expect((await s.approvals.answeredSince(300)).sort((x, y) => x.id.localeCompare(y.id))).toEqual([
          { id: "a", state: "rejected" },
          { id: "c", state: "expired" },
        ]);
        expect(await s.approvals.answeredSince(301)).toEqual([{ id: "c", state: "expired" }]);
        expect(await s.approvals.purgeExpired(401)).toBe(1);
        expect(await s.approvals.get("c")).toBeUndefined();
        expect(await s.approvals.get("b")).toBeDefined();
      });

      test("a duplicate ID or link hash is a conflict", async () => {
        const s = await fresh();
        await s.approvals.create(approval("a"));
        await expect(s.approvals.create(approval("a", { user: "bob", linkHash: "x".repeat(64) }))).rejects.toMatchObject({ code: "conflict" });
        await expect(s.approvals.create(approval("b", { user: "bob", linkHash: approval("a").linkHash }))).rejects.toMatchObject({ code: "conflict" });
        await expect(s.approvals.createOrJoin(approval("a", { user: "bob", linkHash: "y".repeat(64) }), 1_000)).rejects.toMatchObject({ code: "conflict" });
      });

      test("approvals without a link (app only) may coexist", async () => {
        const s = await fresh();
        await s.approvals.create(approval("a", { linkHash: null, user: "a" }));
        await s.approvals.create(approval("b", { linkHash: null, user: "b" }));
        expect((await s.approvals.get("b"))!.linkHash).toBeNull();
      });
    });

    describe("one pending approval per kind, user and client", () => {
      test("a second create for the same kind, user and client joins the first", async () => {
        const s = await fresh();
        const first = await s.approvals.createOrJoin(approval("a"), 1_000);
        expect(first).toEqual({ created: true, approval: approval("a") });
        const second = await s.approvals.createOrJoin(approval("b", { source: "198.51.100.1" }), 1_000);
        expect(second).toEqual({ created: false, approval: approval("a") });
        expect(await s.approvals.get("b")).toBeUndefined();
        expect(await s.approvals.findPending("radius", "alice", "vpn", 1_000)).toEqual(approval("a"));
        await expect(s.approvals.create(approval("c"))).rejects.toMatchObject({ code: "conflict" });
      });

      test.each([
        ["another user", { user: "bob" }],
        ["another client", { client: "wifi" }],
        ["another kind", { kind: "password-reset" as const }],
      ])("%s gets an approval of its own", async (_what, patch) => {
        const s = await fresh();
        await s.approvals.createOrJoin(approval("a"), 1_000);
        expect((await s.approvals.createOrJoin(approval("b", patch), 1_000)).created).toBe(true);
      });

      test.each(["approved", "rejected", "reported", "expired", "cancelled", "failed"] as const)("once the first is %s, a new one is created", async (state) => {
        const s = await fresh();
        await s.approvals.createOrJoin(approval("a"), 1_000);
        if (state === "expired") await s.approvals.markExpired("a", 10_000);
        else await s.approvals.answer("a", state, 5_000);
        expect(await s.approvals.findPending("radius", "alice", "vpn", 1_000)).toBeUndefined();
        expect(await s.approvals.createOrJoin(approval("b"), 1_000)).toEqual({ created: true, approval: approval("b") });
      });

      test("a pending one past its expiry (nobody closed it) is closed as expired, and a new one created", async () => {
        const s = await fresh();
        await s.approvals.createOrJoin(approval("a", { expiresAt: 2_000 }), 1_000);
        expect(await s.approvals.findPending("radius", "alice", "vpn", 2_000)).toBeUndefined();
        const r = await s.approvals.createOrJoin(approval("b", { createdAt: 2_000, expiresAt: 12_000 }), 2_000);
        expect(r.created).toBe(true);
        expect((await s.approvals.get("a"))!).toMatchObject({ state: "expired", answeredAt: 2_000 });
      });

      test("pendingForUser: the user's pending, unexpired approvals of every kind and client, oldest first", async () => {
        const s = await fresh();
        await s.approvals.create(approval("a", { createdAt: 300 }));
        await s.approvals.create(approval("b", { client: "wifi", createdAt: 200 }));
        await s.approvals.create(approval("c", { kind: "password-reset", client: "portal", createdAt: 400, expiresAt: 2_000 }));
        await s.approvals.create(approval("d", { user: "bob", client: "wifi" }));
        await s.approvals.create(approval("e", { client: "lab" }));
        await s.approvals.answer("e", "approved", 500);
        expect((await s.approvals.pendingForUser("alice", 1_000)).map((a) => a.id)).toEqual(["b", "a", "c"]);
        expect((await s.approvals.pendingForUser("alice", 2_000)).map((a) => a.id)).toEqual(["b", "a"]);
        expect(await s.approvals.pendingForUser("nobody", 1_000)).toEqual([]);
      });

      test("approvals without a user (Magic Link calls by number) never collide", async () => {
        const s = await fresh();
        await s.approvals.create(approval("a", { kind: "magic-link", user: null, client: "default" }));
        await s.approvals.create(approval("b", { kind: "magic-link", user: null, client: "default" }));
        await expect(s.approvals.createOrJoin(approval("c", { user: null }), 1_000)).rejects.toThrow(TypeError);
      });

      test("two connections creating at once: one pending approval, the other joins it", async () => {
        const a = await fresh();
        const b = await fresh();
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).approvals.createOrJoin(approval(`x${i}`), 1_000)));
        const created = results.filter((r) => r.created);
        expect(created).toHaveLength(1);
        for (const r of results) expect(r.approval.id).toBe(created[0]!.approval.id);
      });

      onlySqlite("four processes racing for the same users and client: exactly one pending approval each, every loser joins it", async () => {
        await (await openIn(stores.dir)).close();
        const rounds = 200;
        const worker = path.join(import.meta.dirname, "join-worker.ts");
        const children = Array.from({ length: 4 }, (_, n) => Bun.spawn([process.execPath, worker, stores.dir, String(n), String(rounds)], { stdout: "pipe", stderr: "inherit" }));
        // Start them together once every child has opened the store (a condition, not a sleep).
        const until = Date.now() + 30_000;
        while (fs.readdirSync(stores.dir).filter((f) => f.startsWith("ready-")).length < children.length && Date.now() < until) await Bun.sleep(5);
        fs.writeFileSync(path.join(stores.dir, "go"), "");
        const outputs = await Promise.all(
          children.map(async (child) => {
            const out = await new Response(child.stdout).text();
            expect(await child.exited).toBe(0);
            return JSON.parse(out) as Array<{ created: boolean; id: string }>;
          }),
        );
        for (let r = 0; r < rounds; r++) {
          const got = outputs.map((o) => o[r]!);
          expect(got.filter((g) => g.created)).toHaveLength(1);
          expect(new Set(got.map((g) => g.id)).size).toBe(1);
        }
        const s = stores.keep(await openIn(stores.dir));
        const db = openDatabase(path.join(stores.dir, "portcullis.db"));
        expect(db.prepare("SELECT count(*) AS n FROM approvals").get()).toEqual({ n: rounds });
        db.close();
      });
    });

    onlySqlite("migration 9 turns version-8 Magic Link sessions into approvals (accepted → approved)", async () => {
      const db = openDatabase(path.join(stores.dir, "portcullis.db"));
      db.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)");
      for (const m of MIGRATIONS.filter((m) => m.version <= 8)) {
        db.exec(migrationSQL(m, "sqlite"));
        db.prepare("INSERT INTO schema_migrations VALUES (?, ?, 0)").run(m.version, m.name);
      }
      const insert = db.prepare(
        "INSERT INTO magiclink_sessions (id, link_hash, msisdn, endpoint, api_key_id, status, texts, number_match, created_at, expires_at, answered_at) VALUES (?, ?, '+46701234567', 'shop', 4, ?, '{\"title\":\"T\"}', ?, 100, 9000, ?)",
      );
      const statuses = ["pending", "accepted", "rejected", "expired", "cancelled", "failed"];
      statuses.forEach((status, i) => insert.run(`s${i}`, `h${i}`.padEnd(64, "0"), status, i === 1 ? 42 : null, status === "pending" ? null : 500));
      db.close();
      const s = stores.keep(await openIn(stores.dir));
      const got = await Promise.all(statuses.map((_, i) => s.approvals.get(`s${i}`)));
      expect(got.map((a) => a!.state)).toEqual(["pending", "approved", "rejected", "expired", "cancelled", "failed"]);
      expect(got[1]).toEqual({
        id: "s1",
        kind: "magic-link",
        user: null,
        client: "shop",
        source: null,
        msisdn: "+46701234567",
        apiKeyId: 4,
        state: "approved",
        channel: null,
        linkHash: "h1".padEnd(64, "0"),
        texts: '{"title":"T"}',
        numberMatch: 42,
        createdAt: 100,
        expiresAt: 9000,
        answeredAt: 500,
      });
      expect(await s.approvals.findByLink("h0".padEnd(64, "0"))).toMatchObject({ id: "s0", state: "pending" });
      const check = openDatabase(path.join(stores.dir, "portcullis.db"));
      expect(check.prepare("SELECT name FROM sqlite_master WHERE name = 'magiclink_sessions'").all()).toEqual([]);
      check.close();
    });
  });
}
