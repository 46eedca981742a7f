// Idempotency records in PostgreSQL: the encoded reply to each completed Access-Request, kept for
// the retransmission window, so that a NAS failing over to another node with the same packet gets
// the same answer instead of a second evaluation. Every new Access-Request reads here and every
// reply writes here, so the reads of one event-loop turn are one statement, and so are the writes.

import type { RadiusReplyRepo } from "../types.ts";
import { BatchedRead } from "./batch.ts";
import { pgPrep, rethrow, valuesList, type PgStoreContext } from "./context.ts";

interface ReplyRow {
  key: string;
  reply: string;
  expires_at: number;
}

/** Rows per INSERT. */
const WRITE_BATCH_MAX = 256;

interface PendingWrite {
  key: string;
  reply: string;
  expiresAt: number;
  resolve(): void;
  reject(err: unknown): void;
}

export class PgRadiusReplyRepo implements RadiusReplyRepo {
  private readonly sGet;
  private readonly sPurge;
  private readonly byKey: BatchedRead<ReplyRow>;
  private writes: PendingWrite[] = [];
  private writeScheduled = false;

  constructor(private readonly ctx: PgStoreContext) {
    const { db } = ctx;
    this.sGet = pgPrep<ReplyRow>(db, "SELECT key, reply, expires_at FROM radius_replies WHERE key = ?");
    this.byKey = new BatchedRead<ReplyRow>(
      db,
      "SELECT key, reply, expires_at FROM radius_replies WHERE key = ANY (ARRAY(SELECT jsonb_array_elements_text(?::text::jsonb)))",
      (r) => r.key,
      (...p) => this.sGet.all(...p),
    );
    this.sPurge = pgPrep(db, "DELETE FROM radius_replies WHERE expires_at <= ?");
  }

  async get(key: string, now: number): Promise<Uint8Array | undefined> {
    try {
      const row = (await this.byKey.load(key, key, [key]))[0];
      return row && row.expires_at > now ? new Uint8Array(Buffer.from(row.reply, "base64")) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async put(key: string, reply: Uint8Array, expiresAt: number): Promise<void> {
    const encoded = Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength).toString("base64");
    try {
      await new Promise<void>((resolve, reject) => {
        this.writes.push({ key, reply: encoded, expiresAt, resolve, reject });
        if (this.writes.length >= WRITE_BATCH_MAX) return void this.flushWrites();
        if (!this.writeScheduled) {
          this.writeScheduled = true;
          setImmediate(() => {
            this.writeScheduled = false;
            void this.flushWrites();
          });
        }
      });
    } catch (err) {
      rethrow(err);
    }
  }

  /**
   * One INSERT for the writes of a turn. The first answer stands: a record already there (another
   * node answered the same packet first), or an earlier row of the same statement, is kept.
   */
  private async flushWrites(): Promise<void> {
    const batch = this.writes;
    this.writes = [];
    if (batch.length === 0) return;
    const params = batch.flatMap((w) => [w.key, w.reply, w.expiresAt]);
    try {
      await this.ctx.db.query(`INSERT INTO radius_replies (key, reply, expires_at) VALUES ${valuesList(batch.length, ["text", "text", "bigint"])} ON CONFLICT (key) DO NOTHING`, params);
      for (const w of batch) w.resolve();
    } catch (err) {
      for (const w of batch) w.reject(err);
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
