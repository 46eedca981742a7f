// The relay's delivery bookkeeping in memory: rate-limit counters (fixed windows, as the store's) and
// a delivery log that keeps nothing. The relay stores no message, destination or outcome on disk;
// a restart resets its counters, which the appliances' own limits still bound.

import type { DeliveryLogRepo, RateBucket, RateDecision, RateLimitRepo } from "../store/types.ts";

export class MemoryRateLimits implements RateLimitRepo {
  private readonly counts = new Map<string, { windowEnd: number; n: number }>();

  async consume(buckets: readonly RateBucket[], now: number): Promise<RateDecision> {
    const current = buckets.map((b) => {
      const start = Math.floor(now / b.windowMs) * b.windowMs;
      const key = `${b.key}@${start}`;
      return { b, key, end: start + b.windowMs, n: this.counts.get(key)?.n ?? 0 };
    });
    const full = current.find((c) => c.n >= c.b.limit);
    if (full) return { allowed: false, bucket: full.b.key, retryAt: full.end };
    for (const c of current) this.counts.set(c.key, { windowEnd: c.end, n: c.n + 1 });
    return { allowed: true };
  }

  async purgeExpired(now: number): Promise<number> {
    let n = 0;
    for (const [k, v] of this.counts) {
      if (v.windowEnd <= now) {
        this.counts.delete(k);
        n++;
      }
    }
    return n;
  }
}

export const NO_DELIVERY_LOG: DeliveryLogRepo = {
  append: async () => {},
  recent: async () => [],
  purgeBefore: async () => 0,
};
