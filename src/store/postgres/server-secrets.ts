// Named server secrets in PostgreSQL (server_secrets): sealed at rest, created once for every node.

import { log } from "../../audit/log.ts";
import type { Sealer } from "../sealer.ts";
import { namedSecretContext } from "../sqlite/server-secrets.ts";
import { StoreError, type ServerSecretRepo } from "../types.ts";
import { pgPrep, rethrow, type PgStoreContext } from "./context.ts";

export class PgServerSecretRepo implements ServerSecretRepo {
  private readonly sGet;
  private readonly sAdd;
  private readonly sReplace;
  private readonly sealer: Sealer;
  private readonly now: () => number;

  constructor(ctx: PgStoreContext) {
    const { db } = ctx;
    this.sealer = ctx.sealer;
    this.now = ctx.now;
    this.sGet = pgPrep<{ value: string }>(db, "SELECT value FROM server_secrets WHERE name = ?");
    this.sAdd = pgPrep(db, "INSERT INTO server_secrets (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING");
    this.sReplace = pgPrep(db, "UPDATE server_secrets SET value = ?, created_at = ? WHERE name = ? AND value = ?");
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
      // other node replaced it first (the conditional UPDATE), and the winner's value is read again.
      for (let round = 0; round < 3; round++) {
        const row = await this.sGet.get(name);
        if (!row) {
          await this.sAdd.run(name, this.sealer.seal(fresh(), ctx), this.now());
          continue;
        }
        try {
          return this.sealer.open(row.value, ctx);
        } catch (err) {
          if (!(err instanceof StoreError) || err.code !== "key_mismatch") throw err;
          log("warn", "store.server_secret.replaced", { name, detail: "sealed under a key the keyring no longer holds" });
          await this.sReplace.run(this.sealer.seal(fresh(), ctx), this.now(), name, row.value);
        }
      }
      throw new StoreError("unavailable", `the server secret ${name} could not be settled`);
    } catch (err) {
      rethrow(err);
    }
  }
}
