// The approval service: create (or join) an approval, deliver its link, wait for the answer, and
// answer it from the approval page. RADIUS held requests and challenge legs, Magic Link calls and
// password-reset approvers all go through it; transport-free (http/magiclink.tsx adapts the page).

import type { ApprovalEvent } from "../audit/events.ts";
import type { Level } from "../audit/log.ts";
import type { Dispatcher, RefusalReason } from "../delivery/dispatcher.ts";
import { endpointSmsText } from "../delivery/sms-text.ts";
import { csrfToken, generateLinkToken, generateSessionId, hashLinkToken, LINK_TOKEN_PATTERN, matchChoices, MATCH_MAX, MATCH_MIN, verifyCsrfToken } from "../magiclink/tokens.ts";
import { APPROVAL_KINDS, type Approval, type ApprovalChannel, type ApprovalKind, type ApprovalOutcome, type ApprovalRepo } from "../store/types.ts";
import { sendText, type TextTarget } from "./send.ts";
import { parseTexts, type ApprovalContext, type ApprovalTexts } from "./texts.ts";
import { WaiterHub, type WaitOutcome } from "./waiters.ts";

/** Longest `source` stored (characters): a RADIUS attribute holds at most 253 octets (RFC 2865 §5). */
export const SOURCE_MAX = 253;

/** What asks for an approval. */
export interface ApprovalRequest {
  kind: ApprovalKind;
  /** The resolved identity (normalised username); null for a Magic Link call by number (never joined). */
  user: string | null;
  /** The RADIUS client's name, the Magic Link endpoint profile, or the password-reset portal. */
  client: string;
  /** Calling-Station-Id, or the caller's address; null when unknown. */
  source?: string | null;
  /** E.164 number the link goes to, when recorded (Magic Link calls). */
  msisdn?: string | null;
  /** The Magic Link API key that asked. */
  apiKeyId?: number | null;
  texts: ApprovalTexts;
  /** How long the user has to answer (ms, > 0). */
  lifetimeMs: number;
  /** Number matching: the number (MATCH_MIN..MATCH_MAX) the user must pick on the page. */
  numberMatch?: number | null;
}

/**
 * What open() did:
 * - `created`: a new pending approval; `token` is its link token (send it with deliver(); it is stored only hashed);
 * - `joined`: the approval already pending for this kind, user and client, from the same source: wait on it, send nothing;
 * - `busy`: one is pending for this kind, user and client but from another source: not joined (see docs/security.md).
 */
export type OpenResult = { kind: "created"; approval: Approval; token: string } | { kind: "joined"; approval: Approval } | { kind: "busy"; approval: Approval };

/** Where and how to send an approval's link. */
export interface LinkTarget extends TextTarget {
  /** The SMS text template; `{link}` is replaced (appended when missing). Default: the service's smsTemplate. */
  template?: string;
  /** A caller's own text (Magic Link `sms-text`), used only when `allowCustom`. */
  customText?: string;
  allowCustom?: boolean;
}

/** Why a link was not delivered: a dispatcher refusal, or no `[http] public_url` to build it from. */
export type NotDeliveredReason = RefusalReason | "no_public_url";

export type DeliverResult = { ok: true; channel: ApprovalChannel; via: string } | { ok: false; reason: NotDeliveredReason; detail: string };

export interface WaitFor {
  /** Aborts the wait; the last waiter to leave cancels the approval. */
  signal?: AbortSignal;
  /** This waiter's own end before the approval's (a RADIUS client's hold): then "timeout", and the approval stays pending. */
  holdUntil?: number;
}

/** What the approval page shows for a link. */
export type PageView =
  | { kind: "pending"; approval: Approval; texts: ApprovalTexts; csrf: string; choices: number[] | null; context: ApprovalContext | null }
  | { kind: "answered"; approval: Approval; state: "approved" | "rejected" | "reported"; texts: ApprovalTexts }
  | { kind: "invalid" };

