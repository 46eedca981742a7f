// The SQLite admin-event repository: recorded in the change's transaction, claimed once, in order, purged.
import { beforeEach, describe, expect, test } from "bun:test";
import type { SqliteStore } from "../../../../src/store/sqlite/store.ts";
import { StoreError, type NewAdminEventRecord } from "../../../../src/store/types.ts";
import { BACKENDS, newToken, newUser, openIn, storesPerTest, runOn } from "../helpers.ts";

for (const backend of BACKENDS) {
  describe(backend, () => {
    /** A test of SQLite internals (its file, its group commit, its raw handle). */
    const onlySqlite = runOn(backend);

    let store: SqliteStore;
    const T0 = 1_700_000_000_000;

    const stores = storesPerTest();
    beforeEach(async () => {
      store = await stores.open();
    });

    const rec = (type: string, fields: Record<string, unknown>, at = T0): NewAdminEventRecord => ({ at, actor: "cli:alice", type, fields });

    describe("recordWith", () => {
      test("commits the change and its record together", async () => {
        const user = await store.adminEvents.recordWith(
          () => store.users.add(newUser("bob")),
          (u) => rec("admin.user_added", { user: u.username }),
        );
        expect(user.username).toBe("bob");
        expect(await store.adminEvents.claimPending(10, T0 + 1)).toEqual([{ id: 1, at: T0, actor: "cli:alice", type: "admin.user_added", fields: { user: "bob" } }]);
      });

      test("a failing change records nothing and changes nothing", async () => {
        await store.users.add(newUser("bob"));
        const err = await store.adminEvents
          .recordWith(
            async () => {
              await store.tokens.add(newToken("T1"));
              return store.users.add(newUser("bob")); // conflict
            },
            () => rec("admin.user_added", { user: "bob" }),
          )
          .catch((e: unknown) => e);
        expect(err).toBeInstanceOf(StoreError);
        expect((err as StoreError).code).toBe("conflict");
        expect(await store.tokens.findBySerial("T1")).toBeUndefined();
        expect(await store.adminEvents.claimPending(10, T0)).toEqual([]);
      });

      test("a failing describe rolls the change back", async () => {
        const err = await store.adminEvents
          .recordWith(
            () => store.users.add(newUser("carol")),
            () => {
              throw new TypeError("boom");
            },
          )
          .catch((e: unknown) => e);
        expect(err).toBeInstanceOf(TypeError);
        expect(await store.users.findByName("carol")).toBeUndefined();
      });

      test("describe returning null records nothing but keeps the change", async () => {
        const removed = await store.adminEvents.recordWith(
          () => store.users.remove("nobody"),
          (ok) => (ok ? rec("admin.user_removed", { user: "nobody" }) : null),
        );
        expect(removed).toBe(false);
        await store.adminEvents.recordWith(() => store.users.add(newUser("dave")), () => null);
        expect((await store.users.findByName("dave"))?.username).toBe("dave");
        expect(await store.adminEvents.claimPending(10, T0)).toEqual([]);
      });

      test("a conflict caught inside the change (a repository savepoint) leaves the outer transaction usable", async () => {
        await store.tokens.add(newToken("DUP"));
        const token = await store.adminEvents.recordWith(
          async () => {
            try {
              return await store.tokens.add(newToken("DUP"));
            } catch {
              return store.tokens.add(newToken("FRESH"));
            }
          },
          (t) => rec("admin.token_enrolled", { token: t.id }),
        );
        expect(token.serial).toBe("FRESH");
        expect((await store.adminEvents.claimPending(10, T0)).map((r) => r.fields)).toEqual([{ token: token.id }]);
      });

      test("another connection sees the record only with the change (one commit)", async () => {
        const other = await openIn(stores.dir);
        try {
          await store.adminEvents.recordWith(() => store.clients.add({ name: "fw", address: "192.0.2.1/32", secret: "s3cret-s3cret-s3cret", firstFactor: "password", otpMode: "challenge", requireMessageAuthenticator: true, allowPasswordOnly: false, directories: null }), () => rec("admin.client_added", { client: "fw" }));
          expect((await other.clients.list()).map((c) => c.name)).toEqual(["fw"]);
          expect((await other.adminEvents.claimPending(10, T0)).map((r) => r.type)).toEqual(["admin.client_added"]);
        } finally {
          await other.close();
        }
      });
    });

    describe("claimPending", () => {
      test("oldest first, at most `limit`, each record once", async () => {
        for (let i = 1; i <= 5; i++) await store.adminEvents.append(rec("admin.token_removed", { token: i }, T0 + i));
        const first = await store.adminEvents.claimPending(3, T0 + 10);
        const second = await store.adminEvents.claimPending(3, T0 + 10);
        expect(first.map((r) => r.fields.token)).toEqual([1, 2, 3]);
        expect(second.map((r) => r.fields.token)).toEqual([4, 5]);
        expect(await store.adminEvents.claimPending(3, T0 + 10)).toEqual([]);
      });

      test("two connections never claim the same record", async () => {
        const other = await openIn(stores.dir);
        try {
          for (let i = 1; i <= 6; i++) await store.adminEvents.append(rec("admin.token_removed", { token: i }));
          const a = await store.adminEvents.claimPending(4, T0);
          const b = await other.adminEvents.claimPending(4, T0);
          expect([...a, ...b].map((r) => r.fields.token)).toEqual([1, 2, 3, 4, 5, 6]);
        } finally {
          await other.close();
        }
      });

      onlySqlite("a stored fields value that is not a JSON object reads as {}", async () => {
        const id = await store.adminEvents.append(rec("admin.user_added", { user: "x" }));
        (store as unknown as { db: { exec(sql: string): void } }).db.exec(`UPDATE admin_events SET fields = '[1,2]' WHERE id = ${id}`);
        expect((await store.adminEvents.claimPending(1, T0))[0]!.fields).toEqual({});
      });
    });

    describe("purgeBefore", () => {
      test("deletes old emitted records only; unemitted ones wait for a server", async () => {
        await store.adminEvents.append(rec("admin.user_added", { user: "old-emitted" }, T0));
        await store.adminEvents.claimPending(10, T0 + 1);
        await store.adminEvents.append(rec("admin.user_added", { user: "old-pending" }, T0));
        await store.adminEvents.append(rec("admin.user_added", { user: "new" }, T0 + 1000));
        expect(await store.adminEvents.purgeBefore(T0 + 500)).toBe(1);
        expect((await store.adminEvents.claimPending(10, T0 + 2000)).map((r) => r.fields.user)).toEqual(["old-pending", "new"]);
        expect(await store.adminEvents.purgeBefore(T0 + 500)).toBe(1);
        expect(await store.adminEvents.purgeBefore(T0 + 5000)).toBe(1);
      });
    });
  });
}
