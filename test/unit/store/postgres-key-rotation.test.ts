// Key rotation on PostgreSQL: every sealed column re-sealed under the new key in one transaction,
// while another node keeps reading; a node sharing the key file follows, a node with its own copy
// of the old file refuses with key_mismatch until the new file is copied to it; two rotations at
// once serialise.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { openPostgres, type PgDatabase } from "../../../src/runtime/postgres.ts";
import { sealedKeyId } from "../../../src/store/seal.ts";
import { rotateKey } from "../../../src/store/open.ts";
import { SEALED_COLUMNS } from "../../../src/store/postgres/key-rotation.ts";
import { openPgStore, type PgStore } from "../../../src/store/postgres/store.ts";
import { POSTGRES_SKIP_REASON } from "../../integration/helpers/postgres.ts";
import { cleanup, newClient, newToken, newUser, postgresServer, tempDir, storeError } from "./helpers.ts";

/** The key ID of every sealed value in the database, by table. */
async function sealedKeyIds(db: PgDatabase): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const c of SEALED_COLUMNS) {
    const { rows } = await db.query<{ v: string }>(`SELECT ${c.column} AS v FROM ${c.table} WHERE ${c.column} IS NOT NULL ORDER BY ${c.rowKey}`);
    out[c.table] = rows.map((r) => sealedKeyId(r.v) ?? "?");
  }
  return out;
}

const allOf = (ids: Record<string, string[]>) => Object.values(ids).flat();