/** What a POST on the approval page did. */
export type PageAnswer =
  | { kind: "done"; approval: Approval; state: "approved" | "rejected"; texts: ApprovalTexts; wrongNumber: boolean }
  | { kind: "answered"; approval: Approval; state: "approved" | "rejected" | "reported"; texts: ApprovalTexts }
  | { kind: "bad_csrf" }
  | { kind: "invalid" };

/** The approval form's fields. */
export interface AnswerForm {
  csrf?: string;
  action?: string;
  pick?: string;
}

/** A held request's end: the wait's outcome, or why it never waited. */
export type RequestResult =
  | { kind: "ended"; approval: Approval; outcome: WaitOutcome; joined: boolean }
  | { kind: "busy"; approval: Approval }
  | { kind: "not_delivered"; approval: Approval; reason: NotDeliveredReason };

export interface ApprovalServiceOptions {
  approvals: ApprovalRepo;
  /** The dispatcher for a channel list ([] = the configured order). */
  dispatcherFor(channels: readonly string[]): Dispatcher;
  /** `[http] public_url`; links are built only from it. Empty: every delivery fails (no_public_url). */
  publicUrl: string;
  smsMaxLength: number;
  emailSubject: string;
  /** `[delivery] sms_template`, for targets without a template of their own. */
  smsTemplate?: string;
  /** The store's server secret (≥32 bytes): CSRF tokens and number-matching decoys. */
  secret: Uint8Array;
  /** The e-mail address of the user holding a number (the e-mail channel), for targets that leave `email` undefined. */
  emailFor?(e164: string): Promise<string | undefined>;
  now(): number;
  random(n: number): Uint8Array;
  /** Operational lines (a failed poll); never a secret. */
  log(level: Level, event: string, fields?: Record<string, unknown>): void;
  /** Typed audit events, for every kind but `magic-link` (whose magiclink.* events say the same). */
  audit?(event: ApprovalEvent): void;
  /** Every pending → final transition this process committed (metrics), once per approval across processes. */
  onOutcome?(kind: ApprovalKind, outcome: ApprovalOutcome): void;
  /** Join requests from another source than the pending approval's (default false: they are `busy`). */
  joinAnySource?: boolean;
  /** The waiter hub (tests pass one with a manual clock). */
  hub?: WaiterHub;
}

const KINDS: readonly string[] = APPROVAL_KINDS;
const isKind = (s: string | undefined): s is ApprovalKind => s !== undefined && KINDS.includes(s);

/**
 * The approval service. A store failure propagates from every method (StoreError); misuse (a bad
 * lifetime, a match number out of range) throws TypeError.
 */
export class ApprovalService {
  readonly hub: WaiterHub;

  constructor(private readonly o: ApprovalServiceOptions) {
    this.hub = o.hub ?? new WaiterHub(o.approvals, { now: o.now, onError: (err) => o.log("error", "approval.poll_failed", { error: (err as Error)?.name ?? "error" }) });
    // The hub closed an approval itself (expired at the deadline, cancelled when its last waiter
    // left); the waiter's tag is the approval's kind.
    this.hub.listen((id, outcome, tag) => {
      if (!isKind(tag)) return;
      this.ended({ id, kind: tag }, outcome);
      this.audit({ kind: tag }, { type: outcome === "expired" ? "approval.expired" : "approval.cancelled", id, kind: tag });
    });
  }

  private ended(a: Pick<Approval, "id" | "kind">, outcome: ApprovalOutcome): void {
    this.o.onOutcome?.(a.kind, outcome);
    for (const l of this.endListeners) {
      try {
        l(a.id, outcome);
      } catch (err) {
        this.o.log("error", "approval.listener_failed", { error: (err as Error)?.name ?? "error" });
      }
    }
  }

  private readonly endListeners: Array<(id: string, outcome: ApprovalOutcome) => void> = [];

  /**
   * Adds a listener for every approval this process ended (answered, expired, cancelled, failed),
   * after the store committed it: the approver app's event streams say `gone` from it.
   */
  onEnd(listener: (id: string, outcome: ApprovalOutcome) => void): void {
    this.endListeners.push(listener);
  }

