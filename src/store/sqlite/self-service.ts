// The self-service portal's sign-in links and sessions in SQLite: single-use links consumed by one
// DELETE … RETURNING, sessions found and touched by one UPDATE … RETURNING, and the seed of a TOTP
// app being enrolled sealed to its session's row.

import type { SealContext } from "../seal.ts";
import type { SelfServiceLink, SelfServiceMethod, SelfServiceRepo, SelfServiceSession } from "../types.ts";
import { prep, rethrow, type Sealer, type StoreContext } from "./context.ts";

interface SessionRow {
  id_hash: string;
  user_id: number;
  method: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
  pending_secret: string | null;
  pending_expires_at: number | null;
}

/** Where a pending TOTP seed is sealed: bound to its session. */
export function pendingSecretContext(idHash: string): SealContext {
  return { table: "self_service_sessions", column: "pending_secret", rowKey: idHash };
}

export class SqliteSelfServiceRepo implements SelfServiceRepo {
  private readonly sAddLink;
  private readonly sConsumeLink;
  private readonly sAddSession;
  private readonly sTouch;
  private readonly sDeleteSession;
  private readonly sSetPending;
  private readonly sPurgeLinks;
  private readonly sPurgeSessions;
  private readonly sealer: Sealer;

  constructor(ctx: StoreContext) {
    const { db } = ctx;
    this.sealer = ctx.sealer;
    this.sAddLink = prep(db, "INSERT INTO self_service_links (code_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)");
    this.sConsumeLink = prep<{ user_id: number; expires_at: number }>(db, "DELETE FROM self_service_links WHERE code_hash = ? RETURNING user_id, expires_at");
    this.sAddSession = prep(db, "INSERT INTO self_service_sessions (id_hash, user_id, method, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)");
    this.sTouch = prep<SessionRow>(
      db,
      "UPDATE self_service_sessions SET last_seen_at = ? WHERE id_hash = ? AND expires_at > ? AND last_seen_at > ? " +
        "RETURNING id_hash, user_id, method, created_at, last_seen_at, expires_at, pending_secret, pending_expires_at",
    );
    this.sDeleteSession = prep(db, "DELETE FROM self_service_sessions WHERE id_hash = ?");
    this.sSetPending = prep(db, "UPDATE self_service_sessions SET pending_secret = ?, pending_expires_at = ? WHERE id_hash = ?");
    this.sPurgeLinks = prep(db, "DELETE FROM self_service_links WHERE expires_at <= ?");
    this.sPurgeSessions = prep(db, "DELETE FROM self_service_sessions WHERE expires_at <= ? OR last_seen_at <= ?");
  }

  async addLink(link: SelfServiceLink): Promise<void> {
    try {
      this.sAddLink.run(link.codeHash, link.userId, link.createdAt, link.expiresAt);
    } catch (err) {
      rethrow(err, { conflict: "an identical link code exists", missing: "the user no longer exists" });
    }
  }

  async consumeLink(codeHash: string, now: number): Promise<number | undefined> {
    try {
      // Deleted whether live or expired: a link is tried once.
      const row = this.sConsumeLink.get(codeHash);
      return row && row.expires_at > now ? row.user_id : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async addSession(s: Omit<SelfServiceSession, "pending">): Promise<void> {
    try {
      this.sAddSession.run(s.idHash, s.userId, s.method, s.createdAt, s.lastSeenAt, s.expiresAt);
    } catch (err) {
      rethrow(err, { conflict: "an identical session ID exists", missing: "the user no longer exists" });
    }
  }

  async touchSession(idHash: string, now: number, idleMs: number): Promise<SelfServiceSession | undefined> {
    try {
      const row = this.sTouch.get(now, idHash, now, now - idleMs);
      if (!row) {
        this.sDeleteSession.run(idHash);
        return undefined;
      }
      let pending: SelfServiceSession["pending"] = null;
      if (row.pending_secret !== null && row.pending_expires_at !== null && row.pending_expires_at > now) {
        pending = { secret: this.sealer.open(row.pending_secret, pendingSecretContext(row.id_hash)), expiresAt: row.pending_expires_at };
      }
      return {
        idHash: row.id_hash,
        userId: row.user_id,
        method: row.method as SelfServiceMethod,
        createdAt: row.created_at,
        lastSeenAt: row.last_seen_at,
        expiresAt: row.expires_at,
        pending,
      };
    } catch (err) {
      rethrow(err);
    }
  }

  async removeSession(idHash: string): Promise<boolean> {
    try {
      return this.sDeleteSession.run(idHash).changes > 0;
    } catch (err) {
      rethrow(err);
    }
  }

  async setPending(idHash: string, pending: { secret: Uint8Array; expiresAt: number } | null): Promise<void> {
    try {
      if (pending === null) this.sSetPending.run(null, null, idHash);
      else this.sSetPending.run(this.sealer.seal(pending.secret, pendingSecretContext(idHash)), pending.expiresAt, idHash);
    } catch (err) {
      rethrow(err);
    }
  }

  async purgeExpired(now: number, idleMs: number): Promise<number> {
    try {
      return this.sPurgeLinks.run(now).changes + this.sPurgeSessions.run(now, now - idleMs).changes;
    } catch (err) {
      rethrow(err);
    }
  }
}
