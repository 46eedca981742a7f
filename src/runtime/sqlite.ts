// The SQLite seam: the only module that imports bun:sqlite. The store codes against SQLDatabase.

import { Database } from "bun:sqlite";

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
export function openDatabase(path: string, { readonly = false }: { readonly?: boolean } = {}): SQLDatabase {
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
