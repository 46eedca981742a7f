// `store check` (reachability, schema version, writability) and `store copy --to postgres://…`
// (an appliance's SQLite data into PostgreSQL, row for row: sealed values are copied as they are,
// so they stay sealed and the PostgreSQL nodes need the same key).

import * as fs from "node:fs";
import { isPostgresUrl, openPostgres, redactUrl, type PgDatabase, type PgValue } from "../runtime/postgres.ts";
import { openDatabase, type SQLDatabase } from "../runtime/sqlite.ts";
import { LATEST_VERSION } from "../store/migrations.ts";
import { storeOptions } from "../store/open.ts";
import { migratePg, schemaVersion } from "../store/postgres/store.ts";
import { openSqliteStore } from "../store/sqlite/store.ts";
import { CLIError, parseCommand, stripOneNewline, usageError, type CLIContext } from "./context.ts";

export const STORE_USAGE = ["portcullis store check", "portcullis store copy --to postgres://USER:PASSWORD@HOST/DB | --to-stdin [--replace]"];

/** `store check` exit codes (also in docs/cli.md). */
export const CHECK_EXIT = { ok: 0, unreachable: 3, schema: 4, readOnly: 5 } as const;

/** Tables that are not copied: bookkeeping each database keeps for itself. */
const NOT_COPIED = new Set(["schema_migrations", "change_counter", "cache_epoch", "heartbeat", "radius_replies"]);
/** Parameters per INSERT statement (PostgreSQL's limit is 65,535). */
const MAX_PARAMS = 30_000;

/** Runs `store check` or `store copy`; resolves to the exit code. */
export async function storeCommand(ctx: CLIContext, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === "check") {
    parseCommand(rest, {}, { min: 0, max: 0, usage: STORE_USAGE[0]! });
    return check(ctx);
  }
  if (sub === "copy") {
    const { values } = parseCommand(rest, { to: { type: "string" }, "to-stdin": { type: "boolean" }, replace: { type: "boolean" } }, { min: 0, max: 0, usage: STORE_USAGE[1]! });
    if ((values.to === undefined) === (values["to-stdin"] !== true)) throw usageError(`give exactly one of --to and --to-stdin; usage: ${STORE_USAGE[1]}`);
    const url = values.to ?? stripOneNewline(await ctx.readStdin()).trim();
    if (!isPostgresUrl(url)) throw usageError("the target must be a postgres:// URL");
    return copy(ctx, url, values.replace === true);
  }
  throw usageError(`store needs a subcommand: check or copy; usage: ${STORE_USAGE.join(" | ")}`);
}

