// The SQLite seam: the only module that loads a SQLite driver. The store codes against SQLDatabase.
//
// On Bun the driver is bun:sqlite; elsewhere (Deno) it is node:sqlite's DatabaseSync, adapted to
// bun:sqlite's behaviour where the store relies on it: `get` answers null for no row, booleans are
// bound as 0/1, `transaction()` nests with savepoints, and errors carry bun:sqlite's
// "SQLITE_CONSTRAINT_UNIQUE"-style code (node:sqlite only gives the numeric extended result code).
// Each driver is loaded on first use with a synchronous builtin load (require / getBuiltinModule),
// so neither runtime ever evaluates, or fails to resolve, the other one's module.

import type { DatabaseSync, StatementSync } from "node:sqlite";

/** Values a statement accepts as positional parameters. */
export type SQLValue = string | number | bigint | boolean | null | Uint8Array;

/** What `run` reports: rows changed by this statement and the last inserted rowid. */
export interface SQLChanges {
  changes: number;
  lastInsertRowid: number | bigint;
}

/** A prepared statement, compiled once and reused for every call. */
export interface SQLStatement<Row = Record<string, unknown>> {
  /** The first row, or null when there is none. */
  get(...params: SQLValue[]): Row | null;
  all(...params: SQLValue[]): Row[];
  run(...params: SQLValue[]): SQLChanges;
}

/** A transaction wrapper as returned by `transaction()`: call it plainly (DEFERRED) or `.immediate(...)`. */
export interface SQLTransaction<A extends unknown[], T> {
  (...args: A): T;
  /** BEGIN IMMEDIATE: takes the write lock up front, so a read-then-write cannot fail with SQLITE_BUSY mid-way. */
  immediate(...args: A): T;
}

/** The subset of a synchronous SQLite handle the store uses. */
export interface SQLDatabase {
  prepare<Row = Record<string, unknown>>(sql: string): SQLStatement<Row>;
  /** Runs one or more statements without results (DDL, PRAGMA). */
  exec(sql: string): void;
  transaction<A extends unknown[], T>(fn: (...args: A) => T): SQLTransaction<A, T>;
  close(): void;
}

/**
 * Opens (and, unless readonly, creates) a database file. Throws the driver's error when the file
 * cannot be opened; the caller maps it.
 */
export function openDatabase(path: string, options: { readonly?: boolean } = {}): SQLDatabase {
  return typeof Bun !== "undefined" ? openBunDatabase(path, options) : openNodeDatabase(path, options);
}

function openBunDatabase(path: string, { readonly = false }: { readonly?: boolean }): SQLDatabase {
  const { Database } = require("bun:sqlite") as typeof import("bun:sqlite");
  const db = readonly ? new Database(path, { readonly: true }) : new Database(path, { create: true, readwrite: true });
  return {
    prepare: <Row>(sql: string) => db.prepare(sql) as unknown as SQLStatement<Row>,
    exec: (sql: string) => {
      db.run(sql);
    },
    transaction: <A extends unknown[], T>(fn: (...args: A) => T) => db.transaction(fn) as SQLTransaction<A, T>,
    close: () => db.close(),
  };
}

/**
 * node:sqlite (Deno, Node): the same handle, with bun:sqlite's conventions (see the top of this
 * file). What openDatabase uses outside Bun; exported so that the tests hold both drivers to one contract.
 */
export function openNodeDatabase(path: string, { readonly = false }: { readonly?: boolean } = {}): SQLDatabase {
  const { DatabaseSync } = process.getBuiltinModule("node:sqlite") as typeof import("node:sqlite");
  let db: DatabaseSync;
  try {
    // Double-quoted string literals are allowed, as in SQLite's default build (which bun:sqlite uses).
    db = new DatabaseSync(path, { readOnly: readonly, enableDoubleQuotedStringLiterals: true });
  } catch (err) {
    throw withSqliteCode(err);
  }
  let savepoints = 0;
  const transaction = <A extends unknown[], T>(fn: (...args: A) => T): SQLTransaction<A, T> => {
    const run = (mode: "DEFERRED" | "IMMEDIATE", args: A): T => {
      // Inside a transaction (one of ours, or a BEGIN run through exec) it nests as a savepoint, as bun:sqlite does.
      const savepoint = db.isTransaction ? `portcullis_sp${++savepoints}` : "";
      db.exec(savepoint ? `SAVEPOINT ${savepoint}` : `BEGIN ${mode}`);
      try {
        const result = fn(...args);
        db.exec(savepoint ? `RELEASE ${savepoint}` : "COMMIT");
        return result;
      } catch (err) {
        try {
          db.exec(savepoint ? `ROLLBACK TO ${savepoint}; RELEASE ${savepoint}` : "ROLLBACK");
        } catch {
          // SQLite already rolled the transaction back (e.g. SQLITE_FULL); the first error is the one to report
        }
        throw err;
      }
    };
    const tx = ((...args: A) => run("DEFERRED", args)) as SQLTransaction<A, T>;
    tx.immediate = (...args: A) => run("IMMEDIATE", args);
    return tx;
  };
  return {
    prepare: <Row>(sql: string) => {
      let statement: StatementSync;
      try {
        statement = db.prepare(sql);
      } catch (err) {
        throw withSqliteCode(err);
      }
      return nodeStatement<Row>(statement);
    },
    exec: (sql: string) => {
      try {
        db.exec(sql);
      } catch (err) {
        throw withSqliteCode(err);
      }
    },
    transaction,
    close: () => db.close(),
  };
}

