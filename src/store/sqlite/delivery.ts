// Delivery state in SQLite: fixed-window rate-limit counters (shared by every process on the file) and the delivery log.

import type { DeliveryLogEntry, DeliveryLogRepo, DeliveryOutcome, NewDeliveryLogEntry, RateBucket, RateDecision, RateLimitRepo } from "../types.ts";
import { prep, rethrow, type StoreContext } from "./context.ts";

interface CounterRow {
  window_start: number;
  hits: number;
}

/**
 * Fixed windows aligned to multiples of windowMs. A burst may straddle a boundary and see up to
 * twice the limit across two adjacent windows; the hour limit bounds that.
 */
export class SqliteRateLimitRepo implements RateLimitRepo {
  private readonly sGet;
  private readonly sSet;
  private readonly sPurge;
  private readonly txConsume;

  constructor(ctx: StoreContext) {
    const { db } = ctx;
    this.sGet = prep<CounterRow>(db, "SELECT window_start, hits FROM rate_limits WHERE bucket = ?");
    this.sSet = prep(
      db,
      `INSERT INTO rate_limits (bucket, window_start, window_ms, hits) VALUES (?, ?, ?, ?)
       ON CONFLICT (bucket) DO UPDATE SET window_start = excluded.window_start, window_ms = excluded.window_ms, hits = excluded.hits`,
    );
    this.sPurge = prep(db, "DELETE FROM rate_limits WHERE window_start + window_ms <= ?");
    // Check all, then count all, in one write transaction: two processes never both take the last slot.
    this.txConsume = db.transaction((buckets: readonly RateBucket[], now: number): RateDecision => {
      const current: number[] = [];
      for (const b of buckets) {
        const start = windowStart(now, b.windowMs);
        const row = this.sGet.get(b.key);
        const hits = row && row.window_start === start ? row.hits : 0;
        if (hits >= b.limit) return { allowed: false, bucket: b.key, retryAt: start + b.windowMs };
        current.push(hits);
      }
      buckets.forEach((b, i) => this.sSet.run(b.key, windowStart(now, b.windowMs), b.windowMs, current[i]! + 1));
      return { allowed: true };
    });
  }

  async consume(buckets: readonly RateBucket[], now: number): Promise<RateDecision> {
    for (const b of buckets) {
      if (!(Number.isInteger(b.windowMs) && b.windowMs > 0 && Number.isInteger(b.limit) && b.limit >= 0)) {
        throw new TypeError(`rate bucket ${b.key}: windowMs must be a positive integer and limit a non-negative integer`);
      }
    }
    if (buckets.length === 0) return { allowed: true };
    try {
      return this.txConsume.immediate(buckets, now);
    } catch (err) {
      rethrow(err);
    }
  }

  async purgeExpired(now: number): Promise<number> {
    try {
      return this.sPurge.run(now).changes;
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

export class SqliteDeliveryLogRepo implements DeliveryLogRepo {
  private readonly sAppend;
  private readonly sRecent;
  private readonly sRecentBefore;
  private readonly sPurge;

  constructor(ctx: StoreContext) {
    const { db } = ctx;
    this.sAppend = prep(
      db,
      `INSERT INTO delivery_log (at, channel, destination, country, endpoint, api_key_id, result, reason, detail, provider_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.sRecent = prep<LogRow>(db, `SELECT ${LOG_COLUMNS} FROM delivery_log ORDER BY id DESC LIMIT ?`);
    this.sRecentBefore = prep<LogRow>(db, `SELECT ${LOG_COLUMNS} FROM delivery_log WHERE id < ? ORDER BY id DESC LIMIT ?`);
    this.sPurge = prep(db, "DELETE FROM delivery_log WHERE at < ?");
  }

  async append(e: NewDeliveryLogEntry): Promise<void> {
    try {
      this.sAppend.run(e.at, e.channel, e.destination, e.country, e.endpoint, e.apiKeyId, e.result, e.reason, e.detail, e.providerId);
    } catch (err) {
      rethrow(err);
    }
  }

  async recent(limit: number, beforeId?: number): Promise<DeliveryLogEntry[]> {
    const n = Math.max(0, Math.min(Math.trunc(limit), 10_000));
    try {
      const rows = beforeId === undefined ? this.sRecent.all(n) : this.sRecentBefore.all(beforeId, n);
      return rows.map(toEntry);
    } catch (err) {
      rethrow(err);
    }
  }

  async purgeBefore(at: number): Promise<number> {
    try {
      return this.sPurge.run(at).changes;
    } catch (err) {
      rethrow(err);
    }
  }
}
