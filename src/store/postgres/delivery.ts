// Delivery state in PostgreSQL: sliding-window rate-limit counters shared by every node, and the
// delivery log.

import { checkBuckets, countedFrom, fullUntil, refusal, slotExpiry, slotStart, type SlotCount } from "../rate-window.ts";
import type { DeliveryLogEntry, DeliveryLogRepo, DeliveryOutcome, NewDeliveryLogEntry, RateBucket, RateDecision, RateLimitRepo } from "../types.ts";
import { pgPrep, rethrow, valuesList, type PgStoreContext } from "./context.ts";

/** Sliding windows counted in sixtieth-of-a-window slots (see rate-window.ts): never more than the limit in any window-long span. */
export class PgRateLimitRepo implements RateLimitRepo {
  private readonly sLock;
  private readonly sSlots;
  private readonly sPurge;

  constructor(private readonly ctx: PgStoreContext) {
    const { db } = ctx;
    // A transaction-scoped advisory lock per bucket stands in for SQLite's single writer: a slot
    // without a row yet has nothing for FOR UPDATE to lock.
    this.sLock = pgPrep(db, "SELECT pg_advisory_xact_lock(hashtextextended(?, 7106))");
    this.sSlots = pgPrep<SlotCount>(db, "SELECT slot_start, hits FROM rate_limit_slots WHERE bucket = ? AND slot_start >= ? ORDER BY slot_start");
    this.sPurge = pgPrep(db, "DELETE FROM rate_limit_slots WHERE expires_at <= ?");
  }

  /** Check all, then count all, in one transaction holding every bucket's lock: two nodes never both take the last slot. */
  async consume(buckets: readonly RateBucket[], now: number): Promise<RateDecision> {
    checkBuckets(buckets);
    if (buckets.length === 0) return { allowed: true };
    try {
      return await this.ctx.db.transaction(async (): Promise<RateDecision> => {
        // Locks in one global order, so two nodes with overlapping buckets cannot deadlock.
        for (const key of [...new Set(buckets.map((b) => b.key))].sort()) await this.sLock.run(key);
        // Every bucket's count in one statement (its snapshot is taken after the locks are held) ...
        const { rows } = await this.ctx.db.query<{ i: number; total: number }>(
          `SELECT v.i, coalesce(sum(s.hits), 0)::bigint AS total
           FROM (VALUES ${valuesList(buckets.length, ["int", "text", "bigint"])}) AS v (i, bucket, counted_from)
           LEFT JOIN rate_limit_slots s ON s.bucket = v.bucket AND s.slot_start >= v.counted_from
           GROUP BY v.i ORDER BY v.i`,
          buckets.flatMap((b, i) => [i, b.key, countedFrom(now, b.windowMs)]),
        );
        for (const r of rows) {
          const b = buckets[r.i]!;
          // The slots themselves only for a refusal's retryAt.
          if (r.total >= b.limit) return refusal(b, await this.sSlots.all(b.key, countedFrom(now, b.windowMs)), now) ?? fullUntil(b, now);
        }
        // ... and every hit in one upsert (a bucket named twice counts twice, in one row).
        const hits = new Map<string, [string, number, number, number]>();
        for (const b of buckets) {
          const start = slotStart(now, b.windowMs);
          const id = `${start} ${b.key}`;
          const h = hits.get(id);
          if (h) h[3]++;
          else hits.set(id, [b.key, start, slotExpiry(start, b.windowMs), 1]);
        }
        await this.ctx.db.query(
          `INSERT INTO rate_limit_slots (bucket, slot_start, expires_at, hits) VALUES ${valuesList(hits.size, ["text", "bigint", "bigint", "int"])}
           ON CONFLICT (bucket, slot_start) DO UPDATE SET hits = rate_limit_slots.hits + excluded.hits, expires_at = greatest(rate_limit_slots.expires_at, excluded.expires_at)`,
          [...hits.values()].flat(),
        );
        return { allowed: true };
      });
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

interface LogRow {
  id: number;
  at: number;
  channel: string | null;
  destination: string;
  country: string | null;
  endpoint: string;
  api_key_id: string;
  result: string;
  reason: string | null;
  detail: string | null;
  provider_id: string | null;
}

const LOG_COLUMNS = "id, at, channel, destination, country, endpoint, api_key_id, result, reason, detail, provider_id";

function toEntry(r: LogRow): DeliveryLogEntry {
  return {
    id: r.id,
    at: r.at,
    channel: r.channel,
    destination: r.destination,
    country: r.country,
    endpoint: r.endpoint,
    apiKeyId: r.api_key_id,
    result: r.result as DeliveryOutcome,
    reason: r.reason,
    detail: r.detail,
    providerId: r.provider_id,
  };
}

export class PgDeliveryLogRepo implements DeliveryLogRepo {
  private readonly sAppend;
  private readonly sRecent;
  private readonly sRecentBefore;
  private readonly sPurge;

  constructor(ctx: PgStoreContext) {
    const { db } = ctx;
    this.sAppend = pgPrep(
      db,
      `INSERT INTO delivery_log (at, channel, destination, country, endpoint, api_key_id, result, reason, detail, provider_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.sRecent = pgPrep<LogRow>(db, `SELECT ${LOG_COLUMNS} FROM delivery_log ORDER BY id DESC LIMIT ?`);
    this.sRecentBefore = pgPrep<LogRow>(db, `SELECT ${LOG_COLUMNS} FROM delivery_log WHERE id < ? ORDER BY id DESC LIMIT ?`);
    this.sPurge = pgPrep(db, "DELETE FROM delivery_log WHERE at < ?");
  }

  async append(e: NewDeliveryLogEntry): Promise<void> {
    try {
      await this.sAppend.run(e.at, e.channel, e.destination, e.country, e.endpoint, e.apiKeyId, e.result, e.reason, e.detail, e.providerId);
    } catch (err) {
      rethrow(err);
    }
  }

  async recent(limit: number, beforeId?: number): Promise<DeliveryLogEntry[]> {
    const n = Math.max(0, Math.min(Math.trunc(limit), 10_000));
    try {
      const rows = beforeId === undefined ? await this.sRecent.all(n) : await this.sRecentBefore.all(beforeId, n);
      return rows.map(toEntry);
    } catch (err) {
      rethrow(err);
    }
  }

  async purgeBefore(at: number): Promise<number> {
    try {
      return await this.sPurge.run(at);
    } catch (err) {
      rethrow(err);
    }
  }
}
