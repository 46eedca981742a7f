// The waiter hub: whoever waits for an approval to end waits here (a held RADIUS request, a blocked
// Magic Link call, a password-reset page). One shared timer serves every waiter: it ends those past
// their deadline and, less often, reads the approvals answered in the store since its last read
// (answers committed by another process or node; one indexed query, whatever the number of
// waiters). An answer committed in this process wakes its waiters at once through notify().

import { gcHint as defaultGcHint } from "../runtime/gc.ts";
import type { ApprovalOutcome, ApprovalRepo } from "../store/types.ts";

/**
 * How a wait ended: the approval's final state, or "timeout" when the waiter's own hold (`holdUntil`,
 * a RADIUS client's hold) ran out first; the approval then stays pending for whoever else waits or joins.
 */
export type WaitOutcome = ApprovalOutcome | "timeout";

/** What the hub needs from the store: the approvals repository's reads and conditional writes. */
export type WaitSource = Pick<ApprovalRepo, "answer" | "markExpired" | "get" | "answeredSince">;

/** Called when this hub's own conditional write closed an approval: exactly once per approval across every process. */
export type ClosedListener = (id: string, outcome: "expired" | "cancelled", tag: string | undefined) => void;

/**
 * One waiter. The first waiter of an approval in this process (the head, the Map's value) also
 * carries what concerns the approval as a whole: `closing`, `tag`, and the waiters that joined it
 * (`more`). Kept flat, without a separate record per approval: 10,000 waiting Magic Link calls are
 * 10,000 of these.
 */
interface Waiter {
  /** When this waiter stops: the approval's expiry, or its hold when that comes first. */
  deadline: number;
  /** True when `deadline` is the approval's expiry (it is then closed as expired in the store). */
  expires: boolean;
  resolve(outcome: WaitOutcome): void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** Head only: set while an expiry or cancel write is in flight, so the loop does not start a second. */
  closing: boolean;
  /** Head only: the caller's label for listeners (the approval's kind). */
  tag: string | undefined;
  /** Head only: the waiters that joined, usually none. */
  more: Waiter[] | undefined;
}

export interface WaitOptions {
  /**
   * This waiter's own end, before the approval's (a RADIUS client's hold): it then resolves
   * "timeout" and the approval is left pending. Ignored when not before the deadline.
   */
  holdUntil?: number;
  /** Waits beside the waiters already there (a request that joined the approval). Without it a second waiter is a TypeError. */
  join?: boolean;
  /** Passed to the closed listeners (the approval's kind). */
  tag?: string;
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
  /** Asks for a non-blocking garbage collection (default: the runtime's, see runtime/gc.ts); tests pass a counter. */
  gcHint?: () => void;
}

const noop = () => {};

const defaultSchedule = (fn: () => void, ms: number) => {
  const t = setInterval(fn, ms);
  // A process with nothing else to do must still be able to exit.
  (t as unknown as { unref?: () => void }).unref?.();
  return () => clearInterval(t);
};

/**
 * Waiters keyed by approval ID. Memory per waiter is one Map entry, one small record and one
 * promise; there is no per-waiter timer or read. Never throws from the loop: store errors go to
 * onError and the waiter stays until the next tick.
 */
