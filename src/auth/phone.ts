// Phone factors over RADIUS: the chains of types mobile (2), touch (6), touch-plus (7) and
// touch-mobile (8), after a proven password (factors.ts names each type's chain).
//
//   approval ─► hold mode: the request waits (no reply) until the user answers or the client's hold
//               │           ends: Access-Accept │ Access-Reject (rejected, timeout)
//               └ challenge mode: Access-Challenge at once; the next leg (same State, empty
//                             User-Password) is accepted once the approval is in
//   sms      ─► a code to the phone, Access-Challenge naming the masked number; the next leg checks it
//   otp      ─► Access-Challenge for the code of the user's TOTP/HOTP token (codes.ts)
//
// A step is skipped, with an auth.step line saying why, when it cannot reach the user (no phone or
// e-mail address, delivery refused or failed, no token), when it needs a challenge the client
// cannot do (--otp-mode concat), and for an approval in challenge mode when it expired unanswered;
// the next step of the chain is then tried. A rejection or a hold that ends is never skipped: the
// user said no, or the NAS has given up. When no step is left the attempt is refused, naming why.
//
// Approvals and SMS codes live in the store (approvals/), so that any node sharing it can answer
// the next leg. A request for the same user and client while an approval is pending joins it (one
// message, one approval), but only from the same source (Calling-Station-Id): someone else who
// holds the password must not ride on the user's approval (approvals/service.ts, docs/security.md).

import type { AppRequests } from "../approvals/app.ts";
import type { AuditSink, PhoneSkipReason } from "../audit/events.ts";
import type { ApprovalService } from "../approvals/service.ts";
import type { SmsCodes } from "../approvals/sms-codes.ts";
import { defaultApprovalTexts } from "../approvals/texts.ts";
import type { WaitOutcome } from "../approvals/waiters.ts";
import { DEFAULT_CLIENT_PHONE, type Approval, type ClientPhoneSettings, type Device } from "../store/types.ts";
import type { Attempt, Channel, Decision, ReplyAttribute } from "./attempt.ts";
import { stateId, type ChallengeData, type ChallengeFactor, type Challenges, type OpenedChallenge } from "./challenge.ts";
import type { OTPCodes } from "./codes.ts";
import type { Decisions } from "./decisions.ts";
import type { FactorName, FactorResult } from "./factors.ts";
import { PHONE_PROMPTS } from "./messages.ts";
import type { Subject } from "./resolve.ts";

/** What the phone factors need from the delivery side: approvals, SMS codes, and a hook for the hold metric. */
export interface PhoneServices {
  approvals: Pick<ApprovalService, "open" | "wait" | "deliver" | "current">;
  smsCodes: Pick<SmsCodes, "send" | "verify">;
  /** The approver app: users with a live device get app requests instead of SMS links. */
  app?: Pick<AppRequests, "devicesOf" | "admit" | "limited" | "announce" | "answerByCode" | "settings">;
  /** A held request's wait ended (portcullis_approval_hold_seconds{outcome}). */
  onHold?(outcome: WaitOutcome, seconds: number): void;
}

export interface PhoneOptions {
  /** The Reply-Message asking for a TOTP/HOTP code when no phone step came before it. */
  otpPrompt: string;
  /** The lifetime of a State (the approval's, in challenge mode, when that is longer). */
  challengeTtlMs: number;
  random(n: number): Uint8Array;
}

/** One attempt's place in its chain: who, through which channel, and the reply attributes earned so far. */
interface Leg {
  attempt: Attempt;
  key: string;
  subject: Subject;
  attributes: readonly ReplyAttribute[];
}

/** What a step did: decided the attempt, or was skipped for a reason (with a detail for the audit line). */
type StepResult = { decision: Decision } | Skip;
interface Skip {
  skip: PhoneSkipReason;
  factor: FactorName;
  detail?: string;
}

const UNREACHABLE: ReadonlySet<PhoneSkipReason> = new Set(["no_delivery", "no_phone", "not_delivered"]);

/**
 * The challenge-mode code to phone applies to a RADIUS approval sent to the app when `[app]
 * code_to_phone` is on (a self-service sign-in waits on its own page: nothing is typed).
 */
const offersCode = (s: PhoneServices, approval: Approval) => approval.kind === "radius" && approval.channel === "app" && s.app?.settings.codeToPhone === true;

/** The approval kind of a channel: a RADIUS client's, or the self-service portal's sign-in. */
const kindOf = (channel: Channel): "radius" | "self-service" => (channel.kind === "self-service" ? "self-service" : "radius");

