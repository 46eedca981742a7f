// The SMS code repository (migration 10): every transition of a code (stored, replaced, consumed once,
// failed until invalidated, expired, removed, purged), also with two connections and four processes.

import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import type { SqliteStore } from "../../../../src/store/sqlite/store.ts";
import type { SmsCode } from "../../../../src/store/types.ts";
import { BACKENDS, openIn, storesPerTest, runOn } from "../helpers.ts";

for (const backend of BACKENDS) {
  describe(backend, () => {
    /** A test of SQLite internals (its file, its group commit, its raw handle). */
    const onlySqlite = runOn(backend);

    const stores = storesPerTest();
    const fresh = () => stores.open();

    const H1 = "1".repeat(64);
    const H2 = "2".repeat(64);

    function code(state: string, patch: Partial<SmsCode> = {}): SmsCode {
      return { state, client: "vpn", user: "alice", hash: H1, createdAt: 100, expiresAt: 10_000, failures: 0, ...patch };
    }

    describe("sms codes", () => {
      test("put, find (only while unexpired), and a second put for the State replaces the code", async () => {
        const s = await fresh();
        await s.smsCodes.put(code("st"));
        expect(await s.smsCodes.find("st", 9_999)).toEqual(code("st"));
        expect(await s.smsCodes.find("st", 10_000)).toBeUndefined();
        expect(await s.smsCodes.find("other", 0)).toBeUndefined();
        await s.smsCodes.put(code("st", { hash: H2, createdAt: 200, expiresAt: 20_000 }));
        expect(await s.smsCodes.find("st", 0)).toEqual(code("st", { hash: H2, createdAt: 200, expiresAt: 20_000 }));
      });

      test("consume: once, only with the hash it holds, only before expiry", async () => {
        const s = await fresh();
        await s.smsCodes.put(code("st"));
        expect(await s.smsCodes.consume("st", H2, 5_000)).toBe(false);
        expect(await s.smsCodes.consume("st", H1, 10_000)).toBe(false);
        expect(await s.smsCodes.consume("st", H1, 5_000)).toBe(true);
        expect(await s.smsCodes.consume("st", H1, 5_000)).toBe(false);
        expect(await s.smsCodes.find("st", 0)).toBeUndefined();
      });

      test("a code replaced by a resend is not consumed with the old hash", async () => {
        const s = await fresh();
        await s.smsCodes.put(code("st"));
        await s.smsCodes.put(code("st", { hash: H2 }));
        expect(await s.smsCodes.consume("st", H1, 5_000)).toBe(false);
        expect(await s.smsCodes.consume("st", H2, 5_000)).toBe(true);
      });

      test("fail counts wrong codes; the one that reaches the limit deletes the code", async () => {
        const s = await fresh();
        await s.smsCodes.put(code("st"));
        expect(await s.smsCodes.fail("st", H1, 3)).toBe(1);
        expect(await s.smsCodes.fail("st", H1, 3)).toBe(2);
        expect((await s.smsCodes.find("st", 0))!.failures).toBe(2);
        expect(await s.smsCodes.fail("st", H1, 3)).toBe(3);
        expect(await s.smsCodes.find("st", 0)).toBeUndefined();
        expect(await s.smsCodes.consume("st", H1, 5_000)).toBe(false);
        expect(await s.smsCodes.fail("st", H1, 3)).toBeUndefined();
      });

      test("fail against a replaced code (stale hash) counts nothing", async () => {
        const s = await fresh();
        await s.smsCodes.put(code("st", { hash: H2 }));
        expect(await s.smsCodes.fail("st", H1, 3)).toBeUndefined();
        expect((await s.smsCodes.find("st", 0))!.failures).toBe(0);
      });

      test("remove and purgeExpired", async () => {
        const s = await fresh();
        await s.smsCodes.put(code("a", { expiresAt: 500 }));
        await s.smsCodes.put(code("b", { expiresAt: 5_000 }));
        await s.smsCodes.put(code("c"));
        expect(await s.smsCodes.remove("c")).toBe(true);
        expect(await s.smsCodes.remove("c")).toBe(false);
        expect(await s.smsCodes.purgeExpired(500)).toBe(1);
        expect(await s.smsCodes.find("b", 0)).toBeDefined();
      });

      onlySqlite("only the hash is stored, never a code", async () => {
        const s = await fresh();
        await s.smsCodes.put(code("st"));
        const db = new (await import("bun:sqlite")).Database(path.join(stores.dir, "portcullis.db"));
        expect(db.prepare("SELECT * FROM sms_codes").all()).toEqual([{ state: "st", client: "vpn", username: "alice", hash: H1, created_at: 100, expires_at: 10_000, failures: 0 }]);
        db.close();
      });

      test("two connections consuming one code: exactly one wins", async () => {
        const a = await fresh();
        const b = await fresh();
        await a.smsCodes.put(code("st"));
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).smsCodes.consume("st", H1, 5_000)));
        expect(results.filter(Boolean)).toHaveLength(1);
      });

      onlySqlite("four processes racing to consume the same codes: each code is accepted exactly once", async () => {
        const codes = 300;
        const s = await openIn(stores.dir);
        for (let i = 0; i < codes; i++) await s.smsCodes.put(code(`st${i}`, { expiresAt: Number.MAX_SAFE_INTEGER }));
        await s.close();
        const worker = path.join(import.meta.dirname, "sms-code-worker.ts");
        const children = Array.from({ length: 4 }, () => Bun.spawn([process.execPath, worker, stores.dir, String(codes), H1], { stdout: "pipe", stderr: "inherit" }));
        const until = Date.now() + 30_000;
        while (fs.readdirSync(stores.dir).filter((f) => f.startsWith("ready-")).length < children.length && Date.now() < until) await Bun.sleep(5);
        fs.writeFileSync(path.join(stores.dir, "go"), "");
        const won = await Promise.all(
          children.map(async (child) => {
            const out = await new Response(child.stdout).text();
            expect(await child.exited).toBe(0);
            return JSON.parse(out) as number;
          }),
        );
        expect(won.reduce((n, w) => n + w, 0)).toBe(codes);
      });
    });
  });
}