function nodeStatement<Row>(statement: StatementSync): SQLStatement<Row> {
  type Bindable = Exclude<SQLValue, boolean>;
  const bind = (params: SQLValue[]): Bindable[] => {
    for (let i = 0; i < params.length; i++) {
      if (typeof params[i] === "boolean") return params.map((p) => (typeof p === "boolean" ? Number(p) : p)) as Bindable[];
    }
    return params as Bindable[];
  };
  return {
    get(...params) {
      try {
        return (statement.get(...bind(params)) as Row | undefined) ?? null;
      } catch (err) {
        throw withSqliteCode(err);
      }
    },
    all(...params) {
      try {
        return statement.all(...bind(params)) as Row[];
      } catch (err) {
        throw withSqliteCode(err);
      }
    },
    run(...params) {
      try {
        return statement.run(...bind(params)) as SQLChanges;
      } catch (err) {
        throw withSqliteCode(err);
      }
    },
  };
}

/** SQLite's primary result codes (the low byte of an extended code) that the predicates below read. */
const PRIMARY_CODES: Record<number, string> = {
  5: "SQLITE_BUSY",
  6: "SQLITE_LOCKED",
  8: "SQLITE_READONLY",
  10: "SQLITE_IOERR",
  13: "SQLITE_FULL",
  14: "SQLITE_CANTOPEN",
  15: "SQLITE_PROTOCOL",
  19: "SQLITE_CONSTRAINT",
};
/** Extended constraint codes (sqlite3.h): the ones the store tells apart (users.ts reads SQLITE_CONSTRAINT_CHECK). */
const EXTENDED_CODES: Record<number, string> = {
  275: "SQLITE_CONSTRAINT_CHECK",
  787: "SQLITE_CONSTRAINT_FOREIGNKEY",
  1299: "SQLITE_CONSTRAINT_NOTNULL",
  1555: "SQLITE_CONSTRAINT_PRIMARYKEY",
  2067: "SQLITE_CONSTRAINT_UNIQUE",
};

/**
 * SQLite's own messages (sqlite3_errstr, and the constraint messages) for the codes above: Deno's
 * node:sqlite gives no `errcode` for an error raised by exec() ("database is locked" from a BEGIN).
 */
const MESSAGE_CODES: [RegExp, string][] = [
  [/^UNIQUE constraint failed/, "SQLITE_CONSTRAINT_UNIQUE"],
  [/^FOREIGN KEY constraint failed/, "SQLITE_CONSTRAINT_FOREIGNKEY"],
  [/^CHECK constraint failed/, "SQLITE_CONSTRAINT_CHECK"],
  [/^NOT NULL constraint failed/, "SQLITE_CONSTRAINT_NOTNULL"],
  [/^database is locked/, "SQLITE_BUSY"],
  [/^database table is locked/, "SQLITE_LOCKED"],
  [/^attempt to write a readonly database/, "SQLITE_READONLY"],
  [/^disk I\/O error/, "SQLITE_IOERR"],
  [/^database or disk is full/, "SQLITE_FULL"],
  [/^unable to open database file/, "SQLITE_CANTOPEN"],
  [/^locking protocol/, "SQLITE_PROTOCOL"],
];

/** Gives a node:sqlite error (numeric `errcode`, else SQLite's message) bun:sqlite's string `code`; other errors pass unchanged. */
function withSqliteCode(err: unknown): unknown {
  const e = err as { errcode?: unknown; code?: unknown; message?: unknown } | null;
  if (e && typeof e === "object" && (typeof e.errcode === "number" || e.code === "ERR_SQLITE_ERROR")) {
    const message = typeof e.message === "string" ? e.message : "";
    const name =
      typeof e.errcode === "number"
        ? (EXTENDED_CODES[e.errcode] ?? PRIMARY_CODES[e.errcode & 0xff])
        : MESSAGE_CODES.find(([re]) => re.test(message))?.[1];
    if (name) {
      try {
        e.code = name;
      } catch {
        // a frozen error keeps its own code
      }
    }
  }
  return err;
}

function sqliteCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "";
}

/** True for a UNIQUE or PRIMARY KEY constraint violation. */
export function isUniqueViolation(err: unknown): boolean {
  const code = sqliteCode(err);
  return code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY";
}

/** True for a FOREIGN KEY constraint violation. */
export function isForeignKeyViolation(err: unknown): boolean {
  return sqliteCode(err) === "SQLITE_CONSTRAINT_FOREIGNKEY";
}

/** True when the database could not be written right now: locked, busy, read-only, full or an I/O error. */
export function isUnavailable(err: unknown): boolean {
  const code = sqliteCode(err);
  return /^SQLITE_(BUSY|LOCKED|READONLY|FULL|IOERR|CANTOPEN|PROTOCOL)/.test(code);
}
