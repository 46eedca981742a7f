// Opening a store by driver: the one entry point the composition root uses.

import { openSqliteStore, type SqliteStoreOptions } from "./sqlite/store.ts";
import { type Store, StoreError } from "./types.ts";

/** SQLite options (see SqliteStoreOptions) plus the driver name. */
export type SqliteOpenOptions = { driver: "sqlite" } & SqliteStoreOptions;

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
