// Test helpers for the store: temporary data directories and sample records.

import { afterAll, afterEach, beforeAll, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { setLogSink } from "../../../src/audit/log.ts";
import { openPgStore, type PgStore } from "../../../src/store/postgres/store.ts";
import { openSqliteStore, type SqliteStore, type SqliteStoreOptions } from "../../../src/store/sqlite/store.ts";
import { POSTGRES_SKIP_REASON, startPostgres, type PostgresServer } from "../../integration/helpers/postgres.ts";
import { StoreError, type NewRadiusClient, type NewToken, type NewUser } from "../../../src/store/types.ts";

setLogSink(() => {});

/** A fresh directory under the OS temp dir, removed by cleanup(). */
export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-store-"));
}

export function cleanup(dir: string | undefined): void {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}

export type Backend = "sqlite" | "postgres";

/**
 * The back-ends a shared repository test runs against: SQLite always, PostgreSQL when its binaries
 * are installed (a warning names what is missing otherwise). Under Deno the PostgreSQL client is the
 * `postgres` package (src/runtime/postgres-deno.ts).
 */
export const BACKENDS: readonly Backend[] = POSTGRES_SKIP_REASON ? ["sqlite"] : ["sqlite", "postgres"];

let backend: Backend = "sqlite";
let server: Promise<PostgresServer> | undefined;
/** One database per data directory, so that a second openIn(dir) is a second node on the same data. */
const databases = new Map<string, Promise<string>>();

/** Makes openIn open this back-end, starting PostgreSQL if needed; call it in a describe's beforeAll. */
export async function useBackend(b: Backend): Promise<void> {
  backend = b;
  if (b === "postgres") await postgresServer();
}

/**
 * Called in the describe of one back-end: its tests run on `backend` (PostgreSQL started on first
 * use) and SQLite is the default again after them. Returns `test` on SQLite and `test.skip` on the
 * others, for the tests of SQLite internals (its file, its group commit, its raw handle).
 */
export function runOn(backend: Backend): typeof test | typeof test.skip {
  beforeAll(() => useBackend(backend), 120_000);
  afterAll(() => useBackend("sqlite"));
  return backend === "sqlite" ? test : test.skip;
}

/** The shared throwaway PostgreSQL server of this test file, started on first use and stopped at exit. */
export function postgresServer(): Promise<PostgresServer> {
  server ??= startPostgres().then((s) => {
    process.once("exit", () => s.destroy());
    return s;
  });
  return server;
}

/** The PostgreSQL database that stands for `dir` (created on first use). */
export function databaseFor(dir: string): Promise<string> {
  let url = databases.get(dir);
  if (!url) {
    url = postgresServer().then((s) => s.createDatabase());
    databases.set(dir, url);
  }
  return url;
}

/**
 * Opens a store in `dir` with an empty environment (no $PORTCULLIS_KEY leaking in from the shell):
 * SQLite in `dir`, or (after useBackend("postgres")) a PostgreSQL database of its own per `dir`
 * with the key file in `dir`. Typed as SqliteStore so the shared tests compile against either.
 */
export async function openIn(dir: string, options: Partial<SqliteStoreOptions> = {}): Promise<SqliteStore> {
  if (backend === "postgres") {
    const { path: _p, synchronous: _s, busyTimeoutMs: _b, ...rest } = options;
    const store: PgStore = await openPgStore({ url: await databaseFor(dir), dataDir: dir, env: {}, poolSize: 4, ...rest });
    return store as unknown as SqliteStore;
  }
  return openSqliteStore({ path: path.join(dir, "portcullis.db"), dataDir: dir, env: {}, ...options });
}

/** The StoreError `p` rejects with (anything else is rethrown; fulfilling is an error). */
export async function storeError(p: Promise<unknown>): Promise<StoreError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof StoreError) return err;
    throw err;
  }
  throw new Error("expected a StoreError");
}

/** The stores of one test on one data directory; see storesPerTest. */
export interface TestStores {
  /** The running test's data directory, made on first use. */
  readonly dir: string;
  /** Opens a store on `dir` (a second one is a second connection, as a second node); closed after the test. */
  open(options?: Partial<SqliteStoreOptions>): Promise<SqliteStore>;
  /** Closes `store` after the test too. */
  keep(store: SqliteStore): SqliteStore;
}

/**
 * Stores opened per test: called in a describe (or at the top of a file), it registers an afterEach
 * that closes every store the test opened and removes its data directory. `defaults` are the
 * options of every open() (openIn's, so the back-end chosen by useBackend).
 */
export function storesPerTest(defaults: Partial<SqliteStoreOptions> = {}): TestStores {
  let dir: string | undefined;
  const opened: SqliteStore[] = [];
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
    cleanup(dir);
    dir = undefined;
  });
  const stores: TestStores = {
    get dir() {
      dir ??= tempDir();
      return dir;
    },
    async open(options = {}) {
      return stores.keep(await openIn(stores.dir, { ...defaults, ...options }));
    },
    keep(store) {
      opened.push(store);
      return store;
    },
  };
  return stores;
}

export function newUser(username: string, patch: Partial<NewUser> = {}): NewUser {
  return { username, passwordHash: null, type: "totp", phone: null, email: null, disabled: false, expiresAt: null, directory: null, externalId: null, directoryPhone: null, ...patch };
}

export function newToken(serial: string, patch: Partial<NewToken> = {}): NewToken {
  return {
    serial,
    userId: null,
    kind: "totp",
    secret: new Uint8Array(20).map((_, i) => i + serial.length),
    algorithm: "SHA1",
    digits: 6,
    period: 30,
    state: "active",
    ...patch,
  };
}

/** A client with an address of its own, derived from its name: the store refuses two clients with one network. */
export function newClient(name: string, patch: Partial<NewRadiusClient> = {}): NewRadiusClient {
  let h = 0x811c9dc5; // FNV-1a
  for (const ch of name) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return {
    name,
    address: `10.${(h >>> 16) & 0xff}.${(h >>> 8) & 0xff}.${(h & 0xfe) + 1}/32`,
    secret: `shared-secret-of-${name}`,
    firstFactor: "password",
    otpMode: "challenge",
    requireMessageAuthenticator: true,
    allowPasswordOnly: false,
    directories: null,
    ...patch,
  };
}
