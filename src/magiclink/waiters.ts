// The waiter hub: blocked Magic Link API calls wait here for their session's answer. One shared
// timer serves every waiter: it ends those past their deadline and, less often, reads the sessions
// answered in the store since its last read (answers committed by another process or node; one
// indexed query, whatever the number of waiters). An answer committed in this process wakes its
// waiter at once through notify().

import type { MagicLinkRepo, MagicLinkStatus } from "../store/types.ts";

/** How a wait ended: the session's final status. */
export type WaitOutcome = Exclude<MagicLinkStatus, "pending">;

interface Waiter {
  deadline: number;
  resolve(outcome: WaitOutcome): void;
  /** Set while an expiry or cancel write is in flight, so the loop does not start a second. */
  closing: boolean;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export interface WaiterHubOptions {
  /** unix ms. */
  now?: () => number;
  /** Deadline check period (ms); also the worst-case lateness of a timeout. Default 250. */
  tickMs?: number;
  /** Store re-read period (ms) for answers committed elsewhere. Default 1500. */
  pollMs?: number;
  /**
   * How far before its previous read each poll looks again (ms), for answers stamped by another
   * node's clock or committed while the previous read ran. Default 2000. An answer missed beyond it
   * is still reported correctly, at the deadline.
   */
  overlapMs?: number;
  /** Starts the shared timer; returns its stop function. Tests pass a manual one. */
  schedule?: (fn: () => void, ms: number) => () => void;
  /** Called when a store read or write inside the loop fails (never with a secret). */
  onError?: (err: unknown) => void;
  /** Asks for a non-blocking garbage collection (default Bun.gc(false)); tests pass a counter. */
  gcHint?: () => void;
}

const defaultSchedule = (fn: () => void, ms: number) => {
  const t = setInterval(fn, ms);
  // A process with nothing else to do must still be able to exit.
  (t as unknown as { unref?: () => void }).unref?.();
  return () => clearInterval(t);
};

/**
 * Waiters keyed by session ID. Memory per waiter is one Map entry, one small record and one promise;
 * there is no per-waiter timer or read. Never throws from the loop: store errors go to onError and the waiter
 * stays until the next tick.
 */
export class WaiterHub {
  private readonly waiters = new Map<string, Waiter>();
  private stopTimer: (() => void) | undefined;
  private lastPoll = 0;
  /** The previous poll read answers from here on (reset when the timer starts). */
  private polledFrom = 0;
  private polling = false;
  private readonly overlapMs: number;
  private sinceGc = 0;
  private readonly gcHint: () => void;
  private readonly now: () => number;
  private readonly tickMs: number;
  private readonly pollMs: number;
  private readonly schedule: (fn: () => void, ms: number) => () => void;
  private readonly onError: (err: unknown) => void;

  constructor(
    private readonly repo: MagicLinkRepo,
    { now = Date.now, tickMs = 250, pollMs = 1500, overlapMs = 2000, schedule = defaultSchedule, onError = () => {}, gcHint = () => Bun.gc(false) }: WaiterHubOptions = {},
  ) {
    this.gcHint = gcHint;
    this.now = now;
    this.overlapMs = overlapMs;
    this.tickMs = tickMs;
    this.pollMs = pollMs;
    this.schedule = schedule;
    this.onError = onError;
  }

  /**
   * Counts one unit of Magic Link work (a wait begun or ended, a page shown or answered). A burst
   * leaves garbage behind (requests, rows, rendered pages): every 1000 units the collector is asked
   * for a non-blocking pass, so that RSS follows the live set rather than the heap's high-water mark.
   */
  activity(): void {
    if (++this.sinceGc < 1000) return;
    this.sinceGc = 0;
    this.gcHint();
  }

  /** Waiting calls right now. */
  get size(): number {
    return this.waiters.size;
  }

