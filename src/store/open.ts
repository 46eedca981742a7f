// Opening a store by driver: the one entry point the composition root uses.

import { openPgStore, type PgStoreOptions } from "./postgres/store.ts";
import { openSqliteStore, type SqliteStoreOptions } from "./sqlite/store.ts";
import { type Store, StoreError } from "./types.ts";

/** SQLite options (see SqliteStoreOptions) plus the driver name. */
export type SqliteOpenOptions = { driver: "sqlite" } & SqliteStoreOptions;
/** PostgreSQL options (see PgStoreOptions) plus the driver name. */
export type PostgresOpenOptions = { driver: "postgres" } & PgStoreOptions;

export type OpenStoreOptions = SqliteOpenOptions | PostgresOpenOptions;

/** The `[store]` and `[keys]` settings a store is opened from. */
export interface StoreSettings {
  data_dir: string;
  store: { path: string; url: string; pool_size: number; synchronous: "normal" | "full"; busy_timeout_ms: number };
  keys: { key_file: string };
}

/** PostgreSQL when `[store] url` (or $PORTCULLIS_STORE_URL) is set, SQLite otherwise. */
export function storeOptions(config: StoreSettings): OpenStoreOptions {
  const keyFile = config.keys.key_file || undefined;
  if (config.store.url) {
    return { driver: "postgres", url: config.store.url, dataDir: config.data_dir, keyFile, poolSize: config.store.pool_size };
  }
  return {
    driver: "sqlite",
    path: config.store.path,
    dataDir: config.data_dir,
    keyFile,
    synchronous: config.store.synchronous,
    busyTimeoutMs: config.store.busy_timeout_ms,
  };
}

/**
 * Opens the store. Throws StoreError("key_missing" | "key_mismatch" | "unavailable") as described
 * in sqlite/store.ts and postgres/store.ts, and TypeError for a malformed key source or an unknown driver.
 */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  switch (options.driver) {
    case "sqlite":
      return openSqliteStore(options);
    case "postgres":
      return openPgStore(options);
    default:
      throw new TypeError(`store driver '${(options as { driver: string }).driver}' is not supported`);
  }
}

/**
 * Rotates the sealing key (CLI `key rotate`). Throws StoreError("unavailable") when the back-end or
 * the key source cannot rotate.
 */
export async function rotateKey(store: Store): Promise<{ keyId: string; resealed: number }> {
  if (!store.rotateKey) throw new StoreError("unavailable", "this store cannot rotate its key");
  return store.rotateKey();
}