export class WaiterHub {
  /** Approval ID → its first waiter here (the others, if any, in its `more`). */
  private readonly slots = new Map<string, Waiter>();
  private readonly listeners: ClosedListener[] = [];
  private waiting = 0;
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
    private readonly repo: WaitSource,
    { now = Date.now, tickMs = 250, pollMs = 1500, overlapMs = 2000, schedule = defaultSchedule, onError = () => {}, gcHint = defaultGcHint }: WaiterHubOptions = {},
  ) {
    this.gcHint = gcHint;
    this.now = now;
    this.overlapMs = overlapMs;
    this.tickMs = tickMs;
    this.pollMs = pollMs;
    this.schedule = schedule;
    this.onError = onError;
  }

  /** Adds a listener for approvals this hub closed itself (expired at the deadline, cancelled on abort). */
  listen(listener: ClosedListener): void {
    this.listeners.push(listener);
  }

  /**
   * Counts one unit of approval work (a wait begun or ended, a page shown or answered). A burst
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
    return this.waiting;
  }

  /**
   * Waits for approval `id` to leave "pending". Resolves "expired" after `deadline` (unix ms, the
   * approval's expiry; the approval is marked expired in the store), "timeout" at `holdUntil` when
   * that comes first (the approval is left alone), "cancelled" when `signal` aborts (the last waiter
   * to leave answers the approval "cancelled", so a late tap is refused), or the state another party
   * committed. Register BEFORE the link is sent, so that an immediate answer is not missed. Throws
   * TypeError when `id` is already waited on and `join` is not set.
   */
  wait(id: string, deadline: number, signal?: AbortSignal, options?: WaitOptions): Promise<WaitOutcome> {
    const head = this.slots.get(id);
    if (head && !options?.join) throw new TypeError("approval already has a waiter");
    const holdUntil = options?.holdUntil;
    const held = holdUntil !== undefined && holdUntil < deadline;
    const w: Waiter = { deadline: held ? holdUntil : deadline, expires: !held, resolve: noop, signal, onAbort: undefined, closing: false, tag: options?.tag, more: undefined };
    const waiting = new Promise<WaitOutcome>((resolve) => {
      w.resolve = resolve;
    });
    this.activity();
    if (head) (head.more ??= []).push(w);
    else this.slots.set(id, w);
    this.waiting++;
    if (signal) this.watch(id, w, signal);
    if (!this.stopTimer) {
      // Nobody waited before: no answer older than now can concern a waiter (links go out after wait()).
      this.polledFrom = this.now();
      this.lastPoll = this.polledFrom;
      this.stopTimer = this.schedule(() => void this.tick(), this.tickMs);
    }
    return waiting;
  }

  /** Ends `w` when `signal` aborts. A method of its own, so the listener keeps only `id` and `w` alive. */
  private watch(id: string, w: Waiter, signal: AbortSignal): void {
    if (signal.aborted) {
      queueMicrotask(() => void this.abandon(id, w));
      return;
    }
    w.onAbort = () => void this.abandon(id, w);
    signal.addEventListener("abort", w.onAbort, { once: true });
  }

  /**
   * Wakes every waiter of `id` with `outcome`, if this process has any. Call it after the answer
   * committed (ApprovalRepo.answer returned true). Returns whether a waiter was woken.
   */
  notify(id: string, outcome: ApprovalOutcome): boolean {
    const head = this.slots.get(id);
    if (!head) return false;
    this.finishAll(id, head, outcome);
    return true;
  }

  /** Ends every wait now with "cancelled" in memory only (shutdown); the store keeps the rows. */
  closeAll(): void {
    for (const [id, head] of this.slots) this.finishAll(id, head, "cancelled");
  }

  /** Resolves one waiter and forgets it; the timer stops when nobody waits. */
  private release(w: Waiter, outcome: WaitOutcome): void {
    this.waiting--;
    this.activity();
    if (w.signal && w.onAbort) w.signal.removeEventListener("abort", w.onAbort);
    if (this.waiting === 0 && this.stopTimer) {
      this.stopTimer();
      this.stopTimer = undefined;
    }
    w.resolve(outcome);
  }

  private finishAll(id: string, head: Waiter, outcome: WaitOutcome): void {
    if (this.slots.get(id) !== head) return;
    this.slots.delete(id);
    const more = head.more;
    this.release(head, outcome);
    if (more) for (const w of more) this.release(w, outcome);
  }

  /**
   * Takes one waiter out (its hold ended, or it went away) while the others stay; a head that leaves
   * hands the approval's state to the next. Returns the approval's head afterwards (undefined when
   * nobody is left), or false when `w` was not waiting on `id`.
   */
  private detach(id: string, w: Waiter): Waiter | undefined | false {
    const head = this.slots.get(id);
    if (!head) return false;
    if (head === w) {
      const next = head.more?.shift();
      if (!next) {
        this.slots.delete(id);
        return undefined;
      }
      next.more = head.more!.length > 0 ? head.more : undefined;
      next.closing = head.closing;
      next.tag = head.tag;
      this.slots.set(id, next);
      return next;
    }
    const i = head.more?.indexOf(w) ?? -1;
    if (i < 0) return false;
    head.more!.splice(i, 1);
    return head;
  }

  private closed(id: string, outcome: "expired" | "cancelled", tag: string | undefined): void {
    for (const l of this.listeners) {
      try {
        l(id, outcome, tag);
      } catch (err) {
        this.onError(err);
      }
    }
  }

  /**
   * A waiter went away (its signal aborted). With others still waiting it just leaves; the last one
   * answers the approval "cancelled", unless an answer beat it.
   */
  private async abandon(id: string, w: Waiter): Promise<void> {
    const head = this.slots.get(id);
    if (!head || (head !== w && !head.more?.includes(w))) return;
    if (head.more && head.more.length > 0) {
      if (this.detach(id, w) !== false) this.release(w, "cancelled");
      return;
    }
    if (head.closing) return;
    head.closing = true;
    try {
      if (await this.repo.answer(id, "cancelled", this.now())) {
        this.closed(id, "cancelled", head.tag);
        return this.finishAll(id, head, "cancelled");
      }
      await this.settleFromStore(id, head);
    } catch (err) {
      this.onError(err);
      this.finishAll(id, head, "cancelled");
    }
  }

  /** Reads the approval and finishes its waiters when it is no longer pending. */
  private async settleFromStore(id: string, head: Waiter): Promise<void> {
    const a = await this.repo.get(id);
    if (!a) return this.finishAll(id, head, "cancelled");
    if (a.state !== "pending") return this.finishAll(id, head, a.state);
    head.closing = false;
  }

  /** Whether `w` reached the approval's expiry; a waiter whose own hold ended is released with "timeout". */
  private due(id: string, w: Waiter, now: number): boolean {
    if (w.deadline > now) return false;
    if (w.expires) return true;
    if (this.detach(id, w) !== false) this.release(w, "timeout");
    return false;
  }

  /** One pass of the shared loop (public for tests with a manual schedule). */
  async tick(): Promise<void> {
    const now = this.now();
    const due: Array<[string, Waiter]> = [];
    for (const [id, head] of this.slots) {
      if (head.closing) continue;
      // Holds that ended leave; an expiry closes the approval for everyone waiting on it.
      let expired = false;
      if (head.more) for (const w of [...head.more]) expired = this.due(id, w, now) || expired;
      expired = this.due(id, head, now) || expired;
      const current = this.slots.get(id);
      if (expired && current) due.push([id, current]);
    }
    await Promise.all(
      due.map(async ([id, head]) => {
        head.closing = true;
        try {
          if (await this.repo.markExpired(id, now)) {
            this.closed(id, "expired", head.tag);
            return this.finishAll(id, head, "expired");
          }
          // Answered at the last moment (or by another node): report what was committed.
          await this.settleFromStore(id, head);
          if (this.slots.get(id) === head) this.finishAll(id, head, "expired");
        } catch (err) {
          head.closing = false;
          this.onError(err);
        }
      }),
    );
    if (now - this.lastPoll >= this.pollMs && !this.polling && this.waiting > 0) {
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
   * Reads the approvals answered since the previous read (minus the overlap) and wakes their
   * waiters here: a few rows per pass instead of one read per waiter (10,000 waiters used to cost
   * 10,000 reads and as many objects every pass).
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
      const head = this.slots.get(r.id);
      if (head && !head.closing) this.finishAll(r.id, head, r.state);
    }
  }
}
