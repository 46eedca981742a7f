// Magic Link sessions in SQLite: consumables answered by one conditional UPDATE.

import type { MagicLinkRepo, MagicLinkSession, MagicLinkStatus } from "../types.ts";
import { prep, rethrow, type StoreContext } from "./context.ts";

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

  constructor(ctx: StoreContext) {
    const { db } = ctx;
    this.sCreate = prep(db, `INSERT INTO magiclink_sessions (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    this.sGet = prep<SessionRow>(db, `SELECT ${COLUMNS} FROM magiclink_sessions WHERE id = ?`);
    this.sByLink = prep<SessionRow>(db, `SELECT ${COLUMNS} FROM magiclink_sessions WHERE link_hash = ?`);
    // One statement: of any number of concurrent answers exactly one sees status = 'pending'.
    this.sAnswer = prep(db, "UPDATE magiclink_sessions SET status = ?, answered_at = ? WHERE id = ? AND status = 'pending' AND expires_at > ?");
    this.sExpire = prep(db, "UPDATE magiclink_sessions SET status = 'expired', answered_at = ? WHERE id = ? AND status = 'pending' AND expires_at <= ?");
    this.sPurge = prep(db, "DELETE FROM magiclink_sessions WHERE expires_at < ?");
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
}
