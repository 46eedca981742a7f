// The authentication engine: one attempt in, one decision out. RADIUS (and later the HTTP adapters)
// are thin layers over it; it knows nothing about packets or HTTP.
//
//   first leg ──► lockout check ──► resolve the user through the client's sources, in order
//                   │                 (LDAP profile: found → hybrid record │ not found → next source
//                   │                  │ unavailable → STOP; "local": the store's own users)
//                   │               ──► password (directory bind, argon2id, or a dummy of the same cost)
//                   │               ──► account status ──► groups (required, reply attributes)
//                   │                   │
//                   │        type password ─► accept (only where the channel allows it)
//                   │        type totp ─────► challenge (State stored hashed, bound to client+user)
//                   │        concatenated ──► split once by token digits ─► code + password ─► accept
//                   │        expired / must-change password ─► change flow (below)
//   second leg ─► consume State (single-use) ─► status again ─► code ─► high-water mark committed ─► accept
//
//   change flow (issue 3 item 3): "enter a new password" ─► "again" (mismatch: start over)
//     ─► second factor ─► changePassword ─► accept │ policy refusal: its message, "enter a new password"
//     The password changes only after the second factor; both passwords ride in the challenge row
//     sealed under a key derived from the raw State (challenge-secrets.ts).
//
// A code is checked, the password verified, and only then the code consumed, atomically in the
// store (UPDATE … WHERE last_step < ?). The decision is returned only after that write commits.

import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { AuditEvent, AuditSink, AuthFailureReason } from "../audit/events.ts";
import { Directories, LOCAL_SOURCE } from "../directory/registry.ts";
import { DirectoryUnavailableError, type BindFailure, type Directory, type DirectoryUser } from "../directory/types.ts";
import { verifyHOTP, verifyTOTP } from "../otp/index.ts";
import { PasswordOverloadedError, dummyVerify, verifyPassword } from "../runtime/password.ts";
import { StoreError, type FirstFactor, type OTPMode, type Store, type Token, type User } from "../store/types.ts";
import { notImplemented, type Refusal } from "./factors.ts";
import { openChangeSecrets, sealChangeSecrets, type ChangeSecrets } from "./challenge-secrets.ts";
import { normalizeUsername, usernameHash } from "../domain/identity.ts";
import { Lockout, type LockCheck, type LockoutPolicy } from "./lockout.ts";
import { CHANGE_PROMPTS, PROVEN_PASSWORD_MESSAGES } from "./messages.ts";
import { channelSource } from "./sources.ts";
import type { AuthType } from "../domain/auth-types.ts";

/** How the channel (a RADIUS client, later an HTTP endpoint) presents factors. */
export interface Channel {
  kind: "radius";
  /** Client name; challenge state is bound to it. */
  name: string;
  firstFactor: FirstFactor;
  otpMode: OTPMode;
  allowPasswordOnly: boolean;
  /** User sources in order (LDAP profile names, "local"); null: every profile in config order, then local. */
  directories: string[] | null;
}

/** One authentication attempt as a value. */
export interface Attempt {
  channel: Channel;
  /** The name as presented (User-Name); normalised by the engine. */
  username: string;
  /** What the user typed into the password field (User-Password, NUL padding removed). */
  secret?: string;
  /** Challenge state from a previous Access-Challenge (second leg). */
  state?: Uint8Array;
  /**
   * "chap" and "other" are refused: no cleartext password is stored to check them against. "eap"
   * (the request carries EAP-Message) is refused because EAP is not implemented (RFC 3579).
   */
  method: "pap" | "chap" | "eap" | "other";
  now: number;
  /**
   * Where the attempt comes from, for the lockout (sources.ts): "csid:…" from the request's
   * Calling-Station-Id. Absent: the channel itself ("nas:<name>").
   */
  source?: string;
}

/** A reply attribute by dictionary name ("Class", "Filter-Id", "Fortinet-Group-Name"); the adapter encodes it. */
export interface ReplyAttribute {
  name: string;
  value: string | number;
}

export type Decision =
  /**
   * `attributes`: the group reply attributes of a directory user, in configuration order; absent
   * when there are none (so a decision without directories is exactly the offline core's).
   */
  | { kind: "accept"; user: string; attributes?: ReplyAttribute[] }
  /** No answer at all: the appliance is overloaded and the NAS should retry or fail over. */
  | { kind: "drop"; reason: "overloaded" }
  /**
   * `message` is set only where the password was proven (messages.ts); the adapter shows its
   * generic text otherwise.
   */
  | { kind: "reject"; reason: AuthFailureReason; message?: string }
  | { kind: "challenge"; state: Uint8Array; prompt: string; timeoutS: number };

export interface EngineOptions {
  realms: "strip" | "keep";
  window: number;
  hotpLookAhead: number;
  challengeTtlMs: number;
  challengeMaxFailures: number;
  otpPrompt: string;
  retryPrompt: string;
  lockout: LockoutPolicy;
  /** Random source for State values and seal IVs (tests pass a deterministic one). */
  random?: (n: number) => Uint8Array;
  /** Password verification; defaults to runtime/password (argon2id/bcrypt, bounded concurrency). */
  passwords?: PasswordVerifier;
  /** LDAP/AD profiles. None: only local users, exactly the offline core's behaviour. */
  directories?: Directories;
}

/** Every first-factor check costs exactly one of these calls, whether or not the user exists. */
export interface PasswordVerifier {
  verify(plain: string, hash: string): Promise<boolean>;
  /** Same cost as verify, for unknown users and users without a local password. */
  dummy(plain: string): Promise<void>;
}

