// Magic Link calls: the blocking API call (create an approval → deliver → wait) and the approval
// page's view and answer, over the shared approval service. Transport-free: routes.tsx adapts it to HTTP.

import type { AppRequests } from "../approvals/app.ts";
import type { Level } from "../audit/log.ts";
import { ApprovalService, type AnswerForm, type NotDeliveredReason } from "../approvals/service.ts";
import type { ApprovalContext } from "../approvals/texts.ts";
import type { WaiterHub, WaitOutcome } from "../approvals/waiters.ts";
import { maskNumber, parseDestination, type Destination } from "../delivery/phone.ts";
import { subjectHash, type Dispatcher, type RefusalReason } from "../delivery/dispatcher.ts";
import { DEFAULT_ENDPOINT, type ApiKey, type ApprovalKind, type EndpointProfile, type RateBucket, type RateLimitRepo, type Store } from "../store/types.ts";
import { parseParams, type SessionTexts } from "./params.ts";

/** What `/api/sfwa/auth` answers, always as HTTP 200 `{"code":"…"}`. */
export type MagicLinkCode = "TOUCH_ACCEPTED" | "TOUCH_REJECTED" | "USER_NOT_RESPONDED" | "FAILED_DELIVERY" | "BAD_REQUEST";

export const MAGICLINK_CODES: readonly MagicLinkCode[] = ["TOUCH_ACCEPTED", "TOUCH_REJECTED", "USER_NOT_RESPONDED", "FAILED_DELIVERY", "BAD_REQUEST"];

/** How a delivery refusal is answered (docs/magiclink.md): the caller's fault or limits → BAD_REQUEST. */
export const REFUSAL_CODE: Record<RefusalReason, MagicLinkCode> = {
  invalid_number: "BAD_REQUEST",
  rate_limited: "BAD_REQUEST",
  country_not_allowed: "FAILED_DELIVERY",
  number_type_not_allowed: "FAILED_DELIVERY",
  unknown_user: "FAILED_DELIVERY",
  all_channels_failed: "FAILED_DELIVERY",
};

/** A Magic Link session's final status, as the API and its events name it: the approval's state, with `approved` called `accepted`. */
export type SessionOutcome = "accepted" | "rejected" | "expired" | "cancelled" | "failed";

/** Approval outcome → the session's name for it (`reported`, from the approver app, is a rejection; a hold timeout never happens here). */
const SESSION_OUTCOME: Record<WaitOutcome, SessionOutcome> = {
  approved: "accepted",
  rejected: "rejected",
  reported: "rejected",
  expired: "expired",
  cancelled: "cancelled",
  failed: "failed",
  timeout: "expired",
};

const OUTCOME_CODE: Record<SessionOutcome, MagicLinkCode> = {
  accepted: "TOUCH_ACCEPTED",
  rejected: "TOUCH_REJECTED",
  expired: "USER_NOT_RESPONDED",
  cancelled: "USER_NOT_RESPONDED",
  failed: "FAILED_DELIVERY",
};

/** A link that could not be sent for want of `[http] public_url` is this service's own check, made before any approval exists. */
const NOT_DELIVERED_CODE: Record<NotDeliveredReason, MagicLinkCode> = { ...REFUSAL_CODE, no_public_url: "FAILED_DELIVERY" };

export interface MagicLinkServiceOptions {
  store: Store;
  /** Shared rate-limit counters (the endpoint profile's limits are counted here, beside the dispatcher's global ones). */
  rateLimits: RateLimitRepo;
  /** The dispatcher for an endpoint's channel list ([] = the configured order). */
  dispatcherFor(channels: readonly string[]): Dispatcher;
  /** `[http] public_url`; links are built only from it. Empty: every call is FAILED_DELIVERY. */
  publicUrl: string;
  /** Top-level `region` for local-format numbers. */
  region: string;
  smsMaxLength: number;
  emailSubject: string;
  /** HMAC key for CSRF tokens and number-matching decoys (≥32 random bytes): the store's serverSecret, so that a page
   * rendered before a restart or by another node is answerable. */
  secret: Uint8Array;
  /** Finds the e-mail address of the user holding a number (for the e-mail channel). */
  emailFor?(e164: string): Promise<string | undefined>;
  now(): number;
  random(n: number): Uint8Array;
  log(level: Level, event: string, fields?: Record<string, unknown>): void;
  /** After every API answer (metrics). */
  onOutcome?(code: MagicLinkCode): void;
  /**
   * The shared approval service (serve passes the one RADIUS uses). Without it the service builds
   * its own from these options and `hub`.
   */
  approvals?: ApprovalService;
  /** The waiter hub for an approval service built here (tests pass one with a manual clock). */
  hub?: WaiterHub;
  /**
   * The approver app: a number whose user has a live device gets an app request (Mideye's path
   * "4a") instead of the SMS link ("4b").
   */
  app?: Pick<AppRequests, "appUserForNumber" | "admit" | "limited" | "announce">;
  /** Calls creating a session and delivering its link at once; more queue. Default 128. */
  maxConcurrentStarts?: number;
}

