// RADIUS clients in PostgreSQL; the shared secret is sealed, bound to the client's name.

import { formatNetwork, parseCIDR } from "../../util/cidr.ts";
import { clientSecretContext } from "../sqlite/clients.ts";
import {
  DEFAULT_CLIENT_PHONE,
  NetworkTakenError,
  StoreError,
  type ApprovalMode,
  type ClientPhoneSettings,
  type ClientRepo,
  type FirstFactor,
  type NewRadiusClient,
  type OTPMode,
  type RadiusClient,
  type SmsCodeAlphabetName,
} from "../types.ts";
import { pgPrep, rethrow, type PgStoreContext } from "./context.ts";

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
  approval_hold_s: number;
  approval_mode: string;
  approval_number_match: number;
  sms_code_length: number | null;
  sms_code_alphabet: string | null;
  created_at: number;
}

const COLUMNS =
  "id, name, address, secret, first_factor, otp_mode, require_message_authenticator, allow_password_only, directories, approval_hold_s, approval_mode, approval_number_match, sms_code_length, sms_code_alphabet, created_at";

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

export class PgClientRepo implements ClientRepo {
  private readonly sList;
  private readonly sFind;
  private readonly sInsert;
  private readonly sDelete;
  private readonly sAddresses;
  private readonly sUpdatePhone;
  private readonly sLock;
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder();

  constructor(private readonly ctx: PgStoreContext) {
    const { db } = ctx;
    this.sList = pgPrep<ClientRow>(db, `SELECT ${COLUMNS} FROM radius_clients ORDER BY name`);
    this.sFind = pgPrep<ClientRow>(db, `SELECT ${COLUMNS} FROM radius_clients WHERE name = ?`);
    this.sInsert = pgPrep<{ id: number }>(
      db,
      `INSERT INTO radius_clients (name, address, secret, first_factor, otp_mode, require_message_authenticator, allow_password_only, directories,
         approval_hold_s, approval_mode, approval_number_match, sms_code_length, sms_code_alphabet, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
    );
    this.sUpdatePhone = pgPrep(
      db,
      "UPDATE radius_clients SET approval_hold_s = ?, approval_mode = ?, approval_number_match = ?, sms_code_length = ?, sms_code_alphabet = ? WHERE name = ?",
    );
    this.sDelete = pgPrep(db, "DELETE FROM radius_clients WHERE name = ?");
    this.sAddresses = pgPrep<{ name: string; address: string }>(db, "SELECT name, address FROM radius_clients ORDER BY name");
    // Serialises client additions (readers are not blocked): the duplicate-network check and the
    // insert then see every committed addition, as SQLite's single writer guarantees.
    this.sLock = pgPrep(db, "LOCK TABLE radius_clients IN SHARE ROW EXCLUSIVE MODE");
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
      approvalHoldS: row.approval_hold_s,
      approvalMode: row.approval_mode as ApprovalMode,
      approvalNumberMatch: row.approval_number_match === 1,
      smsCodeLength: row.sms_code_length,
      smsCodeAlphabet: row.sms_code_alphabet as SmsCodeAlphabetName | null,
      createdAt: row.created_at,
    };
  }

  async list(): Promise<RadiusClient[]> {
    try {
      return (await this.sList.all()).map((r) => this.toClient(r));
    } catch (err) {
      rethrow(err);
    }
  }

  async findByName(name: string): Promise<RadiusClient | undefined> {
    try {
      const row = await this.sFind.get(name);
      return row ? this.toClient(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async add(client: NewRadiusClient): Promise<RadiusClient> {
    const createdAt = this.ctx.now();
    const full = { ...DEFAULT_CLIENT_PHONE, ...client };
    try {
      const sealed = this.ctx.sealer.seal(this.encoder.encode(client.secret), clientSecretContext(client.name));
      const id = await this.ctx.db.transaction(async () => {
        await this.sLock.run();
        const net = parseCIDR(full.address);
        if (net) {
          const network = formatNetwork(net);
          for (const row of await this.sAddresses.all()) {
            if (row.name === full.name) continue; // the insert reports the name conflict
            const other = parseCIDR(row.address);
            if (other && formatNetwork(other) === network) throw new NetworkTakenError(network, row.name);
          }
        }
        const row = await this.sInsert.get(
          full.name,
          full.address,
          sealed,
          full.firstFactor,
          full.otpMode,
          full.requireMessageAuthenticator ? 1 : 0,
          full.allowPasswordOnly ? 1 : 0,
          full.directories === null ? null : JSON.stringify(full.directories),
          ...phoneColumns(full),
          createdAt,
        );
        return row!.id;
      });
      this.ctx.bumpGeneration();
      return { ...full, id, createdAt };
    } catch (err) {
      rethrow(err, { conflict: `client '${client.name}' exists` });
    }
  }

  async remove(name: string): Promise<boolean> {
    try {
      const removed = (await this.ctx.db.atomic(() => this.sDelete.run(name))) > 0;
      if (removed) this.ctx.bumpGeneration();
      return removed;
    } catch (err) {
      rethrow(err);
    }
  }

  async updatePhone(name: string, patch: Partial<ClientPhoneSettings>): Promise<RadiusClient | undefined> {
    try {
      const row = await this.sFind.get(name);
      if (!row) return undefined;
      const next = { ...this.toClient(row), ...patch };
      await this.ctx.db.atomic(() => this.sUpdatePhone.run(...phoneColumns(next), name));
      this.ctx.bumpGeneration();
      return next;
    } catch (err) {
      rethrow(err);
    }
  }
}

function phoneColumns(c: ClientPhoneSettings): [number, string, number, number | null, string | null] {
  return [c.approvalHoldS, c.approvalMode, c.approvalNumberMatch ? 1 : 0, c.smsCodeLength, c.smsCodeAlphabet];
}