/** The payload stored with a challenge (JSON in Challenge.data). Holds no password in clear. */
interface ChallengeData {
  /** What the next packet carries. */
  next: "code" | "new_password" | "confirm";
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

/** A resolved identity: the store record, and for a directory user the entry and its profile. */
interface Subject {
  record: User;
  dir?: { directory: Directory; entry: DirectoryUser };
  /** Effective type: record override, else the directory's attribute, else the profile default (local: the record's). */
  type: AuthType | null;
}

type Resolution = { kind: "found"; subject: Subject } | { kind: "unknown" } | { kind: "rejected"; decision: Decision };

/** The outcome of a first-factor check. */
type PasswordOutcome =
  | { ok: true; change?: "password_expired" | "must_change" }
  | { ok: false; reason: AuthFailureReason; proven: boolean; counts: boolean; detail?: string };

/** The factors of an accepted code-only login and its (absent) reply attributes: shared, never mutated. */
const OTP_ONLY: readonly string[] = Object.freeze(["otp"]);
const NO_ATTRIBUTES: readonly ReplyAttribute[] = Object.freeze([]);

const STATE_BYTES = 32; // 256 random bits, above DESIGN's 128-bit floor

/** Hashes a State value; the raw State never reaches the store. */
export function stateId(state: Uint8Array): string {
  return createHash("sha256").update(state).digest("hex");
}

/** AD bind sub-codes (types.ts BindFailure) → reject reasons; `proven`: AD returns it only for a right password. */
const BIND_FAILURES: Record<Exclude<BindFailure, "password_expired" | "must_change">, { reason: AuthFailureReason; proven: boolean }> = {
  bad_credentials: { reason: "bad_password", proven: false }, // 52e
  not_permitted_time: { reason: "not_permitted", proven: true }, // 530
  not_permitted_workstation: { reason: "not_permitted", proven: true }, // 531
  disabled: { reason: "account_disabled", proven: true }, // 533
  account_expired: { reason: "account_expired", proven: true }, // 701
  locked: { reason: "account_locked", proven: false }, // 775: returned whatever the password
};

export class Engine {
  private readonly lockout: Lockout;
  private readonly random: (n: number) => Uint8Array;
  private readonly passwords: PasswordVerifier;
  private readonly directories: Directories;
  private readonly noDirectories: boolean;

  constructor(
    private readonly store: Store,
    private readonly options: EngineOptions,
    private readonly audit: AuditSink,
  ) {
    this.lockout = new Lockout(store.lockouts, options.lockout);
    this.random = options.random ?? ((n) => randomBytes(n));
    this.passwords = options.passwords ?? { verify: verifyPassword, dummy: async (plain) => void (await dummyVerify(plain)) };
    this.directories = options.directories ?? new Directories([]);
    this.noDirectories = this.directories.names().length === 0;
  }

  /** Decides one attempt. Never throws for bad credentials; store failures reject with "store_error". */
  authenticate(attempt: Attempt): Promise<Decision> {
    if (attempt.method === "pap" && attempt.state === undefined && attempt.channel.firstFactor === "none" && attempt.secret) {
      let warm: Promise<Decision> | undefined;
      try {
        warm = this.warmCodeOnly(attempt);
      } catch (err) {
        return Promise.resolve(this.failed(attempt, err));
      }
      // warmCodeOnly maps its own asynchronous failures (failed()), so its promise never rejects
      if (warm) return warm;
    }
    return this.authenticateAsync(attempt);
  }

  private async authenticateAsync(attempt: Attempt): Promise<Decision> {
    let key = "";
    try {
      // Refused before the lockout check or any lookup: no counter moves, no code is consumed.
      if (attempt.method === "eap") return this.reject(attempt, "eap_unsupported", undefined, "EAP is not supported");
      if (attempt.method !== "pap") return this.reject(attempt, "chap_unsupported", undefined, "only PAP carries a password that can be checked");
      key = normalizeUsername(attempt.username, { realms: this.options.realms });
      if (key === "") return this.reject(attempt, "no_username");
      if (attempt.state) return await this.secondLeg(attempt, key, attempt.state);
      return await this.firstLeg(attempt, key);
    } catch (err) {
      if (err instanceof DirectoryUnavailableError && key !== "") {
        // As failed() would, with the account named when the store knows it.
        return this.rejectByName(attempt, key, "directory_unavailable", `${err.profile}: ${err.message}`).catch(() => this.failed(attempt, err));
      }
      return this.failed(attempt, err);
    }
  }

  /** The decision when a step threw: overload drops, an unavailable directory or store rejects. */
  private failed(attempt: Attempt, err: unknown): Decision {
    if (err instanceof PasswordOverloadedError) return { kind: "drop", reason: "overloaded" };
    // A profile that cannot answer stops the attempt: never fall through to the next profile
    // because this one timed out (issue 3 item 1).
    if (err instanceof DirectoryUnavailableError) return this.reject(attempt, "directory_unavailable", undefined, `${err.profile}: ${err.message}`);
    const source = attempt.source ?? channelSource(attempt.channel);
    this.audit({ type: "auth.failure", channel: attempt.channel.kind, client: attempt.channel.name, reason: "store_error", source, detail: err instanceof Error ? err.name : "error" });
    return { kind: "reject", reason: "store_error" };
  }

