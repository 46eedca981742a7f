// A bounded pool of reusable sessions with a bounded lifetime: the mechanics shared by the service pool and the user-bind pool.
//
// It knows nothing of LDAP: `open`, `alive` and `close` are given. At most `max` sessions exist
// (idle + busy + being opened), and each carries at most `maxLeases` operations at once (1: one
// operation at a time; more: pipelined requests, answered by message ID). A caller that finds every
// session full waits, bounded by `waitMs`, instead of opening more; a caller is given the fullest
// session that still has room, so that requests made in the same event-loop turn share a socket.
// A session is discarded, never reused, when `alive` says it is gone, after `maxUses` leases,
// `maxAgeMs` after it was opened, or after lying idle `maxIdleMs`; idle sessions are also closed by
// a sweep every `maxIdleMs / 4` (servers and firewalls drop idle TCP sessions silently, and an idle
// socket holds a server slot; a bounded age also moves sessions back to the first URL after a
// failover). The clock is a parameter so that tests can freeze it.

/** Counters for tests and diagnostics. */
export interface PoolStats {
  /** Sessions opened since the pool was created. */
  opened: number;
  /** Sessions discarded (gone, failed, worn out or expired). */
  discarded: number;
  /** Leases handed out (each one an operation on a session). */
  leases: number;
  idle: number;
  /** Sessions carrying at least one operation. */
  busy: number;
  /** Operations in progress over all sessions (equals busy when maxLeases is 1). */
  inFlight: number;
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
  /** Operations one session carries at once (pipelining); default 1. */
  maxLeases?: number;
  /** Sweep idle sessions on a timer (default true; tests with a frozen clock call sweep() instead). */
  sweep?: boolean;
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
  /** Sessions carrying operations → how many. */
  readonly #busy = new Map<C, number>();
  readonly #meta = new Map<C, Meta>();
  /** Each waiter returns false when it already gave up (timed out): the session then goes back. */
  readonly #waiters: Array<(c: Lease<C> | Error) => boolean> = [];
  readonly #maxLeases: number;
  #opening = 0;
  #closed = false;
  #sweeper: ReturnType<typeof setInterval> | undefined;
  readonly #stats = { opened: 0, discarded: 0, leases: 0 };

  constructor(
    private readonly hooks: PoolHooks<C>,
    private readonly limits: PoolLimits,
    private readonly now: () => number = Date.now,
  ) {
    if (!Number.isInteger(limits.max) || limits.max < 1) throw new TypeError("pool max must be an integer of at least 1");
    const ml = limits.maxLeases ?? 1;
    if (!Number.isInteger(ml) || ml < 1) throw new TypeError("pool maxLeases must be an integer of at least 1");
    this.#maxLeases = ml;
  }

