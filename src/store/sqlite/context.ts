// Shared plumbing for the SQLite repositories: the sealer (keyring + reload), error mapping, clock.

import { isForeignKeyViolation, isUnavailable, isUniqueViolation, type SQLDatabase, type SQLStatement } from "../../runtime/sqlite.ts";
import { Sealer } from "../sealer.ts";
import { StoreError } from "../types.ts";

export { Sealer };

/** What every repository shares. */
export interface StoreContext {
  db: SQLDatabase;
  sealer: Sealer;
  now: () => number;
  /** Called after a committed change to clients, users or tokens made through this connection. */
  bumpGeneration(): void;
}

/**
 * Turns a driver error into a StoreError where one applies and rethrows; `conflict` supplies the
 * message for a uniqueness violation, `missing` the one for a foreign-key violation.
 */
export function rethrow(err: unknown, { conflict, missing }: { conflict?: string; missing?: string } = {}): never {
  if (err instanceof StoreError) throw err;
  if (conflict !== undefined && isUniqueViolation(err)) throw new StoreError("conflict", conflict);
  if (missing !== undefined && isForeignKeyViolation(err)) throw new StoreError("not_found", missing);
  if (isUnavailable(err)) {
    const code = (err as { code?: string }).code;
    throw new StoreError("unavailable", `database unavailable (${code})`);
  }
  throw err;
}

/** Prepares a statement now; every repository prepares all its SQL at construction. */
export function prep<Row = Record<string, unknown>>(db: SQLDatabase, sql: string): SQLStatement<Row> {
  return db.prepare<Row>(sql);
}