  /**
   * The warm path of `--first-factor none`: a local user whose lockout counters, known sources,
   * record and tokens are all in memory (store.warm), decided with the same checks in the same
   * order as firstLeg → codeOnly, and with the store's high-water-mark commit (and a failure's
   * counter write, or a new known source's write) as the only asynchronous steps. It handles
   * exactly: an unknown name, a bad or replayed code, and an accepted code of an active local user
   * with no code counter for this source or the identity. Everything else returns undefined and
   * takes the full path, which reads the same values through the repositories: a read memory
   * cannot answer, any such lockout counter (the full path checks, fails or clears it), a
   * disabled, expired, password-type or unimplemented-type user, no active token, a linked
   * directory record, or a client whose first source is a directory.
   */
  private warmCodeOnly(attempt: Attempt): Promise<Decision> | undefined {
    const warm = this.store.warm;
    const sources = warm ? this.localSources(attempt.channel.directories) : "none";
    if (!warm || sources === "none") return undefined;
    const key = normalizeUsername(attempt.username, { realms: this.options.realms });
    if (key === "") return undefined;
    const source = attempt.source ?? channelSource(attempt.channel);
    if (warm.counted(key, "code", source) !== false) return undefined;
    const user = warm.userByName(key);
    if (user === undefined) return undefined;
    const { now } = attempt;
    if (user === null && sources === "first") return undefined; // a directory is asked next
    if (user === null) return this.warmFailure(attempt, key, source, undefined, "unknown_user");
    if ((user.directory ?? null) !== null || accountStatus(user, now)) return undefined;
    if (user.type === "password" || notImplemented(user.type)) return undefined;
    const tokens = warm.activeTokens(user.id);
    if (tokens === undefined || tokens.length === 0) return undefined;
    const match = this.matchCode(tokens, attempt.secret!, now);
    if (!match) return this.warmFailure(attempt, key, source, user, "bad_code");
    if (match.replay) return this.warmFailure(attempt, key, source, user, "replayed_code");
    // consume() without its own promise step: the commit's answer decides directly
    return this.advance(match).then(
      (advanced) => {
        try {
          if (!advanced) return this.warmFailure(attempt, key, source, user, "replayed_code");
          // A source already recorded as known (within a day) costs no write: the accept is immediate.
          if (!this.lockout.needsRecord(warm.knownSource(key, source), now)) return this.accept(attempt, user, OTP_ONLY, NO_ATTRIBUTES);
          return this.completed(attempt, key, user, OTP_ONLY, NO_ATTRIBUTES).catch((err: unknown) => this.failed(attempt, err));
        } catch (err) {
          return this.failed(attempt, err); // as the full path's try/catch would
        }
      },
      (err: unknown) => this.failed(attempt, err),
    );
  }

  /** A failed warm attempt: the code counter's failure is recorded, then the reject (or failed() if that write fails). */
  private warmFailure(attempt: Attempt, key: string, source: string, user: User | undefined, reason: "unknown_user" | "bad_code" | "replayed_code"): Promise<Decision> {
    return this.lockout.fail(key, source, "code", attempt.now).then(
      () => {
        try {
          return this.reject(attempt, reason, user);
        } catch (err) {
          return this.failed(attempt, err);
        }
      },
      (err: unknown) => this.failed(attempt, err),
    );
  }

  /** Where local users stand in this channel's lookup order: the only source, the first, or behind a directory. */
  private localSources(clientDirectories: string[] | null): "only" | "first" | "none" {
    if (clientDirectories === null) return this.noDirectories ? "only" : "none";
    const order = this.directories.order(clientDirectories);
    return order[0] !== LOCAL_SOURCE ? "none" : order.length === 1 ? "only" : "first";
  }

  private async firstLeg(attempt: Attempt, key: string): Promise<Decision> {
    const { channel, now } = attempt;
    const typed = attempt.secret ?? "";
    // DESIGN: an empty password is rejected before any check (an empty LDAP bind succeeds).
    if (typed === "") return this.rejectByName(attempt, key, "empty_password");

    if (channel.firstFactor === "none") return this.codeOnly(attempt, key, typed);

    const source = attempt.source ?? channelSource(channel);
    const passwordLock = await this.lockout.check(key, source, "password", now);
    if (passwordLock.locked) return this.lockedOut(attempt, key, "password", passwordLock);

    const resolved = await this.resolve(attempt, key);
    if (resolved.kind === "rejected") return resolved.decision;
    if (resolved.kind === "unknown") {
      await this.dummyPassword(channel, typed);
      await this.lockout.fail(key, source, "password", now);
      return this.reject(attempt, "unknown_user", undefined);
    }
    const subject = resolved.subject;
    const user = subject.record;
    const concat = channel.otpMode === "concat" || subject.type === "concatenated";
    if (concat && subject.type !== "password") return this.concatenated(attempt, key, source, subject, typed, passwordLock);

    // Password-first: one argon2id verify or one bind, real or dummy, whatever the user's state.
    const outcome = await this.checkPassword(subject, typed);
    if (!outcome.ok) {
      if (outcome.counts) await this.lockout.fail(key, source, "password", now);
      return this.reject(attempt, outcome.reason, user, outcome.detail, outcome.proven);
    }
    const status = accountStatus(user, now);
    if (status) return this.reject(attempt, status, user, undefined, true);
    await this.lockout.succeed(key, source, "password", passwordLock);

    const groups = await this.groups(subject);
    if (!groups.ok) return this.reject(attempt, "not_in_group", user, groups.detail, true);

    if (outcome.change) return this.startChange(attempt, subject, typed, groups.attributes);

    if (subject.type === "password") {
      if (!channel.allowPasswordOnly) return this.reject(attempt, "type_not_allowed", user, "client does not allow password-only users");
      return this.completed(attempt, key, user, ["password"], groups.attributes);
    }
    const unimplemented = notImplemented(subject.type);
    if (unimplemented) return this.refuse(attempt, unimplemented, user);

    const tokens = await this.store.tokens.activeForUser(user.id);
    if (tokens.length === 0) return this.reject(attempt, "no_token", user);
    return this.challenge(attempt, user, 0, this.options.otpPrompt, { next: "code", attributes: groups.attributes });
  }

