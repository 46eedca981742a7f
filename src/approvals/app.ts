// The approver app's side of approvals (DESIGN "Approver app"; docs/app.md): which users get app
// requests instead of an SMS link, the limits against MFA fatigue, the announcement (event streams
// and Web Push), the request objects a device lists, its signed answers, and the code a user may type
// at the VPN in challenge mode.
//
//   a phone step for a user with a live device ─► admit (reported lock, back-off, per-minute/hour)
//     ─► ApprovalService.open (one pending per kind, user and client) ─► announce:
//          channel "app", `request` on the user's open event streams, Web Push {"v":1,"id"} to every
//          device with a subscription, in parallel and never awaited by the login
//   a signed answer ─► ApprovalService.settle (one conditional write) ─► the waiters wake (held
//     RADIUS request, waiting Magic Link call); `gone` on the event streams; a rejection or report
//     starts the user's back-off
//
// The push payload names only the request. Everything else (who, which service, from where, the
// number-matching choices, the code) travels only over the device's own signed channel, and only to
// devices of the request's user.

import { createHmac } from "node:crypto";
import type { AuditEvent } from "../audit/events.ts";
import type { Level } from "../audit/log.ts";
import { subjectHash } from "../delivery/dispatcher.ts";
import { constantTimeEqual, matchChoices } from "../magiclink/tokens.ts";
import type { PushSender } from "../push/sender.ts";
import type { Approval, ApprovalBlock, ApprovalKind, Device, RateBucket, RateLimitRepo, Store } from "../store/types.ts";
import type { ApprovalService } from "./service.ts";

/** `[app]` as the service uses it (milliseconds). */
export interface AppSettings {
  /** 0 = no limit. */
  perMinute: number;
  /** 0 = no limit. */
  perHour: number;
  /** First back-off after a rejection; doubles per rejection in a row. 0 = none. */
  rejectBackoffMs: number;
  maxBackoffMs: number;
  /** Lock after a report. 0 = none. */
  reportLockMs: number;
  codeToPhone: boolean;
  maxStreamsPerUser: number;
}

export function appSettings(c: {
  requests_per_minute: number;
  requests_per_hour: number;
  reject_backoff_s: number;
  max_backoff_s: number;
  report_lock_s: number;
  code_to_phone: boolean;
  max_streams_per_user: number;
}): AppSettings {
  return {
    perMinute: c.requests_per_minute,
    perHour: c.requests_per_hour,
    rejectBackoffMs: c.reject_backoff_s * 1000,
    maxBackoffMs: c.max_backoff_s * 1000,
    reportLockMs: c.report_lock_s * 1000,
    codeToPhone: c.code_to_phone,
    maxStreamsPerUser: c.max_streams_per_user,
  };
}

export const DEFAULT_APP_SETTINGS: AppSettings = appSettings({
  requests_per_minute: 5,
  requests_per_hour: 30,
  reject_backoff_s: 30,
  max_backoff_s: 900,
  report_lock_s: 1800,
  code_to_phone: true,
  max_streams_per_user: 4,
});

/** A rejection streak ends when the last rejection is older than this. */
export const STREAK_DECAY_MS = 3_600_000;
/**
 * The client name that marks a password-reset approval as the user's own code (the portal shows
 * the code in the user's app instead of an SMS code); reset/service.ts builds it.
 */
export const RESET_CODE_CLIENT_PREFIX = "password reset code: ";
/** Digits of the code shown in the app for challenge mode. */
export const APP_CODE_DIGITS = 6;
/** Event streams one device may hold; a further one closes its oldest. */
export const MAX_STREAMS_PER_DEVICE = 2;

/** A version of the device protocol: its paths start with `/app/api/v{n}`. */
export type AppProtocolVersion = 1 | 2;
export const APP_PROTOCOL_VERSIONS: readonly AppProtocolVersion[] = [1, 2];

/**
 * The request kinds each protocol version shows. A version's list is part of its contract: v1
 * clients were written for three kinds, so they never see (list, stream or answer) another; v2 adds
 * self-service portal sign-ins. A new kind needs a new version.
 */
