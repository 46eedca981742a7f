// Delivery state in PostgreSQL: fixed-window rate-limit counters shared by every node, and the
// delivery log.

import type { DeliveryLogEntry, DeliveryLogRepo, DeliveryOutcome, NewDeliveryLogEntry, RateBucket, RateDecision, RateLimitRepo } from "../types.ts";
import { pgPrep, rethrow, type PgStoreContext } from "./context.ts";

interface CounterRow {
  window_start: number;
  hits: number;
}

export class PgRateLimitRepo implements RateLimitRepo {
  private readonly sLock;
  private readonly sGet;
  private readonly sSet;
  private readonly sPurge;

  constructor(private readonly ctx: PgStoreContext) {
    const { db } = ctx;
    // A transaction-scoped advisory lock per bucket stands in for SQLite's single writer: a bucket
    // without a row yet has nothing for FOR UPDATE to lock.
    this.sLock = pgPrep(db, "SELECT pg_advisory_xact_lock(hashtextextended(?, 7106))");
    this.sGet = pgPrep<CounterRow>(db, "SELECT window_start, hits FROM rate_limits WHERE bucket = ?");
    this.sSet = pgPrep(
      db,
      `INSERT INTO rate_limits (bucket, window_start, window_ms, hits) VALUES (?, ?, ?, ?)
       ON CONFLICT (bucket) DO UPDATE SET window_start = excluded.window_start, window_ms = excluded.window_ms, hits = excluded.hits`,
    );
    this.sPurge = pgPrep(db, "DELETE FROM rate_limits WHERE window_start + window_ms <= ?");
  }

  /** Check all, then count all, in one transaction holding every bucket's lock: two nodes never both take the last slot. */
  async consume(buckets: readonly RateBucket[], now: number): Promise<RateDecision> {
    for (const b of buckets) {
      if (!(Number.isInteger(b.windowMs) && b.windowMs > 0 && Number.isInteger(b.limit) && b.limit >= 0)) {
        throw new TypeError(`rate bucket ${b.key}: windowMs must be a positive integer and limit a non-negative integer`);
      }
    }
    if (buckets.length === 0) return { allowed: true };
    try {
      return await this.ctx.db.transaction(async (): Promise<RateDecision> => {
        // Locks in one global order, so two nodes with overlapping buckets cannot deadlock.
        for (const key of [...new Set(buckets.map((b) => b.key))].sort()) await this.sLock.run(key);
        const current: number[] = [];
        for (const b of buckets) {
          const start = windowStart(now, b.windowMs);
          const row = await this.sGet.get(b.key);
          const hits = row && row.window_start === start ? row.hits : 0;
          if (hits >= b.limit) return { allowed: false, bucket: b.key, retryAt: start + b.windowMs };
          current.push(hits);
        }
        for (const [i, b] of buckets.entries()) await this.sSet.run(b.key, windowStart(now, b.windowMs), b.windowMs, current[i]! + 1);
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

function windowStart(now: number, windowMs: number): number {
  return Math.floor(now / windowMs) * windowMs;
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