describe.skipIf(POSTGRES_SKIP_REASON !== undefined)("key rotation on PostgreSQL", () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) cleanup(d);
  });
  let seq = 0;

  /** A fresh database and data directory holding a user, a client, two tokens, a server secret, an admin account and a pending self-service seed. */
  async function seeded(): Promise<{ url: string; dir: string; a: PgStore }> {
    const url = await (await postgresServer()).createDatabase();
    const dir = tempDir();
    dirs.push(dir);
    const a = await openPgStore({ url, dataDir: dir, env: {}, poolSize: 4 });
    const u = await a.users.add(newUser(`alice${++seq}`));
    await a.clients.add(newClient("vpn"));
    await a.tokens.add(newToken("T1", { userId: u.id }));
    await a.tokens.add(newToken("T2", { userId: u.id }));
    await a.serverSecrets.get("magiclink", () => new Uint8Array(32).fill(7));
    await a.adminAccounts.add({ name: "root", role: "root", passwordHash: "$argon2id$x", totpSecret: new Uint8Array(20).fill(3) });
    await a.selfService.addSession({ idHash: "s1", userId: u.id, method: "link", createdAt: Date.now(), lastSeenAt: Date.now(), expiresAt: Date.now() + 3_600_000 });
    await a.selfService.setPending("s1", { secret: new Uint8Array(20).fill(9), expiresAt: Date.now() + 600_000 });
    return { url, dir, a };
  }

  beforeAll(async () => {
    await postgresServer();
  }, 120_000);

  test("re-seals every sealed column under the new key while another node keeps reading; a node sharing the key file follows", async () => {
    const { url, dir, a } = await seeded();
    const b = await openPgStore({ url, dataDir: dir, env: {}, poolSize: 4 });
    const raw = openPostgres(url, { max: 1 });
    try {
      const oldId = a.keyring.current.id;
      expect(new Set(allOf(await sealedKeyIds(raw)))).toEqual(new Set([oldId]));

      // Node B reads (as a login does) throughout the rotation: every read succeeds.
      let rotating = true;
      let reads = 0;
      const reader = (async () => {
        for (let i = 0; i < 2_000 && (rotating || i < 5); i++) {
          expect((await b.tokens.findBySerial("T1"))!.secret).toEqual(newToken("T1").secret);
          expect((await b.clients.findByName("vpn"))!.secret).toBe(newClient("vpn").secret);
          reads++;
        }
      })();
      const { keyId, resealed } = await rotateKey(a).finally(() => {
        rotating = false;
      });
      await reader;
      expect(reads).toBeGreaterThan(0);
      expect(keyId).not.toBe(oldId);
      expect(resealed).toBe(6);
      expect(a.keyring.ids()).toEqual([oldId, keyId]);

      const after = await sealedKeyIds(raw);
      expect(Object.keys(after).sort()).toEqual(SEALED_COLUMNS.map((c) => c.table).sort());
      for (const ids of Object.values(after)) expect(ids.length).toBeGreaterThan(0);
      expect(new Set(allOf(after))).toEqual(new Set([keyId]));
      const { rows } = await raw.query<{ key_id: string }>("SELECT key_id FROM seal_keys ORDER BY created_at, key_id");
      expect(rows.map((r) => r.key_id).sort()).toEqual([oldId, keyId].sort());

      // Node B meets the new key ID, re-reads the shared key file and carries on.
      expect((await b.tokens.findBySerial("T2"))!.secret).toEqual(newToken("T2").secret);
      expect(b.keyring.current.id).toBe(keyId);
      expect((await b.adminAccounts.get("root"))!.totpSecret).toEqual(new Uint8Array(20).fill(3));
      expect((await b.selfService.touchSession("s1", Date.now(), 3_600_000))!.pending!.secret).toEqual(new Uint8Array(20).fill(9));
      expect(await b.serverSecrets.get("magiclink", () => new Uint8Array(32))).toEqual(new Uint8Array(32).fill(7));
      // A login's write still lands, and new secrets are sealed under the new key.
      const t1 = (await a.tokens.findBySerial("T1"))!;
      expect(await b.tokens.advanceTOTP(t1.id, 10, 0)).toBe(true);
      await b.tokens.add(newToken("T3"));
      expect(sealedKeyId((await raw.query<{ secret: string }>("SELECT secret FROM tokens WHERE serial = 'T3'")).rows[0]!.secret)).toBe(keyId);
      // A store opened afterwards on the same key file opens everything.
      const c = await openPgStore({ url, dataDir: dir, env: {}, poolSize: 2 });
      expect((await c.tokens.list()).length).toBe(3);
      await c.close();
    } finally {
      await raw.close();
      await a.close();
      await b.close();
    }
  }, 60_000);

  test("a node with its own copy of the old key file refuses with key_mismatch until the new file is copied to it", async () => {
    const { url, dir, a } = await seeded();
    const other = tempDir();
    dirs.push(other);
    fs.copyFileSync(path.join(dir, "portcullis.key"), path.join(other, "portcullis.key"));
    let clock = 1_000_000;
    const c = await openPgStore({ url, dataDir: other, env: {}, poolSize: 2, now: () => clock });
    try {
      expect((await c.tokens.findBySerial("T1"))!.secret).toEqual(newToken("T1").secret);
      const { keyId } = await rotateKey(a);
      const err = await storeError(c.tokens.findBySerial("T1"));
      expect(err.code).toBe("key_mismatch");
      expect(err.message).toContain(keyId);
      // Opening a store with only the old key is refused too.
      expect((await storeError(openPgStore({ url, dataDir: other, env: {}, poolSize: 2 }))).code).toBe("key_mismatch");
      // Once the new key file is there, the running node re-reads it (at most once a second) without a restart.
      fs.copyFileSync(path.join(dir, "portcullis.key"), path.join(other, "portcullis.key"));
      clock += 2_000;
      expect((await c.tokens.findBySerial("T1"))!.secret).toEqual(newToken("T1").secret);
      expect(c.keyring.current.id).toBe(keyId);
    } finally {
      await a.close();
      await c.close();
    }
  }, 60_000);

  test("two rotations at once on two nodes sharing the key file serialise: everything ends under the file's last key", async () => {
    const { url, dir, a } = await seeded();
    const b = await openPgStore({ url, dataDir: dir, env: {}, poolSize: 4 });
    const raw = openPostgres(url, { max: 1 });
    try {
      const oldId = a.keyring.current.id;
      const [ra, rb] = await Promise.all([rotateKey(a), rotateKey(b)]);
      expect(ra.keyId).not.toBe(rb.keyId);
      const lines = fs.readFileSync(path.join(dir, "portcullis.key"), "utf8").split("\n").filter((l) => /^[0-9a-f]+ /.test(l));
      const ids = lines.map((l) => l.split(" ")[0]!);
      expect(ids.length).toBe(3);
      expect(ids[0]).toBe(oldId);
      expect(new Set(ids.slice(1))).toEqual(new Set([ra.keyId, rb.keyId]));
      const last = lines.at(-1)!.split(" ")[0]!;
      expect(new Set(allOf(await sealedKeyIds(raw)))).toEqual(new Set([last]));
      expect((await a.tokens.findBySerial("T2"))!.secret).toEqual(newToken("T2").secret);
      expect((await b.tokens.findBySerial("T2"))!.secret).toEqual(newToken("T2").secret);
    } finally {
      await raw.close();
      await a.close();
      await b.close();
    }
  }, 60_000);

  test("a rotation that meets a value it cannot open changes nothing in the database; the key file keeps the new key, whose check row is written when it first seals", async () => {
    const { url, dir, a } = await seeded();
    const raw = openPostgres(url, { max: 1 });
    try {
      const oldId = a.keyring.current.id;
      // T1's ciphertext copied onto T2's row: it does not open there (bound to its row).
      await raw.query("UPDATE tokens SET secret = (SELECT secret FROM tokens WHERE serial = 'T1') WHERE serial = 'T2'");
      expect((await storeError(rotateKey(a))).code).toBe("corrupt");
      expect(new Set(allOf(await sealedKeyIds(raw)))).toEqual(new Set([oldId]));
      expect((await raw.query<{ key_id: string }>("SELECT key_id FROM seal_keys")).rows.map((r) => r.key_id)).toEqual([oldId]);
      const newId = a.keyring.current.id;
      expect(newId).not.toBe(oldId);
      expect(fs.readFileSync(path.join(dir, "portcullis.key"), "utf8")).toContain(`${newId} `);
      await a.tokens.add(newToken("T3"));
      let ids: string[] = [];
      for (let i = 0; i < 50 && !ids.includes(newId); i++) {
        ids = (await raw.query<{ key_id: string }>("SELECT key_id FROM seal_keys")).rows.map((r) => r.key_id);
        if (!ids.includes(newId)) await new Promise((r) => setTimeout(r, 50));
      }
      expect(ids.sort()).toEqual([oldId, newId].sort());
    } finally {
      await raw.close();
      await a.close();
    }
  }, 60_000);

  test("a key from $PORTCULLIS_KEY cannot be rotated: unavailable, nothing changed", async () => {
    const url = await (await postgresServer()).createDatabase();
    const dir = tempDir();
    dirs.push(dir);
    const s = await openPgStore({ url, dataDir: dir, env: { PORTCULLIS_KEY: Buffer.alloc(32, 5).toString("base64") }, poolSize: 2 });
    try {
      await s.tokens.add(newToken("E1"));
      const err = await storeError(rotateKey(s));
      expect(err.code).toBe("unavailable");
      expect(err.message).toContain("$PORTCULLIS_KEY");
      expect((await s.tokens.findBySerial("E1"))!.secret).toEqual(newToken("E1").secret);
    } finally {
      await s.close();
    }
  }, 60_000);
});