export const APP_PROTOCOL_KINDS: Readonly<Record<AppProtocolVersion, ReadonlySet<ApprovalKind>>> = {
  1: new Set<ApprovalKind>(["radius", "magic-link", "password-reset"]),
  2: new Set<ApprovalKind>(["radius", "magic-link", "password-reset", "self-service"]),
};

/** Whether a client of protocol `version` may see a request of `kind`. */
export function visibleIn(version: AppProtocolVersion, kind: ApprovalKind): boolean {
  return APP_PROTOCOL_KINDS[version].has(kind);
}

/** One request as the device protocol shows it (`GET /app/api/v{n}/requests`, event `request`). */
export interface AppRequestView {
  id: string;
  kind: ApprovalKind;
  user: string;
  /** The RADIUS client's name, the Magic Link endpoint profile, the password-reset portal, or "self-service". */
  service: string;
  /** Calling-Station-Id, or the caller's address; null when unknown. */
  source: string | null;
  /** ISO 8601 (UTC). */
  created: string;
  expires: string;
  /** Number matching: three numbers, one of them shown at the login. */
  choices?: number[];
  /** Challenge mode: the code the user may type at the VPN instead of approving. */
  code?: string;
}

export type AppDecision = "approve" | "reject" | "report";

export type AppAnswer =
  | { ok: true; status: "approved" | "rejected" | "reported" }
  | { ok: false; status: 404; reason: "unknown_request" }
  | { ok: false; status: 403; reason: "not_your_request" }
  | { ok: false; status: 409; reason: "ended" };

export type LimitReason = "locked" | "backoff" | "rate_limited";
export type Admission = { ok: true } | { ok: false; reason: LimitReason; until?: number };

/** What a stream needs: the device it belongs to, what it was sent, and how to write to it. */
export interface EventSink {
  readonly device: string;
  /** The protocol version the stream was opened with: it is sent only the kinds that version shows. */
  readonly version: AppProtocolVersion;
  /** IDs this stream was sent as `request` and not yet as `gone`. */
  readonly sent: Set<string>;
  send(event: "request" | "gone", data: unknown): void;
  /** Ends the stream (the hub detaches it). */
  close(): void;
}

/**
 * The open event streams of this process, by user, and which stream was sent which request, so that
 * an end reaches exactly the streams that showed it. Other processes' answers and requests reach a
 * stream through its periodic re-read of the store (routes).
 */
export class AppEvents {
  private readonly byUser = new Map<string, Set<EventSink>>();
  private readonly sentTo = new Map<string, Set<EventSink>>();

  constructor(private readonly maxPerUser: number) {}

  /** Open streams right now. */
  get size(): number {
    let n = 0;
    for (const set of this.byUser.values()) n += set.size;
    return n;
  }

  /**
   * Adds a stream of `user`. A device's stream beyond MAX_STREAMS_PER_DEVICE closes its oldest one;
   * false (nothing added) when the user already holds `maxPerUser` streams.
   */
  attach(user: string, sink: EventSink): boolean {
    let set = this.byUser.get(user);
    if (set) {
      const mine = [...set].filter((s) => s.device === sink.device);
      if (mine.length >= MAX_STREAMS_PER_DEVICE) {
        this.detach(user, mine[0]!);
        mine[0]!.close();
      }
      if (set.size >= this.maxPerUser) return false;
    } else {
      set = new Set();
      this.byUser.set(user, set);
    }
    set.add(sink);
    return true;
  }

  detach(user: string, sink: EventSink): void {
    const set = this.byUser.get(user);
    if (!set?.delete(sink)) return;
    if (set.size === 0) this.byUser.delete(user);
    for (const id of sink.sent) this.unmark(id, sink);
  }

  private unmark(id: string, sink: EventSink): void {
    const s = this.sentTo.get(id);
    if (!s) return;
    s.delete(sink);
    if (s.size === 0) this.sentTo.delete(id);
  }

