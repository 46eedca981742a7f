// The authentication engine: one attempt in, one decision out. RADIUS (and later the HTTP adapters)
// are thin layers over it; it knows nothing about packets or HTTP.
//
//   first leg ──► lockout check ──► password (argon2id, or dummy for unknown users)
//                   │                   │
//                   │        type password ─► accept (only where the channel allows it)
//                   │        type totp ─────► challenge (State stored hashed, bound to client+user)
//                   │        concatenated ──► split once by token digits ─► code + password ─► accept
//   second leg ─► consume State (single-use) ─► code ─► high-water mark committed ─► accept
//
// A code is checked, the password verified, and only then the code consumed, atomically in the
// store (UPDATE … WHERE last_step < ?). The decision is returned only after that write commits.

import { createHash, randomBytes } from "node:crypto";
import type { AuditEvent, AuditSink, AuthFailureReason } from "../audit/events.ts";
import { verifyHOTP, verifyTOTP } from "../otp/index.ts";
import { PasswordOverloadedError, dummyVerify, verifyPassword } from "../runtime/password.ts";
import type { FirstFactor, OTPMode, Store, Token, User } from "../store/types.ts";
import { normalizeUsername, usernameHash } from "./identity.ts";
import { Lockout, type LockoutPolicy } from "./lockout.ts";
import { IMPLEMENTED_TYPES } from "./types.ts";

/** How the channel (a RADIUS client, later an HTTP endpoint) presents factors. */
export interface Channel {
  kind: "radius";
  /** Client name; challenge state is bound to it. */
  name: string;
  firstFactor: FirstFactor;
  otpMode: OTPMode;
  allowPasswordOnly: boolean;
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
  /** "chap" and "other" are refused: no cleartext password is stored to check them against. */
  method: "pap" | "chap" | "other";
  now: number;
}

export type Decision =
  | { kind: "accept"; user: string }
  /** No answer at all: the appliance is overloaded and the NAS should retry or fail over. */
  | { kind: "drop"; reason: "overloaded" }
  | { kind: "reject"; reason: AuthFailureReason }
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
  /** Random source for State values (tests pass a deterministic one). */
  random?: (n: number) => Uint8Array;
  /** Password verification; defaults to runtime/password (argon2id/bcrypt, bounded concurrency). */
  passwords?: PasswordVerifier;
}

/** Every first-factor check costs exactly one of these calls, whether or not the user exists. */
export interface PasswordVerifier {
  verify(plain: string, hash: string): Promise<boolean>;
  /** Same cost as verify, for unknown users and users without a local password. */
  dummy(plain: string): Promise<void>;
}

/** The payload stored with a challenge. */
interface ChallengeData {
  /** Leg that the next packet completes. */
  next: "code";
}

const STATE_BYTES = 32; // 256 random bits, above DESIGN's 128-bit floor

/** Hashes a State value; the raw State never reaches the store. */
export function stateId(state: Uint8Array): string {
  return createHash("sha256").update(state).digest("hex");
}

export class Engine {
  private readonly lockout: Lockout;
  private readonly random: (n: number) => Uint8Array;
  private readonly passwords: PasswordVerifier;

  constructor(
    private readonly store: Store,
    private readonly options: EngineOptions,
    private readonly audit: AuditSink,
  ) {
    this.lockout = new Lockout(store.lockouts, options.lockout);
    this.random = options.random ?? ((n) => randomBytes(n));
    this.passwords = options.passwords ?? { verify: verifyPassword, dummy: async (plain) => void (await dummyVerify(plain)) };
  }

  /** Decides one attempt. Never throws for bad credentials; store failures reject with "store_error". */
  async authenticate(attempt: Attempt): Promise<Decision> {
    try {
      if (attempt.method !== "pap") return this.reject(attempt, "chap_unsupported", undefined, "only PAP carries a password that can be checked");
      const key = normalizeUsername(attempt.username, { realms: this.options.realms });
      if (key === "") return this.reject(attempt, "no_username");
      if (attempt.state) return await this.secondLeg(attempt, key, attempt.state);
      return await this.firstLeg(attempt, key);
    } catch (err) {
      if (err instanceof PasswordOverloadedError) return { kind: "drop", reason: "overloaded" };
      this.audit({ type: "auth.failure", channel: attempt.channel.kind, client: attempt.channel.name, reason: "store_error", detail: err instanceof Error ? err.name : "error" });
      return { kind: "reject", reason: "store_error" };
    }
  }

