// RADIUS clients in SQLite; the shared secret is sealed, bound to the client's name.

import type { SealContext } from "../seal.ts";
import { StoreError, type ClientRepo, type FirstFactor, type NewRadiusClient, type OTPMode, type RadiusClient } from "../types.ts";
import { prep, rethrow, type StoreContext } from "./context.ts";

interface ClientRow {
  id: number;
  name: string;
  address: string;
  secret: string;
  first_factor: string;
  otp_mode: string;
  require_message_authenticator: number;
  allow_password_only: number;
  directories: string | null;
  created_at: number;
}

const COLUMNS = "id, name, address, secret, first_factor, otp_mode, require_message_authenticator, allow_password_only, directories, created_at";

/** Where a client's secret is sealed: the AD binds it to the client name. */
export function clientSecretContext(name: string): SealContext {
  return { table: "radius_clients", column: "secret", rowKey: name };
}

/**
 * The stored JSON array of profile names, or null ("every profile, then local").
 * Throws StoreError("corrupt") for anything else: guessing would change who may log in.
 */
function parseDirectories(text: string | null): string[] | null {
  if (text === null) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === "string")) {
    throw new StoreError("corrupt", "radius_clients.directories is not a JSON array of names");
  }
  return parsed;
}

export class SqliteClientRepo implements ClientRepo {
  private readonly sList;
  private readonly sFind;
  private readonly sInsert;
  private readonly sDelete;
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder();

  constructor(private readonly ctx: StoreContext) {
    const { db } = ctx;
    this.sList = prep<ClientRow>(db, `SELECT ${COLUMNS} FROM radius_clients ORDER BY name`);
    this.sFind = prep<ClientRow>(db, `SELECT ${COLUMNS} FROM radius_clients WHERE name = ?`);
    this.sInsert = prep(
      db,
      `INSERT INTO radius_clients (name, address, secret, first_factor, otp_mode, require_message_authenticator, allow_password_only, directories, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.sDelete = prep(db, "DELETE FROM radius_clients WHERE name = ?");
  }

  private toClient(row: ClientRow): RadiusClient {
    return {
      id: row.id,
      name: row.name,
      address: row.address,
      secret: this.decoder.decode(this.ctx.sealer.open(row.secret, clientSecretContext(row.name))),
      firstFactor: row.first_factor as FirstFactor,
      otpMode: row.otp_mode as OTPMode,
      requireMessageAuthenticator: row.require_message_authenticator === 1,
      allowPasswordOnly: row.allow_password_only === 1,
      directories: parseDirectories(row.directories),
      createdAt: row.created_at,
    };
  }

  /** Throws StoreError("corrupt" | "key_mismatch") when a secret cannot be opened. */
  async list(): Promise<RadiusClient[]> {
    try {
      return this.sList.all().map((r) => this.toClient(r));
    } catch (err) {
      rethrow(err);
    }
  }

  async findByName(name: string): Promise<RadiusClient | undefined> {
    try {
      const row = this.sFind.get(name);
      return row ? this.toClient(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  /** Throws StoreError("conflict") when the name exists. */
  async add(client: NewRadiusClient): Promise<RadiusClient> {
    const createdAt = this.ctx.now();
    try {
      const sealed = this.ctx.sealer.seal(this.encoder.encode(client.secret), clientSecretContext(client.name));
      const { lastInsertRowid } = this.sInsert.run(
        client.name,
        client.address,
        sealed,
        client.firstFactor,
        client.otpMode,
        client.requireMessageAuthenticator ? 1 : 0,
        client.allowPasswordOnly ? 1 : 0,
        client.directories === null ? null : JSON.stringify(client.directories),
        createdAt,
      );
      this.ctx.bumpGeneration();
      return { ...client, id: Number(lastInsertRowid), createdAt };
    } catch (err) {
      rethrow(err, { conflict: `client '${client.name}' exists` });
    }
  }

  async remove(name: string): Promise<boolean> {
    try {
      const removed = this.sDelete.run(name).changes > 0;
      if (removed) this.ctx.bumpGeneration();
      return removed;
    } catch (err) {
      rethrow(err);
    }
  }

}
