// Approver devices in SQLite: single-use enrolment codes consumed with the insert, removal, push
// subscriptions, and signature records that refuse a replay from any connection (process).

import { beforeEach, describe, expect, test } from "bun:test";
import type { SqliteStore } from "../../../../src/store/sqlite/store.ts";
import { StoreError, type DevicePublicKey, type User } from "../../../../src/store/types.ts";
import { BACKENDS, newUser, openIn, storesPerTest, runOn } from "../helpers.ts";

for (const backend of BACKENDS) {
  describe(backend, () => {
    /** A test of SQLite internals (its file, its group commit, its raw handle). */
    const onlySqlite = runOn(backend);

    let store: SqliteStore;
    let alice: User;
    const stores = storesPerTest();
    beforeEach(async () => {
      store = await stores.open();
      alice = await store.users.add(newUser("alice"));
    });

    const KEY: DevicePublicKey = { kty: "EC", crv: "P-256", x: "OYqbuu6aT3GrxQchpUqZ4OmeXSeU52ItEKr6GUvyB3Y", y: "Qyx30V2wPP-H_OPJpk6fyZrTUvkOTPBUo6LhO8a5-0I" };
    const PUSH = { endpoint: "https://fcm.googleapis.com/fcm/send/x", p256dh: "p", auth: "a" };
    const T = 1_700_000_000_000;
    const dev = (id: string, push: typeof PUSH | null = null) => ({ id, name: `phone ${id}`, publicKey: KEY, push });

    async function code(hash: string, expiresAt = T + 600_000, user = alice): Promise<void> {
      await store.devices.addEnrolment({ codeHash: hash, userId: user.id, createdAt: T, expiresAt });
    }

    describe("device enrolment", () => {
      test("the live codes' hashes are listed with their expiry, newest first, without spent or expired ones", async () => {
        await store.devices.addEnrolment({ codeHash: "old", userId: alice.id, createdAt: T - 10, expiresAt: T + 600_000 });
        await code("new", T + 700_000);
        await store.devices.addEnrolment({ codeHash: "gone", userId: alice.id, createdAt: T - 20, expiresAt: T + 5 });
        await code("spent");
        expect(await store.devices.enrol("spent", T + 1, dev("d9"))).toBeDefined();
        expect(await store.devices.liveEnrolments(T + 5, 10)).toEqual([
          { codeHash: "new", expiresAt: T + 700_000 },
          { codeHash: "old", expiresAt: T + 600_000 },
        ]);
        expect((await store.devices.liveEnrolments(T + 5, 1)).map((e) => e.codeHash)).toEqual(["new"]);
      });

      test("a code creates one device for its user, with the key and subscription as given", async () => {
        await code("h1");
        const d = await store.devices.enrol("h1", T + 1000, dev("d1", PUSH));
        expect(d).toEqual({ id: "d1", userId: alice.id, name: "phone d1", publicKey: KEY, push: PUSH, createdAt: T + 1000, lastSeenAt: null, removedAt: null });
        expect(await store.devices.get("d1")).toEqual(d!);
      });

      test("single use, also between two connections racing: one device, the other gets nothing", async () => {
        await code("h1");
        const other = stores.keep(await openIn(stores.dir));
        const results = await Promise.all([store.devices.enrol("h1", T, dev("a")), other.devices.enrol("h1", T, dev("b"))]);
        expect(results.filter(Boolean).length).toBe(1);
        expect(await store.devices.enrol("h1", T, dev("c"))).toBeUndefined();
        expect((await store.devices.list()).length).toBe(1);
      });

      test("an expired code creates nothing (at the expiry instant too), an unknown one neither", async () => {
        await code("h1", T + 600_000);
        expect(await store.devices.enrol("h1", T + 600_000, dev("a"))).toBeUndefined();
        expect(await store.devices.enrol("nope", T, dev("b"))).toBeUndefined();
        expect(await store.devices.list()).toEqual([]);
        expect(await store.devices.purgeExpired(T + 600_000)).toBe(1);
      });

      test("a device ID that exists fails with conflict and leaves the code usable", async () => {
        await code("h1");
        await code("h2");
        await store.devices.enrol("h1", T, dev("same"));
        await expect(store.devices.enrol("h2", T, dev("same"))).rejects.toEqual(new StoreError("conflict", "device ID already exists"));
        expect(await store.devices.enrol("h2", T, dev("other"))).toBeDefined();
      });

      test("removing the user removes their devices and codes", async () => {
        await code("h1");
        await code("h2");
        await store.devices.enrol("h1", T, dev("d1"));
        await store.users.remove("alice");
        expect(await store.devices.get("d1")).toBeUndefined();
        expect(await store.devices.enrol("h2", T, dev("d2"))).toBeUndefined();
      });
    });

    describe("device removal and push", () => {
      test("remove keeps the row (removed), drops the subscription, counts what the user has left; twice is undefined", async () => {
        for (const h of ["h1", "h2"]) await code(h);
        await store.devices.enrol("h1", T, dev("d1", PUSH));
        await store.devices.enrol("h2", T, dev("d2", PUSH));
        const first = await store.devices.remove("d1", T + 5);
        expect(first!.remaining).toBe(1);
        expect(first!.device).toMatchObject({ id: "d1", removedAt: T + 5, push: null });
        expect(await store.devices.remove("d1", T + 6)).toBeUndefined();
        expect((await store.devices.remove("d2", T + 7))!.remaining).toBe(0);
        expect(await store.devices.list({ userId: alice.id })).toEqual([]);
        expect((await store.devices.list({ userId: alice.id, includeRemoved: true })).map((d) => d.id)).toEqual(["d1", "d2"]);
        // A removed device cannot get a subscription back.
        expect(await store.devices.setPush("d1", PUSH)).toBe(false);
      });

      test("setPush replaces and clears; dropPush only drops the endpoint it was told about", async () => {
        await code("h1");
        await store.devices.enrol("h1", T, dev("d1"));
        expect(await store.devices.setPush("d1", PUSH)).toBe(true);
        expect((await store.devices.get("d1"))!.push).toEqual(PUSH);
        const newer = { ...PUSH, endpoint: "https://fcm.googleapis.com/fcm/send/y" };
        await store.devices.setPush("d1", newer);
        expect(await store.devices.dropPush("d1", PUSH.endpoint)).toBe(false);
        expect((await store.devices.get("d1"))!.push).toEqual(newer);
        expect(await store.devices.dropPush("d1", newer.endpoint)).toBe(true);
        expect((await store.devices.get("d1"))!.push).toBeNull();
        expect(await store.devices.setPush("unknown", PUSH)).toBe(false);
      });
    });

    describe("signature replay records", () => {
      test("each signature is accepted once, from any connection; records go when their time has left the window", async () => {
        const other = stores.keep(await openIn(stores.dir));
        expect(await store.devices.useSignature("d1", "r1", T + 61_000)).toBe(true);
        expect(await other.devices.useSignature("d1", "r1", T + 61_000)).toBe(false);
        expect(await store.devices.useSignature("d2", "r1", T + 61_000)).toBe(true);
        expect(await store.devices.purgeExpired(T + 61_000)).toBe(0);
        expect(await store.devices.purgeExpired(T + 61_001)).toBe(2);
        expect(await store.devices.useSignature("d1", "r1", T + 200_000)).toBe(true);
      });
    });
  });
}