  /** Sends `view` as `request` to `sink` unless it was sent already or its version does not show that kind. */
  offer(sink: EventSink, view: AppRequestView): void {
    if (sink.sent.has(view.id) || !visibleIn(sink.version, view.kind)) return;
    sink.sent.add(view.id);
    let s = this.sentTo.get(view.id);
    if (!s) this.sentTo.set(view.id, (s = new Set()));
    s.add(sink);
    sink.send("request", view);
  }

  /** Sends `gone` for `id` to `sink` when it was shown the request. */
  withdraw(sink: EventSink, id: string): void {
    if (!sink.sent.delete(id)) return;
    this.unmark(id, sink);
    sink.send("gone", { id });
  }

  /** A new request of `user`: every stream of the user gets it. */
  publish(user: string, view: AppRequestView): void {
    const set = this.byUser.get(user);
    if (set) for (const sink of set) this.offer(sink, view);
  }

  /** A request ended (answered, expired, cancelled, failed): `gone` to every stream that showed it. */
  ended(id: string): void {
    const s = this.sentTo.get(id);
    if (!s) return;
    this.sentTo.delete(id);
    for (const sink of s) {
      sink.sent.delete(id);
      sink.send("gone", { id });
    }
  }
}

export interface AppRequestsOptions {
  store: Pick<Store, "devices" | "approvals" | "approvalBlocks" | "clients">;
  rateLimits: RateLimitRepo;
  approvals: ApprovalService;
  /** The Web Push sender; absent: requests reach only open apps. */
  push?: PushSender;
  /** The user holding a phone number (the Magic Link API's app path). */
  userForNumber?(e164: string): Promise<{ id: number; username: string } | undefined>;
  /** The store's server secret: number-matching choices and the challenge-mode code. */
  secret: Uint8Array;
  settings: AppSettings;
  now(): number;
  audit(event: AuditEvent): void;
  log(level: Level, event: string, fields?: Record<string, unknown>): void;
}

const iso = (ms: number) => new Date(ms).toISOString();
const MINUTE = 60_000;
const HOUR = 3_600_000;

/** App requests for users with an enrolled device. Store failures propagate from every method. */
export class AppRequests {
  readonly events: AppEvents;
  /** Pushes still in flight (tests and shutdown wait on them). */
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(private readonly o: AppRequestsOptions) {
    this.events = new AppEvents(o.settings.maxStreamsPerUser);
    o.approvals.onEnd((id) => this.events.ended(id));
  }

  get settings(): AppSettings {
    return this.o.settings;
  }

  /** The live devices of a user (none: the user gets SMS links). */
  devicesOf(userId: number): Promise<Device[]> {
    return this.o.store.devices.list({ userId });
  }

  /** The user holding `e164` when that user has a live device, with the devices. */
  async appUserForNumber(e164: string): Promise<{ user: { id: number; username: string }; devices: Device[] } | undefined> {
    const user = await this.o.userForNumber?.(e164);
    if (!user) return undefined;
    const devices = await this.devicesOf(user.id);
    return devices.length > 0 ? { user, devices } : undefined;
  }

  /**
   * May `user` get a new app request now? Refused while a report's lock or a rejection's back-off
   * runs, and beyond the per-minute and per-hour counts (each admitted request counts, also one that
   * then joins a pending request).
   */
  async admit(user: string): Promise<Admission> {
    const now = this.o.now();
    const block = await this.o.store.approvalBlocks.get(user);
    if (block && block.blockedUntil > now) return { ok: false, reason: block.reason === "reported" ? "locked" : "backoff", until: block.blockedUntil };
    const s = this.o.settings;
    const who = subjectHash(`app:${user}`);
    const buckets: RateBucket[] = [];
    if (s.perMinute > 0) buckets.push({ key: `app:${who}:m`, windowMs: MINUTE, limit: s.perMinute });
    if (s.perHour > 0) buckets.push({ key: `app:${who}:h`, windowMs: HOUR, limit: s.perHour });
    if (buckets.length > 0 && !(await this.o.rateLimits.consume(buckets, now)).allowed) return { ok: false, reason: "rate_limited" };
    return { ok: true };
  }