  /** `--first-factor none`: the NAS checked the password; User-Password is the code alone. */
  private async codeOnly(attempt: Attempt, key: string, code: string): Promise<Decision> {
    const { now } = attempt;
    const source = attempt.source ?? channelSource(attempt.channel);
    const codeLock = await this.lockout.check(key, source, "code", now);
    if (codeLock.locked) return this.lockedOut(attempt, key, "code", codeLock);
    const resolved = await this.resolve(attempt, key);
    if (resolved.kind === "rejected") return resolved.decision;
    if (resolved.kind === "unknown") {
      await this.lockout.fail(key, source, "code", now);
      return this.reject(attempt, "unknown_user", undefined);
    }
    const subject = resolved.subject;
    const user = subject.record;
    const status = accountStatus(user, now);
    if (status) return this.reject(attempt, status, user);
    // No bind happens here, so the directory's account status is the only check of it (issue 3
    // item 1): every state but "ok" is refused, an expired password included. Nothing is proven yet:
    // the generic text only.
    const dirStatus = directoryStatus(subject, "all");
    if (dirStatus) return this.reject(attempt, dirStatus, user, "directory account status");
    if (subject.type === "password") return this.reject(attempt, "type_not_allowed", user, "a code-only client needs a second factor");
    const unimplemented = notImplemented(subject.type);
    if (unimplemented) return this.refuse(attempt, unimplemented, user);
    const groups = await this.groups(subject);
    if (!groups.ok) return this.reject(attempt, "not_in_group", user, groups.detail);
    const result = await this.checkAndConsumeCode(user, code, now);
    if (result !== "ok") {
      await this.lockout.fail(key, source, "code", now);
      return this.reject(attempt, result, user);
    }
    await this.lockout.succeed(key, source, "code", codeLock);
    return this.completed(attempt, key, user, OTP_ONLY, groups.attributes);
  }

  /**
   * Password and code in one field: one split by the token's digit length, one password check.
   * An expired or must-change password cannot be changed here (a concat client cannot do
   * challenges): it is refused with a clear text, since the password was proven.
   */
  private async concatenated(attempt: Attempt, key: string, source: string, subject: Subject, typed: string, passwordLock: LockCheck): Promise<Decision> {
    const { now } = attempt;
    const user = subject.record;
    const codeLock = await this.lockout.check(key, source, "code", now);
    if (codeLock.locked) return this.lockedOut(attempt, key, "code", codeLock, user);
    const tokens = await this.store.tokens.activeForUser(user.id);
    const digits = tokens[0]?.digits ?? 6;
    const password = typed.length > digits ? typed.slice(0, typed.length - digits) : "";
    const code = typed.slice(-digits);

    const match = password === "" ? undefined : this.matchCode(tokens, code, now);
    const outcome = await this.checkPassword(subject, password);
    if (!outcome.ok) {
      if (outcome.counts) await this.lockout.fail(key, source, "password", now);
      return this.reject(attempt, password === "" ? "empty_password" : outcome.reason, user, outcome.detail, outcome.proven);
    }
    const status = accountStatus(user, now);
    if (status) return this.reject(attempt, status, user, undefined, true);
    await this.lockout.succeed(key, source, "password", passwordLock);
    if (outcome.change) return this.reject(attempt, outcome.change, user, "a concatenated login cannot run the password change flow", true);
    const groups = await this.groups(subject);
    if (!groups.ok) return this.reject(attempt, "not_in_group", user, groups.detail, true);
    const unimplemented = notImplemented(subject.type);
    if (unimplemented) return this.refuse(attempt, unimplemented, user);
    if (tokens.length === 0) return this.reject(attempt, "no_token", user);
    const result = match ? await this.consume(match) : "bad_code";
    if (result !== "ok") {
      await this.lockout.fail(key, source, "code", now);
      return this.reject(attempt, result, user);
    }
    await this.lockout.succeed(key, source, "code", codeLock);
    return this.completed(attempt, key, user, ["password", "otp"], groups.attributes);
  }

