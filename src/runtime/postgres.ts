// The PostgreSQL seam: the only module that loads Bun's SQL client (on first use, so that Deno never
// resolves the "bun" module). Off Bun (Deno) the client is the `postgres` npm package, adapted in
// postgres-deno.ts. The store codes against PgDatabase.

import { AsyncLocalStorage } from "node:async_hooks";
import type { SQL } from "bun";
import { openPorsagerPostgres } from "./postgres-deno.ts";

/** Values a statement accepts as positional parameters ($1, $2, …). */
export type PgValue = string | number | boolean | null;

/** Rows returned and the number of rows the statement touched (INSERT/UPDATE/DELETE count). */
export interface PgResult<Row> {
  rows: Row[];
  count: number;
}

/** Something statements can run on: the pool, or one transaction's connection. */
export interface PgQueryable {
  /** Runs one statement with $n parameters. BIGINT values come back as numbers. */
  query<Row = Record<string, unknown>>(text: string, params?: readonly PgValue[]): Promise<PgResult<Row>>;
}

export interface PgDatabase extends PgQueryable {
  /**
   * Runs `fn` in a transaction; statements issued through this database while it runs (in the
   * same asynchronous context) use the transaction's connection. A transaction begun inside
   * another becomes a savepoint. Commits when `fn` resolves, rolls back when it throws.
   */
  transaction<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * Runs `fn` directly, or inside a savepoint when a transaction is open: a statement that fails
   * inside a transaction aborts all of it, and a caller that catches the failure (a conflict)
   * expects the transaction to go on.
   */
  atomic<T>(fn: () => Promise<T>): Promise<T>;
  /** True while the calling asynchronous context is inside transaction(). */
  inTransaction(): boolean;
  /** Runs one or more statements without parameters (DDL). */
  exec(text: string): Promise<void>;
  /**
   * Subscribes to a NOTIFY channel on a dedicated connection, which the client reconnects (and
   * re-subscribes) after a drop. Resolves once the server acknowledged it, with the unsubscribe.
   */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export interface PgOptions {
  /** Connections in the pool; default 10. */
  max?: number;
  /** Seconds to wait for a connection to open; default 5. */
  connectTimeoutS?: number;
}

type BunSQL = InstanceType<typeof SQL>;

/** The URL with its password replaced by "***", for logs and messages. Never throws. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    for (const key of [...u.searchParams.keys()]) if (/pass/i.test(key)) u.searchParams.set(key, "***");
    return u.toString();
  } catch {
    return "postgres://(unparseable URL)";
  }
}

/** True for a postgres:// or postgresql:// URL. */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

function toNumbers<Row>(rows: Record<string, unknown>[]): Row[] {
  for (const row of rows) {
    for (const key in row) {
      const v = row[key];
      if (typeof v === "bigint") row[key] = Number(v);
    }
  }
  return rows as Row[];
}

async function run<Row>(on: BunSQL, text: string, params: readonly PgValue[] | undefined): Promise<PgResult<Row>> {
  const result = (await on.unsafe(text, params as PgValue[] | undefined)) as unknown as Record<string, unknown>[] & { count: number | null };
  return { rows: toNumbers<Row>([...result]), count: result.count ?? 0 };
}

/**
 * Connects lazily: the first statement opens the first connection. Throws TypeError for a URL
 * that is not postgres://; connection errors surface from the first statement.
 */
export function openPostgres(url: string, { max = 10, connectTimeoutS = 5 }: PgOptions = {}): PgDatabase {
  if (!isPostgresUrl(url)) throw new TypeError(`not a postgres:// URL: ${redactUrl(url)}`);
  if (typeof Bun === "undefined") return openPorsagerPostgres(url, { max, connectTimeoutS });
  // Loaded on first use with a synchronous builtin load, so that Deno never resolves the "bun" module.
  const { SQL: BunSQLClient } = require("bun") as typeof import("bun");
  const sql = new BunSQLClient({ url, max, bigint: true, connectionTimeout: connectTimeoutS, idleTimeout: 60 });
  const current = new AsyncLocalStorage<BunSQL>();
  const on = (): BunSQL => current.getStore() ?? sql;
  const db: PgDatabase = {
    query: <Row>(text: string, params?: readonly PgValue[]) => run<Row>(on(), text, params),
    atomic: <T>(fn: () => Promise<T>): Promise<T> => (current.getStore() ? db.transaction(fn) : fn()),
    inTransaction: () => current.getStore() !== undefined,
    transaction: <T>(fn: () => Promise<T>): Promise<T> => {
      const outer = current.getStore();
      if (outer) {
        return (outer as unknown as { savepoint<U>(f: (sp: BunSQL) => Promise<U>): Promise<U> }).savepoint((sp) => current.run(sp, fn));
      }
      return sql.begin((tx) => current.run(tx as unknown as BunSQL, fn)) as Promise<T>;
    },
    exec: async (text: string) => {
      await on().unsafe(text);
    },
    listen: async (channel, onPayload) => {
      const sub = await sql.listen(channel, (payload) => {
        // A throwing callback would be an uncaught exception: the listener's errors stay with it.
        try {
          onPayload(payload);
        } catch {
          // ignored: the subscriber's own handler reports its errors
        }
      });
      return () => sub.unlisten();
    },
    close: () => sql.close(),
  };
  return db;
}

function sqlState(err: unknown): string {
  const e = err as { errno?: unknown; code?: unknown } | null;
  if (typeof e?.errno === "string" && /^[0-9A-Z]{5}$/.test(e.errno)) return e.errno;
  return "";
}

function driverCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "";
}

/** True for a UNIQUE or PRIMARY KEY violation (SQLSTATE 23505). */
export function isPgUniqueViolation(err: unknown): boolean {
  return sqlState(err) === "23505";
}

/** True for a FOREIGN KEY violation (SQLSTATE 23503). */
export function isPgForeignKeyViolation(err: unknown): boolean {
  return sqlState(err) === "23503";
}

/** True for a CHECK violation (SQLSTATE 23514). */
export function isPgCheckViolation(err: unknown): boolean {
  return sqlState(err) === "23514";
}

/** The constraint a violation names, or "". */
export function pgConstraint(err: unknown): string {
  const c = (err as { constraint?: unknown } | null)?.constraint;
  return typeof c === "string" ? c : "";
}

/**
 * True when the database could not be reached or written right now: no connection, the server
 * shutting down, out of resources, read-only, a serialization failure or deadlock.
 */
export function isPgUnavailable(err: unknown): boolean {
  const state = sqlState(err);
  if (state) return /^(08|53|57P|58)/.test(state) || state === "25006" || state === "40001" || state === "40P01";
  const code = driverCode(err);
  return code.startsWith("ERR_POSTGRES_") && code !== "ERR_POSTGRES_SERVER_ERROR";
}

/** A short description of a driver error for a StoreError message: never the URL or a password. */
export function pgErrorCode(err: unknown): string {
  return sqlState(err) || driverCode(err) || "error";
}
