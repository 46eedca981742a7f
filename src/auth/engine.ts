// The authentication engine: one attempt in, one decision out. RADIUS (and later the HTTP adapters)
// are thin layers over it; it knows nothing about packets or HTTP. The engine itself only
// orchestrates: it refuses what no flow can check, and hands the attempt to the flow that fits it.
//
//   authenticate ─► warm code-only path (code-only.ts, from memory) ─► decided, or:
//     method other than PAP ─► reject (no counter moves, no code is consumed)
//     State present ─► second leg (second-leg.ts): consume State ─► status ─► code │ change-flow step
//     empty password ─► reject (an empty LDAP bind succeeds)
//     --first-factor none ─► code only (code-only.ts): lockout ─► resolve ─► status ─► code
//     otherwise ─► password first (password-first.ts): lockout ─► resolve ─► password ─► status
//                  ─► groups ─► accept (type password) │ challenge (second factor) │ change flow
//                  (password-change.ts) │ concatenated: password and code in one field
//                  │ phone types (phone.ts): approval (held or challenged), SMS code, token, in chain order
//
// The units the flows share:
//   resolve.ts         account resolution (user sources in order, the linked record, token claims)
//   first-factor.ts    the password check (bind or argon2id) and its dummy of equal cost
//   codes.ts           code matching and consumption (the TOTP/HOTP second factor)
//   factors.ts         second factors, the chain that completes each type, the "not implemented" check
//   phone.ts           the phone chains: approvals (hold and challenge mode), SMS codes, fallbacks
//   challenge.ts       challenge state (State values, the stored row, sealed change-flow secrets)
//   account.ts         account and directory status, groups and their reply attributes
//   lockout.ts         back-off per identity and source; sources.ts: an attempt's source
//   decisions.ts       accept / reject / drop and their audit events
//
// A code is checked, the password verified, and only then the code consumed, atomically in the
// store (UPDATE … WHERE last_step < ?). The decision is returned only after that write commits.

import { randomBytes } from "node:crypto";
import type { AuditSink } from "../audit/events.ts";
import { Directories } from "../directory/registry.ts";
import { DirectoryUnavailableError } from "../directory/types.ts";
import { normalizeUsername } from "../domain/identity.ts";
import type { Store } from "../store/types.ts";
import type { Attempt, Decision, Guarded, ReplyGuard } from "./attempt.ts";
import { Challenges } from "./challenge.ts";
import { CodeOnly } from "./code-only.ts";
import { OTPCodes } from "./codes.ts";
import { Decisions } from "./decisions.ts";
import { SecondFactors } from "./factors.ts";
import { PasswordFactor, RUNTIME_PASSWORDS, type PasswordVerifier } from "./first-factor.ts";
import { Lockout, type LockoutPolicy } from "./lockout.ts";
import { PasswordChange } from "./password-change.ts";
import { PasswordFirst } from "./password-first.ts";
import { PhoneFlow, type PhoneServices } from "./phone.ts";
import { Resolver } from "./resolve.ts";
import { SecondLeg } from "./second-leg.ts";

// The engine's public face: adapters and tests import these from here.
export type { Attempt, Channel, Decision, Guarded, ReplyAttribute, ReplyGuard } from "./attempt.ts";
export { stateId } from "./challenge.ts";
export type { PasswordVerifier } from "./first-factor.ts";
export type { PhoneServices } from "./phone.ts";
export { maskPhone } from "./resolve.ts";

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
  /**
   * Approvals and SMS codes for the phone types (mobile, touch, touch-plus, touch-mobile); a promise
   * while the delivery stack loads (only phone types wait for it). None: their phone steps are
   * skipped (a TOTP token, where the chain has one, is asked instead).
   */
  phone?: PhoneServices | Promise<PhoneServices>;
}

/** A PAP code-only login with a code and no State: the only attempt memory may decide. */
function codeOnlyFirstLeg(attempt: Attempt): boolean {
  return attempt.method === "pap" && attempt.state === undefined && attempt.channel.firstFactor === "none" && !!attempt.secret;
}

export class Engine {
  private readonly out: Decisions;
  private readonly codeOnly: CodeOnly;
  private readonly passwordFirst: PasswordFirst;
  private readonly secondLeg: SecondLeg;

  constructor(
    store: Store,
    private readonly options: EngineOptions,
    audit: AuditSink,
  ) {
    const lockout = new Lockout(store.lockouts, options.lockout);
    const random = options.random ?? ((n) => randomBytes(n));
    const directories = options.directories ?? new Directories([]);
    const out = new Decisions(store, lockout, audit, options.realms);
    const resolver = new Resolver(store, directories, out, audit);
    const codes = new OTPCodes(store, options);
    const factors = new SecondFactors({ otp: codes });
    const challenges = new Challenges(store, options, random, audit);
    const change = new PasswordChange(out, challenges, factors, codes, audit);
    const password = new PasswordFactor(options.passwords ?? RUNTIME_PASSWORDS, directories);
    const phone = new PhoneFlow(out, challenges, codes, audit, { otpPrompt: options.otpPrompt, challengeTtlMs: options.challengeTtlMs, random }, options.phone);
    this.out = out;
    this.codeOnly = new CodeOnly(store, options.realms, directories, lockout, out, resolver, codes);
    this.passwordFirst = new PasswordFirst(store, lockout, out, resolver, password, factors, codes, challenges, change, phone);
    this.secondLeg = new SecondLeg(store, options, lockout, out, resolver, challenges, change, codes, phone);
  }

