// Opening a store by driver: the one entry point the composition root uses.

import { openSqliteStore } from "./sqlite/store.ts";
import { type Store, StoreError } from "./types.ts";

export interface SqliteOpenOptions {
  driver: "sqlite";
  /** Database file, e.g. `<data_dir>/portcullis.db`. */
  path: string;
  /** Data directory (created 0700 if missing); default key file location and owner of created files. */
  dataDir: string;
  /** Key file path; default `<dataDir>/portcullis.key`. */
  keyFile?: string;
  /** "normal" (default) survives a process crash; "full" also survives power loss. */
  synchronous?: "normal" | "full";
  /** Wait for another process's write lock, default 5000 ms (the CLI beside a running server). */
  busyTimeoutMs?: number;
  /** Environment for key lookup ($CREDENTIALS_DIRECTORY, $PORTCULLIS_KEY); default process.env. */
  env?: Record<string, string | undefined>;
  /** Clock for created_at; default Date.now. */
  now?: () => number;
}

export type OpenStoreOptions = SqliteOpenOptions;

/**
 * Opens the store. Throws StoreError("key_missing" | "key_mismatch" | "unavailable") as described
 * in sqlite/store.ts, and TypeError for a malformed key source or an unknown driver.
 */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  switch (options.driver) {
    case "sqlite":
      return openSqliteStore(options);
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
