// Delivery state in SQLite: sliding-window rate-limit counters (shared by every process on the file) and the delivery log.

import { checkBuckets, countedFrom, refusal, slotExpiry, slotStart, type SlotCount } from "../rate-window.ts";
import type { DeliveryLogEntry, DeliveryLogRepo, DeliveryOutcome, NewDeliveryLogEntry, RateBucket, RateDecision, RateLimitRepo } from "../types.ts";
import { prep, rethrow, type StoreContext } from "./context.ts";

/** Sliding windows counted in sixtieth-of-a-window slots (see rate-window.ts): never more than the limit in any window-long span. */
export class SqliteRateLimitRepo implements RateLimitRepo {
  private readonly sSlots;
  private readonly sHit;
  private readonly sPurge;
  private readonly txConsume;

  constructor(ctx: StoreContext) {
    const { db } = ctx;
    this.sSlots = prep<SlotCount>(db, "SELECT slot_start, hits FROM rate_limit_slots WHERE bucket = ? AND slot_start >= ? ORDER BY slot_start");
    this.sHit = prep(
      db,
      `INSERT INTO rate_limit_slots (bucket, slot_start, expires_at, hits) VALUES (?, ?, ?, 1)
       ON CONFLICT (bucket, slot_start) DO UPDATE SET hits = rate_limit_slots.hits + 1, expires_at = max(rate_limit_slots.expires_at, excluded.expires_at)`,
    );
    this.sPurge = prep(db, "DELETE FROM rate_limit_slots WHERE expires_at <= ?");
    // Check all, then count all, in one write transaction: two processes never both take the last slot.
    this.txConsume = db.transaction((buckets: readonly RateBucket[], now: number): RateDecision => {
      for (const b of buckets) {
        // At most 61 rows: the counted slots give both the decision and a refusal's retryAt.
        const full = refusal(b, this.sSlots.all(b.key, countedFrom(now, b.windowMs)), now);
        if (full) return full;
      }
      for (const b of buckets) {
        const start = slotStart(now, b.windowMs);
        this.sHit.run(b.key, start, slotExpiry(start, b.windowMs));
      }
      return { allowed: true };
    });
  }

  async consume(buckets: readonly RateBucket[], now: number): Promise<RateDecision> {
    checkBuckets(buckets);
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
