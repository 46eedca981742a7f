// Approvals in SQLite: consumables answered by one conditional UPDATE, one pending per kind, user and
// client (a unique partial index), and the sealed server secret.

import { APPROVAL_KINDS, StoreError, type Approval, type ApprovalChannel, type ApprovalKind, type ApprovalOutcome, type ApprovalRepo, type ApprovalState, type CreateOrJoin } from "../types.ts";
import { prep, rethrow, type StoreContext } from "./context.ts";
import { SqliteServerSecretRepo } from "./server-secrets.ts";

/** The name of the server secret in server_secrets ("magiclink": the name it was created under, kept so pages survive upgrades). */
export const SERVER_SECRET_NAME = "magiclink";


interface ApprovalRow {
  id: string;
  kind: ApprovalKind;
  username: string | null;
  client: string;
  source: string | null;
  msisdn: string | null;
  api_key_id: number | null;
  state: ApprovalState;
  channel: ApprovalChannel | null;
  link_hash: string | null;
  texts: string;
  number_match: number | null;
  created_at: number;
  expires_at: number;
  answered_at: number | null;
}

const COLUMNS = "id, kind, username, client, source, msisdn, api_key_id, state, channel, link_hash, texts, number_match, created_at, expires_at, answered_at";
const VALUES = "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?";

function toApproval(row: ApprovalRow): Approval {
  return {
    id: row.id,
    kind: row.kind,
    user: row.username,
    client: row.client,
    source: row.source,
    msisdn: row.msisdn,
    apiKeyId: row.api_key_id,
    state: row.state,
    channel: row.channel,
    linkHash: row.link_hash,
    texts: row.texts,
    numberMatch: row.number_match,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    answeredAt: row.answered_at,
  };
}

function params(a: Approval) {
  return [a.id, a.kind, a.user, a.client, a.source, a.msisdn, a.apiKeyId, a.state, a.channel, a.linkHash, a.texts, a.numberMatch, a.createdAt, a.expiresAt, a.answeredAt] as const;
}

/** Rounds of insert → read the pending one → expire it when stale, before giving up (each round ends only through another writer). */
const JOIN_ROUNDS = 4;

export class SqliteApprovalRepo implements ApprovalRepo {
  private readonly sCreate;
  private readonly sCreateOrNothing;
  private readonly sGet;
  private readonly sByLink;
  private readonly sPending;
  private readonly sPendingForUser;
  private readonly sPendingCounts;
  private readonly sAnswer;
  private readonly sExpire;
  private readonly sChannel;
  private readonly sPurge;
  private readonly sAnsweredSince;
  /** The approval pages' CSRF and number-matching secret is a named server secret like any other. */
  private readonly secrets: SqliteServerSecretRepo;
  private readonly now: () => number;

  constructor(ctx: StoreContext) {
    const { db } = ctx;
    this.now = ctx.now;
    this.sCreate = prep(db, `INSERT INTO approvals (${COLUMNS}) VALUES (${VALUES})`);
    // The conflict target names the partial index (approvals_one_pending): only a pending approval
    // for the same kind, user and client is "nothing to do"; a duplicate id or link hash still fails.
    this.sCreateOrNothing = prep(db, `INSERT INTO approvals (${COLUMNS}) VALUES (${VALUES}) ON CONFLICT (kind, username, client) WHERE state = 'pending' DO NOTHING`);
    this.sGet = prep<ApprovalRow>(db, `SELECT ${COLUMNS} FROM approvals WHERE id = ?`);
    this.sByLink = prep<ApprovalRow>(db, `SELECT ${COLUMNS} FROM approvals WHERE link_hash = ?`);
    this.sPending = prep<ApprovalRow>(db, `SELECT ${COLUMNS} FROM approvals WHERE kind = ? AND username = ? AND client = ? AND state = 'pending'`);
    // Every kind listed, so that the one-pending index (kind, username, client) WHERE state = 'pending'
    // serves it: no index of its own to write on every approval.
    this.sPendingCounts = prep<{ kind: ApprovalKind; n: number }>(db, "SELECT kind, count(*) AS n FROM approvals WHERE state = 'pending' AND expires_at > ? GROUP BY kind");
    this.sPendingForUser = prep<ApprovalRow>(
      db,
      `SELECT ${COLUMNS} FROM approvals WHERE kind IN (${APPROVAL_KINDS.map((k) => `'${k}'`).join(", ")}) AND username = ? AND state = 'pending' AND expires_at > ? ORDER BY created_at, id`,
    );
    // One statement: of any number of concurrent answers exactly one sees state = 'pending'.
    this.sAnswer = prep(db, "UPDATE approvals SET state = ?, answered_at = ? WHERE id = ? AND state = 'pending' AND expires_at > ?");
    this.sExpire = prep(db, "UPDATE approvals SET state = 'expired', answered_at = ? WHERE id = ? AND state = 'pending' AND expires_at <= ?");
    this.sChannel = prep(db, "UPDATE approvals SET channel = ? WHERE id = ?");
    this.sPurge = prep(db, "DELETE FROM approvals WHERE expires_at < ?");
    this.sAnsweredSince = prep<{ id: string; state: ApprovalOutcome }>(db, "SELECT id, state FROM approvals WHERE answered_at >= ? AND state <> 'pending'");
    this.secrets = new SqliteServerSecretRepo(ctx);
  }

