// The admin web UI's account repository on SQLite and on PostgreSQL: the TOTP secret sealed at rest
// and opened again, the high-water mark moved only upwards (a code is accepted once, also when two
// connections race), a taken name refused, sessions ended by a new TOTP secret, a new password or
// the account's removal, and purged when idle or past their end.

import { describe, expect, test } from "bun:test";
import type { SqliteStore } from "../../../../src/store/sqlite/store.ts";
import { adminAccountsOf } from "../../../../src/store/types.ts";
import { BACKENDS, storesPerTest, runOn } from "../helpers.ts";

for (const backend of BACKENDS) {
  describe(backend, () => {
    runOn(backend);

    const stores = storesPerTest();
    const fresh = () => stores.open();

    const secret = new Uint8Array(20).fill(9);
    const account = (name: string) => ({ name, role: "admin" as const, passwordHash: "$argon2id$test", totpSecret: secret });
    const session = (tokenHash: string, accountId: number) => ({ tokenHash, accountId, csrf: "c".repeat(43), createdAt: 0, lastSeenAt: 0, expiresAt: 10_000 });

    test("add, get, list: the secret comes back opened; a taken name is a conflict", async () => {
      const repo = adminAccountsOf(await fresh());
      const a = await repo.add(account("ops"));
      expect(a).toMatchObject({ name: "ops", role: "admin", totpLastStep: 0, lastSignInAt: null });
      expect((await repo.get("ops"))!.totpSecret).toEqual(secret);
      expect((await repo.getById(a.id))!.name).toBe("ops");
      await expect(repo.add(account("ops"))).rejects.toMatchObject({ code: "conflict" });
      await repo.add(account("alpha"));
      expect((await repo.list()).map((x) => x.name)).toEqual(["alpha", "ops"]);
    });

    test("the high-water mark only moves up: of two connections racing for one step, one wins", async () => {
      const s1 = await fresh();
      const s2 = await fresh();
      const a = await adminAccountsOf(s1).add(account("ops"));
      expect(await adminAccountsOf(s1).advanceStep(a.id, 100, 5)).toBe(true);
      expect(await adminAccountsOf(s2).advanceStep(a.id, 100, 6)).toBe(false);
      expect(await adminAccountsOf(s2).advanceStep(a.id, 99, 6)).toBe(false);
      const raced = await Promise.all(Array.from({ length: 10 }, (_, i) => adminAccountsOf(i % 2 ? s1 : s2).advanceStep(a.id, 200, 7)));
      expect(raced.filter(Boolean)).toHaveLength(1);
      expect(await adminAccountsOf(s1).get("ops")).toMatchObject({ totpLastStep: 200, lastSignInAt: 7 });
    });

    test("sessions: touched, ended by a new secret, a new password or removal, purged when idle or past their end", async () => {
      const repo = adminAccountsOf(await fresh());
      const a = await repo.add(account("ops"));
      await repo.createSession(session("s1", a.id));
      await repo.touchSession("s1", 500);
      expect(await repo.getSession("s1")).toMatchObject({ accountId: a.id, lastSeenAt: 500 });
      expect(await repo.setTotp("ops", new Uint8Array(20).fill(1))).toBe(true);
      expect(await repo.getSession("s1")).toBeUndefined();
      expect(await repo.get("ops")).toMatchObject({ totpLastStep: 0 });
      await repo.createSession(session("s2", a.id));
      expect(await repo.setPassword("ops", "$argon2id$other")).toBe(true);
      expect(await repo.getSession("s2")).toBeUndefined();
      // A password changed from a session keeps that session and ends the others.
      await repo.createSession(session("mine", a.id));
      await repo.createSession(session("other", a.id));
      expect(await repo.setPassword("ops", "$argon2id$third", { keepSession: "mine" })).toBe(true);
      expect(await repo.getSession("mine")).toBeDefined();
      expect(await repo.getSession("other")).toBeUndefined();
      await repo.deleteSession("mine");
      await repo.createSession({ ...session("idle", a.id), lastSeenAt: 100 });
      await repo.createSession({ ...session("ended", a.id), lastSeenAt: 900, expiresAt: 1_000 });
      await repo.createSession({ ...session("live", a.id), lastSeenAt: 900 });
      expect(await repo.purgeSessions(1_000, 500)).toBe(2);
      expect(await repo.getSession("live")).toBeDefined();
      expect(await repo.remove("ops")).toBe(true);
      expect(await repo.getSession("live")).toBeUndefined();
      expect(await repo.remove("ops")).toBe(false);
    });
  });
}
