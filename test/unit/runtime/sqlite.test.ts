// runtime/sqlite.ts: both drivers (bun:sqlite on Bun, node:sqlite on Deno) behave alike where the
// store relies on it. This file also runs under Deno (scripts/test-deno), where openDatabase is the
// node:sqlite one.

import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isForeignKeyViolation, isUnavailable, isUniqueViolation, openDatabase, openNodeDatabase, type SQLDatabase } from "../../../src/runtime/sqlite.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-sqlite-"));
  dirs.push(dir);
  return join(dir, "t.db");
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error("expected a throw");
}

describe.each([
  ["openDatabase (this runtime's driver)", openDatabase],
  ["openNodeDatabase (node:sqlite)", openNodeDatabase],
] as const)("%s", (_name, open) => {
  function schema(): SQLDatabase {
    const db = open(tempFile());
    db.exec("PRAGMA foreign_keys = ON");
    db.exec("CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT UNIQUE, flag INTEGER CHECK (flag IS NULL OR flag IN (0, 1)), data BLOB)");
    db.exec("CREATE TABLE c (id INTEGER PRIMARY KEY, p INTEGER NOT NULL REFERENCES p(id))");
    return db;
  }

  test("get answers null for no row; booleans bind as 0/1; blobs come back as octets; run reports changes", () => {
    const db = schema();
    const ins = db.prepare("INSERT INTO p (name, flag, data) VALUES (?, ?, ?)");
    expect(ins.run("a", true, new Uint8Array([1, 2, 3]))).toMatchObject({ changes: 1 });
    expect(Number(ins.run("b", false, null).lastInsertRowid)).toBe(2);
    const get = db.prepare<{ name: string; flag: number; data: Uint8Array | null }>("SELECT name, flag, data FROM p WHERE id = ?");
    const row = get.get(1)!;
    expect(row.flag).toBe(1);
    expect([...row.data!]).toEqual([1, 2, 3]);
    expect(get.get(2)!.flag).toBe(0);
    expect(get.get(99)).toBeNull();
    expect(db.prepare("SELECT name FROM p ORDER BY id").all().map((r) => r.name)).toEqual(["a", "b"]);
    db.close();
  });

  test("constraint violations carry bun:sqlite's codes", () => {
    const db = schema();
    db.prepare("INSERT INTO p (id, name) VALUES (?, ?)").run(1, "a");
    const unique = thrown(() => db.prepare("INSERT INTO p (name) VALUES (?)").run("a"));
    expect(isUniqueViolation(unique)).toBe(true);
    expect(isForeignKeyViolation(unique)).toBe(false);
    expect(isUniqueViolation(thrown(() => db.prepare("INSERT INTO p (id, name) VALUES (?, ?)").run(1, "z")))).toBe(true);
    const fk = thrown(() => db.prepare("INSERT INTO c (p) VALUES (?)").run(42));
    expect(isForeignKeyViolation(fk)).toBe(true);
    expect(isUniqueViolation(fk)).toBe(false);
    expect(isUnavailable(fk)).toBe(false);
    const check = thrown(() => db.prepare("INSERT INTO p (name, flag) VALUES (?, ?)").run("c", 7));
    expect((check as { code?: unknown }).code).toBe("SQLITE_CONSTRAINT_CHECK");
    expect(isUniqueViolation(check)).toBe(false);
    db.close();
  });

  test("a transaction commits, rolls back on a throw, and nests as a savepoint (also inside a BEGIN run through exec)", () => {
    const db = schema();
    const ins = db.prepare("INSERT INTO p (name) VALUES (?)");
    const count = () => (db.prepare<{ n: number }>("SELECT count(*) AS n FROM p").get()!).n;
    const inner = db.transaction((name: string) => {
      ins.run(name);
      if (name.startsWith("bad")) throw new Error("inner fails");
    });
    const outer = db.transaction((names: string[]) => {
      for (const n of names) {
        try {
          inner(n);
        } catch {
          // the inner savepoint is rolled back, the outer transaction goes on
        }
      }
      return names.length;
    });
    expect(outer.immediate(["a", "bad1", "b"])).toBe(3);
    expect(count()).toBe(2);
    expect(() =>
      outer(["c"]) === 1 ? db.transaction(() => { ins.run("d"); throw new Error("outer fails"); })() : 0,
    ).toThrow("outer fails");
    expect(count()).toBe(3); // "c" committed by its own transaction, "d" rolled back
    db.exec("BEGIN IMMEDIATE");
    inner("e");
    db.exec("COMMIT");
    expect(count()).toBe(4);
    db.close();
  });

  test("a second connection sees the write lock as unavailable (SQLITE_BUSY)", () => {
    const file = tempFile();
    const a = open(file);
    a.exec("PRAGMA journal_mode = WAL");
    a.exec("CREATE TABLE t (x INTEGER)");
    const b = open(file);
    b.exec("PRAGMA busy_timeout = 0");
    a.exec("BEGIN IMMEDIATE");
    const err = thrown(() => b.exec("BEGIN IMMEDIATE"));
    expect(isUnavailable(err)).toBe(true);
    a.exec("ROLLBACK");
    a.close();
    b.close();
  });

  test("a read-only handle refuses writes as unavailable", () => {
    const file = tempFile();
    const w = open(file);
    w.exec("CREATE TABLE t (x INTEGER)");
    w.close();
    const r = open(file, { readonly: true });
    expect(isUnavailable(thrown(() => r.prepare("INSERT INTO t VALUES (1)").run()))).toBe(true);
    r.close();
  });
});