async function check(ctx: CLIContext): Promise<number> {
  const opts = storeOptions(ctx.config);
  const line = (k: string, v: string | number) => ctx.out(`${k}: ${v}\n`);
  line("driver", opts.driver);
  if (opts.driver === "postgres") {
    line("url", redactUrl(opts.url));
    const db = openPostgres(opts.url, { max: 1, connectTimeoutS: 5 });
    try {
      let version: number;
      try {
        version = await schemaVersion(db);
      } catch (err) {
        line("reachable", `no (${describeDriverError(err)})`);
        return CHECK_EXIT.unreachable;
      }
      line("reachable", "yes");
      return await reportSchema(line, version, async () => {
        await db.query("INSERT INTO heartbeat (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = excluded.at", [ctx.now()]);
      });
    } finally {
      await db.close().catch(() => {});
    }
  }
  line("path", opts.path);
  if (!fs.existsSync(opts.path)) {
    line("reachable", "no (the database file does not exist yet; any command creates it)");
    return CHECK_EXIT.unreachable;
  }
  let db: SQLDatabase;
  try {
    db = openDatabase(opts.path);
  } catch (err) {
    line("reachable", `no (${describeDriverError(err)})`);
    return CHECK_EXIT.unreachable;
  }
  try {
    db.exec(`PRAGMA busy_timeout = ${opts.busyTimeoutMs ?? 5000}`);
    const present = db.prepare<{ n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE name = 'schema_migrations'").get()!.n > 0;
    const version = present ? (db.prepare<{ v: number | null }>("SELECT max(version) AS v FROM schema_migrations").get()?.v ?? 0) : 0;
    line("reachable", "yes");
    return await reportSchema(line, version, async () => {
      db.exec("BEGIN IMMEDIATE");
      db.exec("ROLLBACK");
    });
  } catch (err) {
    line("reachable", `no (${describeDriverError(err)})`);
    return CHECK_EXIT.unreachable;
  } finally {
    db.close();
  }
}

async function reportSchema(line: (k: string, v: string | number) => void, version: number, probeWrite: () => Promise<void>): Promise<number> {
  const state = version === LATEST_VERSION ? "current" : version < LATEST_VERSION ? "behind: the next serve or admin command migrates it" : "newer than this build: upgrade portcullis";
  line("schema", `${version} (this build: ${LATEST_VERSION}; ${state})`);
  if (version !== LATEST_VERSION) return CHECK_EXIT.schema;
  try {
    await probeWrite();
  } catch (err) {
    line("writable", `no (${describeDriverError(err)})`);
    return CHECK_EXIT.readOnly;
  }
  line("writable", "yes");
  return CHECK_EXIT.ok;
}

/** A driver error as a short phrase: the code and the first line, never a URL. */
function describeDriverError(err: unknown): string {
  const e = err as { code?: unknown; errno?: unknown; message?: unknown } | null;
  const code = typeof e?.errno === "string" ? e.errno : typeof e?.code === "string" ? e.code : "";
  const msg = typeof e?.message === "string" ? e.message.split("\n")[0]!.replace(/postgres(ql)?:\/\/\S+/gi, (u) => redactUrl(u)) : String(err);
  return code ? `${code}: ${msg}` : msg;
}

interface Column {
  name: string;
}

/** The tables to copy, parents before children (foreign keys). */
function tablesInOrder(src: SQLDatabase): string[] {
  const names = src
    .prepare<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
    .all()
    .map((r) => r.name)
    .filter((n) => !NOT_COPIED.has(n));
  const parents = new Map(names.map((n) => [n, src.prepare<{ table: string }>(`SELECT "table" FROM pragma_foreign_key_list('${n}')`).all().map((r) => r.table)]));
  const ordered: string[] = [];
  const visit = (n: string, depth: number) => {
    if (ordered.includes(n) || depth > names.length) return;
    for (const p of parents.get(n) ?? []) if (p !== n && names.includes(p)) visit(p, depth + 1);
    if (!ordered.includes(n)) ordered.push(n);
  };
  for (const n of names) visit(n, 0);
  return ordered;
}

async function copy(ctx: CLIContext, url: string, replace: boolean): Promise<number> {
  const opts = storeOptions(ctx.config);
  if (opts.driver !== "sqlite") throw new CLIError("store copy reads the SQLite store; this configuration already uses PostgreSQL ([store] url)");
  if (!fs.existsSync(opts.path)) throw new CLIError(`no SQLite database at ${opts.path}`);
  // Opening through the store brings the file to the current schema and checks the key first.
  const source = await openSqliteStore({ ...opts, path: opts.path });
  const keyIds = source.keyring.ids();
  await source.close();
  const src = openDatabase(opts.path, { readonly: true });
  const target = openPostgres(url, { max: 1, connectTimeoutS: 5 });
  try {
    try {
      await migratePg(target, ctx.now);
    } catch (err) {
      if (err instanceof TypeError) throw new CLIError(err.message);
      throw new CLIError(`cannot prepare ${redactUrl(url)}: ${describeDriverError(err)}`);
    }
    const tables = tablesInOrder(src);
    const counts = new Map<string, number>();
    // One read transaction on the file: the copy is one consistent snapshot.
    src.exec("BEGIN");
    try {
      await target.transaction(async () => {
        const occupied: string[] = [];
        // seal_keys alone is what any node writes when it first opens an empty database: key check
        // values, no data. They are replaced by the source's.
        for (const t of tables.filter((x) => x !== "seal_keys")) {
          const n = (await target.query<{ n: number }>(`SELECT count(*) AS n FROM ${t}`)).rows[0]!.n;
          if (n > 0) occupied.push(`${t} (${n})`);
        }
        if (occupied.length > 0 && !replace) {
          throw new CLIError(`the target database is not empty: ${occupied.slice(0, 5).join(", ")}${occupied.length > 5 ? ", …" : ""}; add --replace to delete its data first`);
        }
        await target.exec(`TRUNCATE ${tables.join(", ")} RESTART IDENTITY CASCADE`);
        for (const t of tables) counts.set(t, await copyTable(src, target, t));
        // Identity columns continue after the copied IDs.
        const identity = await target.query<{ t: string }>(
          "SELECT table_name AS t FROM information_schema.columns WHERE table_schema = current_schema() AND column_name = 'id' AND is_identity = 'YES'",
        );
        for (const { t } of identity.rows) {
          if (!tables.includes(t)) continue;
          await target.query(`SELECT setval(pg_get_serial_sequence($1, 'id'), GREATEST((SELECT max(id) FROM ${t}), 1), (SELECT max(id) FROM ${t}) IS NOT NULL)`, [t]);
        }
      });
    } finally {
      src.exec("ROLLBACK");
    }
    let total = 0;
    for (const [t, n] of counts) {
      total += n;
      if (n > 0) ctx.out(`${t}: ${n}\n`);
    }
    ctx.out(`copied ${total} rows from ${opts.path} to ${redactUrl(url)}; sealed values were copied sealed: every node needs the same key (key IDs ${keyIds.join(", ")})\n`);
    return 0;
  } finally {
    src.close();
    await target.close().catch(() => {});
  }
}

async function copyTable(src: SQLDatabase, target: PgDatabase, table: string): Promise<number> {
  const columns = src.prepare<Column>(`SELECT name FROM pragma_table_info('${table}')`).all().map((c) => c.name);
  const targetColumns = new Set((await target.query<{ c: string }>("SELECT column_name AS c FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1", [table])).rows.map((r) => r.c));
  const missing = columns.filter((c) => !targetColumns.has(c));
  if (missing.length > 0) throw new CLIError(`table ${table}: the target has no column ${missing[0]}; are both at schema ${LATEST_VERSION}?`);
  const rows = src.prepare<Record<string, unknown>>(`SELECT ${columns.map((c) => `"${c}"`).join(", ")} FROM ${table}`).all();
  const perStatement = Math.max(1, Math.floor(MAX_PARAMS / columns.length));
  const overriding = targetColumns.has("id") && columns.includes("id") ? " OVERRIDING SYSTEM VALUE" : "";
  for (let start = 0; start < rows.length; start += perStatement) {
    const chunk = rows.slice(start, start + perStatement);
    const params: PgValue[] = [];
    const tuples = chunk.map((row) => `(${columns.map((c) => (params.push(toPg(row[c])), `$${params.length}`)).join(", ")})`);
    await target.query(`INSERT INTO ${table} (${columns.map((c) => `"${c}"`).join(", ")})${overriding} VALUES ${tuples.join(", ")}`, params);
  }
  return rows.length;
}

function toPg(v: unknown): PgValue {
  if (v === null || v === undefined) return null;
  if (typeof v === "bigint") return Number(v);
  if (v instanceof Uint8Array) return Buffer.from(v).toString("utf8");
  return v as PgValue;
}
