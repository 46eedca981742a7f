// Shared plumbing for the PostgreSQL repositories: statements written with `?` placeholders (the
// same text as the SQLite ones where the dialects agree), error mapping, clock.

import {
  isPgCheckViolation,
  isPgForeignKeyViolation,
  isPgUnavailable,
  isPgUniqueViolation,
  pgErrorCode,
  type PgDatabase,
  type PgResult,
  type PgValue,
} from "../../runtime/postgres.ts";
import type { Sealer } from "../sealer.ts";
import { StoreError } from "../types.ts";

/** What every repository shares. */
export interface PgStoreContext {
  db: PgDatabase;
  sealer: Sealer;
  now: () => number;
  /** Called after a committed change to clients, users or tokens made through this process. */
  bumpGeneration(): void;
}

/**
 * Rewrites `?` placeholders as `$1, $2, …` (and SQLite's `?N` as `$N`). The statements hold no
 * string literal containing a question mark.
 */
export function numbered(text: string): string {
  let n = 0;
  return text.replace(/\?(\d+)?/g, (_m, explicit: string | undefined) => `$${explicit ?? ++n}`);
}

/** A statement prepared once in text form; runs on the current transaction's connection if any. */
export class PgStatement<Row = Record<string, unknown>> {
  readonly text: string;
  constructor(
    private readonly db: PgDatabase,
    sql: string,
  ) {
    this.text = numbered(sql);
  }
  async get(...params: PgValue[]): Promise<Row | undefined> {
    return (await this.db.query<Row>(this.text, params)).rows[0];
  }
  async all(...params: PgValue[]): Promise<Row[]> {
    return (await this.db.query<Row>(this.text, params)).rows;
  }
  /** The number of rows changed. */
  async run(...params: PgValue[]): Promise<number> {
    return (await this.db.query(this.text, params)).count;
  }
  result(...params: PgValue[]): Promise<PgResult<Row>> {
    return this.db.query<Row>(this.text, params);
  }
}

export function pgPrep<Row = Record<string, unknown>>(db: PgDatabase, sql: string): PgStatement<Row> {
  return new PgStatement<Row>(db, sql);
}

/**
 * `($1::t1, $2::t2, …), ($n+1, …), …` for a multi-row VALUES list of `rows` rows; the first row
 * carries the casts so that PostgreSQL types every column.
 */
export function valuesList(rows: number, casts: readonly string[]): string {
  const out: string[] = [];
  let n = 0;
  for (let r = 0; r < rows; r++) out.push(`(${casts.map((c) => (r === 0 ? `$${++n}::${c}` : `$${++n}`)).join(", ")})`);
  return out.join(", ");
}

/** The value a unique violation names ("Key (serial)=(X) already exists."), or undefined. */
export function conflictingValue(err: unknown): string | undefined {
  const detail = (err as { detail?: unknown } | null)?.detail;
  if (typeof detail !== "string") return undefined;
  return /^Key \((?:[^)]*)\)=\((.*)\) already exists/.exec(detail)?.[1];
}

/** True for a CHECK constraint violation. */
export const isCheckViolation = isPgCheckViolation;

/**
 * Turns a driver error into a StoreError where one applies and rethrows; `conflict` supplies the
 * message for a uniqueness violation, `missing` the one for a foreign-key violation.
 */
export function rethrow(err: unknown, { conflict, missing }: { conflict?: string; missing?: string } = {}): never {
  if (err instanceof StoreError) throw err;
  if (conflict !== undefined && isPgUniqueViolation(err)) throw new StoreError("conflict", conflict);
  if (missing !== undefined && isPgForeignKeyViolation(err)) throw new StoreError("not_found", missing);
  if (isPgUnavailable(err)) throw new StoreError("unavailable", `database unavailable (${pgErrorCode(err)})`);
  throw err;
}
