// Named server secrets in SQLite (server_secrets): sealed at rest, created once for every process on the store.

import { log } from "../../audit/log.ts";
import type { SealContext } from "../seal.ts";
import { StoreError, type ServerSecretRepo } from "../types.ts";
import { prep, rethrow, type Sealer, type StoreContext } from "./context.ts";

/** Where a server secret is sealed: bound to its name (the same context magic-links.ts uses). */
export function namedSecretContext(name: string): SealContext {
  return { table: "server_secrets", column: "value", rowKey: name };
}

export class SqliteServerSecretRepo implements ServerSecretRepo {
  private readonly sGet;
  private readonly sAdd;
  private readonly sReplace;
  private readonly sealer: Sealer;
  private readonly now: () => number;

  constructor(ctx: StoreContext) {
    const { db } = ctx;
    this.sealer = ctx.sealer;
    this.now = ctx.now;
    this.sGet = prep<{ value: string }>(db, "SELECT value FROM server_secrets WHERE name = ?");
    this.sAdd = prep(db, "INSERT INTO server_secrets (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING");
    this.sReplace = prep(db, "UPDATE server_secrets SET value = ?, created_at = ? WHERE name = ? AND value = ?");
  }

  async get(name: string, create: () => Uint8Array, { minBytes = 32 }: { minBytes?: number } = {}): Promise<Uint8Array> {
    const ctx = namedSecretContext(name);
    const fresh = () => {
      const bytes = create();
      if (bytes.length < minBytes) throw new TypeError(`server secret ${name} must be at least ${minBytes} bytes`);
      return bytes;
    };
    try {
      // Insert-if-absent, then read what won; a value sealed under a lost key is replaced only if no
      // other process replaced it first (the conditional UPDATE), and the winner's value is read again.
      for (let round = 0; round < 3; round++) {
        const row = this.sGet.get(name);
        if (!row) {
          this.sAdd.run(name, this.sealer.seal(fresh(), ctx), this.now());
          continue;
        }
        try {
          return this.sealer.open(row.value, ctx);
        } catch (err) {
          if (!(err instanceof StoreError) || err.code !== "key_mismatch") throw err;
          log("warn", "store.server_secret.replaced", { name, detail: "sealed under a key the keyring no longer holds" });
          this.sReplace.run(this.sealer.seal(fresh(), ctx), this.now(), name, row.value);
        }
      }
      throw new StoreError("unavailable", `the server secret ${name} could not be settled`);
    } catch (err) {
      rethrow(err);
    }
  }
}
