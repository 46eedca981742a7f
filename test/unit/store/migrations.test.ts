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