  /**
   * Waits for session `id` to leave "pending". Resolves "expired" after `deadline` (unix ms; the
   * session is marked expired in the store), "cancelled" when `signal` aborts (the session is
   * answered "cancelled" so a late tap is refused), or the status another party committed. Register
   * BEFORE the link is sent, so that an immediate answer is not missed. Throws TypeError when `id`
   * is already waited on.
   */
  wait(id: string, deadline: number, signal?: AbortSignal): Promise<WaitOutcome> {
    if (this.waiters.has(id)) throw new TypeError("session already has a waiter");
    return new Promise<WaitOutcome>((resolve) => {
      this.activity();
      const w: Waiter = { deadline, resolve, closing: false, signal };
      this.waiters.set(id, w);
      if (signal) {
        if (signal.aborted) queueMicrotask(() => this.cancel(id));
        else {
          w.onAbort = () => this.cancel(id);
          signal.addEventListener("abort", w.onAbort, { once: true });
        }
      }
      if (!this.stopTimer) {
        // Nobody waited before: no answer older than now can concern a waiter (links go out after wait()).
        this.polledFrom = this.now();
        this.lastPoll = this.polledFrom;
        this.stopTimer = this.schedule(() => void this.tick(), this.tickMs);
      }
    });
  }

  /**
   * Wakes the waiter of `id` with `outcome`, if this process has one. Call it after the answer
   * committed (MagicLinkRepo.answer returned true). Returns whether a waiter was woken.
   */
  notify(id: string, outcome: WaitOutcome): boolean {
    const w = this.waiters.get(id);
    if (!w) return false;
    this.finish(id, w, outcome);
    return true;
  }

  /** Ends every wait now with "cancelled" in memory only (shutdown); the store keeps the rows. */
  closeAll(): void {
    for (const [id, w] of this.waiters) this.finish(id, w, "cancelled");
  }

  private finish(id: string, w: Waiter, outcome: WaitOutcome): void {
    if (this.waiters.get(id) !== w) return;
    this.waiters.delete(id);
    this.activity();
    if (w.signal && w.onAbort) w.signal.removeEventListener("abort", w.onAbort);
    if (this.waiters.size === 0 && this.stopTimer) {
      this.stopTimer();
      this.stopTimer = undefined;
    }
    w.resolve(outcome);
  }

  /** The caller went away: answer the session "cancelled" unless an answer beat it. */
  private async cancel(id: string): Promise<void> {
    const w = this.waiters.get(id);
    if (!w || w.closing) return;
    w.closing = true;
    try {
      if (await this.repo.answer(id, "cancelled", this.now())) return this.finish(id, w, "cancelled");
      await this.settleFromStore(id, w);
    } catch (err) {
      this.onError(err);
      this.finish(id, w, "cancelled");
    }
  }

  /** Reads the session and finishes the waiter when it is no longer pending. */
  private async settleFromStore(id: string, w: Waiter): Promise<void> {
    const s = await this.repo.get(id);
    if (!s) return this.finish(id, w, "cancelled");
    if (s.status !== "pending") return this.finish(id, w, s.status);
    w.closing = false;
  }

  /** One pass of the shared loop (public for tests with a manual schedule). */
  async tick(): Promise<void> {
    const now = this.now();
    const due: Array<[string, Waiter]> = [];
    for (const [id, w] of this.waiters) if (!w.closing && w.deadline <= now) due.push([id, w]);
    await Promise.all(
      due.map(async ([id, w]) => {
        w.closing = true;
        try {
          if (await this.repo.markExpired(id, now)) return this.finish(id, w, "expired");
          // Answered at the last moment (or by another node): report what was committed.
          await this.settleFromStore(id, w);
          if (this.waiters.get(id) === w) this.finish(id, w, "expired");
        } catch (err) {
          w.closing = false;
          this.onError(err);
        }
      }),
    );
    if (now - this.lastPoll >= this.pollMs && !this.polling && this.waiters.size > 0) {
      this.lastPoll = now;
      this.polling = true;
      try {
        await this.poll(now);
      } finally {
        this.polling = false;
      }
    }
  }

  /**
   * Reads the sessions answered since the previous read (minus the overlap) and wakes their waiters
   * here: a few rows per pass instead of one read per waiter (10,000 waiters used to cost 10,000
   * reads and as many objects every pass).
   */
  private async poll(now: number): Promise<void> {
    const from = this.polledFrom - this.overlapMs;
    let rows;
    try {
      rows = await this.repo.answeredSince(from);
    } catch (err) {
      this.onError(err);
      return;
    }
    this.polledFrom = now;
    for (const r of rows) {
      const w = this.waiters.get(r.id);
      if (w && !w.closing) this.finish(r.id, w, r.status);
    }
  }
}
