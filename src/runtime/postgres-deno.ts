// The PostgreSQL client off Bun (Deno): the `postgres` npm package (porsager), adapted to the
// PgDatabase interface that src/runtime/postgres.ts gives the store on Bun with Bun's SQL client:
// BIGINT columns come back as numbers, a transaction begun inside another becomes a savepoint, and
// driver errors carry Bun's shape (`errno` = SQLSTATE, `code` = "ERR_POSTGRES_…", `constraint`,
// `detail`), so that the error helpers in postgres.ts classify both drivers' errors alike.
//
// The package is loaded on first use through a specifier the bundler cannot follow: the compiled
// Bun binary, which never runs this path, does not carry it.

import { AsyncLocalStorage } from "node:async_hooks";
import type { PgDatabase, PgOptions, PgResult, PgValue } from "./postgres.ts";

type Porsager = typeof import("postgres");
type PorsagerSql = import("postgres").Sql;
type PorsagerTx = import("postgres").TransactionSql;

/** A module name kept out of the bundler's sight (it follows only literal import specifiers). */
const PACKAGE: string = ["post", "gres"].join("");
/** PostgreSQL's type OID of int8 (BIGINT, count(*)). */
const INT8 = 20;

/** A driver error in Bun's SQL client's shape. */
class PgDriverError extends Error {
  errno?: string;
  code: string;
  constraint?: string;
  detail?: string;
  constructor(message: string, fields: { errno?: string; code: string; constraint?: string; detail?: string }) {
    super(message);
    this.name = "PostgresError";
    this.errno = fields.errno;
    this.code = fields.code;
    this.constraint = fields.constraint;
    this.detail = fields.detail;
  }
}

/**
 * The driver's error as Bun's client reports it: a server error keeps its SQLSTATE as `errno` (code
 * ERR_POSTGRES_SERVER_ERROR); a connection failure (ECONNREFUSED, CONNECTION_CLOSED,
 * CONNECT_TIMEOUT, …) becomes code ERR_POSTGRES_<code>. Anything else is returned as it is.
 */
export function bunShapedError(err: unknown): unknown {
  if (!(err instanceof Error) || err instanceof PgDriverError) return err;
  const e = err as Error & { code?: unknown; constraint_name?: unknown; detail?: unknown };
  const code = typeof e.code === "string" ? e.code : "";
  if (e.name === "PostgresError" && /^[0-9A-Z]{5}$/.test(code)) {
    return new PgDriverError(e.message, {
      errno: code,
      code: "ERR_POSTGRES_SERVER_ERROR",
      constraint: typeof e.constraint_name === "string" ? e.constraint_name : undefined,
      detail: typeof e.detail === "string" ? e.detail : undefined,
    });
  }
  if (/^[A-Z][A-Z0-9_]+$/.test(code)) return new PgDriverError(e.message, { code: `ERR_POSTGRES_${code}` });
  return err;
}

async function mapped<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw bunShapedError(err);
  }
}

type On = PorsagerSql | PorsagerTx;

async function run<Row>(on: On, text: string, params: readonly PgValue[] | undefined): Promise<PgResult<Row>> {
  const result = await mapped(Promise.resolve(on.unsafe(text, (params ?? []) as PgValue[])));
  return { rows: [...result] as unknown as Row[], count: result.count ?? 0 };
}

/** Connects lazily like the Bun client: the package loads, and the first connection opens, on the first statement. */
export function openPorsagerPostgres(url: string, { max = 10, connectTimeoutS = 5 }: PgOptions): PgDatabase {
  let client: Promise<PorsagerSql> | undefined;
  const sql = (): Promise<PorsagerSql> =>
    (client ??= (import(PACKAGE) as Promise<{ default: Porsager }>).then(({ default: postgres }) =>
      postgres(url, {
        max,
        connect_timeout: connectTimeoutS,
        idle_timeout: 60,
        // NOTICE messages (e.g. "relation already exists, skipping") are not errors: not printed.
        onnotice: () => {},
        types: { int8: { to: INT8, from: [INT8], serialize: (v: unknown) => String(v), parse: (v: string) => Number(v) } },
      }) as unknown as PorsagerSql,
    ));
  const current = new AsyncLocalStorage<PorsagerTx>();
  const db: PgDatabase = {
    query: async <Row>(text: string, params?: readonly PgValue[]) => run<Row>(current.getStore() ?? (await sql()), text, params),
    atomic: <T>(fn: () => Promise<T>): Promise<T> => (current.getStore() ? db.transaction(fn) : fn()),
    inTransaction: () => current.getStore() !== undefined,
    transaction: async <T>(fn: () => Promise<T>): Promise<T> => {
      const outer = current.getStore();
      if (outer) return (await mapped(outer.savepoint((sp) => current.run(sp, fn)))) as T;
      const s = await sql();
      return (await mapped(s.begin((tx) => current.run(tx, fn)))) as T;
    },
    exec: async (text: string) => {
      await mapped(Promise.resolve((current.getStore() ?? (await sql())).unsafe(text)));
    },
    listen: async (channel, onPayload) => {
      const s = await sql();
      const sub = await mapped(
        s.listen(channel, (payload) => {
          // A throwing callback would be an uncaught exception: the listener's errors stay with it.
          try {
            onPayload(payload);
          } catch {
            // ignored: the subscriber's own handler reports its errors
          }
        }),
      );
      return () => sub.unlisten();
    },
    close: async () => {
      if (client) await (await client).end({ timeout: 5 });
    },
  };
  return db;
}
