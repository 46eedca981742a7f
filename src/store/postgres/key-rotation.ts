// Key rotation on PostgreSQL (`portcullis key rotate`, POST /api/admin/v1/key/rotate): a new key
// appended to the key file, and every sealed value re-sealed under it in ONE transaction.
//
// One transaction, like SQLite: nothing changes unless all of it succeeds, and the CLI's admin event
// commits with it. The rows are locked (SELECT … FOR UPDATE) for the duration, so a login that
// writes one of them (a TOTP step, a HOTP counter) on another node waits for the commit instead of
// failing; the updates go 500 rows per statement to keep that wait short (docs/store.md gives the
// figures). Values written by a node that has not yet learnt the new key stay under the old one,
// which every node still holds: they open, and the next rotation re-seals them.
//
// A second rotation, on any node, waits on an advisory lock until the first has committed: the key
// file is extended while holding it, so two rotations against one shared key file serialise
// instead of each replacing the file with only its own new key.

import * as path from "node:path";
import { chownToDirectoryOwner } from "../../runtime/files.ts";
import type { PgDatabase } from "../../runtime/postgres.ts";
import { appendNewKey, describeSource, type Keyring } from "../keyring.ts";
import type { SealContext } from "../seal.ts";
import type { Sealer } from "../sealer.ts";
import { adminTotpContext } from "../sqlite/admin-accounts.ts";
import { clientSecretContext } from "../sqlite/clients.ts";
import { pendingSecretContext } from "../sqlite/self-service.ts";
import { namedSecretContext } from "../sqlite/server-secrets.ts";
import { tokenSecretContext } from "../sqlite/tokens.ts";
import { StoreError } from "../types.ts";
import { valuesList } from "./context.ts";

/** Any fixed number other than the migration lock's: serialises key rotations across nodes. */
const KEY_ROTATION_LOCK = 7_106_002;
/** Rows re-sealed per UPDATE statement. */
export const RESEAL_BATCH = 500;

/** One sealed column: its table, the unique TEXT column that names the row in the seal's context, and that context. */
interface SealedColumn {
  table: string;
  column: string;
  rowKey: string;
  context: (rowKey: string) => SealContext;
}

/** Every sealed column of the schema (the SQLite rotation re-seals the same ones). */
export const SEALED_COLUMNS: readonly SealedColumn[] = [
  { table: "radius_clients", column: "secret", rowKey: "name", context: clientSecretContext },
  { table: "tokens", column: "secret", rowKey: "serial", context: tokenSecretContext },
  { table: "server_secrets", column: "value", rowKey: "name", context: namedSecretContext },
  { table: "admin_accounts", column: "totp_secret", rowKey: "name", context: adminTotpContext },
  { table: "self_service_sessions", column: "pending_secret", rowKey: "id_hash", context: pendingSecretContext },
];

/** SQL counting the sealed values whose text matches LIKE $1 across every sealed column. */
export const COUNT_SEALED_LIKE_SQL = `SELECT ${SEALED_COLUMNS.map((c) => `(SELECT count(*) FROM ${c.table} WHERE ${c.column} LIKE $1)`).join(" + ")} AS n`;

export interface PgKeyRotationDeps {
  db: PgDatabase;
  sealer: Sealer;
  /** Writes the key-check row of a new key (in the current transaction). */
  insertCheckRow(keyring: Keyring, keyId: string): Promise<void>;
}

/**
 * Appends a new key to the key file (made current) and re-seals every sealed value under it in one
 * transaction. Throws StoreError("unavailable") when the key does not come from a key file, and
 * the repositories' errors when a value cannot be opened (the transaction rolls back; the key file
 * then merely holds one more, unused, key).
 */
export async function rotatePgKey({ db, sealer, insertCheckRow }: PgKeyRotationDeps): Promise<{ keyId: string; resealed: number }> {
  const keyring = sealer.keyring;
  if (keyring.source.kind !== "file") {
    throw new StoreError(
      "unavailable",
      `key rotation appends to the key file, but the key comes from ${describeSource(keyring.source)}; add a key there instead`,
    );
  }
  const reseal = (sealed: string, ctx: SealContext) => sealer.seal(sealer.open(sealed, ctx), ctx);
  try {
    return await db.transaction(async () => {
      await db.query("SELECT pg_advisory_xact_lock($1)", [KEY_ROTATION_LOCK]);
      const key = appendNewKey(keyring);
      chownToDirectoryOwner(path.dirname(keyring.source.path!), [keyring.source.path!]);
      await insertCheckRow(keyring, key.id);
      // The check row is written above, in this transaction: the sealer must not write it again on
      // its own (unawaited) when it first seals under the new key.
      sealer.markChecked(key.id);
      let resealed = 0;
      for (const c of SEALED_COLUMNS) {
        const { rows } = await db.query<{ k: string; v: string }>(
          `SELECT ${c.rowKey} AS k, ${c.column} AS v FROM ${c.table} WHERE ${c.column} IS NOT NULL ORDER BY ${c.rowKey} FOR UPDATE`,
        );
        for (let i = 0; i < rows.length; i += RESEAL_BATCH) {
          const batch = rows.slice(i, i + RESEAL_BATCH);
          const params = batch.flatMap((r) => [r.k, reseal(r.v, c.context(r.k))]);
          const { count } = await db.query(
            `UPDATE ${c.table} AS t SET ${c.column} = v.sealed FROM (VALUES ${valuesList(batch.length, ["text", "text"])}) AS v (k, sealed) WHERE t.${c.rowKey} = v.k`,
            params,
          );
          resealed += count;
        }
      }
      return { keyId: key.id, resealed };
    });
  } catch (err) {
    // The new key's check row rolled back with the transaction, but the key file keeps the key
    // (current here from now on): the sealer writes its row when it next seals under it.
    sealer.forgetChecked();
    throw err;
  }
}