  /** Decides one attempt. Never throws for bad credentials; store failures reject with "store_error". */
  authenticate(attempt: Attempt): Promise<Decision> {
    if (codeOnlyFirstLeg(attempt)) {
      let warm: Promise<Decision> | undefined;
      try {
        warm = this.codeOnly.warm(attempt);
      } catch (err) {
        return Promise.resolve(this.out.failed(attempt, err));
      }
      // The warm path maps its own asynchronous failures (Decisions.failed), so its promise never rejects
      if (warm) return warm;
      let fetched: Promise<Decision | undefined> | undefined;
      try {
        fetched = this.codeOnly.fetched(attempt);
      } catch (err) {
        return Promise.resolve(this.out.failed(attempt, err));
      }
      // A store that reads a login in one statement: the same decision from those reads, else the full path
      if (fetched) {
        return fetched.then(
          (decision) => decision ?? this.authenticateAsync(attempt),
          (err: unknown) => this.out.failed(attempt, err),
        );
      }
    }
    return this.authenticateAsync(attempt);
  }

  /**
   * For a request whose idempotency record (shared by the nodes of a store) has not been looked up
   * yet: a code-only login that the store's memory can accept is decided with one statement that
   * looks the record up, consumes the code and records `guard.accept()` (CodeOnly.guarded).
   * Undefined at once where that cannot be done: look the record up, then authenticate(). The
   * promise settles undefined when nothing was written and no record exists: authenticate() then,
   * without a second lookup. It never rejects.
   */
  guarded(attempt: Attempt, guard: ReplyGuard): Promise<Guarded | undefined> | undefined {
    if (!codeOnlyFirstLeg(attempt)) return undefined;
    try {
      return this.codeOnly.guarded(attempt, guard);
    } catch {
      // before any write: the caller's usual path decides (and meets the same failure)
      return undefined;
    }
  }

  /**
   * Checks a password and a code given apart (the self-service sign-in), whatever the user's type,
   * with the checks of a concatenated RADIUS login: lockout, user sources, one password check,
   * account and groups, then the code consumed. Never throws for bad credentials.
   */
  async passwordAndCode(attempt: Attempt, password: string, code: string): Promise<Decision> {
    let key = "";
    try {
      key = normalizeUsername(attempt.username, { realms: this.options.realms });
      if (key === "") return this.out.reject(attempt, "no_username");
      if (password === "") return await this.out.rejectByName(attempt, key, "empty_password");
      return await this.passwordFirst.withCode(attempt, key, password, code);
    } catch (err) {
      if (err instanceof DirectoryUnavailableError && key !== "") {
        return this.out.rejectByName(attempt, key, "directory_unavailable", `${err.profile}: ${err.message}`).catch(() => this.out.failed(attempt, err));
      }
      return this.out.failed(attempt, err);
    }
  }

  /**
   * Checks a password and then asks the user's approver app (the self-service sign-in with the app),
   * whatever the user's type: the checks of a RADIUS login's first leg, then an app request in
   * challenge mode. Answers a challenge whose State the caller keeps; the next leg
   * (`authenticate` with that State and an empty secret, on a channel of the same name) is accepted
   * once the approval is in. Never throws for bad credentials.
   */
  async passwordAndApproval(attempt: Attempt, password: string): Promise<Decision> {
    let key = "";
    try {
      key = normalizeUsername(attempt.username, { realms: this.options.realms });
      if (key === "") return this.out.reject(attempt, "no_username");
      if (password === "") return await this.out.rejectByName(attempt, key, "empty_password");
      return await this.passwordFirst.withApproval(attempt, key, password);
    } catch (err) {
      if (err instanceof DirectoryUnavailableError && key !== "") {
        return this.out.rejectByName(attempt, key, "directory_unavailable", `${err.profile}: ${err.message}`).catch(() => this.out.failed(attempt, err));
      }
      return this.out.failed(attempt, err);
    }
  }

  private async authenticateAsync(attempt: Attempt): Promise<Decision> {
    let key = "";
    try {
      // Refused before the lockout check or any lookup: no counter moves, no code is consumed.
      if (attempt.method === "eap") return this.out.reject(attempt, "eap_unsupported", undefined, "EAP is not supported");
      if (attempt.method !== "pap") return this.out.reject(attempt, "chap_unsupported", undefined, "only PAP carries a password that can be checked");
      key = normalizeUsername(attempt.username, { realms: this.options.realms });
      if (key === "") return this.out.reject(attempt, "no_username");
      if (attempt.state) return await this.secondLeg.run(attempt, key, attempt.state);
      const typed = attempt.secret ?? "";
      // DESIGN: an empty password is rejected before any check (an empty LDAP bind succeeds).
      if (typed === "") return await this.out.rejectByName(attempt, key, "empty_password");
      if (attempt.channel.firstFactor === "none") return await this.codeOnly.run(attempt, key, typed);
      return await this.passwordFirst.run(attempt, key, typed);
    } catch (err) {
      if (err instanceof DirectoryUnavailableError && key !== "") {
        // As Decisions.failed would, with the account named when the store knows it.
        return this.out.rejectByName(attempt, key, "directory_unavailable", `${err.profile}: ${err.message}`).catch(() => this.out.failed(attempt, err));
      }
      return this.out.failed(attempt, err);
    }
  }
}