  private audit(a: Pick<Approval, "kind">, event: ApprovalEvent): void {
    if (a.kind !== "magic-link") this.o.audit?.(event);
  }

  /**
   * Creates a pending approval, or joins the one already pending for the same kind, user and client
   * (atomically across processes: the store's unique index decides). A request from another source
   * than the pending approval's is `busy` unless `joinAnySource`. Throws TypeError for a lifetime
   * that is not a positive integer or a match number out of range.
   */
  async open(req: ApprovalRequest): Promise<OpenResult> {
    if (!Number.isSafeInteger(req.lifetimeMs) || req.lifetimeMs <= 0) throw new TypeError("approval lifetime must be a positive number of milliseconds");
    const numberMatch = req.numberMatch ?? null;
    if (numberMatch !== null && (!Number.isInteger(numberMatch) || numberMatch < MATCH_MIN || numberMatch > MATCH_MAX)) throw new TypeError("match number out of range");
    const token = generateLinkToken(this.o.random);
    const created = this.o.now();
    const source = req.source == null ? null : req.source.slice(0, SOURCE_MAX);
    const a: Approval = {
      id: generateSessionId(this.o.random),
      kind: req.kind,
      user: req.user,
      client: req.client,
      source,
      msisdn: req.msisdn ?? null,
      apiKeyId: req.apiKeyId ?? null,
      state: "pending",
      channel: null,
      linkHash: hashLinkToken(token),
      texts: JSON.stringify(req.texts),
      numberMatch,
      createdAt: created,
      expiresAt: created + req.lifetimeMs,
      answeredAt: null,
    };
    if (a.user === null) {
      await this.o.approvals.create(a);
    } else {
      const r = await this.o.approvals.createOrJoin(a, created);
      if (!r.created) {
        const p = r.approval;
        if (!this.o.joinAnySource && p.source !== source) {
          this.audit(p, { type: "approval.join_refused", id: p.id, kind: p.kind, client: p.client, user: p.user, source, pending_source: p.source });
          return { kind: "busy", approval: p };
        }
        this.audit(p, { type: "approval.joined", id: p.id, kind: p.kind, client: p.client, user: p.user, source });
        return { kind: "joined", approval: p };
      }
    }
    this.audit(a, { type: "approval.created", id: a.id, kind: a.kind, client: a.client, user: a.user, source, expires_in_s: Math.round(req.lifetimeMs / 1000), number_match: numberMatch !== null });
    return { kind: "created", approval: a, token };
  }

  /**
   * Waits for `approval` to end: its final state, "timeout" at `holdUntil`, or "cancelled" when
   * `signal` aborts. Call it BEFORE deliver(), so that a tap arriving before the gateway answers is
   * not missed. A waiter of a joined approval (`joined`) waits beside the others, and the store is
   * read once in case the approval ended before the wait began.
   */
  wait(approval: Approval, { signal, holdUntil }: WaitFor = {}, joined = false): Promise<WaitOutcome> {
    const waiting = this.hub.wait(approval.id, approval.expiresAt, signal, { holdUntil, join: joined, tag: approval.kind });
    if (joined) {
      void this.o.approvals.get(approval.id).then(
        (now) => {
          if (now && now.state !== "pending") this.hub.notify(approval.id, now.state);
        },
        (err: unknown) => this.o.log("error", "approval.poll_failed", { error: (err as Error)?.name ?? "error" }),
      );
    }
    return waiting;
  }