/** A client can send Access-Challenge unless its users append their code to the password. */
function canChallenge(channel: Channel): boolean {
  return channel.otpMode !== "concat";
}

/** The approval's source: the Calling-Station-Id as the lockout read it, a browser's address (the self-service portal), else unknown. */
function approvalSource(attempt: Attempt): string | null {
  if (attempt.source?.startsWith("csid:")) return attempt.source.slice(5);
  if (attempt.source?.startsWith("web:")) return attempt.source.slice(4) || null;
  return null;
}

/** Where the user can be reached: the record's own number and address (a hybrid record's override), else the directory's. */
function reach(subject: Subject): { msisdn: string | null; email: string | null } {
  const entry = subject.dir?.entry;
  return { msisdn: subject.record.phone ?? entry?.phone ?? null, email: subject.record.email ?? entry?.email ?? null };
}

export class PhoneFlow {
  private services: PhoneServices | undefined;
  private readonly ready: Promise<PhoneServices | undefined> | undefined;

  /**
   * `services` may be a promise: the delivery stack loads after RADIUS listens, and only phone
   * types wait for it. Undefined (or a promise that rejects): no phone step can reach anyone.
   */
  constructor(
    private readonly out: Decisions,
    private readonly challenges: Challenges,
    private readonly otp: OTPCodes,
    private readonly audit: AuditSink,
    private readonly options: PhoneOptions,
    services?: PhoneServices | Promise<PhoneServices>,
  ) {
    if (services instanceof Promise) {
      this.ready = services.then(
        (s) => (this.services = s),
        () => undefined,
      );
    } else this.services = services;
  }

  private async phone(): Promise<PhoneServices | undefined> {
    return this.services ?? (await this.ready);
  }

  /** The first leg of a phone type, after the password, the account and the groups were checked. */
  start(attempt: Attempt, key: string, subject: Subject, chain: readonly FactorName[], attributes: readonly ReplyAttribute[]): Promise<Decision> {
    return this.run({ attempt, key, subject, attributes }, chain, []);
  }

  /**
   * The self-service portal's sign-in with the approver app, after the password, the account and the
   * groups were checked, whatever the user's type: an app request (challenge mode: the page waits on
   * the State), never an SMS link. Refused (`no_device`) for a user without a live device, and when
   * the app's limits refuse a new request (`approval_limited`).
   */
  async appSignIn(attempt: Attempt, key: string, subject: Subject, attributes: readonly ReplyAttribute[]): Promise<Decision> {
    const leg: Leg = { attempt, key, subject, attributes };
    const s = await this.phone();
    if (!s?.app || (await s.app.devicesOf(subject.record.id)).length === 0) return this.out.reject(attempt, "no_device", subject.record, "no live approver-app device");
    const r = await this.approval(leg, []);
    if ("decision" in r) return r.decision;
    this.step(leg, "approval", "skipped", r.skip, r.detail);
    return this.exhausted(leg, [r]);
  }

  /** Tries the steps in order from the first; the first that decides ends the attempt. */
  private async run(leg: Leg, steps: readonly FactorName[], skipped: Skip[]): Promise<Decision> {
    for (let i = 0; i < steps.length; i++) {
      const factor = steps[i]!;
      const rest = steps.slice(i + 1);
      const r = factor === "approval" ? await this.approval(leg, rest) : factor === "sms" ? await this.sms(leg, rest) : await this.otpStep(leg, skipped);
      if ("decision" in r) return r.decision;
      this.step(leg, factor, "skipped", r.skip, r.detail);
      skipped.push(r);
    }
    return this.exhausted(leg, skipped);
  }

  /**
   * No step was left: the refusal says why. Unreachable wins (the audit line names each delivery
   * failure; the reply stays generic), then a client that cannot do challenges (a clear text: the
   * password was proven), then an approval nobody answered, then no token.
   */
  private exhausted(leg: Leg, skipped: Skip[]): Decision {
    const { attempt, subject } = leg;
    const detail = skipped.map((s) => `${s.factor}: ${s.skip}${s.detail ? ` (${s.detail})` : ""}`).join("; ");
    if (skipped.some((s) => s.skip === "app_limited")) return this.out.reject(attempt, "approval_limited", subject.record, detail);
    if (skipped.some((s) => UNREACHABLE.has(s.skip))) return this.out.reject(attempt, "phone_unreachable", subject.record, detail);
    if (skipped.some((s) => s.skip === "needs_challenge")) return this.out.reject(attempt, "challenge_unsupported", subject.record, detail, true);
    if (skipped.some((s) => s.skip === "no_answer")) return this.out.reject(attempt, "timeout", subject.record, detail);
    return this.out.reject(attempt, "no_token", subject.record, detail);
  }