/** A call whose link went out: what it waits for and what its outcome line says. */
interface Started {
  waiting: Promise<WaitOutcome>;
  endpoint: string;
  to: string;
}

/** One API call as routes.ts hands it over. */
export interface AuthCall {
  apiKey: ApiKey;
  /** `{endpoint}` from the path, or undefined for `/api/sfwa/auth`. */
  endpoint?: string;
  query: Record<string, string | undefined>;
  /** Aborts when the caller disconnects: the session is cancelled. */
  signal?: AbortSignal;
  /** The caller's address (after trusted_proxies), recorded as the approval's source. */
  source?: string;
}

/** What the approval page shows for a link. */
export type LinkView =
  | { kind: "pending"; texts: SessionTexts; csrf: string; choices: number[] | null; context: ApprovalContext | null; approvalKind: ApprovalKind }
  | { kind: "answered"; status: "accepted" | "rejected"; texts: SessionTexts }
  | { kind: "invalid" };

/** What a POST on the approval page did. */
export type AnswerResult =
  | { kind: "done"; status: "accepted" | "rejected"; texts: SessionTexts; wrongNumber: boolean }
  | { kind: "answered"; status: "accepted" | "rejected"; texts: SessionTexts }
  | { kind: "bad_csrf" }
  | { kind: "invalid" };

/** The approval form's fields (the page is shared by every kind of approval). */
export type { AnswerForm };

const MINUTE = 60_000;
const HOUR = 3_600_000;


/** The endpoint profile's own limits, as buckets separate from the dispatcher's global ones. */
export function endpointBuckets(profile: EndpointProfile, e164: string, apiKeyId: number): RateBucket[] {
  const ep = subjectHash(profile.name);
  const l = profile.rateLimits;
  const out: RateBucket[] = [];
  const add = (key: string, windowMs: number, limit: number) => {
    if (limit > 0) out.push({ key: `ep:${ep}:${key}`, windowMs, limit });
  };
  add(`number:${subjectHash(e164)}:m`, MINUTE, l.perNumberPerMinute);
  add(`number:${subjectHash(e164)}:h`, HOUR, l.perNumberPerHour);
  add(`key:${subjectHash(String(apiKeyId))}:m`, MINUTE, l.perKeyPerMinute);
  add("all:m", MINUTE, l.overallPerMinute);
  return out;
}

/**
 * The Magic Link service. `authenticate` never throws: every outcome, including a store failure,
 * is a MagicLinkCode (a store failure is FAILED_DELIVERY and logged).
 */
export class MagicLinkService {
  readonly approvals: ApprovalService;
  readonly hub: WaiterHub;
  private readonly maxStarts: number;
  private starting = 0;
  private readonly startQueue: Array<() => void> = [];
  /**
   * API key IDs whose ignored `sms-text` was already logged (in this process): one line per key tells
   * the operator which client sends its own text, without a line per call. Bounded by the number of
   * keys in the store.
   */
  private readonly customTextLogged = new Set<number>();

  constructor(private readonly o: MagicLinkServiceOptions) {
    this.maxStarts = Math.max(1, o.maxConcurrentStarts ?? 128);
    this.approvals =
      o.approvals ??
      new ApprovalService({
        approvals: o.store.approvals,
        dispatcherFor: o.dispatcherFor,
        publicUrl: o.publicUrl,
        smsMaxLength: o.smsMaxLength,
        emailSubject: o.emailSubject,
        secret: o.secret,
        emailFor: o.emailFor,
        now: o.now,
        random: o.random,
        log: o.log,
        hub: o.hub,
      });
    this.hub = this.approvals.hub;
  }

  /**
   * The blocking API call: validates, creates the session, sends the link, and waits for the answer.
   * The wait is a chain of promise continuations rather than suspended async frames, which keeps
   * each of thousands of waiting calls small.
   */
  authenticate(call: AuthCall): Promise<MagicLinkCode> {
    return this.run(call)
      .catch((err: unknown) => {
        this.o.log("error", "magiclink.error", { error: err instanceof Error ? err.name : "error", code: (err as { code?: string })?.code });
        return "FAILED_DELIVERY" as const;
      })
      .then((code) => {
        this.o.onOutcome?.(code);
        return code;
      });
  }

