// First legs that begin with a password (`--first-factor password`):
//
//   lockout (password) ─► resolve ─► one password check ─► account status ─► groups
//     ─► expired / must-change password: the change flow (password-change.ts)
//     ─► type password: accept, where the channel allows it
//     ─► otherwise: a challenge for the type's second factor
//
// Concatenated (the channel's otp_mode, or the user's type): password and code in one field, split
// once by the token's digit length; the code is matched, the password verified, and only then the
// code consumed.

import type { Store, Token } from "../store/types.ts";
import { accountStatus, groups } from "./account.ts";
import type { Attempt, Decision } from "./attempt.ts";
import type { Challenges } from "./challenge.ts";
import type { OTPCodes } from "./codes.ts";
import type { Decisions } from "./decisions.ts";
import { notImplemented, phoneChain, type SecondFactors } from "./factors.ts";
import type { PasswordFactor } from "./first-factor.ts";
import type { LockCheck, Lockout } from "./lockout.ts";
import type { PasswordChange } from "./password-change.ts";
import type { PhoneFlow } from "./phone.ts";
import type { Resolver, Subject } from "./resolve.ts";
import { sourceOf } from "./sources.ts";

export class PasswordFirst {
  constructor(
    private readonly store: Store,
    private readonly lockout: Lockout,
    private readonly out: Decisions,
    private readonly resolver: Resolver,
    private readonly password: PasswordFactor,
    private readonly factors: SecondFactors,
    private readonly codes: OTPCodes,
    private readonly challenges: Challenges,
    private readonly change: PasswordChange,
    private readonly phone: PhoneFlow,
  ) {}

  /**
   * The opening every password-first leg shares: the password lockout, then the user sources; an
   * unknown user costs a dummy password check and counts as a password failure, like a wrong one.
   */
  private async open(attempt: Attempt, key: string, typed: string): Promise<{ decision: Decision } | { source: string; passwordLock: LockCheck; subject: Subject }> {
    const { channel, now } = attempt;
    const source = sourceOf(attempt);
    const passwordLock = await this.lockout.check(key, source, "password", now);
    if (passwordLock.locked) return { decision: await this.out.lockedOut(attempt, key, "password", passwordLock) };
    const resolved = await this.resolver.resolve(attempt, key);
    if (resolved.kind === "rejected") return { decision: resolved.decision };
    if (resolved.kind === "unknown") {
      await this.password.dummy(channel, typed);
      await this.lockout.fail(key, source, "password", now);
      return { decision: await this.out.reject(attempt, "unknown_user", undefined) };
    }
    return { source, passwordLock, subject: resolved.subject };
  }

  /** A first leg with a non-empty `typed` password (or password and code, concatenated). */
  async run(attempt: Attempt, key: string, typed: string): Promise<Decision> {
    const { channel, now } = attempt;
    const opened = await this.open(attempt, key, typed);
    if ("decision" in opened) return opened.decision;
    const { source, passwordLock, subject } = opened;
    const user = subject.record;
    // A phone type types only its password, also on a concatenated client (phone.ts skips the steps that need a challenge there).
    const chain = phoneChain(subject.type);
    const concat = subject.type === "concatenated" || (channel.otpMode === "concat" && chain === undefined);
    if (concat && subject.type !== "password") return this.concatenated(attempt, key, source, subject, typed, passwordLock);

    // Password-first: one argon2id verify or one bind, real or dummy, whatever the user's state.
    const outcome = await this.password.check(subject, typed);
    if (!outcome.ok) {
      if (outcome.counts) await this.lockout.fail(key, source, "password", now);
      return this.out.reject(attempt, outcome.reason, user, outcome.detail, outcome.proven);
    }
    const status = accountStatus(user, now);
    if (status) return this.out.reject(attempt, status, user, undefined, true);
    await this.lockout.succeed(key, source, "password", passwordLock);

    const member = await groups(subject);
    if (!member.ok) return this.out.reject(attempt, "not_in_group", user, member.detail, true);

    if (outcome.change) {
      // The change flow asks one code before it changes the password; a phone chain is not run inside it.
      if (chain !== undefined) return this.out.reject(attempt, outcome.change, user, "the password change flow over RADIUS is for TOTP users", true);
      return this.change.start(attempt, subject, typed, member.attributes);
    }

    if (subject.type === "password") {
      if (!channel.allowPasswordOnly) return this.out.reject(attempt, "type_not_allowed", user, "client does not allow password-only users");
      return this.out.completed(attempt, key, user, ["password"], member.attributes);
    }
    const unimplemented = notImplemented(subject.type);
    if (unimplemented) return this.out.refuse(attempt, unimplemented, user);
    if (chain !== undefined) return this.phone.start(attempt, key, subject, chain, member.attributes);

    const factor = this.factors.of(subject.type);
    const unavailable = await factor.unavailable(user);
    if (unavailable) return this.out.reject(attempt, unavailable, user);
    return this.challenges.issue(attempt, user, 0, factor.prompt, { next: "code", attributes: member.attributes });
  }

