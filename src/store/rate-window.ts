// The sliding-window arithmetic shared by every RateLimitRepo (SQLite, PostgreSQL, the relay's memory).
//
// A bucket's window of W ms is cut into slots of s = ceil(W / 60) ms aligned to multiples of s, and
// each slot keeps one counter. A call at `now` counts every slot from the one holding now − W onwards,
// so it sees every hit of the last W ms (and perhaps some up to s ms older), and is refused when that
// count has reached the limit. Hence, for any instants t0 and t0 + W, the closed span [t0, t0 + W]
// never holds more than `limit` admitted hits: at the last admitted hit t of the span, every earlier
// hit of the span lies in [t − W, t] and was counted. The price is lateness, never excess: after a
// full burst a new hit is admitted at most s ms (one sixtieth of the window) later than an exact
// per-hit log would admit it. Storage is at most 61 small rows per bucket, whatever the limit.
//
// Not the two-window weighted estimate (previous window's count × its share still inside the
// window + the current window's count): it assumes the previous window's hits were spread evenly,
// so N hits at the very end of one window followed by the k-th hit at (k − 1) / N of the next let
// 2N through within (N − 1) / N of a window, no better than calendar windows in the worst case.
// An exact per-hit log would cost storage and reads in proportion to the limit (up to 10 million an
// hour in the configuration).

import type { RateBucket, RateDecision } from "./types.ts";

/** Slots per window. */
export const SLOTS_PER_WINDOW = 60;

/** A slot's length for a window: the window / 60, rounded up to a whole ms. */
export function slotMs(windowMs: number): number {
  return Math.ceil(windowMs / SLOTS_PER_WINDOW);
}

/** The start of the slot holding `now`, where a hit at `now` is counted. */
export function slotStart(now: number, windowMs: number): number {
  const s = slotMs(windowMs);
  return Math.floor(now / s) * s;
}

/** The first slot start a call at `now` counts: the slot holding now − windowMs. */
export function countedFrom(now: number, windowMs: number): number {
  return slotStart(now - windowMs, windowMs);
}

/** When a slot stops being counted (and may be purged): once now − windowMs has left it. */
export function slotExpiry(start: number, windowMs: number): number {
  return start + slotMs(windowMs) + windowMs;
}

export interface SlotCount {
  slot_start: number;
  hits: number;
}

/**
 * The refusal for bucket `b` given its counted slots (start ≥ countedFrom(now), ascending), or
 * undefined when it has room. `retryAt` is when enough of the oldest slots have expired for the
 * count to drop below the limit (a limit of 0 never opens; then it is now + the window).
 */
export function refusal(b: RateBucket, slots: readonly SlotCount[], now: number): RateDecision | undefined {
  let total = 0;
  for (const r of slots) total += r.hits;
  if (total < b.limit) return undefined;
  let retryAt = now + b.windowMs;
  for (const r of slots) {
    if (total < b.limit || b.limit === 0) break;
    total -= r.hits;
    retryAt = slotExpiry(r.slot_start, b.windowMs);
  }
  return { allowed: false, bucket: b.key, retryAt };
}

/** A refusal of `b` without its slots at hand: retry a window later. */
export function fullUntil(b: RateBucket, now: number): RateDecision {
  return { allowed: false, bucket: b.key, retryAt: now + b.windowMs };
}

/** A TypeError for a bucket the repositories cannot count. */
export function checkBuckets(buckets: readonly RateBucket[]): void {
  for (const b of buckets) {
    if (!(Number.isInteger(b.windowMs) && b.windowMs > 0 && Number.isInteger(b.limit) && b.limit >= 0)) {
      throw new TypeError(`rate bucket ${b.key}: windowMs must be a positive integer and limit a non-negative integer`);
    }
  }
}
