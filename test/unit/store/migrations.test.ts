import { afterEach, describe, expect, test } from "bun:test";
import * as path from "node:path";
import { openDatabase } from "../../../src/runtime/sqlite.ts";
import { LATEST_VERSION, MIGRATIONS, migrationSQL } from "../../../src/store/migrations.ts";
import { cleanup, openIn, tempDir } from "./helpers.ts";

let dir: string;
afterEach(() => cleanup(dir));

describe("migrations", () => {
  test("versions are 1..n in order with names", () => {
    expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
    expect(LATEST_VERSION).toBe(MIGRATIONS.length);
    for (const m of MIGRATIONS) expect(m.name).toMatch(/^[a-z0-9_]+$/);
  });

  test.each(["sqlite", "postgres"] as const)("every placeholder is expanded for %s", (dialect) => {
    for (const m of MIGRATIONS) expect(migrationSQL(m, dialect)).not.toContain("{{");
  });

  test("business tables use only portable column types", () => {
    const sql = MIGRATIONS.map((m) => m.sql).join("\n");
    expect(sql).not.toMatch(/\b(BLOB|REAL|NUMERIC|AUTOINCREMENT|STRICT|DATETIME)\b/);
  });

  test("applied once and recorded in schema_migrations; reopening applies nothing", async () => {
    dir = tempDir();
    await (await openIn(dir, { now: () => 1234 })).close();
    await (await openIn(dir, { now: () => 5678 })).close();
    const db = openDatabase(path.join(dir, "portcullis.db"));
    const rows = db.prepare("SELECT version, name, applied_at FROM schema_migrations ORDER BY version").all();
    db.close();
    expect(rows).toEqual(MIGRATIONS.map((m) => ({ version: m.version, name: m.name, applied_at: 1234 })));
  });

  test("a database from a newer build is refused", async () => {
    dir = tempDir();
    await (await openIn(dir)).close();
    const db = openDatabase(path.join(dir, "portcullis.db"));
    db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 0)").run(LATEST_VERSION + 1);
    db.close();
    await expect(openIn(dir)).rejects.toThrow(TypeError);
  });
});

/** Writes a version-1 database (as the first build left it) with one user and one token. */
function versionOneDatabase(file: string): void {
  const db = openDatabase(file);
  db.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)");
  db.exec(migrationSQL(MIGRATIONS[0]!, "sqlite"));
  db.prepare("INSERT INTO schema_migrations VALUES (1, 'initial', 0)").run();
  db.prepare("INSERT INTO users (id, username, type, created_at) VALUES (1, 'alice', 'totp', 0)").run();
  db.prepare(
    "INSERT INTO tokens (id, serial, user_id, kind, secret, algorithm, digits, period, counter, last_step, drift, state, created_at) VALUES (7, 'T-7', 1, 'totp', 'x', 'SHA1', 6, 30, 3, 123456, -1, 'active', 0)",
  ).run();
  db.close();
}

test("migration 2 moves each token's replay guards into token_marks without losing them", () => {
  dir = tempDir();
  const file = path.join(dir, "portcullis.db");
  versionOneDatabase(file);
  const db = openDatabase(file);
  db.exec(migrationSQL(MIGRATIONS[1]!, "sqlite"));
  expect(db.prepare("SELECT token_id, counter, last_step, drift FROM token_marks").all()).toEqual([{ token_id: 7, counter: 3, last_step: 123456, drift: -1 }]);
  expect(db.prepare("SELECT name FROM pragma_table_info('tokens') WHERE name IN ('counter', 'last_step', 'drift')").all()).toEqual([]);
  db.close();
});

test("a version-1 database is migrated on open and its tokens keep working", async () => {
  dir = tempDir();
  const db = openDatabase(path.join(dir, "portcullis.db"));
  db.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)");
  db.exec(migrationSQL(MIGRATIONS[0]!, "sqlite"));
  db.prepare("INSERT INTO schema_migrations VALUES (1, 'initial', 0)").run();
  db.prepare("INSERT INTO users (id, username, type, created_at) VALUES (1, 'alice', 'totp', 0)").run();
  db.close();
  const store = await openIn(dir);
  const token = await store.tokens.add({ serial: "T-1", userId: 1, kind: "totp", secret: new Uint8Array(20).fill(1), algorithm: "SHA1", digits: 6, period: 30, state: "active" });
  expect(await store.tokens.advanceTOTP(token.id, 10, 0)).toBe(true);
  expect((await store.tokens.findById(token.id))?.lastStep).toBe(10);
  await store.close();
});
