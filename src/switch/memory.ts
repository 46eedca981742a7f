// The relay's delivery bookkeeping in memory: rate-limit counters (sliding windows in slots, as the
// store's; see store/rate-window.ts) and a delivery log that keeps nothing. The relay stores no
// message, destination or outcome on disk; a restart resets its counters, which the appliances' own
// limits still bound.

import { checkBuckets, countedFrom, refusal, slotExpiry, slotStart, type SlotCount } from "../store/rate-window.ts";
import type { DeliveryLogRepo, RateBucket, RateDecision, RateLimitRepo } from "../store/types.ts";

export class MemoryRateLimits implements RateLimitRepo {
  /** Per bucket, its slots in ascending order of start, each with when it stops being counted. */
  private readonly slots = new Map<string, (SlotCount & { expiresAt: number })[]>();
  private purgedAt = 0;

  async consume(buckets: readonly RateBucket[], now: number): Promise<RateDecision> {
    checkBuckets(buckets);
    // Nothing else purges the relay's counters: drop ended slots once a minute.
    if (now - this.purgedAt >= 60_000) {
      this.purgedAt = now;
      await this.purgeExpired(now);
    }
    for (const b of buckets) {
      const from = countedFrom(now, b.windowMs);
      const full = refusal(b, (this.slots.get(b.key) ?? []).filter((r) => r.slot_start >= from), now);
      if (full) return full;
    }
    for (const b of buckets) {
      const start = slotStart(now, b.windowMs);
      const list = this.slots.get(b.key) ?? [];
      const at = list.findIndex((r) => r.slot_start >= start);
      if (at >= 0 && list[at]!.slot_start === start) list[at]!.hits++;
      else list.splice(at < 0 ? list.length : at, 0, { slot_start: start, hits: 1, expiresAt: slotExpiry(start, b.windowMs) });
      this.slots.set(b.key, list);
    }
    return { allowed: true };
  }

  async purgeExpired(now: number): Promise<number> {
    let n = 0;
    for (const [k, list] of this.slots) {
      const kept = list.filter((r) => r.expiresAt > now);
      n += list.length - kept.length;
      if (kept.length === 0) this.slots.delete(k);
      else this.slots.set(k, kept);
    }
    return n;
  }
}

export const NO_DELIVERY_LOG: DeliveryLogRepo = {
  append: async () => {},
  recent: async () => [],
  purgeBefore: async () => 0,
};