  /** Audits a request the limits refused. */
  limited(kind: ApprovalKind, client: string, user: string, reason: LimitReason): void {
    this.o.audit({ type: "approval.limited", kind, client, user, reason });
  }

  /**
   * Sends a new approval to the user's app: marks its channel, shows it on the user's open event
   * streams, and pushes `{"v":1,"id"}` to every device with a subscription, in parallel. The push is
   * not awaited and its failure never reaches the caller (push.* events say what happened).
   */
  async announce(a: Approval, user: { id: number; username: string }, devices?: readonly Device[]): Promise<void> {
    await this.o.store.approvals.setChannel(a.id, "app");
    // the caller's copy stays in step with the store (code to phone is offered by channel)
    a.channel = "app";
    const devs = devices ?? (await this.devicesOf(user.id));
    const withPush = devs.filter((d) => d.push !== null).length;
    this.o.audit({ type: "approval.app_request", id: a.id, kind: a.kind, client: a.client, user: user.username, devices: devs.length, push: this.o.push ? withPush : 0 });
    this.events.publish(user.username, await this.view(a));
    const push = this.o.push;
    if (push && withPush > 0) {
      const p = push.notifyDevices(user.username, devs, { id: a.id, expiresAt: a.expiresAt }).catch((err: unknown) => {
        this.o.log("error", "push.error", { error: (err as Error)?.name ?? "error" });
      });
      this.inFlight.add(p);
      void p.finally(() => this.inFlight.delete(p));
    }
  }

  /** An approval as it stands (a pending one past its expiry is closed as expired first); undefined when unknown. */
  current(id: string): Promise<Approval | undefined> {
    return this.o.approvals.current(id);
  }

  /** Withdraws a pending approval (the asker gave up): `gone` on the streams; true when this call did it. */
  cancel(id: string): Promise<boolean> {
    return this.o.approvals.cancel(id);
  }

  /** Resolves when every push started so far has ended. */
  async settled(): Promise<void> {
    await Promise.all([...this.inFlight]);
  }

  /**
   * Whether the app shows a code for `a`: a RADIUS approval of a client in challenge mode, with
   * `code_to_phone` on; or a password-reset portal's code for the user's own reset.
   */
  async showsCode(a: Pick<Approval, "kind" | "client">): Promise<boolean> {
    if (a.kind === "password-reset") return a.client.startsWith(RESET_CODE_CLIENT_PREFIX);
    if (!this.o.settings.codeToPhone || a.kind !== "radius") return false;
    const client = await this.o.store.clients.findByName(a.client);
    return client?.approvalMode === "challenge";
  }

  /** The challenge-mode code of an approval: HMAC of its ID under the server secret, APP_CODE_DIGITS decimal digits. */
  codeFor(id: string): string {
    const d = createHmac("sha256", this.o.secret).update(`app-code:${id}`, "utf8").digest();
    return String(d.readUInt32BE(0) % 10 ** APP_CODE_DIGITS).padStart(APP_CODE_DIGITS, "0");
  }

  /** The request object of a pending approval (for its own user's devices only). */
  async view(a: Approval): Promise<AppRequestView> {
    const v: AppRequestView = { id: a.id, kind: a.kind, user: a.user ?? "", service: a.client, source: a.source, created: iso(a.createdAt), expires: iso(a.expiresAt) };
    if (a.numberMatch !== null) v.choices = matchChoices(this.o.secret, a.id, a.numberMatch);
    if (a.channel === "app" && (await this.showsCode(a))) v.code = this.codeFor(a.id);
    return v;
  }

  /** The pending, unexpired requests of `user` that protocol `version` shows, oldest first. */
  async list(user: string, version: AppProtocolVersion): Promise<AppRequestView[]> {
    const pending = await this.o.store.approvals.pendingForUser(user, this.o.now());
    return Promise.all(pending.filter((a) => visibleIn(version, a.kind)).map((a) => this.view(a)));
  }