  private bad(reason: string, fields: Record<string, unknown> = {}): MagicLinkCode {
    this.o.log("info", "magiclink.bad_request", { reason, ...fields });
    return "BAD_REQUEST";
  }

  private run(call: AuthCall): Promise<MagicLinkCode> {
    // Only small values outlive start(): the session row, texts, link and message are garbage once
    // the call waits (an async frame would keep every local alive until it returns).
    return this.gated(() => this.start(call)).then((started) => {
      if (typeof started === "string") return started;
      const { endpoint, to } = started;
      return started.waiting.then((state) => {
        const outcome = SESSION_OUTCOME[state];
        const code = OUTCOME_CODE[outcome];
        this.o.log("info", "magiclink.outcome", { endpoint, to, outcome, code });
        return code;
      });
    });
  }

  /**
   * At most `maxConcurrentStarts` calls create and deliver at once; the rest queue (a burst of
   * 10,000 arrivals otherwise holds 10,000 gateway requests, rows and messages in memory together).
   */
  private async gated<T>(fn: () => Promise<T>): Promise<T> {
    if (this.starting >= this.maxStarts) await new Promise<void>((resolve) => this.startQueue.push(resolve));
    else this.starting++;
    try {
      return await fn();
    } finally {
      // Hand the slot straight to the next queued call, or give it back.
      const next = this.startQueue.shift();
      if (next) next();
      else this.starting--;
    }
  }

  /** Validates, creates the session and sends the link: an early code, or the wait to await. */
  private async start(call: AuthCall): Promise<MagicLinkCode | Started> {
    const { store, now } = this.o;
    // The caller left while queued: nothing to create or send.
    if (call.signal?.aborted) return "USER_NOT_RESPONDED";
    const keyEndpoint = call.apiKey.endpoint ?? DEFAULT_ENDPOINT;
    if (call.endpoint !== undefined && call.endpoint !== keyEndpoint) return this.bad("endpoint_mismatch", { key: call.apiKey.name });
    const profile = await store.endpoints.get(keyEndpoint);
    if (!profile) return this.bad("endpoint_unknown", { key: call.apiKey.name });
    const parsed = parseParams(call.query);
    if (!parsed.ok) return this.bad("parameters", { fields: parsed.fields, endpoint: profile.name });
    const p = parsed.params;
    const dest: Destination | undefined = parseDestination(p.msisdn, this.o.region);
    if (!dest) return this.bad("invalid_number", { endpoint: profile.name });
    if (!this.o.publicUrl) {
      this.o.log("error", "magiclink.no_public_url", { detail: "http.public_url is empty: no link can be sent" });
      return "FAILED_DELIVERY";
    }

    // The endpoint profile's limits, counted beside the dispatcher's [delivery] limits (both apply).
    const decision = await this.o.rateLimits.consume(endpointBuckets(profile, dest.e164, call.apiKey.id), now());
    if (!decision.allowed) return this.bad("endpoint_rate_limited", { endpoint: profile.name });

    const timeoutS = p.touchTimeoutS ?? profile.touchTimeoutS;
    const t = profile.texts;
    const texts: SessionTexts = {
      title: p.titleText ?? t.title_text,
      authentication: p.authenticationText ?? t.authentication_text,
      accept: p.touchAcceptText ?? t.touch_accept_text,
      reject: p.touchRejectText ?? t.touch_reject_text,
      buttonAccept: p.buttonAcceptText ?? t.button_accept_text,
      buttonReject: p.buttonRejectText ?? t.button_reject_text,
    };
    const request = {
      kind: "magic-link" as const,
      client: profile.name,
      source: call.source ?? null,
      msisdn: dest.e164,
      apiKeyId: call.apiKey.id,
      texts,
      lifetimeMs: timeoutS * 1000,
      numberMatch: p.matchNumber ?? null,
    };
    // The number's user has an approver device: the request goes to the app ("4a").
    const appUser = this.o.app ? await this.o.app.appUserForNumber(dest.e164) : undefined;
    if (appUser) {
      const app = this.o.app!;
      const username = appUser.user.username;
      const admitted = await app.admit(username);
      if (!admitted.ok) {
        app.limited("magic-link", profile.name, username, admitted.reason);
        // Too many requests is the caller's limit (like the delivery limits); a lock or back-off
        // follows the user's own rejection or report.
        if (admitted.reason === "rate_limited") return this.bad("app_rate_limited", { endpoint: profile.name });
        this.o.log("info", "magiclink.outcome", { endpoint: profile.name, to: maskNumber(dest), outcome: "rejected", code: "TOUCH_REJECTED" });
        return "TOUCH_REJECTED";
      }
      // With a user, one request per user and endpoint is pending at once: a call from the same
      // caller address joins it, one from elsewhere is refused.
      const opened = await this.approvals.open({ ...request, user: username });
      if (opened.kind === "busy") return this.bad("app_request_pending", { endpoint: profile.name });
      const joined = opened.kind === "joined";
      const waiting = this.approvals.wait(opened.approval, { signal: call.signal }, joined);
      if (!joined) await app.announce(opened.approval, appUser.user, appUser.devices);
      const to = maskNumber(dest);
      this.o.log("info", "magiclink.sent", { endpoint: profile.name, to, channel: "app", timeout_s: timeoutS, number_match: p.matchNumber !== undefined });
      return { waiting, endpoint: profile.name, to };
    }

    // A call by number has no user: it never joins another, so open() always creates.
    const opened = await this.approvals.open({ ...request, user: null });
    if (opened.kind !== "created") throw new TypeError("a Magic Link approval without a user was joined");
    // Wait first: a tap that arrives before deliver() returns must not be missed.
    const waiting = this.approvals.wait(opened.approval, { signal: call.signal });

    // Mideye clients pass `sms-text`; where the endpoint does not allow it, the call proceeds with
    // the endpoint's own text, and the key is named once so that the operator can tell.
    if (!profile.allowCustomSmsText && p.smsText !== undefined && p.smsText.trim() !== "" && !this.customTextLogged.has(call.apiKey.id)) {
      this.customTextLogged.add(call.apiKey.id);
      this.o.log("warn", "magiclink.custom_text_ignored", { key: call.apiKey.name, endpoint: profile.name });
    }
    const delivered = await this.approvals.deliver(
      opened.approval,
      opened.token,
      {
        msisdn: dest.e164,
        channels: profile.channels,
        template: t.sms_text,
        customText: p.smsText,
        allowCustom: profile.allowCustomSmsText,
        endpoint: profile.name,
        rateKey: String(call.apiKey.id),
        requireKnownUser: profile.requireKnownUser,
        subject: this.o.emailSubject,
      },
      call.signal,
    );
    if (!delivered.ok) {
      await waiting;
      const code = NOT_DELIVERED_CODE[delivered.reason];
      this.o.log("info", "magiclink.not_delivered", { endpoint: profile.name, to: maskNumber(dest), reason: delivered.reason, code });
      return code;
    }
    const to = maskNumber(dest);
    this.o.log("info", "magiclink.sent", { endpoint: profile.name, to, channel: delivered.via, timeout_s: timeoutS, number_match: p.matchNumber !== undefined });
    return { waiting, endpoint: profile.name, to };
  }

