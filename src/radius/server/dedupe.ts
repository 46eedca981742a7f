// Retransmission cache (RFC 5080 §2.2.2): key = source IP, source port, Identifier, Request Authenticator.
//
// An answered request gets the cached reply bytes; a duplicate of one still in progress is dropped;
// a request that was evaluated but got no reply (its reply could not be sent) is dropped again for
// the same reason; nothing is evaluated twice. A request stays "in progress" for as long as its
// evaluation runs, a phone approval's hold included (up to 120 s, far beyond the ttl), and its
// outcome is then kept `ttlMs` (longer than the NAS's retries after it): the cache outlives the
// longest hold plus the NAS's retries. The cache is bounded: under a flood the oldest entries go first.

export type DedupeResult<Reason extends string = string> =
  | { kind: "new" }
  | { kind: "in_progress" }
  | { kind: "answered"; reply: Uint8Array }
  | { kind: "dropped"; reason: Reason };

const NEW = Object.freeze({ kind: "new" } as const);
const IN_PROGRESS = Object.freeze({ kind: "in_progress" } as const);

/** The longest an evaluation may run (the longest approval hold a client can set, `--approval-hold` 120 s). */
export const MAX_EVALUATION_MS = 120_000;

interface Entry<Reason> {
  reply: Uint8Array | null;
  /** Set when the request was evaluated and deliberately left unanswered. */
  dropped: Reason | null;
  expiresAt: number;
}

/**
 * Requests in progress sit in a map of their own, keyed like the rest and holding only the time
 * after which a wedged evaluation stops counting (now + ttl + MAX_EVALUATION_MS): a held request is
 * never pushed out by the generations below however long it waits, and costs one number.
 *
 * Outcomes sit in two generations: `current` takes every new entry; once `ttlMs` has passed since
 * it was started (or it holds half the bound), it becomes `previous` and the old `previous` is
 * dropped whole. So an outcome is kept at least `ttlMs` (unless the bound forces it out) and expiry
 * costs no per-entry work; `expiresAt` still decides exactly when an entry stops counting.
 */
export class DedupeCache<Reason extends string = string> {
  private readonly inProgress = new Map<string, number>();
  private current = new Map<string, Entry<Reason>>();
  private previous = new Map<string, Entry<Reason>>();
  private generationStart = -Infinity;

  /**
   * @param ttlMs how long an outcome is kept after it was decided (longer than the NAS's retries)
   * @param maxEntries the bound on outcomes kept; requests in progress are bounded by half of it more
   * @param maxEvaluationMs how long a request may stay in progress beyond `ttlMs` before a retransmission is evaluated afresh
   */
  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 262_144,
    private readonly maxEvaluationMs = MAX_EVALUATION_MS,
  ) {}

  /**
   * The source address text followed by ten 16-bit code units: the port, the Identifier, and the
   * authenticator two octets per unit. The suffix has a fixed length, so the key is injective
   * (the address is the key minus its last ten units), and it is half as long as one char per
   * octet with separators, which is what the Map hashes on every lookup.
   */
  static key(source: string, port: number, identifier: number, a: Uint8Array): string {
    return (
      source +
      String.fromCharCode(
        port & 0xffff,
        identifier & 0xff,
        (a[0]! << 8) | a[1]!,
        (a[2]! << 8) | a[3]!,
        (a[4]! << 8) | a[5]!,
        (a[6]! << 8) | a[7]!,
        (a[8]! << 8) | a[9]!,
        (a[10]! << 8) | a[11]!,
        (a[12]! << 8) | a[13]!,
        (a[14]! << 8) | a[15]!,
      )
    );
  }

  /** Looks the key up and, when new, marks it in progress. */
  begin(key: string, now: number): DedupeResult<Reason> {
    const until = this.inProgress.get(key);
    if (until !== undefined) {
      if (until > now) return IN_PROGRESS;
      this.inProgress.delete(key); // a wedged evaluation: let the retransmission be evaluated
    }
    const entry = this.current.get(key) ?? this.previous.get(key);
    if (entry && entry.expiresAt > now) {
      if (entry.reply) return { kind: "answered", reply: entry.reply };
      if (entry.dropped !== null) return { kind: "dropped", reason: entry.dropped };
    }
    if (entry) {
      this.current.delete(key);
      this.previous.delete(key);
    }
    this.rotate(now);
    if (this.inProgress.size >= this.maxEntries >> 1) {
      // Under a flood the oldest request in progress stops being recognised (Map order is insertion order).
      for (const oldest of this.inProgress.keys()) {
        this.inProgress.delete(oldest);
        break;
      }
    }
    this.inProgress.set(key, now + this.ttlMs + this.maxEvaluationMs);
    return NEW;
  }

  /** Stores the reply bytes sent for `key`. */
  finish(key: string, reply: Uint8Array, now: number): void {
    this.settle(key, reply, null, now);
  }

  /**
   * Remembers that `key` was evaluated and left unanswered for `reason`: a retransmission is
   * dropped for the same reason instead of being evaluated again (the first evaluation may already
   * have consumed a code or counted a failure). A request already answered keeps its reply bytes.
   */
  drop(key: string, reason: Reason, now: number): void {
    if ((this.current.get(key) ?? this.previous.get(key))?.reply) return;
    this.settle(key, null, reason, now);
  }

  private settle(key: string, reply: Uint8Array | null, dropped: Reason | null, now: number): void {
    this.inProgress.delete(key);
    const entry = this.current.get(key);
    if (entry) {
      entry.reply = reply;
      entry.dropped = dropped;
      entry.expiresAt = now + this.ttlMs;
      return;
    }
    this.previous.delete(key);
    this.rotate(now);
    this.current.set(key, { reply, dropped, expiresAt: now + this.ttlMs });
  }

  /** Forgets a request that was dropped before anything was decided, so a retransmission is evaluated afresh. */
  abandon(key: string): void {
    this.inProgress.delete(key);
    this.current.delete(key);
    this.previous.delete(key);
  }

  /** Entries held: requests in progress and outcomes. */
  get size(): number {
    return this.inProgress.size + this.current.size + this.previous.size;
  }

  private rotate(now: number): void {
    if (now - this.generationStart < this.ttlMs && this.current.size < this.maxEntries >> 1) return;
    this.previous = this.current;
    this.current = new Map();
    this.generationStart = now;
  }
}