  private step(leg: Leg, factor: FactorName, result: "asked" | "skipped", reason?: PhoneSkipReason, detail?: string): void {
    const { attempt, subject } = leg;
    this.audit({
      type: "auth.step",
      channel: attempt.channel.kind,
      client: attempt.channel.name,
      user: subject.record.username,
      factor,
      result,
      ...(reason ? { reason } : {}),
      ...(detail ? { detail } : {}),
    });
  }

  private settings(channel: Channel): Readonly<ClientPhoneSettings> {
    return channel.phone ?? DEFAULT_CLIENT_PHONE;
  }

  /** The delivery target of a RADIUS client's messages; its limits count under "radius:CLIENT". */
  private target(leg: Leg, to: { msisdn: string | null; email: string | null }) {
    const name = `radius:${leg.attempt.channel.name}`;
    return { msisdn: to.msisdn, email: to.email, endpoint: name, rateKey: name };
  }

  // --- approval ------------------------------------------------------------------------------

  private async approval(leg: Leg, rest: readonly FactorName[]): Promise<StepResult> {
    const { attempt, key, subject } = leg;
    const s = await this.phone();
    if (!s) return { skip: "no_delivery", factor: "approval" };
    const settings = this.settings(attempt.channel);
    const challengeMode = settings.approvalMode === "challenge";
    if (challengeMode && !canChallenge(attempt.channel)) return { skip: "needs_challenge", factor: "approval" };
    // A user with a live approver device gets an app request; the others an SMS (or e-mail) link.
    const devices: Device[] = s.app ? await s.app.devicesOf(subject.record.id) : [];
    const app = devices.length > 0 ? s.app : undefined;
    // The self-service sign-in asks the app only (its device may have been removed meanwhile).
    if (!app && attempt.channel.kind === "self-service") return { skip: "no_phone", factor: "approval", detail: "no live approver-app device" };
    const to = reach(subject);
    if (!app && !to.msisdn && !to.email) return { skip: "no_phone", factor: "approval" };
    if (app) {
      const admitted = await app.admit(key);
      if (!admitted.ok) {
        app.limited(kindOf(attempt.channel), attempt.channel.name, key, admitted.reason);
        return { skip: "app_limited", factor: "approval", detail: admitted.reason };
      }
    }

    const opened = await s.approvals.open({
      kind: kindOf(attempt.channel),
      user: key,
      client: attempt.channel.name,
      source: approvalSource(attempt),
      texts: defaultApprovalTexts(),
      lifetimeMs: settings.approvalHoldS * 1000,
      numberMatch: challengeMode && settings.approvalNumberMatch ? matchNumber(this.options.random) : null,
    });
    if (opened.kind === "busy") {
      return { decision: this.out.reject(attempt, "approval_busy", subject.record, "an approval for this user and client is pending from another source") };
    }
    // A self-service sign-in never rides on another browser's pending approval (the same address may
    // be a shared NAT): one approval signs in one browser.
    if (opened.kind === "joined" && attempt.channel.kind === "self-service") {
      return { decision: this.out.reject(attempt, "approval_busy", subject.record, "a self-service sign-in of this user is already waiting for an approval") };
    }
    const approval = opened.approval;

    if (challengeMode) {
      if (opened.kind === "created") {
        if (app) await app.announce(approval, subject.record, devices);
        else {
          const d = await s.approvals.deliver(approval, opened.token, this.target(leg, to));
          if (!d.ok) return { skip: "not_delivered", factor: "approval", detail: d.reason };
        }
      }
      this.step(leg, "approval", "asked", undefined, opened.kind === "joined" ? "joined" : app ? "app" : undefined);
      return { decision: await this.approvalChallenge(leg, approval, rest, true, offersCode(s, approval)) };
    }

    // Hold mode: wait first (an answer may beat the gateway's reply), then deliver.
    const started = Date.now();
    const waiting = s.approvals.wait(approval, { holdUntil: attempt.now + settings.approvalHoldS * 1000 }, opened.kind === "joined");
    if (opened.kind === "created") {
      if (app) await app.announce(approval, subject.record, devices);
      else {
        const d = await s.approvals.deliver(approval, opened.token, this.target(leg, to));
        if (!d.ok) {
          await waiting; // closed as failed by deliver(): resolves at once
          return { skip: "not_delivered", factor: "approval", detail: d.reason };
        }
      }
    }
    this.step(leg, "approval", "asked", undefined, opened.kind === "joined" ? "joined" : app ? "app" : undefined);
    const outcome = await waiting;
    s.onHold?.(outcome, (Date.now() - started) / 1000);
    switch (outcome) {
      case "approved":
        return { decision: await this.out.completed(attempt, key, subject.record, APPROVAL, leg.attributes) };
      case "rejected":
      case "reported":
        return { decision: this.out.reject(attempt, "approval_rejected", subject.record, outcome) };
      case "failed":
        // A joined request whose approval could not be delivered by the request that created it.
        return { skip: "not_delivered", factor: "approval", detail: "the approval it joined was not delivered" };
      case "expired":
      case "timeout":
        return { decision: this.out.reject(attempt, "timeout", subject.record, `no answer within the ${settings.approvalHoldS} s hold`) };
      case "cancelled":
        return { decision: this.out.reject(attempt, "timeout", subject.record, "the wait was cancelled (server stopping)") };
    }
  }

