// Magic Link sessions in SQLite: consumables answered by one conditional UPDATE.

import { log } from "../../audit/log.ts";
import type { SealContext } from "../seal.ts";
import { StoreError, type MagicLinkRepo, type MagicLinkSession, type MagicLinkStatus } from "../types.ts";
import { prep, rethrow, type Sealer, type StoreContext } from "./context.ts";

/** The name of the Magic Link server secret in server_secrets. */
export const MAGICLINK_SECRET_NAME = "magiclink";

/** Where a server secret is sealed: bound to its name. */
export function serverSecretContext(name: string): SealContext {
  return { table: "server_secrets", column: "value", rowKey: name };
}

interface SessionRow {
  id: string;
  link_hash: string;
  msisdn: string;
  endpoint: string;
  api_key_id: number;
  status: MagicLinkStatus;
  texts: string;
  number_match: number | null;
  created_at: number;
  expires_at: number;
  answered_at: number | null;
}

const COLUMNS = "id, link_hash, msisdn, endpoint, api_key_id, status, texts, number_match, created_at, expires_at, answered_at";

function toSession(row: SessionRow): MagicLinkSession {
  return {
    id: row.id,
    linkHash: row.link_hash,
    msisdn: row.msisdn,
    endpoint: row.endpoint,
    apiKeyId: row.api_key_id,
    status: row.status,
    texts: row.texts,
    numberMatch: row.number_match,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    answeredAt: row.answered_at,
  };
}

export class SqliteMagicLinkRepo implements MagicLinkRepo {
  private readonly sCreate;
  private readonly sGet;
  private readonly sByLink;
  private readonly sAnswer;
  private readonly sExpire;
  private readonly sPurge;
  private readonly sAnsweredSince;
  private readonly sSecretGet;
  private readonly sSecretAdd;
  private readonly sSecretReplace;
  private readonly sealer: Sealer;
  private readonly now: () => number;

  constructor(ctx: StoreContext) {
    const { db } = ctx;
    this.sealer = ctx.sealer;
    this.now = ctx.now;
    this.sCreate = prep(db, `INSERT INTO magiclink_sessions (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    this.sGet = prep<SessionRow>(db, `SELECT ${COLUMNS} FROM magiclink_sessions WHERE id = ?`);
    this.sByLink = prep<SessionRow>(db, `SELECT ${COLUMNS} FROM magiclink_sessions WHERE link_hash = ?`);
    // One statement: of any number of concurrent answers exactly one sees status = 'pending'.
    this.sAnswer = prep(db, "UPDATE magiclink_sessions SET status = ?, answered_at = ? WHERE id = ? AND status = 'pending' AND expires_at > ?");
    this.sExpire = prep(db, "UPDATE magiclink_sessions SET status = 'expired', answered_at = ? WHERE id = ? AND status = 'pending' AND expires_at <= ?");
    this.sPurge = prep(db, "DELETE FROM magiclink_sessions WHERE expires_at < ?");
    this.sAnsweredSince = prep<{ id: string; status: Exclude<MagicLinkStatus, "pending"> }>(
      db,
      "SELECT id, status FROM magiclink_sessions WHERE answered_at >= ? AND status <> 'pending'",
    );
    this.sSecretGet = prep<{ value: string }>(db, "SELECT value FROM server_secrets WHERE name = ?");
    this.sSecretAdd = prep(db, "INSERT INTO server_secrets (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING");
    this.sSecretReplace = prep(db, "UPDATE server_secrets SET value = ?, created_at = ? WHERE name = ? AND value = ?");
  }

  /** Throws StoreError("conflict") on a duplicate id or link hash. */
  async create(s: MagicLinkSession): Promise<void> {
    try {
      this.sCreate.run(s.id, s.linkHash, s.msisdn, s.endpoint, s.apiKeyId, s.status, s.texts, s.numberMatch, s.createdAt, s.expiresAt, s.answeredAt);
    } catch (err) {
      rethrow(err, { conflict: "magic link session already exists" });
    }
  }

  async get(id: string): Promise<MagicLinkSession | undefined> {
    try {
      const row = this.sGet.get(id);
      return row ? toSession(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async findByLink(linkHash: string): Promise<MagicLinkSession | undefined> {
    try {
      const row = this.sByLink.get(linkHash);
      return row ? toSession(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async answer(id: string, status: Exclude<MagicLinkStatus, "pending">, now: number): Promise<boolean> {
    try {
      return this.sAnswer.run(status, now, id, now).changes === 1;
    } catch (err) {
      rethrow(err);
    }
  }

  async markExpired(id: string, now: number): Promise<boolean> {
    try {
      return this.sExpire.run(now, id, now).changes === 1;
    } catch (err) {
      rethrow(err);
    }
  }

  async purgeExpired(before: number): Promise<number> {
    try {
      return this.sPurge.run(before).changes;
    } catch (err) {
      rethrow(err);
    }
  }

  async answeredSince(since: number): Promise<Array<{ id: string; status: Exclude<MagicLinkStatus, "pending"> }>> {
    try {
      return this.sAnsweredSince.all(since);
    } catch (err) {
      rethrow(err);
    }
  }

  async serverSecret(create: () => Uint8Array): Promise<Uint8Array> {
    const name = MAGICLINK_SECRET_NAME;
    const ctx = serverSecretContext(name);
    const fresh = () => {
      const bytes = create();
      if (bytes.length < 32) throw new TypeError("a server secret must be at least 32 bytes");
      return bytes;
    };
    try {
      // Up to three rounds: insert-if-absent, then read; a stale (lost-key) value is replaced only
      // if no other process replaced it first, and the winner's value is read again.
      for (let round = 0; round < 3; round++) {
        const row = this.sSecretGet.get(name);
        if (!row) {
          this.sSecretAdd.run(name, this.sealer.seal(fresh(), ctx), this.now());
          continue;
        }
        try {
          return this.sealer.open(row.value, ctx);
        } catch (err) {
          if (!(err instanceof StoreError) || err.code !== "key_mismatch") throw err;
          log("warn", "store.server_secret.replaced", { name, detail: "sealed under a key the keyring no longer holds; pending approval pages become stale" });
          this.sSecretReplace.run(this.sealer.seal(fresh(), ctx), this.now(), name, row.value);
        }
      }
      throw new StoreError("unavailable", "the server secret could not be settled");
    } catch (err) {
      rethrow(err);
    }
  }
}
