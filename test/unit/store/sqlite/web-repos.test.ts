// The web surface's repositories (migration 4): API keys, Magic Link approvals (single-use answer,
// also across two connections), endpoint profiles, and migration of a populated version-3 database.

import { describe, expect, test } from "bun:test";
import * as path from "node:path";
import { openDatabase } from "../../../../src/runtime/sqlite.ts";
import { MIGRATIONS, migrationSQL } from "../../../../src/store/migrations.ts";
import type { SqliteStore } from "../../../../src/store/sqlite/store.ts";
import { defaultEndpointProfile, StoreError, type Approval } from "../../../../src/store/types.ts";
import { BACKENDS, openIn, storesPerTest, runOn } from "../helpers.ts";

for (const backend of BACKENDS) {
  describe(backend, () => {
    /** A test of SQLite internals (its file, its group commit, its raw handle). */
    const onlySqlite = runOn(backend);

    const stores = storesPerTest({ now: () => 1_000 });
    const fresh = () => stores.open();

    const HASH_A = "a".repeat(64);
    const HASH_B = "b".repeat(64);

    function session(id: string, patch: Partial<Approval> = {}): Approval {
      return {
        id,
        kind: "magic-link",
        user: null,
        client: "default",
        source: null,
        msisdn: "+46701234567",
        apiKeyId: 1,
        state: "pending",
        channel: null,
        linkHash: `link-${id}`.padEnd(64, "0"),
        texts: '{"title_text":"Sign in"}',
        numberMatch: null,
        createdAt: 100,
        expiresAt: 10_000,
        answeredAt: null,
        ...patch,
      };
    }

    describe("api keys", () => {
      test("add returns the whole record; find by hash and by name; the name is unique", async () => {
        const s = await fresh();
        const k = await s.apiKeys.add({ name: "web", role: "magiclink", endpoint: null, hash: HASH_A, prefix: "pcl_abcdef", expiresAt: 5_000 });
        expect(k).toEqual({ id: k.id, name: "web", role: "magiclink", endpoint: null, hash: HASH_A, prefix: "pcl_abcdef", expiresAt: 5_000, disabled: false, createdAt: 1_000, lastUsedAt: null });
        expect(await s.apiKeys.findByHash(HASH_A)).toEqual(k);
        expect(await s.apiKeys.findByName("web")).toEqual(k);
        expect(await s.apiKeys.findByHash(HASH_B)).toBeUndefined();
        const dup = s.apiKeys.add({ name: "web", role: "admin", endpoint: null, hash: HASH_B, prefix: "pcl_x", expiresAt: null });
        await expect(dup).rejects.toBeInstanceOf(StoreError);
        await dup.catch((e: StoreError) => expect(e.code).toBe("conflict"));
      });

      test("disable, touch, list, remove", async () => {
        const s = await fresh();
        await s.apiKeys.add({ name: "ops", role: "operator", endpoint: null, hash: HASH_A, prefix: "pcl_1", expiresAt: null });
        const b = await s.apiKeys.add({ name: "adm", role: "admin", endpoint: null, hash: HASH_B, prefix: "pcl_2", expiresAt: null });
        expect(await s.apiKeys.setDisabled("ops", true)).toBe(true);
        expect(await s.apiKeys.setDisabled("nobody", true)).toBe(false);
        await s.apiKeys.touch(b.id, 4_242);
        expect((await s.apiKeys.list()).map((k) => [k.name, k.disabled, k.lastUsedAt])).toEqual([
          ["adm", false, 4_242],
          ["ops", true, null],
        ]);
        expect(await s.apiKeys.remove("ops")).toBe(true);
        expect(await s.apiKeys.remove("ops")).toBe(false);
        expect((await s.apiKeys.list()).map((k) => k.name)).toEqual(["adm"]);
      });

      test("the table refuses an unknown role", async () => {
        const s = await fresh();
        await expect(s.apiKeys.add({ name: "x", role: "superuser" as never, endpoint: null, hash: HASH_A, prefix: "p", expiresAt: null })).rejects.toThrow();
      });
    });

    describe("magic link approvals", () => {
      test("create, get, findByLink round-trip the whole record", async () => {
        const s = await fresh();
        const m = session("s1", { numberMatch: 42 });
        await s.approvals.create(m);
        expect(await s.approvals.get("s1")).toEqual(m);
        expect(await s.approvals.findByLink(m.linkHash!)).toEqual(m);
        expect(await s.approvals.get("nope")).toBeUndefined();
        await expect(s.approvals.create(session("s2", { linkHash: m.linkHash }))).rejects.toMatchObject({ code: "conflict" });
      });

      test.each([
        ["pending and live: answered", "pending", 5_000, true],
        ["already answered", "approved", 5_000, false],
        ["at its expiry instant", "pending", 10_000, false],
        ["after expiry", "pending", 10_001, false],
      ] as const)("answer when %s", async (_what, state, now, expected) => {
        const s = await fresh();
        await s.approvals.create(session("s1", { state }));
        expect(await s.approvals.answer("s1", "rejected", now)).toBe(expected);
        const after = await s.approvals.get("s1");
        expect(after!.state).toBe(expected ? "rejected" : state);
        expect(after!.answeredAt).toBe(expected ? now : null);
      });

      test("of 50 concurrent answers from two connections exactly one wins", async () => {
        const a = await fresh();
        const b = await fresh();
        await a.approvals.create(session("race"));
        const results = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).approvals.answer("race", i % 3 ? "approved" : "rejected", 5_000)));
        expect(results.filter(Boolean).length).toBe(1);
        const winner = results.indexOf(true);
        expect((await b.approvals.get("race"))!.state).toBe(winner % 3 ? "approved" : "rejected");
      });

      test("markExpired closes only a pending approval that has expired; purge deletes old rows", async () => {
        const s = await fresh();
        await s.approvals.create(session("old", { expiresAt: 500 }));
        await s.approvals.create(session("live", { expiresAt: 10_000 }));
        expect(await s.approvals.markExpired("live", 5_000)).toBe(false);
        expect(await s.approvals.markExpired("old", 5_000)).toBe(true);
        expect(await s.approvals.markExpired("old", 5_000)).toBe(false);
        expect((await s.approvals.get("old"))!.state).toBe("expired");
        expect(await s.approvals.purgeExpired(600)).toBe(1);
        expect(await s.approvals.get("old")).toBeUndefined();
        expect(await s.approvals.get("live")).toBeDefined();
      });
    });

    describe("endpoint profiles", () => {
      test("default exists before anything is stored, can be edited, cannot be removed", async () => {
        const s = await fresh();
        expect(await s.endpoints.get("default")).toEqual(defaultEndpointProfile());
        expect(await s.endpoints.list()).toEqual([defaultEndpointProfile()]);
        const edited = { ...defaultEndpointProfile(), touchTimeoutS: 60, texts: { ...defaultEndpointProfile().texts, title_text: "ACME sign-in" } };
        await s.endpoints.put(edited);
        expect(await s.endpoints.get("default")).toEqual(edited);
        await expect(s.endpoints.remove("default")).rejects.toMatchObject({ code: "conflict" });
      });

      test("other profiles: put, get, list (default first), remove", async () => {
        const s = await fresh();
        const vpn = { ...defaultEndpointProfile("vpn"), requireKnownUser: true, allowCustomSmsText: false, channels: ["sms", "email"] };
        await s.endpoints.put(vpn);
        await s.endpoints.put(defaultEndpointProfile("aaa"));
        expect(await s.endpoints.get("vpn")).toEqual(vpn);
        expect((await s.endpoints.list()).map((p) => p.name)).toEqual(["default", "aaa", "vpn"]);
        expect(await s.endpoints.remove("vpn")).toBe(true);
        expect(await s.endpoints.remove("vpn")).toBe(false);
        expect(await s.endpoints.get("vpn")).toBeUndefined();
      });

      onlySqlite("a stored document missing newer keys gets the defaults for them", async () => {
        const s = await fresh();
        const db = openDatabase(path.join(stores.dir, "portcullis.db"));
        db.prepare("INSERT INTO endpoints (name, settings, updated_at) VALUES ('legacy', ?, 0)").run(JSON.stringify({ touchTimeoutS: 30, texts: { title_text: "Old" } }));
        db.close();
        const p = await s.endpoints.get("legacy");
        expect(p).toEqual({ ...defaultEndpointProfile("legacy"), touchTimeoutS: 30, texts: { ...defaultEndpointProfile().texts, title_text: "Old" } });
      });
    });

    onlySqlite("a populated version-3 database migrates to version 4 keeping its data", async () => {
      const file = path.join(stores.dir, "portcullis.db");
      const db = openDatabase(file);
      db.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)");
      for (const m of MIGRATIONS.slice(0, 3)) {
        db.exec(migrationSQL(m, "sqlite"));
        db.prepare("INSERT INTO schema_migrations VALUES (?, ?, 0)").run(m.version, m.name);
      }
      db.prepare("INSERT INTO users (id, username, type, created_at, directory, external_id) VALUES (3, 'alice', 'totp', 11, NULL, NULL), (4, 'bob', NULL, 12, 'corp', 'g-1')").run();
      db.close();
      const s = stores.keep(await openIn(stores.dir, { env: { PORTCULLIS_KEY: Buffer.alloc(32, 3).toString("base64") } }));
      expect((await s.users.list()).map((u) => [u.id, u.username, u.directory, u.externalId])).toEqual([
        [3, "alice", null, null],
        [4, "bob", "corp", "g-1"],
      ]);
      expect(await s.apiKeys.list()).toEqual([]);
      await s.apiKeys.add({ name: "k", role: "root", endpoint: null, hash: HASH_A, prefix: "p", expiresAt: null });
      const check = openDatabase(file);
      expect(check.prepare("SELECT version, name FROM schema_migrations WHERE version = 4").get()).toEqual({ version: 4, name: "web" });
      check.close();
    });
  });
}