  /**
   * Sends the approval's link through the dispatcher (every SMS-pumping defence and limit applies).
   * Not delivered (refused, every channel failed, no public_url): the approval is closed as failed
   * and its waiters woken with "failed". Throws what the dispatcher throws (a store failure), after
   * closing the approval the same way.
   */
  async deliver(approval: Approval, token: string, to: LinkTarget, signal?: AbortSignal): Promise<DeliverResult> {
    if (!this.o.publicUrl) {
      await this.fail(approval);
      return { ok: false, reason: "no_public_url", detail: "http.public_url is empty: no link can be sent" };
    }
    let delivered;
    try {
      const link = `${this.o.publicUrl.replace(/\/+$/, "")}/ml/${token}`;
      const text = endpointSmsText(to.customText, link, { allowCustom: to.allowCustom ?? false, defaultTemplate: to.template ?? this.o.smsTemplate, maxLength: this.o.smsMaxLength });
      delivered = await sendText(this.o, to, text, signal);
    } catch (err) {
      await this.fail(approval).catch(() => {});
      throw err;
    }
    if (!delivered.ok) {
      await this.fail(approval);
      this.audit(approval, { type: "approval.not_delivered", id: approval.id, kind: approval.kind, client: approval.client, reason: delivered.reason });
      return delivered;
    }
    // "email" is the one e-mail channel, "switch" the relay; every other channel ("sms", [[delivery.gateway]]) is an SMS gateway.
    const channel: ApprovalChannel = delivered.channel === "email" ? "email-link" : delivered.channel === "switch" ? "switch" : "sms-link";
    await this.o.approvals.setChannel(approval.id, channel);
    this.audit(approval, { type: "approval.delivered", id: approval.id, kind: approval.kind, client: approval.client, channel, via: delivered.channel });
    return { ok: true, channel, via: delivered.channel };
  }

  /** Closes a pending approval as failed (nothing reached the user) and wakes its waiters. */
  private async fail(a: Approval): Promise<void> {
    if (await this.o.approvals.answer(a.id, "failed", this.o.now())) {
      this.ended(a, "failed");
      this.hub.notify(a.id, "failed");
    }
  }

  /**
   * A held request from start to end: open (or join), deliver when created, wait. `busy` and
   * `not_delivered` end it without waiting.
   */
  async request(req: ApprovalRequest, to: LinkTarget, wait: WaitFor = {}): Promise<RequestResult> {
    const opened = await this.open(req);
    if (opened.kind === "busy") return { kind: "busy", approval: opened.approval };
    if (opened.kind === "joined") return { kind: "ended", approval: opened.approval, outcome: await this.wait(opened.approval, wait, true), joined: true };
    const waiting = this.wait(opened.approval, wait);
    const d = await this.deliver(opened.approval, opened.token, to, wait.signal);
    if (!d.ok) {
      await waiting;
      return { kind: "not_delivered", approval: opened.approval, reason: d.reason };
    }
    return { kind: "ended", approval: opened.approval, outcome: await waiting, joined: false };
  }

  /**
   * The approval as it stands (challenge mode's next leg): a pending one past its expiry is closed
   * as expired first. Undefined when there is no such approval.
   */
  async current(id: string): Promise<Approval | undefined> {
    const a = await this.o.approvals.get(id);
    if (!a || a.state !== "pending") return a;
    const now = this.o.now();
    if (a.expiresAt > now) return a;
    if (await this.o.approvals.markExpired(id, now)) {
      this.ended(a, "expired");
      this.audit(a, { type: "approval.expired", id, kind: a.kind });
      this.hub.notify(id, "expired");
    }
    return this.o.approvals.get(id);
  }

  /** Cancels a pending approval (the asker gave up); its waiters get "cancelled". True when this call did it. */
  async cancel(id: string): Promise<boolean> {
    const a = await this.o.approvals.get(id);
    if (!a || !(await this.o.approvals.answer(id, "cancelled", this.o.now()))) return false;
    this.ended(a, "cancelled");
    this.audit(a, { type: "approval.cancelled", id, kind: a.kind });
    this.hub.notify(id, "cancelled");
    return true;
  }

