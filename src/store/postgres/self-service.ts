// The self-service portal's sign-in links and sessions in PostgreSQL, with the same statements as
// SQLite: single-use links consumed by one DELETE … RETURNING (of two nodes exactly one gets the
// row), sessions found and touched by one UPDATE … RETURNING, and the seed of a TOTP app being
// enrolled sealed to its session's row.

import type { SealContext } from "../seal.ts";
import type { SelfServiceLink, SelfServiceMethod, SelfServiceRepo, SelfServiceSession } from "../types.ts";
import type { Sealer } from "../sealer.ts";
import { pendingSecretContext } from "../sqlite/self-service.ts";
import { pgPrep, rethrow, type PgStoreContext } from "./context.ts";

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

export class PgSelfServiceRepo implements SelfServiceRepo {
  private readonly sAddLink;
  private readonly sConsumeLink;
  private readonly sAddSession;
  private readonly sTouch;
  private readonly sDeleteSession;
  private readonly sSetPending;
  private readonly sPurgeLinks;
  private readonly sPurgeSessions;
  private readonly sealer: Sealer;

  constructor(ctx: PgStoreContext) {
    const { db } = ctx;
    this.sealer = ctx.sealer;
    this.sAddLink = pgPrep(db, "INSERT INTO self_service_links (code_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)");
    this.sConsumeLink = pgPrep<{ user_id: number; expires_at: number }>(db, "DELETE FROM self_service_links WHERE code_hash = ? RETURNING user_id, expires_at");
    this.sAddSession = pgPrep(db, "INSERT INTO self_service_sessions (id_hash, user_id, method, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)");
    this.sTouch = pgPrep<SessionRow>(
      db,
      "UPDATE self_service_sessions SET last_seen_at = ? WHERE id_hash = ? AND expires_at > ? AND last_seen_at > ? " +
        "RETURNING id_hash, user_id, method, created_at, last_seen_at, expires_at, pending_secret, pending_expires_at",
    );
    this.sDeleteSession = pgPrep(db, "DELETE FROM self_service_sessions WHERE id_hash = ?");
    this.sSetPending = pgPrep(db, "UPDATE self_service_sessions SET pending_secret = ?, pending_expires_at = ? WHERE id_hash = ?");
    this.sPurgeLinks = pgPrep(db, "DELETE FROM self_service_links WHERE expires_at <= ?");
    this.sPurgeSessions = pgPrep(db, "DELETE FROM self_service_sessions WHERE expires_at <= ? OR last_seen_at <= ?");
  }

  async addLink(link: SelfServiceLink): Promise<void> {
    try {
      await this.sAddLink.run(link.codeHash, link.userId, link.createdAt, link.expiresAt);
    } catch (err) {
      rethrow(err, { conflict: "an identical link code exists", missing: "the user no longer exists" });
    }
  }

  async consumeLink(codeHash: string, now: number): Promise<number | undefined> {
    try {
      // Deleted whether live or expired: a link is tried once.
      const row = await this.sConsumeLink.get(codeHash);
      return row && row.expires_at > now ? row.user_id : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async addSession(s: Omit<SelfServiceSession, "pending">): Promise<void> {
    try {
      await this.sAddSession.run(s.idHash, s.userId, s.method, s.createdAt, s.lastSeenAt, s.expiresAt);
    } catch (err) {
      rethrow(err, { conflict: "an identical session ID exists", missing: "the user no longer exists" });
    }
  }

  async touchSession(idHash: string, now: number, idleMs: number): Promise<SelfServiceSession | undefined> {
    try {
      const row = await this.sTouch.get(now, idHash, now, now - idleMs);
      if (!row) {
        await this.sDeleteSession.run(idHash);
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
      return (await this.sDeleteSession.run(idHash)) > 0;
    } catch (err) {
      rethrow(err);
    }
  }

  async setPending(idHash: string, pending: { secret: Uint8Array; expiresAt: number } | null): Promise<void> {
    try {
      if (pending === null) await this.sSetPending.run(null, null, idHash);
      else await this.sSetPending.run(this.sealer.seal(pending.secret, pendingSecretContext(idHash)), pending.expiresAt, idHash);
    } catch (err) {
      rethrow(err);
    }
  }

  async purgeExpired(now: number, idleMs: number): Promise<number> {
    try {
      return (await this.sPurgeLinks.run(now)) + (await this.sPurgeSessions.run(now, now - idleMs));
    } catch (err) {
      rethrow(err);
    }
  }
}