  /**
   * Challenge mode's Access-Challenge for a pending approval: a State naming it and the factors
   * after it, the number to choose when number matching is on, and the approval's remaining time as
   * Session-Timeout (the State itself lives at least as long).
   */
  private async approvalChallenge(leg: Leg, approval: Approval, rest: readonly ChallengeFactor[], first: boolean, code = false): Promise<Decision> {
    const { attempt, subject } = leg;
    // Never more than the client's hold: an approval created (or read) late on a loaded node
    // expires later than the hold counted from the packet's arrival.
    const remainingMs = Math.max(1000, Math.min(approval.expiresAt - attempt.now, this.settings(attempt.channel).approvalHoldS * 1000));
    // Whole seconds, rounded down: the NAS must not wait past the approval's end.
    const remainingS = Math.max(1, Math.floor(remainingMs / 1000));
    const n = approval.numberMatch;
    let prompt = first ? (n === null ? PHONE_PROMPTS.approve : PHONE_PROMPTS.approveMatching(n)) : n === null ? PHONE_PROMPTS.notYet : PHONE_PROMPTS.notYetMatching(n);
    if (code) prompt += PHONE_PROMPTS.orAppCode;
    const data: ChallengeData = { next: "code", factor: "approval", approval: approval.id, then: [...rest], attributes: [...leg.attributes] };
    const decision = await this.challenges.issue(attempt, subject.record, 0, prompt, data, undefined, "code", first, {
      ttlMs: Math.max(this.options.challengeTtlMs, remainingMs),
      timeoutS: remainingS,
    });
    return decision.kind === "challenge" ? { ...decision, approval: { id: approval.id, number: n, expiresAt: approval.expiresAt } } : decision;
  }

  /**
   * Challenge mode's next leg: accepted once the approval is in, refused when it was rejected,
   * challenged again while it is pending, and on to the chain's next factor when it ended unanswered
   * (expired, or never delivered).
   */
  async approvalLeg(attempt: Attempt, key: string, subject: Subject, challenge: OpenedChallenge): Promise<Decision> {
    const { data } = challenge;
    const leg: Leg = { attempt, key, subject, attributes: data.attributes ?? [] };
    const rest = data.then ?? [];
    const s = await this.phone();
    let approval = s ? await s.approvals.current(data.approval!) : undefined;
    if (approval && (approval.user !== key || approval.client !== attempt.channel.name)) {
      return this.out.reject(attempt, "state_mismatch", subject.record, "the approval belongs to another user or client");
    }
    // Code to phone: a leg carrying a code answers an app approval with it (right: approved; wrong:
    // rejected, one guess per approval). An empty leg asks whether the approval is in.
    const typed = attempt.secret ?? "";
    if (s?.app && approval?.state === "pending" && typed !== "" && offersCode(s, approval)) {
      const r = await s.app.answerByCode(approval, typed);
      if (r === "wrong") return this.out.reject(attempt, "bad_code", subject.record, "wrong code from the approver app: the approval was rejected");
      if (r === "approved") return this.out.completed(attempt, key, subject.record, APPROVAL, leg.attributes);
      approval = await s.approvals.current(approval.id);
    }
    switch (approval?.state) {
      case "approved":
        return this.out.completed(attempt, key, subject.record, APPROVAL, leg.attributes);
      case "rejected":
      case "reported":
        return this.out.reject(attempt, "approval_rejected", subject.record, approval.state);
      case "pending":
        return this.approvalChallenge(leg, approval, rest, false, s !== undefined && offersCode(s, approval));
      default: {
        const skip: Skip = { skip: "no_answer", factor: "approval", detail: approval ? approval.state : "no such approval" };
        this.step(leg, "approval", "skipped", skip.skip, skip.detail);
        return this.run(leg, rest, [skip]);
      }
    }
  }

