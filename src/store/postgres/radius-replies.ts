// Idempotency records in PostgreSQL: the encoded reply to each completed Access-Request, kept for
// the retransmission window, so that a NAS failing over to another node with the same packet gets
// the same answer instead of a second evaluation.

import type { RadiusReplyRepo } from "../types.ts";
import { pgPrep, rethrow, type PgStoreContext } from "./context.ts";

export class PgRadiusReplyRepo implements RadiusReplyRepo {
  private readonly sGet;
  private readonly sPut;
  private readonly sPurge;

  constructor(ctx: PgStoreContext) {
    const { db } = ctx;
    this.sGet = pgPrep<{ reply: string }>(db, "SELECT reply FROM radius_replies WHERE key = ? AND expires_at > ?");
    // The first answer stands: a second node that evaluated the same packet meanwhile keeps the first record.
    this.sPut = pgPrep(db, "INSERT INTO radius_replies (key, reply, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING");
    this.sPurge = pgPrep(db, "DELETE FROM radius_replies WHERE expires_at <= ?");
  }

  async get(key: string, now: number): Promise<Uint8Array | undefined> {
    try {
      const row = await this.sGet.get(key, now);
      return row ? new Uint8Array(Buffer.from(row.reply, "base64")) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async put(key: string, reply: Uint8Array, expiresAt: number): Promise<void> {
    try {
      await this.sPut.run(key, Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength).toString("base64"), expiresAt);
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