  private async firstLeg(attempt: Attempt, key: string): Promise<Decision> {
    const { channel, now } = attempt;
    const typed = attempt.secret ?? "";
    // DESIGN: an empty password is rejected before any check (an empty LDAP bind succeeds).
    if (typed === "") return this.reject(attempt, "empty_password", undefined);

    if (channel.firstFactor === "none") return this.codeOnly(attempt, key, typed);

    const passwordLock = await this.lockout.check(key, "password", now);
    if (passwordLock.locked) return this.reject(attempt, "locked_out", undefined, "password");

    const user = await this.store.users.findByName(key);
    const concat = channel.otpMode === "concat" || user?.type === "concatenated";

    if (concat && user && user.type !== "password") return this.concatenated(attempt, key, user, typed, passwordLock);

    // Password-first: one argon2id verify, real or dummy, whatever the user's state.
    const passwordOK = await this.checkPassword(user, typed);
    if (!user) {
      await this.lockout.fail(key, "password", now);
      return this.reject(attempt, "unknown_user", undefined);
    }
    if (!passwordOK) {
      await this.lockout.fail(key, "password", now);
      return this.reject(attempt, "bad_password", user);
    }
    const status = accountStatus(user, now);
    if (status) return this.reject(attempt, status, user);
    await this.lockout.succeed(key, "password", passwordLock);

    if (user.type === "password") {
      if (!channel.allowPasswordOnly) return this.reject(attempt, "type_not_allowed", user, "client does not allow password-only users");
      return this.accept(attempt, user, ["password"]);
    }
    if (user.type === null || !IMPLEMENTED_TYPES.has(user.type)) return this.reject(attempt, "type_not_implemented", user, `type ${user.type} is not implemented yet`);

    const tokens = await this.store.tokens.activeForUser(user.id);
    if (tokens.length === 0) return this.reject(attempt, "no_token", user);
    return this.challenge(attempt, user, 0, this.options.otpPrompt);
  }

  /** `--first-factor none`: the NAS checked the password; User-Password is the code alone. */
  private async codeOnly(attempt: Attempt, key: string, code: string): Promise<Decision> {
    const { now } = attempt;
    const codeLock = await this.lockout.check(key, "code", now);
    if (codeLock.locked) return this.reject(attempt, "locked_out", undefined, "code");
    const user = await this.store.users.findByName(key);
    if (!user) {
      await this.lockout.fail(key, "code", now);
      return this.reject(attempt, "unknown_user", undefined);
    }
    const status = accountStatus(user, now);
    if (status) return this.reject(attempt, status, user);
    if (user.type === "password") return this.reject(attempt, "type_not_allowed", user, "a code-only client needs a second factor");
    if (user.type === null || !IMPLEMENTED_TYPES.has(user.type)) return this.reject(attempt, "type_not_implemented", user, `type ${user.type} is not implemented yet`);
    const result = await this.checkAndConsumeCode(user, code, now);
    if (result !== "ok") {
      await this.lockout.fail(key, "code", now);
      return this.reject(attempt, result, user);
    }
    await this.lockout.succeed(key, "code", codeLock);
    return this.accept(attempt, user, ["otp"]);
  }

  /** Password and code in one field: one split by the token's digit length, one password check. */
  private async concatenated(attempt: Attempt, key: string, user: User, typed: string, passwordLock: { failures: number }): Promise<Decision> {
    const { now } = attempt;
    const codeLock = await this.lockout.check(key, "code", now);
    if (codeLock.locked) return this.reject(attempt, "locked_out", user, "code");
    const tokens = await this.store.tokens.activeForUser(user.id);
    const digits = tokens[0]?.digits ?? 6;
    const password = typed.length > digits ? typed.slice(0, typed.length - digits) : "";
    const code = typed.slice(-digits);

    const match = password === "" ? undefined : this.matchCode(tokens, code, now);
    const passwordOK = await this.checkPassword(user, password);
    if (!passwordOK) {
      await this.lockout.fail(key, "password", now);
      return this.reject(attempt, password === "" ? "empty_password" : "bad_password", user);
    }
    const status = accountStatus(user, now);
    if (status) return this.reject(attempt, status, user);
    await this.lockout.succeed(key, "password", passwordLock);
    if (user.type === null || !IMPLEMENTED_TYPES.has(user.type)) return this.reject(attempt, "type_not_implemented", user, `type ${user.type} is not implemented yet`);
    if (tokens.length === 0) return this.reject(attempt, "no_token", user);
    const result = match ? await this.consume(match) : "bad_code";
    if (result !== "ok") {
      await this.lockout.fail(key, "code", now);
      return this.reject(attempt, result, user);
    }
    await this.lockout.succeed(key, "code", codeLock);
    return this.accept(attempt, user, ["password", "otp"]);
  }