  /**
   * A device's signed answer. 404 for no such request, 403 for another user's, 409 once it ended.
   * A number-matching request approved with a wrong pick (or none) is rejected. A rejection (also a
   * wrong pick) starts the user's back-off; a report rejects, is audited as `approval.reported`, and
   * locks the user's app requests for `report_lock_s`; an approval ends the streak. A request of a
   * kind that protocol `version` does not show is answered as unknown (404), whoever's it is.
   */
  async answer(device: Device, user: { username: string }, id: string, decision: AppDecision, pick: number | undefined, version: AppProtocolVersion): Promise<AppAnswer> {
    const a = await this.o.store.approvals.get(id);
    if (!a || !visibleIn(version, a.kind)) return { ok: false, status: 404, reason: "unknown_request" };
    if (a.user !== user.username) return { ok: false, status: 403, reason: "not_your_request" };
    if (a.state !== "pending" || a.expiresAt <= this.o.now()) return { ok: false, status: 409, reason: "ended" };
    let state: "approved" | "rejected" | "reported";
    let wrongNumber = false;
    if (decision === "approve") {
      wrongNumber = a.numberMatch !== null && pick !== a.numberMatch;
      state = wrongNumber ? "rejected" : "approved";
    } else state = decision === "reject" ? "rejected" : "reported";
    if (!(await this.o.approvals.settle(a, state, wrongNumber))) return { ok: false, status: 409, reason: "ended" };
    this.o.audit({ type: "approval.app_answered", id: a.id, kind: a.kind, client: a.client, user: user.username, device: device.id, state, wrong_number: wrongNumber });
    if (state === "approved") await this.o.store.approvalBlocks.clear(user.username);
    else await this.strike(a, user.username, state, device.id);
    return { ok: true, status: state };
  }

  /**
   * A code typed at the VPN in challenge mode: the right one approves, a wrong one rejects the
   * approval (one guess per request; the back-off and the per-minute limit bound new requests).
   */
  async answerByCode(a: Approval, presented: string): Promise<"approved" | "wrong" | "ended"> {
    if (!constantTimeEqual(presented, this.codeFor(a.id))) {
      if (await this.o.approvals.settle(a, "rejected")) {
        this.o.audit({ type: "approval.wrong_code", id: a.id, client: a.client, user: a.user ?? "" });
        if (a.user !== null) await this.strike(a, a.user, "rejected", null);
      }
      return "wrong";
    }
    return (await this.o.approvals.settle(a, "approved")) ? "approved" : "ended";
  }

  /** Starts or lengthens the user's back-off after a rejection or report. */
  private async strike(a: Approval, user: string, state: "rejected" | "reported", device: string | null): Promise<void> {
    const s = this.o.settings;
    const now = this.o.now();
    const ms = (streak: number) => (state === "reported" ? s.reportLockMs : Math.min(s.rejectBackoffMs * 2 ** (streak - 1), s.maxBackoffMs));
    let b: ApprovalBlock | undefined;
    if (state === "reported" ? s.reportLockMs > 0 : s.rejectBackoffMs > 0) {
      b = await this.o.store.approvalBlocks.strike(user, (cur) => {
        const streak = cur && now - cur.updatedAt < STREAK_DECAY_MS ? cur.strikes + 1 : 1;
        const until = now + ms(streak);
        const keep = cur !== undefined && cur.blockedUntil > until;
        return { user, strikes: streak, blockedUntil: keep ? cur.blockedUntil : until, reason: keep ? cur.reason : state, updatedAt: now };
      });
    }
    if (state === "reported") {
      this.o.audit({ type: "approval.reported", id: a.id, kind: a.kind, client: a.client, user, device: device ?? "", source: a.source, until: b ? iso(b.blockedUntil) : null });
    } else if (b) {
      this.o.audit({ type: "approval.backoff", user, strikes: b.strikes, until: iso(b.blockedUntil) });
    }
  }
}
