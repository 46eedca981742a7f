// Challenge state: the single-use, expiring row behind an Access-Challenge's State attribute.
//
// The State is 256 random bits; the store keeps only its SHA-256 (stateId), bound to the client and
// the resolved user. The row says what the next leg carries (a code, a new password, its
// confirmation), holds the reply attributes earned on the first leg, and in the password-change
// flow the passwords sealed under a key derived from the raw State (challenge-secrets.ts). The
// next leg consumes the row before anything else (DELETE … RETURNING): a State is used once.

import { createHash } from "node:crypto";
import type { AuditEvent, AuditSink } from "../audit/events.ts";
import type { Challenge, Store, User } from "../store/types.ts";
import type { Attempt, Channel, Decision, ReplyAttribute } from "./attempt.ts";
import { openChangeSecrets, sealChangeSecrets, type ChangeSecrets } from "./challenge-secrets.ts";

const STATE_BYTES = 32; // 256 random bits, above DESIGN's 128-bit floor

/** What the next leg of a flow carries. */
export type ChallengeStep = "code" | "new_password" | "confirm";

/** The second factors a challenge can ask for (factors.ts): a TOTP/HOTP code, an SMS code, a phone approval. */
export type ChallengeFactor = "otp" | "sms" | "approval";

const FACTORS: readonly string[] = ["otp", "sms", "approval"] satisfies ChallengeFactor[];

/** The payload stored with a challenge (JSON in Challenge.data). Holds no password in clear. */
export interface ChallengeData {
  /** What the next packet carries. */
  next: ChallengeStep;
  /**
   * What a "code" leg is checked against: a TOTP/HOTP code ("otp", also when absent: rows written
   * before phone factors), the SMS code bound to `sms`, or the approval `approval` (the leg then
   * carries nothing, and an empty User-Password is normal).
   */
  factor?: ChallengeFactor;
  /** "sms": the State ID (stateId) the code is bound to; kept across re-challenges after a wrong code. */
  sms?: string;
  /** "approval": the approval's ID. */
  approval?: string;
  /** The factors of the user's chain after this one, tried in order when this one cannot complete (phone.ts). */
  then?: ChallengeFactor[];
  /** Reply attributes earned with the first leg, sent on the final Access-Accept. */
  attributes?: ReplyAttribute[];
  /** Present in the password-change flow. */
  change?: {
    /** The second factor already succeeded in this flow (a policy refusal sends the user back to new_password). */
    codeDone: boolean;
    /** ChangeSecrets sealed under the State of this very challenge. */
    sealed: string;
  };
}

/** A consumed challenge, read and opened: its row, its payload and, in the change flow, its passwords. */
export interface OpenedChallenge {
  row: Challenge;
  data: ChallengeData;
  secrets?: ChangeSecrets;
}

/** Hashes a State value; the raw State never reaches the store. */
export function stateId(state: Uint8Array): string {
  return createHash("sha256").update(state).digest("hex");
}

export interface ChallengeOptions {
  challengeTtlMs: number;
}

export class Challenges {
  constructor(
    private readonly store: Store,
    private readonly options: ChallengeOptions,
    private readonly random: (n: number) => Uint8Array,
    private readonly audit: AuditSink,
  ) {}

