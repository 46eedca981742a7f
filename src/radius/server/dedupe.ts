// Retransmission cache (RFC 5080 §2.2.2): key = source IP, source port, Identifier, Request Authenticator.
//
// An answered request gets the cached reply bytes; a duplicate of one still in progress is dropped;
// nothing is evaluated twice. Entries live `ttlMs` after the reply (longer than the NAS's retries),
// and the cache is bounded: under a flood the oldest entries go first.

export type DedupeResult = { kind: "new" } | { kind: "in_progress" } | { kind: "answered"; reply: Uint8Array };

interface Entry {
  reply: Uint8Array | null;
  expiresAt: number;
}

export class DedupeCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 262_144,
  ) {}

  static key(source: string, port: number, identifier: number, authenticator: Uint8Array): string {
    return `${source}|${port}|${identifier}|${Buffer.from(authenticator.buffer, authenticator.byteOffset, 16).toString("base64")}`;
  }

  /** Looks the key up and, when new, marks it in progress. */
  begin(key: string, now: number): DedupeResult {
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt > now) {
      return entry.reply ? { kind: "answered", reply: entry.reply } : { kind: "in_progress" };
    }
    if (entry) this.entries.delete(key);
    this.evict(now);
    // a request in progress is held at most ttlMs too, so a wedged evaluation cannot pin it forever
    this.entries.set(key, { reply: null, expiresAt: now + this.ttlMs });
    return { kind: "new" };
  }

  /** Stores the reply bytes sent for `key`. */
  finish(key: string, reply: Uint8Array, now: number): void {
    this.entries.delete(key); // re-insert so Map order stays by expiry
    this.entries.set(key, { reply, expiresAt: now + this.ttlMs });
  }

  /** Forgets a request that was dropped without a reply, so a retransmission is evaluated afresh. */
  abandon(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }

  private evict(now: number): void {
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt > now && this.entries.size < this.maxEntries) break;
      this.entries.delete(key);
    }
  }
}