  /** Second leg: the State is consumed first (single-use), then the code checked. */
  private async secondLeg(attempt: Attempt, key: string, state: Uint8Array): Promise<Decision> {
    const { now, channel } = attempt;
    const challenge = await this.store.challenges.consume(stateId(state), now);
    if (!challenge) return this.reject(attempt, "state_unknown");
    if (challenge.clientName !== channel.name || challenge.username !== key) {
      return this.reject(attempt, "state_mismatch", undefined, "State presented by another client or user");
    }
    const user = await this.store.users.findById(challenge.userId);
    if (!user || user.username !== key) return this.reject(attempt, "state_mismatch");
    const status = accountStatus(user, now);
    if (status) return this.reject(attempt, status, user);
    const codeLock = await this.lockout.check(key, "code", now);
    if (codeLock.locked) return this.reject(attempt, "locked_out", user, "code");

    const result = await this.checkAndConsumeCode(user, attempt.secret ?? "", now);
    if (result === "ok") {
      await this.lockout.succeed(key, "code", codeLock);
      return this.accept(attempt, user, ["password", "otp"]);
    }
    await this.lockout.fail(key, "code", now);
    // A replayed code is not a typo: someone holds a used code. End the flow at once.
    if (result !== "bad_code") return this.reject(attempt, result, user);
    const failures = challenge.failures + 1;
    if (failures >= this.options.challengeMaxFailures) return this.reject(attempt, "too_many_codes", user);
    this.audit({ type: "auth.failure", channel: channel.kind, client: channel.name, user: user.username, reason: result, detail: "re-challenged" });
    return this.challenge(attempt, user, failures, this.options.retryPrompt, false);
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
  private async consume(match: CodeMatch): Promise<"ok" | "replayed_code"> {
    if (match.replay) return "replayed_code";
    const advanced =
      match.token.kind === "totp"
        ? await this.store.tokens.advanceTOTP(match.token.id, match.step!, match.drift!)
        : await this.store.tokens.advanceHOTP(match.token.id, match.next!);
    return advanced ? "ok" : "replayed_code";
  }

  private async checkPassword(user: User | undefined, password: string): Promise<boolean> {
    if (!user || user.passwordHash === null || password === "") {
      await this.passwords.dummy(password);
      return false;
    }
    return this.passwords.verify(password, user.passwordHash);
  }

  private async challenge(attempt: Attempt, user: User, failures: number, prompt: string, emit = true): Promise<Decision> {
    const state = this.random(STATE_BYTES);
    const data: ChallengeData = { next: "code" };
    await this.store.challenges.put({
      id: stateId(state),
      clientName: attempt.channel.name,
      userId: user.id,
      username: user.username,
      expiresAt: attempt.now + this.options.challengeTtlMs,
      failures,
      data: JSON.stringify(data),
    });
    if (emit) this.audit({ type: "auth.challenge", channel: attempt.channel.kind, client: attempt.channel.name, user: user.username });
    return { kind: "challenge", state, prompt, timeoutS: Math.ceil(this.options.challengeTtlMs / 1000) };
  }

  private accept(attempt: Attempt, user: User, factors: string[]): Decision {
    this.audit({ type: "auth.success", channel: attempt.channel.kind, client: attempt.channel.name, user: user.username, factors });
    return { kind: "accept", user: user.username };
  }

  private reject(attempt: Attempt, reason: AuthFailureReason, user?: User, detail?: string): Decision {
    const event: AuditEvent = { type: "auth.failure", channel: attempt.channel.kind, client: attempt.channel.name, reason };
    if (user) event.user = user.username;
    else event.userHash = usernameHash(normalizeUsername(attempt.username, { realms: this.options.realms }));
    if (detail) event.detail = detail;
    this.audit(event);
    return { kind: "reject", reason };
  }
}

interface CodeMatch {
  token: Token;
  step?: number;
  drift?: number;
  next?: number;
  replay?: true;
}

/** Disabled or expired accounts are refused in every flow, code-only included. */
function accountStatus(user: User, now: number): "account_disabled" | "account_expired" | undefined {
  if (user.disabled) return "account_disabled";
  if (user.expiresAt !== null && user.expiresAt <= now) return "account_expired";
  return undefined;
}
