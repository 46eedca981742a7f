// The PostgreSQL seam on a throwaway server, under whichever runtime runs the test: Bun's SQL client
// under Bun, the postgres package under Deno (scripts/test-deno runs this file too). Both must give
// the store the same answers: numbers for BIGINT, row counts, savepoints, LISTEN/NOTIFY, and
// errors the helpers classify alike.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  isPgCheckViolation,
  isPgForeignKeyViolation,
  isPgUnavailable,
  isPgUniqueViolation,
  openPostgres,
  pgConstraint,
  pgErrorCode,
  type PgDatabase,
} from "../../../src/runtime/postgres.ts";
import { POSTGRES_SKIP_REASON, startPostgres, type PostgresServer } from "../../integration/helpers/postgres.ts";

async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected a failure");
}

describe.skipIf(POSTGRES_SKIP_REASON !== undefined)("the PostgreSQL client of this runtime", () => {
  let pg: PostgresServer;
  let db: PgDatabase;

  beforeAll(async () => {
    pg = await startPostgres();
    db = openPostgres(await pg.createDatabase(), { max: 4 });
    await db.exec(`
      CREATE TABLE parent (id BIGINT PRIMARY KEY, name TEXT NOT NULL UNIQUE, n INTEGER CHECK (n >= 0), big BIGINT, ok BOOLEAN);
      CREATE TABLE child (id BIGINT PRIMARY KEY, parent_id BIGINT REFERENCES parent (id));
    `);
  }, 120_000);
  afterAll(async () => {
    await db?.close();
    pg?.destroy();
  });

  test("parameters and results: BIGINT and count(*) as numbers, booleans, NULL; row counts of writes", async () => {
    const ins = await db.query("INSERT INTO parent (id, name, n, big, ok) VALUES ($1, $2, $3, $4, $5), ($6, $7, $8, $9, $10)", [
      1, "a", 3, 1_733_000_000_123, true, 2, "b", 0, null, false,
    ]);
    expect(ins.count).toBe(2);
    const { rows } = await db.query<{ id: number; name: string; n: number; big: number | null; ok: boolean }>("SELECT id, name, n, big, ok FROM parent ORDER BY id");
    expect(rows).toEqual([
      { id: 1, name: "a", n: 3, big: 1_733_000_000_123, ok: true },
      { id: 2, name: "b", n: 0, big: null, ok: false },
    ]);
    expect((await db.query<{ c: number }>("SELECT count(*) AS c FROM parent")).rows[0]!.c).toBe(2);
    expect((await db.query("UPDATE parent SET n = n + 1 WHERE n >= $1", [0])).count).toBe(2);
    expect((await db.query("DELETE FROM parent WHERE id = $1", [99])).count).toBe(0);
  });

  test("a transaction commits or rolls back; one begun inside another is a savepoint", async () => {
    await db.transaction(async () => {
      expect(db.inTransaction()).toBe(true);
      await db.query("INSERT INTO parent (id, name) VALUES (10, 'tx')");
      // A failing statement inside atomic() rolls back its savepoint only: the transaction goes on.
      const err = await failure(db.atomic(() => db.query("INSERT INTO parent (id, name) VALUES (11, 'tx')")));
      expect(isPgUniqueViolation(err)).toBe(true);
      await db.query("INSERT INTO parent (id, name) VALUES (12, 'tx2')");
    });
    expect(db.inTransaction()).toBe(false);
    expect((await db.query<{ id: number }>("SELECT id FROM parent WHERE id >= 10 ORDER BY id")).rows.map((r) => r.id)).toEqual([10, 12]);
    await failure(
      db.transaction(async () => {
        await db.query("INSERT INTO parent (id, name) VALUES (20, 'gone')");
        throw new Error("abort");
      }),
    );
    expect((await db.query("SELECT 1 FROM parent WHERE id = 20")).rows).toEqual([]);
  });

  test("constraint violations are classified, with the constraint's name", async () => {
    const unique = await failure(db.query("INSERT INTO parent (id, name) VALUES (30, 'a')"));
    expect(isPgUniqueViolation(unique)).toBe(true);
    expect(pgConstraint(unique)).toBe("parent_name_key");
    expect(pgErrorCode(unique)).toBe("23505");
    expect(isPgUnavailable(unique)).toBe(false);
    expect((unique as { detail?: string }).detail).toContain("(name)=(a) already exists");
    const fk = await failure(db.query("INSERT INTO child (id, parent_id) VALUES (1, 999)"));
    expect(isPgForeignKeyViolation(fk)).toBe(true);
    const check = await failure(db.query("INSERT INTO parent (id, name, n) VALUES (31, 'neg', -1)"));
    expect(isPgCheckViolation(check)).toBe(true);
  });

  test("LISTEN/NOTIFY: a payload sent on one connection reaches the subscriber; none after unlisten", async () => {
    const got: string[] = [];
    const unlisten = await db.listen("seam_test", (p) => got.push(p));
    await db.query("SELECT pg_notify('seam_test', $1)", ["hello 1"]);
    for (let i = 0; i < 100 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(got).toEqual(["hello 1"]);
    await unlisten();
    await db.query("SELECT pg_notify('seam_test', 'after')");
    await new Promise((r) => setTimeout(r, 200));
    expect(got).toEqual(["hello 1"]);
  });

  test("an unreachable server is 'unavailable', and the error names no password", async () => {
    const bad = openPostgres(`postgres://u:secret-pw@127.0.0.1:${pg.port + 1}/x`, { max: 1, connectTimeoutS: 2 });
    try {
      const err = await failure(bad.query("SELECT 1"));
      expect(isPgUnavailable(err)).toBe(true);
      expect(String((err as Error).message)).not.toContain("secret-pw");
      expect(pgErrorCode(err)).not.toContain("secret-pw");
    } finally {
      await bad.close().catch(() => {});
    }
  });
});