  /** Second leg: the State is consumed first (single-use), the user re-read, then the leg's step. */
  private async secondLeg(attempt: Attempt, key: string, state: Uint8Array): Promise<Decision> {
    const { now, channel } = attempt;
    const challenge = await this.store.challenges.consume(stateId(state), now);
    if (!challenge) return this.rejectByName(attempt, key, "state_unknown");
    if (challenge.clientName !== channel.name || challenge.username !== key) {
      return this.rejectByName(attempt, key, "state_mismatch", "State presented by another client or user");
    }
    const record = await this.store.users.findById(challenge.userId);
    if (!record || record.username !== key) return this.rejectByName(attempt, key, "state_mismatch");
    const reread = await this.reload(attempt, record, key);
    if ("decision" in reread) return reread.decision;
    const subject = reread.subject;
    const status = accountStatus(record, now);
    if (status) return this.reject(attempt, status, record);
    // The password was proven on the first leg (an expired one included, which is why this flow exists).
    const dirStatus = directoryStatus(subject, "account");
    if (dirStatus) return this.reject(attempt, dirStatus, record, "directory account status");

    const data = parseChallengeData(challenge.data);
    if (!data) return this.reject(attempt, "state_unknown", record, "unreadable challenge data");
    const binding = sealBinding(channel.name, record.id);
    const secrets = data.change ? openChangeSecrets(state, binding, data.change.sealed) : undefined;
    if (data.change && !secrets) return this.reject(attempt, "state_unknown", record, "challenge secrets do not open");
    const attributes = data.attributes ?? [];

    if (data.next === "new_password") {
      const typed = attempt.secret ?? "";
      if (typed === "") return this.challenge(attempt, record, challenge.failures, CHANGE_PROMPTS.newPassword, { ...data, next: "new_password" }, secrets, "new_password");
      return this.challenge(attempt, record, challenge.failures, CHANGE_PROMPTS.confirm, { ...data, next: "confirm" }, { old: secrets!.old, new: typed }, "confirm");
    }
    if (data.next === "confirm") {
      if (secrets!.new === undefined || !sameText(secrets!.new, attempt.secret ?? "")) {
        return this.challenge(attempt, record, challenge.failures, CHANGE_PROMPTS.mismatch, { ...data, next: "new_password" }, { old: secrets!.old }, "new_password");
      }
      // No second factor to wait for: it already succeeded in this flow, or the type has none.
      if (data.change!.codeDone || subject.type === "password") return this.changePassword(attempt, subject, secrets!, data, challenge.failures);
      return this.challenge(attempt, record, challenge.failures, this.options.otpPrompt, { ...data, next: "code" }, secrets, "code");
    }

    const source = attempt.source ?? channelSource(channel);
    const codeLock = await this.lockout.check(key, source, "code", now);
    if (codeLock.locked) return this.lockedOut(attempt, key, "code", codeLock, record);
    const result = await this.checkAndConsumeCode(record, attempt.secret ?? "", now);
    if (result === "ok") {
      await this.lockout.succeed(key, source, "code", codeLock);
      if (secrets) return this.changePassword(attempt, subject, secrets, { ...data, change: { ...data.change!, codeDone: true } }, challenge.failures);
      return this.completed(attempt, key, record, ["password", "otp"], attributes);
    }
    await this.lockout.fail(key, source, "code", now);
    // A replayed code is not a typo: someone holds a used code. End the flow at once.
    if (result !== "bad_code") return this.reject(attempt, result, record);
    const failures = challenge.failures + 1;
    if (failures >= this.options.challengeMaxFailures) return this.reject(attempt, "too_many_codes", record);
    this.audit({ type: "auth.failure", channel: channel.kind, client: channel.name, user: record.username, reason: result, source, detail: "re-challenged" });
    return this.challenge(attempt, record, failures, this.options.retryPrompt, data, secrets, "code", false);
  }

  /**
   * Starts the change flow after a bind that proved the password but reported it expired or to be
   * changed. The user must be able to finish the flow: a second factor (or type password where the
   * channel allows it), else the refusal comes now, before any new password is asked for.
   */
  private async startChange(attempt: Attempt, subject: Subject, oldPassword: string, attributes: ReplyAttribute[]): Promise<Decision> {
    const user = subject.record;
    if (subject.type === "password") {
      if (!attempt.channel.allowPasswordOnly) return this.reject(attempt, "type_not_allowed", user, "client does not allow password-only users");
    } else {
      const unimplemented = notImplemented(subject.type);
    if (unimplemented) return this.refuse(attempt, unimplemented, user);
      const tokens = await this.store.tokens.activeForUser(user.id);
      if (tokens.length === 0) return this.reject(attempt, "no_token", user);
    }
    const data: ChallengeData = { next: "new_password", attributes, change: { codeDone: false, sealed: "" } };
    return this.challenge(attempt, user, 0, CHANGE_PROMPTS.newPassword, data, { old: oldPassword }, "new_password");
  }

  /** The change itself: only reached after the second factor (or for type password, after the confirmation). */
  private async changePassword(attempt: Attempt, subject: Subject, secrets: ChangeSecrets, data: ChallengeData, failures: number): Promise<Decision> {
    const user = subject.record;
    if (!subject.dir || secrets.new === undefined) return this.reject(attempt, "password_change_failed", user, "no directory or no new password in this flow");
    const { directory, entry } = subject.dir;
    const result = await directory.changePassword(entry, secrets.old, secrets.new);
    if (result.ok) {
      this.audit({ type: "auth.password_changed", channel: attempt.channel.kind, client: attempt.channel.name, user: user.username, directory: directory.name });
      return this.completed(attempt, user.username, user, subject.type === "password" ? ["password"] : ["password", "otp"], data.attributes ?? []);
    }
    if (result.reason === "policy") {
      // The second factor stays satisfied for the rest of this flow: the retry goes straight to the change.
      const prompt = `${result.message.trim()} ${CHANGE_PROMPTS.retry}`.trim();
      const source = attempt.source ?? channelSource(attempt.channel);
      this.audit({ type: "auth.failure", channel: attempt.channel.kind, client: attempt.channel.name, user: user.username, reason: "password_change_failed", source, detail: "refused by the directory's password policy; re-challenged" });
      return this.challenge(attempt, user, failures, prompt, { ...data, next: "new_password" }, { old: secrets.old }, "new_password", false);
    }
    return this.reject(attempt, "password_change_failed", user, `${result.reason}: ${result.detail}`);
  }

