// A bounded pool of reusable sessions with a bounded lifetime: the mechanics shared by the service pool and the user-bind pool.
//
// It knows nothing of LDAP: `open`, `alive` and `close` are given. At most `max` sessions exist
// (idle + busy + being opened); a caller that finds all of them busy waits, bounded by `waitMs`,
// instead of opening more. A session is discarded, never reused, when `alive` says it is gone, after
// `maxUses` leases, `maxAgeMs` after it was opened, or after lying idle `maxIdleMs` (servers and
// firewalls drop idle TCP sessions silently; a bounded age also moves sessions back to the first
// URL after a failover). The clock is a parameter so that tests can freeze it.

/** Counters for tests and diagnostics. */
export interface PoolStats {
  /** Sessions opened since the pool was created. */
  opened: number;
  /** Sessions discarded (gone, failed, worn out or expired). */
  discarded: number;
  /** Leases handed out (each one an operation on a session). */
  leases: number;
  idle: number;
  busy: number;
}

export interface PoolLimits {
  /** Most sessions at once (idle + busy + opening), at least 1. */
  max: number;
  /** Leases per session before it is discarded. */
  maxUses: number;
  /** Age after which a session is discarded (ms since it was opened). */
  maxAgeMs: number;
  /** Idle time after which a session is discarded instead of being reused. */
  maxIdleMs: number;
  /** How long `acquire` waits for a free session when all are busy. */
  waitMs: number;
}

/** Defaults for both LDAP pools: renew each session after 1000 operations or 5 minutes, drop it after 60 s idle. */
export const POOL_LIFETIME = { maxUses: 1000, maxAgeMs: 300_000, maxIdleMs: 60_000 } as const;

export interface PoolHooks<C> {
  /** Opens a ready session; throws when none can be opened (the error reaches the caller of acquire). */
  open(): Promise<C>;
  /** False when the session is gone (the server closed it); it is then discarded, never reused. */
  alive(c: C): boolean;
  /** Ends a session; must not throw. */
  close(c: C): Promise<void>;
  /** The error for a caller that waited waitMs for a session, or for one that arrives after close(). */
  unavailable(why: "busy" | "closed"): Error;
}

/** A session handed out by acquire(); give it back with release() or drop(). */
export interface Lease<C> {
  readonly conn: C;
  /** The session was used before (so a failure may be a stale session rather than the server). */
  readonly reused: boolean;
}

interface Meta {
  born: number;
  uses: number;
  idleSince: number;
}

export class BoundedPool<C> {
  readonly #idle: C[] = [];
  readonly #busy = new Set<C>();
  readonly #meta = new Map<C, Meta>();
  /** Each waiter returns false when it already gave up (timed out): the session then goes back. */
  readonly #waiters: Array<(c: Lease<C> | Error) => boolean> = [];
  #opening = 0;
  #closed = false;
  readonly #stats = { opened: 0, discarded: 0, leases: 0 };

  constructor(
    private readonly hooks: PoolHooks<C>,
    private readonly limits: PoolLimits,
    private readonly now: () => number = Date.now,
  ) {
    if (!Number.isInteger(limits.max) || limits.max < 1) throw new TypeError("pool max must be an integer of at least 1");
  }

  /**
   * A session for one operation: an idle one that is still fresh, else a new one while fewer than
   * `max` exist, else the next one released (waiting at most waitMs).
   * Throws what hooks.open throws, or hooks.unavailable("busy" | "closed").
   */
  async acquire(): Promise<Lease<C>> {
    if (this.#closed) throw this.hooks.unavailable("closed");
    while (this.#idle.length > 0) {
      const c = this.#idle.pop()!;
      if (this.#fresh(c, true)) return this.#lease(c, true);
      this.#discard(c);
    }
    if (this.#busy.size + this.#opening < this.limits.max) return this.#lease(await this.#openCounted(), false);
    return await new Promise<Lease<C>>((resolve, reject) => {
      let settled = false;
      const waiter = (l: Lease<C> | Error) => {
        if (settled) return false;
        settled = true;
        clearTimeout(timer);
        if (l instanceof Error) reject(l);
        else resolve(l);
        return true;
      };
      const timer = setTimeout(() => {
        settled = true;
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(this.hooks.unavailable("busy"));
      }, this.limits.waitMs);
      this.#waiters.push(waiter);
    });
  }

  /** Gives a healthy session back: to a waiter, to the idle list, or (worn out, expired, gone) to close. */
  release(c: C): void {
    if (!this.#busy.delete(c)) return;
    if (this.#closed || !this.#fresh(c, false)) {
      this.#discardAndServeWaiter(c);
      return;
    }
    this.#meta.get(c)!.idleSince = this.now();
    for (let w = this.#waiters.shift(); w; w = this.#waiters.shift()) {
      if (w(this.#lease(c, true))) return;
      this.#busy.delete(c); // that waiter had given up: offer the session to the next one
    }
    this.#idle.push(c);
  }

  /** Discards a session that failed (network error, timeout, TLS problem): it is never reused. */
  drop(c: C): void {
    if (!this.#busy.delete(c)) return;
    this.#discardAndServeWaiter(c);
  }

  stat(): PoolStats {
    return { ...this.#stats, idle: this.#idle.length, busy: this.#busy.size };
  }

  /** Fails every waiter, closes every session; later acquire() calls fail with unavailable("closed"). */
  async close(): Promise<void> {
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) w(this.hooks.unavailable("closed"));
    const all = [...this.#idle.splice(0), ...this.#busy];
    this.#busy.clear();
    this.#meta.clear();
    await Promise.all(all.map((c) => this.hooks.close(c)));
  }

  #fresh(c: C, idleCheck: boolean): boolean {
    const m = this.#meta.get(c);
    if (!m || !this.hooks.alive(c)) return false;
    const t = this.now();
    if (m.uses >= this.limits.maxUses || t - m.born >= this.limits.maxAgeMs) return false;
    return !idleCheck || t - m.idleSince < this.limits.maxIdleMs;
  }

  #lease(c: C, reused: boolean): Lease<C> {
    this.#busy.add(c);
    this.#meta.get(c)!.uses++;
    this.#stats.leases++;
    return { conn: c, reused };
  }

  async #openCounted(): Promise<C> {
    this.#opening++;
    try {
      const c = await this.hooks.open();
      if (this.#closed) {
        await this.hooks.close(c);
        throw this.hooks.unavailable("closed");
      }
      const t = this.now();
      this.#meta.set(c, { born: t, uses: 0, idleSince: t });
      this.#stats.opened++;
      return c;
    } finally {
      this.#opening--;
    }
  }

  #discard(c: C): void {
    this.#meta.delete(c);
    this.#stats.discarded++;
    void this.hooks.close(c);
  }

  #discardAndServeWaiter(c: C): void {
    this.#discard(c);
    // A waiter was counting on this slot: open a fresh session for it.
    const w = this.#waiters.shift();
    if (!w) return;
    if (this.#closed) {
      w(this.hooks.unavailable("closed"));
      return;
    }
    this.#openCounted().then(
      (nc) => {
        if (!w(this.#lease(nc, false))) this.release(nc); // it gave up meanwhile: keep the session for others
      },
      (e: unknown) => w(e instanceof Error ? e : new Error(String(e))),
    );
  }
}