  /**
   * Password and code in one field: one split by the token's digit length, one password check.
   * An expired or must-change password cannot be changed here (a concat client cannot do
   * challenges): it is refused with a clear text, since the password was proven.
   */
  private async concatenated(attempt: Attempt, key: string, source: string, subject: Subject, typed: string, passwordLock: LockCheck): Promise<Decision> {
    const codeLock = await this.lockout.check(key, source, "code", attempt.now);
    if (codeLock.locked) return this.out.lockedOut(attempt, key, "code", codeLock, subject.record);
    const tokens = await this.store.tokens.activeForUser(subject.record.id);
    const digits = tokens[0]?.digits ?? 6;
    const password = typed.length > digits ? typed.slice(0, typed.length - digits) : "";
    const code = typed.slice(-digits);
    return this.passwordAndCode(attempt, key, source, subject, tokens, password, code, passwordLock, codeLock);
  }

  /**
   * A password and a code from one of the user's active tokens, given apart (the self-service
   * sign-in), whatever the user's type: the same lockout counters, user sources, password check,
   * account and group checks and code consumption as a concatenated RADIUS login. A user without
   * an active token is refused (no_token) after the password check.
   */
  async withCode(attempt: Attempt, key: string, password: string, code: string): Promise<Decision> {
    const { now } = attempt;
    const opened = await this.open(attempt, key, password);
    if ("decision" in opened) return opened.decision;
    const { source, passwordLock, subject } = opened;
    const codeLock = await this.lockout.check(key, source, "code", now);
    if (codeLock.locked) return this.out.lockedOut(attempt, key, "code", codeLock, subject.record);
    const tokens = await this.store.tokens.activeForUser(subject.record.id);
    return this.passwordAndCode(attempt, key, source, subject, tokens, password, code, passwordLock, codeLock);
  }

  /**
   * A password and then an approver-app approval (the self-service sign-in with the app), whatever
   * the user's type: the same lockout counter, user sources, password check, account and group
   * checks as a RADIUS login, then an app request in challenge mode (phone.ts appSignIn). A password
   * that must be changed cannot be changed here: refused.
   */
  async withApproval(attempt: Attempt, key: string, password: string): Promise<Decision> {
    const { now } = attempt;
    const opened = await this.open(attempt, key, password);
    if ("decision" in opened) return opened.decision;
    const { source, passwordLock, subject } = opened;
    const user = subject.record;
    const outcome = await this.password.check(subject, password);
    if (!outcome.ok) {
      if (outcome.counts) await this.lockout.fail(key, source, "password", now);
      return this.out.reject(attempt, outcome.reason, user, outcome.detail, outcome.proven);
    }
    const status = accountStatus(user, now);
    if (status) return this.out.reject(attempt, status, user, undefined, true);
    await this.lockout.succeed(key, source, "password", passwordLock);
    if (outcome.change) return this.out.reject(attempt, outcome.change, user, "the self-service sign-in cannot run the password change flow", true);
    const member = await groups(subject);
    if (!member.ok) return this.out.reject(attempt, "not_in_group", user, member.detail, true);
    const unimplemented = notImplemented(subject.type);
    if (unimplemented) return this.out.refuse(attempt, unimplemented, user);
    return this.phone.appSignIn(attempt, key, subject, member.attributes);
  }

  /** One password check and one code, matched before and consumed only after the password is proven. */
  private async passwordAndCode(
    attempt: Attempt,
    key: string,
    source: string,
    subject: Subject,
    tokens: Token[],
    password: string,
    code: string,
    passwordLock: LockCheck,
    codeLock: LockCheck,
  ): Promise<Decision> {
    const { now } = attempt;
    const user = subject.record;
    const match = password === "" ? undefined : this.codes.match(tokens, code, now);
    const outcome = await this.password.check(subject, password);
    if (!outcome.ok) {
      if (outcome.counts) await this.lockout.fail(key, source, "password", now);
      return this.out.reject(attempt, password === "" ? "empty_password" : outcome.reason, user, outcome.detail, outcome.proven);
    }
    const status = accountStatus(user, now);
    if (status) return this.out.reject(attempt, status, user, undefined, true);
    await this.lockout.succeed(key, source, "password", passwordLock);
    if (outcome.change) return this.out.reject(attempt, outcome.change, user, "a concatenated login cannot run the password change flow", true);
    const member = await groups(subject);
    if (!member.ok) return this.out.reject(attempt, "not_in_group", user, member.detail, true);
    const unimplemented = notImplemented(subject.type);
    if (unimplemented) return this.out.refuse(attempt, unimplemented, user);
    if (tokens.length === 0) return this.out.reject(attempt, "no_token", user);
    // The password is proven: only now is the code consumed.
    const result = match ? await this.codes.consume(match) : "bad_code";
    if (result !== "ok") {
      await this.lockout.fail(key, source, "code", now);
      return this.out.reject(attempt, result, user);
    }
    await this.lockout.succeed(key, source, "code", codeLock);
    return this.out.completed(attempt, key, user, ["password", "otp"], member.attributes);
  }
}