  // ── resolution ────────────────────────────────────────────────────────────────────────────

  /**
   * Walks the channel's sources in order. "local": a store record without a directory. A profile:
   * findUser; not found → next source; DirectoryUnavailableError propagates (authenticate() turns
   * it into directory_unavailable) so that no later profile is asked.
   */
  private async resolve(attempt: Attempt, key: string): Promise<Resolution> {
    for (const source of this.directories.order(attempt.channel.directories)) {
      if (source === LOCAL_SOURCE) {
        const user = await this.store.users.findByName(key);
        // A linked record is only reached through its profile.
        if (user && (user.directory ?? null) === null) return { kind: "found", subject: { record: user, type: user.type } };
        continue;
      }
      const directory = this.directories.get(source)!;
      const entry = await directory.findUser(key);
      if (!entry) continue;
      const linked = await this.linkRecord(attempt, directory, entry, key);
      if ("decision" in linked) return { kind: "rejected", decision: linked.decision };
      return { kind: "found", subject: { record: linked.record, dir: { directory, entry }, type: effectiveType(linked.record, entry, directory) } };
    }
    return { kind: "unknown" };
  }

  /**
   * The store record of a directory user (the "hybrid" record that holds tokens, overrides and the
   * lockout's home): by (profile, stable ID); else an unlinked record of that profile and name,
   * linked now; else a new shadow record. Renames follow the directory; phone changes are audited.
   */
  private async linkRecord(attempt: Attempt, directory: Directory, entry: DirectoryUser, key: string): Promise<{ record: User } | { decision: Decision }> {
    const profile = directory.name;
    try {
      let record = await this.store.users.findByExternal(profile, entry.id);
      const patch: Partial<User> = {};
      if (!record) {
        const byName = await this.store.users.findByName(key);
        if (byName && byName.directory === profile && (byName.externalId ?? null) === null) {
          record = byName;
          patch.externalId = entry.id;
        } else if (byName) {
          return { decision: this.reject(attempt, "identity_conflict", byName, `the name of a ${profile} user is held by another record`) };
        } else {
          const created = await this.store.users.add({
            username: key,
            passwordHash: null,
            type: null,
            phone: null,
            email: null,
            disabled: false,
            expiresAt: null,
            directory: profile,
            externalId: entry.id,
            directoryPhone: entry.rawPhone,
          });
          await this.claimToken(directory, entry, created);
          return { record: created };
        }
      }
      if (record.username !== key) patch.username = key;
      const lastPhone = record.directoryPhone ?? null;
      if (lastPhone !== entry.rawPhone) {
        this.audit({ type: "directory.phone_changed", directory: profile, user: key, from: maskPhone(lastPhone), to: maskPhone(entry.rawPhone) });
        patch.directoryPhone = entry.rawPhone;
      }
      if (Object.keys(patch).length > 0) {
        await this.store.users.update(record.id, patch);
        record = { ...record, ...patch };
      }
      await this.claimToken(directory, entry, record);
      return { record };
    } catch (err) {
      if (err instanceof StoreError && err.code === "conflict") {
        return { decision: await this.rejectByName(attempt, key, "identity_conflict", `the name of a ${profile} user is held by another record`) };
      }
      throw err;
    }
  }

  /**
   * token_attribute: a hardware token (imported from PSKC/CSV) named by the directory entry is
   * assigned to the user's record when it is still unassigned. A token held by someone else is
   * never moved; that is audited instead. Only the code of the physical token can log in, so
   * naming a serial grants nothing by itself.
   */
  private async claimToken(directory: Directory, entry: DirectoryUser, record: User): Promise<void> {
    const serial = entry.tokenSerial?.trim();
    if (!serial) return;
    const token = await this.store.tokens.findBySerial(serial);
    if (token?.userId === record.id) return;
    const base = { directory: directory.name, user: record.username, serial: serial.slice(0, 64) };
    if (!token) return this.audit({ type: "directory.token_refused", ...base, detail: "no token with this serial has been imported" });
    if (token.userId !== null) return this.audit({ type: "directory.token_refused", ...base, detail: "the token is assigned to another user" });
    await this.store.tokens.assign(token.id, record.id);
    this.audit({ type: "directory.token_assigned", ...base });
  }

  /** Second leg: the record again, and for a directory user a fresh entry (status may have changed). */
  private async reload(attempt: Attempt, record: User, key: string): Promise<{ subject: Subject } | { decision: Decision }> {
    const profile = record.directory ?? null;
    if (profile === null) return { subject: { record, type: record.type } };
    const directory = this.directories.get(profile);
    if (!directory) return { decision: this.reject(attempt, "state_mismatch", record, `profile ${profile} is no longer configured`) };
    const entry = await directory.findUser(key);
    if (!entry || entry.id !== record.externalId) return { decision: this.reject(attempt, "state_mismatch", record, `user no longer found in ${profile}`) };
    return { subject: { record, dir: { directory, entry }, type: effectiveType(record, entry, directory) } };
  }

  // ── factors ───────────────────────────────────────────────────────────────────────────────

