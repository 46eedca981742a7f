// Idempotency records in PostgreSQL: the encoded reply to each completed Access-Request, kept for
// the retransmission window, so that a NAS failing over to another node with the same packet gets
// the same answer instead of a second evaluation. Every new Access-Request reads here and every
// reply writes here: the lookups and records of one event-loop turn travel in the turn's one
// statement (turn-statement.ts), with the guarded high-water-mark UPDATE of that turn's logins.
// The table is UNLOGGED (migration 24): see docs/store.md for what a crash or failover loses.

import type { RadiusReplyRepo } from "../types.ts";
import { pgPrep, rethrow, type PgStoreContext } from "./context.ts";
import type { PgTurnStatement } from "./turn-statement.ts";

export class PgRadiusReplyRepo implements RadiusReplyRepo {
  private readonly sPurge;

  constructor(
    ctx: PgStoreContext,
    private readonly turn: PgTurnStatement,
  ) {
    this.sPurge = pgPrep(ctx.db, "DELETE FROM radius_replies WHERE expires_at <= ?");
  }

  async get(key: string, now: number): Promise<Uint8Array | undefined> {
    try {
      const row = await this.turn.lookup(key);
      return row && row.expires_at > now ? new Uint8Array(Buffer.from(row.reply, "base64")) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  /** Resolves once the record is committed; the first record of a key stands. */
  async put(key: string, reply: Uint8Array, expiresAt: number): Promise<void> {
    const encoded = Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength).toString("base64");
    try {
      await this.turn.record(key, encoded, expiresAt);
    } catch (err) {
      rethrow(err);
    }
  }

  async purgeExpired(now: number): Promise<number> {
    try {
      return await this.sPurge.run(now);
    } catch (err) {
      rethrow(err);
    }
  }
}
