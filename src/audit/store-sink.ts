// The audit bus's store subscriber: events go to the store's audit_log table (audit_log in
// store/migrations.ts) in batches, one statement per event-loop turn, so that every process and
// node on the store sees them (the admin web UI's audit page, GET /api/v1/audit). Logins never wait
// for it: the event is already on standard output (logSink runs first), a batch is written after
// the turn that emitted it, and when the store is slow or down the queue is bounded and the events
// it cannot hold are only counted (`onUnstored`). Authentications are also counted per minute and
// outcome (auth_minutes), added to the store every few seconds, for the dashboard.

import type { AuditLogRepo, AuthMinute, AuthOutcome, NewAuditRecord } from "../store/types.ts";
import type { AuditEvent } from "./events.ts";

/** Events waiting for the store at most; beyond it new ones are counted as not stored ("queue"). */
export const AUDIT_QUEUE_MAX = 10_000;
/** Records per INSERT. */
const BATCH = 500;
/** How often the per-minute counts are added to the store. */
export const COUNT_FLUSH_MS = 2000;
/** Per-minute counts not yet added are kept this many minutes while the store is down. */
const COUNT_KEEP_MINUTES = 60;

/** Why an event went to standard output only. */
export type UnstoredReason = "excluded" | "rate" | "queue" | "store";

export interface AuditStoreOptions {
  repo: AuditLogRepo;
  /** The emitting process ("host", "host/w2"). */
  node: string;
  /** Event names, or prefixes ending in ".", not stored one by one ([audit] exclude). */
  exclude: readonly string[];
  /** Events stored per second at most ([audit] max_per_second); admin.* and ui.* events are not held to it. */
  maxPerSecond: number;
  now?: () => number;
  /** Counts events not stored (not called for "excluded"). */
  onUnstored?: (reason: Exclude<UnstoredReason, "excluded">, n: number) => void;
  /** A store failure (at most one call per minute). */
  onError?: (err: unknown) => void;
}

/**
 * Field names never stored, whatever an event carries: the events are built without secrets
 * (events.ts), and this is the second guard. (`code` is not here: Magic Link events use it for the
 * answer's status.)
 */
const SECRET_FIELD = /^(password|new_password|passcode|passphrase|secret|seed|otp|pin|cookie|private_key)$/i;

const AUTH_OUTCOME: Partial<Record<AuditEvent["type"], AuthOutcome>> = { "auth.success": "accept", "auth.failure": "reject", "auth.challenge": "challenge" };

/** The outcome column of an event: what happened, in one word, where the event says it. */
export function outcomeOf(event: AuditEvent): string | null {
  const f = event as unknown as Record<string, unknown>;
  const auth = AUTH_OUTCOME[event.type];
  if (auth) return auth;
  switch (event.type) {
    case "approval.expired":
      return "expired";
    case "approval.cancelled":
      return "cancelled";
    case "approval.not_delivered":
    case "sms_code.not_delivered":
    case "magiclink.not_delivered":
      return "not_delivered";
    case "approval.delivered":
    case "sms_code.sent":
    case "magiclink.sent":
    case "push.sent":
      return "sent";
    case "delivery.failed":
    case "push.failed":
    case "ui.sign_in_failed":
    case "password_reset.failed":
      return "failed";
    case "delivery.refused":
    case "ui.refused":
    case "device.enrolment_refused":
    case "device.request_refused":
    case "device.push_refused":
    case "selfservice.link_refused":
    case "selfservice.removal_refused":
    case "switch.auth_refused":
    case "switch.frame_refused":
    case "approval.join_refused":
      return "refused";
    case "approval.limited":
    case "selfservice.rate_limited":
    case "password_reset.limited":
      return "limited";
    case "ui.signed_in":
    case "selfservice.signed_in":
    case "password_reset.changed":
      return "ok";
    case "password_reset.approved":
      return "approved";
    case "password_reset.rejected":
      return "rejected";
  }
  if (typeof f.outcome === "string") return f.outcome;
  if (typeof f.state === "string") return f.state;
  if (typeof f.status === "string") return f.status;
  if (typeof f.result === "string") return f.result;
  if (typeof f.ok === "boolean") return f.ok ? "ok" : "failed";
  return null;
}

/** The event as a stored record: its fields are the log line's, without the type. */
export function auditRecordOf(event: AuditEvent, at: number, node: string): NewAuditRecord {
  const { type, ...rest } = event as unknown as Record<string, unknown> & { type: string };
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rest)) if (v !== undefined && !SECRET_FIELD.test(k)) fields[k] = v;
  const str = (v: unknown): string | null => (typeof v === "string" && v !== "" ? v : null);
  const actor = str(fields.by) ?? (type.startsWith("ui.") ? str(fields.account) : null) ?? (type.startsWith("magiclink.") ? str(fields.key) : null);
  return { at, event: type, actor, user: str(fields.user), client: str(fields.client), outcome: outcomeOf(event), node, fields };
}