  // --- SMS code ------------------------------------------------------------------------------

  private async sms(leg: Leg, rest: readonly FactorName[]): Promise<StepResult> {
    const { attempt, key, subject } = leg;
    const s = await this.phone();
    if (!s) return { skip: "no_delivery", factor: "sms" };
    if (!canChallenge(attempt.channel)) return { skip: "needs_challenge", factor: "sms" };
    const to = reach(subject);
    if (!to.msisdn && !to.email) return { skip: "no_phone", factor: "sms" };
    const settings = this.settings(attempt.channel);
    // The code is bound to the State of the challenge that asks for it: the State comes first.
    const state = this.challenges.newState();
    const binding = { state: stateId(state), client: attempt.channel.name, user: key };
    const format = { ...(settings.smsCodeLength !== null ? { length: settings.smsCodeLength } : {}), ...(settings.smsCodeAlphabet !== null ? { alphabet: settings.smsCodeAlphabet } : {}) };
    const sent = await s.smsCodes.send(binding, this.target(leg, to), { format, clientLabel: attempt.channel.name });
    if (!sent.ok) return { skip: "not_delivered", factor: "sms", detail: sent.reason };
    this.step(leg, "sms", "asked");
    const prompt = PHONE_PROMPTS.smsCode(sent.channel === "email" || sent.to === "-" ? "your e-mail address" : sent.to);
    const data: ChallengeData = { next: "code", factor: "sms", sms: binding.state, then: [...rest], attributes: [...leg.attributes] };
    // The State lives as long as the code (5 minutes by default), not only the usual challenge time.
    const ttlMs = Math.max(this.options.challengeTtlMs, sent.expiresAt - attempt.now);
    return { decision: await this.challenges.issue(attempt, subject.record, 0, prompt, data, undefined, "code", true, { state, ttlMs }) };
  }

  /**
   * Checks a typed SMS code against the code bound to the challenge (its State, the client, the
   * user). A wrong code may be tried again (the caller re-challenges, the code stays bound to its
   * first State); the code's own limit of wrong codes ends the flow.
   */
  async verifySms(attempt: Attempt, key: string, data: ChallengeData): Promise<FactorResult> {
    const s = await this.phone();
    if (!s) return "code_expired";
    const r = await s.smsCodes.verify({ state: data.sms!, client: attempt.channel.name, user: key }, attempt.secret ?? "");
    switch (r.result) {
      case "accepted":
        return "ok";
      case "wrong":
        return "bad_code";
      case "invalidated":
        return "too_many_codes";
      case "mismatch":
        return "state_mismatch";
      case "unknown":
        return "code_expired";
    }
  }

  // --- TOTP/HOTP token ------------------------------------------------------------------------

  private async otpStep(leg: Leg, skipped: readonly Skip[]): Promise<StepResult> {
    const { attempt, subject } = leg;
    if (!canChallenge(attempt.channel)) return { skip: "needs_challenge", factor: "otp" };
    if (await this.otp.unavailable(subject.record)) return { skip: "no_token", factor: "otp" };
    const prompt = skipped.some((s) => UNREACHABLE.has(s.skip)) ? PHONE_PROMPTS.unreachable : skipped.some((s) => s.skip === "no_answer") ? PHONE_PROMPTS.noAnswer : this.options.otpPrompt;
    this.step(leg, "otp", "asked");
    const data: ChallengeData = { next: "code", factor: "otp", attributes: [...leg.attributes] };
    return { decision: await this.challenges.issue(attempt, subject.record, 0, prompt, data) };
  }
}

const APPROVAL: readonly string[] = Object.freeze(["password", "approval"]);

/** A number-matching number, uniform in 10-99 (rejection sampling over bytes: 256 - 256 mod 90 = 180). */
export function matchNumber(random: (n: number) => Uint8Array): number {
  for (let round = 0; round < 64; round++) {
    for (const b of random(4)) if (b < 180) return 10 + (b % 90);
  }
  throw new Error("the random source returned only rejected bytes");
}