  async create(a: Approval): Promise<void> {
    try {
      this.sCreate.run(...params(a));
    } catch (err) {
      rethrow(err, { conflict: "approval already exists (id, link, or a pending one for this user and client)" });
    }
  }

  async createOrJoin(a: Approval, now: number): Promise<CreateOrJoin> {
    const user = a.user;
    if (user === null) throw new TypeError("createOrJoin needs an approval with a user");
    try {
      for (let round = 0; round < JOIN_ROUNDS; round++) {
        if (this.sCreateOrNothing.run(...params(a)).changes === 1) return { created: true, approval: a };
        const row = this.sPending.get(a.kind, user, a.client);
        if (row && row.expires_at > now) return { created: false, approval: toApproval(row) };
        // Pending but past its expiry (nobody waited for it to end): close it, then insert again.
        // No row: it ended between the insert and the read; insert again.
        if (row) this.sExpire.run(now, row.id, now);
      }
      throw new StoreError("unavailable", "the pending approval for this user and client kept changing");
    } catch (err) {
      rethrow(err, { conflict: "approval already exists (id or link)" });
    }
  }

  async get(id: string): Promise<Approval | undefined> {
    try {
      const row = this.sGet.get(id);
      return row ? toApproval(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async findByLink(linkHash: string): Promise<Approval | undefined> {
    try {
      const row = this.sByLink.get(linkHash);
      return row ? toApproval(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async findPending(kind: ApprovalKind, user: string, client: string, now: number): Promise<Approval | undefined> {
    try {
      const row = this.sPending.get(kind, user, client);
      return row && row.expires_at > now ? toApproval(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async pendingForUser(user: string, now: number): Promise<Approval[]> {
    try {
      return this.sPendingForUser.all(user, now).map(toApproval);
    } catch (err) {
      rethrow(err);
    }
  }

  async pendingCounts(now: number): Promise<Partial<Record<ApprovalKind, number>>> {
    try {
      const out: Partial<Record<ApprovalKind, number>> = {};
      for (const r of this.sPendingCounts.all(now)) out[r.kind] = Number(r.n);
      return out;
    } catch (err) {
      rethrow(err);
    }
  }

  async answer(id: string, state: ApprovalOutcome, now: number): Promise<boolean> {
    try {
      return this.sAnswer.run(state, now, id, now).changes === 1;
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

  async setChannel(id: string, channel: ApprovalChannel): Promise<void> {
    try {
      this.sChannel.run(channel, id);
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

  async answeredSince(since: number): Promise<Array<{ id: string; state: ApprovalOutcome }>> {
    try {
      return this.sAnsweredSince.all(since);
    } catch (err) {
      rethrow(err);
    }
  }

  async serverSecret(create: () => Uint8Array): Promise<Uint8Array> {
    return this.secrets.get(SERVER_SECRET_NAME, create);
  }
}