  /** One password check of the subject's source: a directory bind, or argon2id (a dummy when there is no hash). */
  private async checkPassword(subject: Subject, password: string): Promise<PasswordOutcome> {
    if (subject.dir) {
      const { directory, entry } = subject.dir;
      if (password === "") {
        await directory.dummyBind(password);
        return { ok: false, reason: "bad_password", proven: false, counts: true };
      }
      const bind = await directory.verifyPassword(entry, password);
      if (!bind.ok) {
        if (bind.reason === "password_expired" || bind.reason === "must_change") return { ok: true, change: bind.reason };
        const mapped = BIND_FAILURES[bind.reason];
        // Only a wrong password counts for Portcullis's own lockout.
        return { ok: false, reason: mapped.reason, proven: mapped.proven, counts: bind.reason === "bad_credentials", detail: bind.detail };
      }
      // The bind proved the password; the entry's own state still applies (read without a bind).
      switch (entry.status) {
        case "ok":
          return { ok: true };
        case "password_expired":
        case "must_change":
          return { ok: true, change: entry.status };
        case "disabled":
          return { ok: false, reason: "account_disabled", proven: true, counts: false, detail: "directory account status" };
        case "locked":
          return { ok: false, reason: "account_locked", proven: true, counts: false, detail: "directory account status" };
        case "account_expired":
          return { ok: false, reason: "account_expired", proven: true, counts: false, detail: "directory account status" };
      }
    }
    const user = subject.record;
    if (user.passwordHash === null || password === "") {
      await this.passwords.dummy(password);
      return { ok: false, reason: "bad_password", proven: false, counts: true };
    }
    return (await this.passwords.verify(password, user.passwordHash)) ? { ok: true } : { ok: false, reason: "bad_password", proven: false, counts: true };
  }

  /** The cost of a password check for a name no source knows: a bind on the first profile in the order, else argon2id. */
  private async dummyPassword(channel: Channel, password: string): Promise<void> {
    for (const source of this.directories.order(channel.directories)) {
      const directory = source === LOCAL_SOURCE ? undefined : this.directories.get(source);
      if (directory) return directory.dummyBind(password);
    }
    await this.passwords.dummy(password);
  }

  /**
   * One memberOf call for the required groups and the reply groups of the subject's profile.
   * Missing a required group fails; every reply entry whose group matched contributes its
   * attributes, in configuration order. Local users: no groups, no attributes.
   */
  private async groups(subject: Subject): Promise<{ ok: true; attributes: ReplyAttribute[] } | { ok: false; detail: string }> {
    if (!subject.dir) return { ok: true, attributes: [] };
    const { directory, entry } = subject.dir;
    const profile = directory.profile;
    const wanted = [...new Set([...profile.requiredGroups, ...profile.reply.map((r) => r.group)])];
    if (wanted.length === 0) return { ok: true, attributes: [] };
    const found = await directory.memberOf(entry, wanted);
    const member = new Set([...found].map((dn) => dn.toLowerCase()));
    const missing = profile.requiredGroups.filter((dn) => !member.has(dn.toLowerCase()));
    if (missing.length > 0) return { ok: false, detail: `not a member of ${missing.length} required group(s)` };
    const attributes: ReplyAttribute[] = [];
    for (const entryReply of profile.reply) {
      if (!member.has(entryReply.group.toLowerCase())) continue;
      for (const [name, value] of Object.entries(entryReply.attributes)) attributes.push({ name, value });
    }
    return { ok: true, attributes };
  }

  private async checkAndConsumeCode(user: User, code: string, now: number): Promise<"ok" | "bad_code" | "replayed_code" | "no_token"> {
    const tokens = await this.store.tokens.activeForUser(user.id);
    if (tokens.length === 0) return "no_token";
    const match = this.matchCode(tokens, code, now);
    if (!match) return "bad_code";
    return this.consume(match);
  }

  /** Pure check over every active token; no store write. */
  private matchCode(tokens: Token[], code: string, now: number): CodeMatch | undefined {
    let replay: CodeMatch | undefined;
    for (const token of tokens) {
      if (token.kind === "totp") {
        const r = verifyTOTP(token, code, { now, window: this.options.window });
        if (r.ok) return { token, step: r.step, drift: r.drift };
        if (r.reason === "replay") replay = { token, replay: true };
      } else {
        const r = verifyHOTP(token, code, { lookAhead: this.options.hotpLookAhead });
        if (r.ok) return { token, next: r.next };
      }
    }
    return replay;
  }

  /** Commits the high-water mark; resolves only after the write committed. */
  private consume(match: CodeMatch): Promise<"ok" | "replayed_code"> {
    if (match.replay) return Promise.resolve("replayed_code");
    return this.advance(match).then((ok) => (ok ? "ok" : "replayed_code"));
  }

  /** The store's guarded write of a match that is not a replay: true when this call moved the mark. */
  private advance(match: CodeMatch): Promise<boolean> {
    return match.token.kind === "totp" ? this.store.tokens.advanceTOTP(match.token.id, match.step!, match.drift!) : this.store.tokens.advanceHOTP(match.token.id, match.next!);
  }

  // ── decisions ─────────────────────────────────────────────────────────────────────────────

