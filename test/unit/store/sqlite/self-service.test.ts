// The self-service repository, on SQLite and on PostgreSQL: single-use links, sessions with idle and absolute ends,
// and the pending TOTP seed sealed to its session's row.

import { beforeEach, describe, expect, test } from "bun:test";
import type { SqliteStore } from "../../../../src/store/sqlite/store.ts";
import { BACKENDS, newUser, storesPerTest, runOn } from "../helpers.ts";

for (const backend of BACKENDS) {
  describe(backend, () => {
    runOn(backend);

    let store: SqliteStore;
    let userId: number;

    const stores = storesPerTest();
    beforeEach(async () => {
      store = await stores.open();
      userId = (await store.users.add(newUser("alice"))).id;
    });

    test("a link is consumed once, and not after its expiry", async () => {
      await store.selfService.addLink({ codeHash: "a".repeat(64), userId, createdAt: 1000, expiresAt: 5000 });
      await store.selfService.addLink({ codeHash: "b".repeat(64), userId, createdAt: 1000, expiresAt: 5000 });
      expect(await store.selfService.consumeLink("a".repeat(64), 2000)).toBe(userId);
      expect(await store.selfService.consumeLink("a".repeat(64), 2000)).toBeUndefined();
      expect(await store.selfService.consumeLink("b".repeat(64), 5000)).toBeUndefined();
      expect(await store.selfService.consumeLink("c".repeat(64), 2000)).toBeUndefined();
    });

    test("a session ends when idle, at its absolute end, or when removed", async () => {
      const s = { userId, method: "password_totp" as const, createdAt: 0, lastSeenAt: 0, expiresAt: 10_000 };
      await store.selfService.addSession({ ...s, idHash: "1" });
      await store.selfService.addSession({ ...s, idHash: "2" });
      await store.selfService.addSession({ ...s, idHash: "3" });
      // Touched within the idle limit, it moves on; left alone longer, it is gone.
      expect((await store.selfService.touchSession("1", 900, 1000))?.lastSeenAt).toBe(900);
      expect((await store.selfService.touchSession("1", 1800, 1000))?.userId).toBe(userId);
      expect(await store.selfService.touchSession("2", 1000, 1000)).toBeUndefined();
      expect(await store.selfService.touchSession("2", 0, 1000)).toBeUndefined();
      expect(await store.selfService.touchSession("1", 10_000, 100_000)).toBeUndefined();
      expect(await store.selfService.removeSession("3")).toBe(true);
      expect(await store.selfService.removeSession("3")).toBe(false);
    });

    test("the pending seed is sealed at rest, opened with its session, and dropped at its expiry", async () => {
      await store.selfService.addSession({ idHash: "s", userId, method: "link", createdAt: 0, lastSeenAt: 0, expiresAt: 100_000 });
      const secret = new Uint8Array(20).fill(7);
      await store.selfService.setPending("s", { secret, expiresAt: 500 });
      const sql = "SELECT pending_secret FROM self_service_sessions";
      const raw =
        backend === "sqlite"
          ? (store as unknown as { db: { prepare(sql: string): { get(): { pending_secret: string } } } }).db.prepare(sql).get()
          : (await (store as unknown as { db: { query(sql: string, params: unknown[]): Promise<{ rows: Array<{ pending_secret: string }> }> } }).db.query(sql, [])).rows[0]!;
      expect(raw.pending_secret.startsWith("v1.")).toBe(true);
      expect(raw.pending_secret).not.toContain(Buffer.from(secret).toString("base64"));
      expect((await store.selfService.touchSession("s", 100, 1000))?.pending?.secret).toEqual(secret);
      expect((await store.selfService.touchSession("s", 600, 1000))?.pending).toBeNull();
      await store.selfService.setPending("s", { secret, expiresAt: 5000 });
      await store.selfService.setPending("s", null);
      expect((await store.selfService.touchSession("s", 700, 1000))?.pending).toBeNull();
    });

    test("purgeExpired removes expired links and idle or ended sessions", async () => {
      await store.selfService.addLink({ codeHash: "x", userId, createdAt: 0, expiresAt: 100 });
      await store.selfService.addLink({ codeHash: "y", userId, createdAt: 0, expiresAt: 10_000 });
      await store.selfService.addSession({ idHash: "old", userId, method: "link", createdAt: 0, lastSeenAt: 0, expiresAt: 10_000 });
      await store.selfService.addSession({ idHash: "new", userId, method: "link", createdAt: 0, lastSeenAt: 900, expiresAt: 10_000 });
      expect(await store.selfService.purgeExpired(1000, 500)).toBe(2);
      expect(await store.selfService.consumeLink("y", 1000)).toBe(userId);
      expect(await store.selfService.touchSession("new", 1000, 500)).toBeDefined();
    });

    test("removing the user removes their links and sessions", async () => {
      await store.selfService.addLink({ codeHash: "z", userId, createdAt: 0, expiresAt: 10_000 });
      await store.selfService.addSession({ idHash: "q", userId, method: "link", createdAt: 0, lastSeenAt: 0, expiresAt: 10_000 });
      await store.users.remove("alice");
      expect(await store.selfService.consumeLink("z", 1)).toBeUndefined();
      expect(await store.selfService.touchSession("q", 1, 1000)).toBeUndefined();
    });
  });
}