  /**
   * A session for one operation: the fullest busy session with room (maxLeases > 1), else an idle
   * one that is still fresh, else a new one while fewer than `max` exist, else the next one released
   * (waiting at most waitMs). Throws what hooks.open throws, or hooks.unavailable("busy" | "closed").
   */
  async acquire(): Promise<Lease<C>> {
    if (this.#closed) throw this.hooks.unavailable("closed");
    if (this.#maxLeases > 1) {
      let best: C | undefined;
      let bestN = 0;
      for (const [c, n] of this.#busy) {
        if (n < this.#maxLeases && n > bestN && this.#fresh(c, false)) {
          best = c;
          bestN = n;
        }
      }
      if (best !== undefined) return this.#lease(best, true);
    }
    while (this.#idle.length > 0) {
      const c = this.#idle.pop()!;
      if (this.#fresh(c, true)) return this.#lease(c, true);
      this.#discard(c);
    }
    if (this.#busy.size + this.#opening < this.limits.max) {
      const c = await this.#openCounted();
      const l = this.#lease(c, false);
      if (this.#maxLeases > 1) this.#offer(c); // the rest of its room goes to callers already waiting
      return l;
    }
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

  /**
   * Gives back one operation's lease on a healthy session: to a waiter, to the idle list when it was
   * the session's last operation, or (worn out, expired, gone) to close once its last operation is back.
   */
  release(c: C): void {
    const n = this.#busy.get(c);
    if (n === undefined) return;
    if (this.#closed || !this.hooks.alive(c)) {
      // Gone: the operations still on it fail by themselves; their release/drop is then a no-op.
      this.#busy.delete(c);
      this.#discardAndServeWaiter(c);
      return;
    }
    const fresh = this.#fresh(c, false);
    if (n > 1) {
      this.#busy.set(c, n - 1);
      if (fresh) this.#offer(c);
      return;
    }
    this.#busy.delete(c);
    if (!fresh) {
      this.#discardAndServeWaiter(c);
      return;
    }
    this.#meta.get(c)!.idleSince = this.now();
    if (this.#offer(c)) return;
    this.#idle.push(c);
  }

  /**
   * Discards a session that failed (network error, timeout, TLS problem): it is closed at once and
   * never reused. Other operations pipelined on it fail with it; their release or drop is a no-op.
   */
  drop(c: C): void {
    if (!this.#busy.delete(c)) return;
    this.#discardAndServeWaiter(c);
  }

  /** Closes the idle sessions that lay idle maxIdleMs or more (or are gone or worn out); returns how many. */
  sweep(): number {
    let n = 0;
    for (let i = this.#idle.length - 1; i >= 0; i--) {
      const c = this.#idle[i]!;
      if (this.#fresh(c, true)) continue;
      this.#idle.splice(i, 1);
      this.#discard(c);
      n++;
    }
    if (this.#idle.length === 0 && this.#busy.size === 0 && this.#opening === 0) this.#stopSweeper();
    return n;
  }

  stat(): PoolStats {
    let inFlight = 0;
    for (const n of this.#busy.values()) inFlight += n;
    return { ...this.#stats, idle: this.#idle.length, busy: this.#busy.size, inFlight };
  }

  /** Fails every waiter, closes every session; later acquire() calls fail with unavailable("closed"). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#stopSweeper();
    for (const w of this.#waiters.splice(0)) w(this.hooks.unavailable("closed"));
    const all = [...this.#idle.splice(0), ...this.#busy.keys()];
    this.#busy.clear();
    this.#meta.clear();
    await Promise.all(all.map((c) => this.hooks.close(c)));
  }

  /** Hands leases on `c` to waiters still waiting, while it has room; false when none took one. */
  #offer(c: C): boolean {
    let took = false;
    while ((this.#busy.get(c) ?? 0) < this.#maxLeases) {
      const w = this.#waiters.shift();
      if (!w) break;
      this.#lease(c, true);
      if (w({ conn: c, reused: true })) took = true;
      else this.#unlease(c); // that waiter had given up: offer the session to the next one
    }
    return took;
  }

  #fresh(c: C, idleCheck: boolean): boolean {
    const m = this.#meta.get(c);
    if (!m || !this.hooks.alive(c)) return false;
    const t = this.now();
    if (m.uses >= this.limits.maxUses || t - m.born >= this.limits.maxAgeMs) return false;
    return !idleCheck || t - m.idleSince < this.limits.maxIdleMs;
  }

  #lease(c: C, reused: boolean): Lease<C> {
    this.#busy.set(c, (this.#busy.get(c) ?? 0) + 1);
    this.#meta.get(c)!.uses++;
    this.#stats.leases++;
    return { conn: c, reused };
  }

  /** Takes back a lease that no caller received (the waiter had timed out). */
  #unlease(c: C): void {
    const n = this.#busy.get(c) ?? 0;
    if (n <= 1) this.#busy.delete(c);
    else this.#busy.set(c, n - 1);
    const m = this.#meta.get(c);
    if (m) m.uses--;
    this.#stats.leases--;
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
      this.#startSweeper();
      return c;
    } finally {
      this.#opening--;
    }
  }

  #startSweeper(): void {
    if (this.#sweeper !== undefined || this.limits.sweep === false) return;
    const every = Math.max(1000, Math.floor(this.limits.maxIdleMs / 4));
    this.#sweeper = setInterval(() => this.sweep(), every);
    // The sweep must not keep a process alive that has nothing else to do.
    (this.#sweeper as { unref?: () => void }).unref?.();
  }

  #stopSweeper(): void {
    if (this.#sweeper === undefined) return;
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }

  #discard(c: C): void {
    if (!this.#meta.delete(c)) return;
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
        else if (this.#maxLeases > 1) this.#offer(nc);
      },
      (e: unknown) => w(e instanceof Error ? e : new Error(String(e))),
    );
  }
}