export class AuditStoreSink {
  private queue: NewAuditRecord[] = [];
  private scheduled = false;
  private writing: Promise<void> | undefined;
  private second = -1;
  private storedThisSecond = 0;
  /** minute (unix ms) → [accept, reject, challenge] not yet added to the store. */
  private counts = new Map<number, [number, number, number]>();
  private countTimer: ReturnType<typeof setInterval> | undefined;
  private countWrite: Promise<void> | undefined;
  private lastError = -Infinity;
  private readonly now: () => number;
  private readonly exact: Set<string>;
  private readonly prefixes: string[];

  constructor(private readonly o: AuditStoreOptions) {
    this.now = o.now ?? Date.now;
    this.exact = new Set(o.exclude.filter((e) => !e.endsWith(".")));
    this.prefixes = o.exclude.filter((e) => e.endsWith("."));
  }

  /** Starts adding the per-minute counts to the store every COUNT_FLUSH_MS. */
  start(): void {
    this.countTimer ??= setInterval(() => void this.flushCounts(), COUNT_FLUSH_MS);
    this.countTimer.unref?.();
  }

  /** Whether events of this type are stored one by one. */
  stores(type: string): boolean {
    if (this.exact.has(type)) return false;
    for (const p of this.prefixes) if (type.startsWith(p)) return false;
    return true;
  }

  /** The bus subscriber. Never throws, never waits. */
  push = (event: AuditEvent): void => {
    const at = this.now();
    const auth = AUTH_OUTCOME[event.type];
    if (auth) this.count(at, auth);
    if (!this.stores(event.type)) return;
    const second = Math.floor(at / 1000);
    if (second !== this.second) {
      this.second = second;
      this.storedThisSecond = 0;
    }
    // People's own actions (admin changes, UI sign-ins) are few and are never traded for a flood of logins.
    const human = event.type.startsWith("admin.") || event.type.startsWith("ui.");
    if (!human && this.storedThisSecond >= this.o.maxPerSecond) return this.o.onUnstored?.("rate", 1);
    if (this.queue.length >= AUDIT_QUEUE_MAX) return this.o.onUnstored?.("queue", 1);
    this.storedThisSecond++;
    this.queue.push(auditRecordOf(event, at, this.o.node));
    this.schedule();
  };

  private count(at: number, outcome: AuthOutcome): void {
    const minute = Math.floor(at / 60_000) * 60_000;
    let c = this.counts.get(minute);
    if (!c) this.counts.set(minute, (c = [0, 0, 0]));
    c[outcome === "accept" ? 0 : outcome === "reject" ? 1 : 2]++;
  }

  private schedule(): void {
    if (this.scheduled || this.writing) return;
    this.scheduled = true;
    setImmediate(this.endOfTurn);
  }

  private readonly endOfTurn = (): void => {
    this.scheduled = false;
    this.writing = this.write().finally(() => {
      this.writing = undefined;
      if (this.queue.length > 0) this.schedule();
    });
  };

  private async write(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.length <= BATCH ? this.queue : this.queue.slice(0, BATCH);
      this.queue = this.queue.length <= BATCH ? [] : this.queue.slice(BATCH);
      try {
        await this.o.repo.append(batch);
      } catch (err) {
        this.o.onUnstored?.("store", batch.length);
        this.failed(err);
        return;
      }
    }
  }

  private failed(err: unknown): void {
    const now = this.now();
    if (now - this.lastError < 60_000) return;
    this.lastError = now;
    this.o.onError?.(err);
  }

  /** Adds the per-minute counts gathered so far to the store (kept for a later try when it fails). */
  flushCounts(): Promise<void> {
    if (this.countWrite) return this.countWrite;
    if (this.counts.size === 0) return Promise.resolve();
    const taken = this.counts;
    this.counts = new Map();
    const rows: AuthMinute[] = [];
    for (const [minute, [a, r, c]] of taken) {
      if (a) rows.push({ minute, outcome: "accept", n: a });
      if (r) rows.push({ minute, outcome: "reject", n: r });
      if (c) rows.push({ minute, outcome: "challenge", n: c });
    }
    this.countWrite = this.o.repo
      .addCounts(rows)
      .catch((err: unknown) => {
        this.failed(err);
        const oldest = Math.floor(this.now() / 60_000) * 60_000 - COUNT_KEEP_MINUTES * 60_000;
        for (const [minute, [a, r, c]] of taken) {
          if (minute < oldest) continue;
          const cur = this.counts.get(minute) ?? [0, 0, 0];
          this.counts.set(minute, [cur[0] + a, cur[1] + r, cur[2] + c]);
        }
      })
      .finally(() => {
        this.countWrite = undefined;
      });
    return this.countWrite;
  }

  /** Writes what is queued and counted now (the end of the process, and tests). */
  async flush(): Promise<void> {
    if (this.writing) await this.writing;
    if (this.queue.length > 0) await this.write();
    await this.flushCounts();
  }

  /** Stops the count timer and writes what is left. */
  async stop(): Promise<void> {
    if (this.countTimer) clearInterval(this.countTimer);
    this.countTimer = undefined;
    await this.flush();
  }
}