  /** Whether `token` names an approval at all (any state); nothing is changed. A store failure propagates. */
  isLink(token: string): Promise<boolean> {
    return this.approvals.isLink(token);
  }

  /**
   * What `/ml/{token}` shows, for every kind of approval (the page is shared). Never changes
   * anything (link scanners fetch links). Unknown, expired, cancelled and failed links all look the
   * same ("invalid"). A store failure propagates.
   */
  async view(token: string): Promise<LinkView> {
    const v = await this.approvals.view(token);
    if (v.kind === "invalid") return v;
    if (v.kind === "answered") return { kind: "answered", status: v.state === "approved" ? "accepted" : "rejected", texts: v.texts };
    return { kind: "pending", texts: v.texts, csrf: v.csrf, choices: v.choices, context: v.context, approvalKind: v.approval.kind };
  }

  /**
   * A POST from the approval page: checks the CSRF token (constant time), then answers the approval
   * once (the store's conditional update) and wakes the waiting call. A wrong number-matching pick
   * rejects. A store failure propagates.
   */
  async answer(token: string, form: AnswerForm): Promise<AnswerResult> {
    const r = await this.approvals.answer(token, form, (a, state, wrongNumber) => {
      if (a.kind === "magic-link") this.o.log("info", "magiclink.answered", { endpoint: a.client, status: state === "approved" ? "accepted" : "rejected", wrong_number: wrongNumber });
    });
    if (r.kind === "bad_csrf" || r.kind === "invalid") return r;
    const status = r.state === "approved" ? "accepted" : "rejected";
    if (r.kind === "answered") return { kind: "answered", status, texts: r.texts };
    return { kind: "done", status, texts: r.texts, wrongNumber: r.wrongNumber };
  }
}