  /**
   * Stores a new single-use challenge. Change-flow passwords are sealed under the new State
   * (challenge-secrets.ts); the row holds only the sealed form.
   */
  private async challenge(
    attempt: Attempt,
    user: User,
    failures: number,
    prompt: string,
    data: ChallengeData,
    secrets?: ChangeSecrets,
    step: "code" | "new_password" | "confirm" = "code",
    emit = true,
  ): Promise<Decision> {
    const state = this.random(STATE_BYTES);
    const stored: ChallengeData = { next: data.next };
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
      expiresAt: attempt.now + this.options.challengeTtlMs,
      failures,
      data: JSON.stringify(stored),
    });
    if (emit) {
      const event: AuditEvent = { type: "auth.challenge", channel: attempt.channel.kind, client: attempt.channel.name, user: user.username };
      if (step !== "code") event.step = step;
      this.audit(event);
    }
    return { kind: "challenge", state, prompt, timeoutS: Math.ceil(this.options.challengeTtlMs / 1000) };
  }

  /**
   * A completed login: its source is recorded as known to the lockout (a write only when the source
   * is new or its record stale, lockout.ts), then the accept.
   */
  private async completed(attempt: Attempt, key: string, user: User, factors: readonly string[], attributes: readonly ReplyAttribute[]): Promise<Decision> {
    await this.lockout.recordSuccess(key, attempt.source ?? channelSource(attempt.channel), attempt.now);
    return this.accept(attempt, user, factors, attributes);
  }

  private accept(attempt: Attempt, user: User, factors: readonly string[], attributes: readonly ReplyAttribute[]): Decision {
    this.audit({ type: "auth.success", channel: attempt.channel.kind, client: attempt.channel.name, user: user.username, factors });
    return attributes.length > 0 ? { kind: "accept", user: user.username, attributes: [...attributes] } : { kind: "accept", user: user.username };
  }

  /**
   * A reject before the user is resolved: the audit line names the account when the store holds a
   * record of that name (a typed password never matches one), else only the name's hash.
   */
  private async rejectByName(attempt: Attempt, key: string, reason: AuthFailureReason, detail?: string): Promise<Decision> {
    const record = key === "" ? undefined : await this.store.users.findByName(key);
    return this.reject(attempt, reason, record, detail);
  }

  /** A refusal by the lockout, before any expensive work; the detail says which counter refused. */
  private async lockedOut(attempt: Attempt, key: string, kind: "password" | "code", check: LockCheck, user?: User): Promise<Decision> {
    const detail = check.locked === "identity" ? `${kind} (identity cap, unknown source)` : `${kind} (source back-off)`;
    if (user) return this.reject(attempt, "locked_out", user, detail);
    return this.rejectByName(attempt, key, "locked_out", detail);
  }

  /** A reject for a refusal found by a check (factors.ts). */
  private refuse(attempt: Attempt, refusal: Refusal, user: User, proven = false): Decision {
    return this.reject(attempt, refusal.reason, user, refusal.detail, proven);
  }

  /** `proven`: the password was proven in this attempt, so a clear text from messages.ts may be shown. */
  private reject(attempt: Attempt, reason: AuthFailureReason, user?: User, detail?: string, proven = false): Decision {
    const event: AuditEvent = { type: "auth.failure", channel: attempt.channel.kind, client: attempt.channel.name, reason };
    if (user) event.user = user.username;
    else event.userHash = usernameHash(normalizeUsername(attempt.username, { realms: this.options.realms }));
    event.source = attempt.source ?? channelSource(attempt.channel);
    if (detail) event.detail = detail;
    this.audit(event);
    const message = proven ? PROVEN_PASSWORD_MESSAGES[reason] : undefined;
    return message ? { kind: "reject", reason, message } : { kind: "reject", reason };
  }
}

interface CodeMatch {
  token: Token;
  step?: number;
  drift?: number;
  next?: number;
  replay?: true;
}

/** Disabled or expired accounts (the store record) are refused in every flow, code-only included. */
function accountStatus(user: User, now: number): "account_disabled" | "account_expired" | undefined {
  if (user.disabled) return "account_disabled";
  if (user.expiresAt !== null && user.expiresAt <= now) return "account_expired";
  return undefined;
}

/**
 * The directory entry's status as a reject reason. "account": disabled, locked, expired account
 * (a second leg, after a proven password); "all": an expired or must-change password too (code-only,
 * where no bind checks the password).
 */
function directoryStatus(subject: Subject, scope: "account" | "all"): AuthFailureReason | undefined {
  const status = subject.dir?.entry.status ?? "ok";
  switch (status) {
    case "ok":
      return undefined;
    case "disabled":
      return "account_disabled";
    case "locked":
      return "account_locked";
    case "account_expired":
      return "account_expired";
    case "password_expired":
    case "must_change":
      return scope === "all" ? status : undefined;
  }
}

/**
 * Effective type of a directory user: the record's override, else the directory's attribute, else the
 * profile's default. A directory type of `password` counts only where the profile allows it
 * (self-writable attributes must not lower a user to password-only; DESIGN "Identity and secrets").
 */
function effectiveType(record: User, entry: DirectoryUser, directory: Directory): AuthType {
  if (record.type !== null) return record.type;
  const fromDirectory = entry.type === "password" && !directory.profile.allowTypePassword ? null : entry.type;
  return fromDirectory ?? directory.profile.defaultType;
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
    return data;
  } catch {
    return undefined;
  }
}

/** Constant-time equality of two typed passwords (lengths are compared on their hashes). */
function sameText(a: string, b: string): boolean {
  const ha = createHash("sha256").update(a, "utf8").digest();
  const hb = createHash("sha256").update(b, "utf8").digest();
  return timingSafeEqual(ha, hb);
}

/** A phone number for the audit log: only its last two digits ("…67"); null stays null. */
export function maskPhone(raw: string | null): string | null {
  if (raw === null) return null;
  const digits = raw.replace(/\D/g, "");
  return `…${digits.slice(-2)}`;
}