  /**
   * Stores a new single-use challenge and returns the decision that carries its State. Change-flow
   * passwords are sealed under the new State (challenge-secrets.ts); the row holds only the sealed
   * form. `emit`: whether this challenge is audited as auth.challenge (a re-challenge after a wrong
   * code or a refused password is audited by its caller as a failure instead).
   */
  async issue(
    attempt: Attempt,
    user: User,
    failures: number,
    prompt: string,
    data: ChallengeData,
    secrets?: ChangeSecrets,
    step: ChallengeStep = "code",
    emit = true,
    { state = this.random(STATE_BYTES), ttlMs = this.options.challengeTtlMs, timeoutS }: IssueOptions = {},
  ): Promise<Decision> {
    const stored: ChallengeData = { next: data.next };
    if (data.factor !== undefined) stored.factor = data.factor;
    if (data.sms !== undefined) stored.sms = data.sms;
    if (data.approval !== undefined) stored.approval = data.approval;
    if (data.then !== undefined && data.then.length > 0) stored.then = data.then;
    if (data.attributes && data.attributes.length > 0) stored.attributes = data.attributes;
    if (secrets) {
      stored.change = {
        codeDone: data.change?.codeDone ?? false,
        sealed: sealChangeSecrets(state, sealBinding(attempt.channel.name, user.id), secrets, this.random),
      };
    }
    await this.store.challenges.put({
      id: stateId(state),
      clientName: attempt.channel.name,
      userId: user.id,
      username: user.username,
      expiresAt: attempt.now + ttlMs,
      failures,
      data: JSON.stringify(stored),
    });
    if (emit) {
      const event: AuditEvent = { type: "auth.challenge", channel: attempt.channel.kind, client: attempt.channel.name, user: user.username };
      if (step !== "code") event.step = step;
      this.audit(event);
    }
    return { kind: "challenge", state, prompt, timeoutS: timeoutS ?? Math.ceil(ttlMs / 1000) };
  }

  /** A fresh State for a challenge issued later (issue's `state`), when something must be bound to it first (an SMS code). */
  newState(): Uint8Array {
    return this.random(STATE_BYTES);
  }

  /** Consumes the challenge of `state` (single-use): undefined when it is unknown, used or expired. */
  consume(state: Uint8Array, now: number): Promise<Challenge | undefined> {
    return this.store.challenges.consume(stateId(state), now);
  }

  /** Whether a consumed challenge was issued to this client for this (normalised) name. */
  boundTo(row: Challenge, channel: Channel, key: string): boolean {
    return row.clientName === channel.name && row.username === key;
  }

  /**
   * Reads a consumed row's payload and opens its sealed passwords with the raw State. Returns the
   * audit detail of what failed instead: an unreadable payload, or secrets that do not open (another
   * State, another client or user, altered bytes).
   */
  open(row: Challenge, state: Uint8Array, channel: Channel): OpenedChallenge | { detail: string } {
    const data = parseChallengeData(row.data);
    if (!data) return { detail: "unreadable challenge data" };
    if (!data.change) return { row, data };
    const secrets = openChangeSecrets(state, sealBinding(channel.name, row.userId), data.change.sealed);
    if (!secrets) return { detail: "challenge secrets do not open" };
    return { row, data, secrets };
  }
}

/** Options of Challenges.issue beyond the usual. */
export interface IssueOptions {
  /** The State to use (from newState()); default a fresh one. */
  state?: Uint8Array;
  /** How long the State stays valid; default `challengeTtlMs`. */
  ttlMs?: number;
  /** The Session-Timeout sent with it (seconds); default the State's lifetime. */
  timeoutS?: number;
}

/** Associated data of sealed change secrets: the client and the user record they belong to. */
function sealBinding(client: string, userId: number): string {
  return `${client}\0${userId}`;
}

function parseChallengeData(text: string): ChallengeData | undefined {
  try {
    const data = JSON.parse(text) as ChallengeData;
    if (data.next !== "code" && data.next !== "new_password" && data.next !== "confirm") return undefined;
    if (data.next !== "code" && !data.change) return undefined;
    if (data.factor !== undefined && !FACTORS.includes(data.factor)) return undefined;
    if (data.factor === "sms" && typeof data.sms !== "string") return undefined;
    if (data.factor === "approval" && typeof data.approval !== "string") return undefined;
    if (data.then !== undefined && !(Array.isArray(data.then) && data.then.every((f) => FACTORS.includes(f)))) return undefined;
    return data;
  } catch {
    return undefined;
  }
}