  /**
   * Answers a pending approval from another channel than its link page (the approver app's signed
   * answer, a code typed at the VPN): one conditional write, then its waiters wake. True when this
   * call committed the answer; false when it had already ended (or expired).
   */
  async settle(a: Approval, state: "approved" | "rejected" | "reported", wrongNumber = false): Promise<boolean> {
    this.hub.activity();
    if (!(await this.o.approvals.answer(a.id, state, this.o.now()))) return false;
    this.ended(a, state);
    this.audit(a, { type: "approval.answered", id: a.id, kind: a.kind, client: a.client, user: a.user, state, wrong_number: wrongNumber });
    this.hub.notify(a.id, state);
    return true;
  }

  private async byToken(token: string): Promise<Approval | undefined> {
    if (!LINK_TOKEN_PATTERN.test(token)) return undefined;
    return this.o.approvals.findByLink(hashLinkToken(token));
  }

  /** Whether `token` names an approval at all (any state); nothing is changed. */
  async isLink(token: string): Promise<boolean> {
    return (await this.byToken(token)) !== undefined;
  }

  /**
   * What `/ml/{token}` shows. Never changes anything (link scanners fetch links). Unknown, expired,
   * cancelled and failed links all look the same ("invalid"). Approvals other than Magic Link calls
   * carry their context (client, source, time).
   */
  async view(token: string): Promise<PageView> {
    this.hub.activity();
    const a = await this.byToken(token);
    if (!a) return { kind: "invalid" };
    if (a.state === "approved" || a.state === "rejected" || a.state === "reported") return { kind: "answered", approval: a, state: a.state, texts: parseTexts(a.texts) };
    if (a.state !== "pending" || a.expiresAt <= this.o.now()) return { kind: "invalid" };
    return {
      kind: "pending",
      approval: a,
      texts: parseTexts(a.texts),
      csrf: csrfToken(this.o.secret, token),
      choices: a.numberMatch === null ? null : matchChoices(this.o.secret, a.id, a.numberMatch),
      context: a.kind === "magic-link" ? null : { client: a.client, source: a.source, createdAt: a.createdAt },
    };
  }

  /**
   * A POST from the approval page: checks the CSRF token (constant time), then answers the
   * approval once (the store's conditional update) and wakes its waiters. A wrong number-matching
   * pick rejects. `onAnswered` runs after the answer committed and before any waiter wakes, so that
   * what it reports comes before the outcome in the log.
   */
  async answer(token: string, form: AnswerForm, onAnswered?: (approval: Approval, state: "approved" | "rejected", wrongNumber: boolean) => void): Promise<PageAnswer> {
    this.hub.activity();
    const a = await this.byToken(token);
    if (!a) return { kind: "invalid" };
    if (!verifyCsrfToken(this.o.secret, token, form.csrf)) return { kind: "bad_csrf" };
    const texts = parseTexts(a.texts);
    if (a.state === "approved" || a.state === "rejected" || a.state === "reported") return { kind: "answered", approval: a, state: a.state, texts };
    if (a.state !== "pending") return { kind: "invalid" };
    let state: "approved" | "rejected";
    let wrongNumber = false;
    if (form.action === "approve") {
      if (a.numberMatch === null) state = "approved";
      else {
        const pick = /^\d{1,3}$/.test(form.pick ?? "") ? Number(form.pick) : NaN;
        wrongNumber = pick !== a.numberMatch;
        state = wrongNumber ? "rejected" : "approved";
      }
    } else if (form.action === "reject") state = "rejected";
    else return { kind: "bad_csrf" };

    if (await this.o.approvals.answer(a.id, state, this.o.now())) {
      this.ended(a, state);
      this.audit(a, { type: "approval.answered", id: a.id, kind: a.kind, client: a.client, user: a.user, state, wrong_number: wrongNumber });
      onAnswered?.(a, state, wrongNumber);
      this.hub.notify(a.id, state);
      return { kind: "done", approval: a, state, texts, wrongNumber };
    }
    // Another tap (or the timeout) won the race: report what the store holds.
    const now = await this.o.approvals.get(a.id);
    if (now && (now.state === "approved" || now.state === "rejected" || now.state === "reported")) return { kind: "answered", approval: now, state: now.state, texts };
    return { kind: "invalid" };
  }
}
