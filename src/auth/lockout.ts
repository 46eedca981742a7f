// Lockout by back-off, per identity and source, with a per-identity cap that spares known sources.
//
// Every counter is keyed on the normalised identity and the kind (password or code), and kept in
// the store. A failure from source S counts twice, in one transaction:
//   - on the (identity, S) counter: back-off. From `threshold` failures on, each further failure
//     doubles a waiting time (base … max) during which S is refused for that kind;
//   - on the identity's counter across every source: a cap. From `identityCap` failures on, that
//     kind is refused from every source where the identity has not completed a login within
//     `knownSourceMs` (an unknown source), until `resetAfterMs` have passed since the last failure.
// A known source is never refused because of failures elsewhere; it only has its own back-off.
// So a storm of wrong passwords from one place keeps that place out, caps what unknown places can
// send to the directory (below its own lockout threshold), and leaves the user's usual places open.
//
// A success clears the counters of its kind it found set (the source's and the identity's, as a
// directory clears its bad-password count on a good logon). A completed login records its source
// as known: a write only when the source is new or its record older than `knownRefreshMs`.
//
// Every check is a store read made before any expensive work (argon2, LDAP bind). docs/security.md
// "Lockout" gives the model and its limits.

import type { FailureKind, LockoutRepo } from "../store/types.ts";

export interface LockoutPolicy {
  /** Failures from one source allowed before that source's back-off starts, per kind. */
  passwordThreshold: number;
  codeThreshold: number;
  /** First waiting time once the threshold is reached, doubled for each further failure. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** A counter whose last failure is older than this starts again from zero; also how long a cap holds. */
  resetAfterMs: number;
  /** Failures across every source after which unknown sources are refused, per kind. */
  passwordIdentityCap: number;
  codeIdentityCap: number;
  /** A source stays known this long after the last login completed from it. */
  knownSourceMs: number;
  /** Known sources kept per identity (the most recent). */
  knownSourcesPerUser: number;
}

export const DEFAULT_LOCKOUT: LockoutPolicy = {
  passwordThreshold: 5,
  codeThreshold: 5,
  baseDelayMs: 2_000,
  maxDelayMs: 900_000,
  resetAfterMs: 900_000,
  passwordIdentityCap: 4,
  codeIdentityCap: 5,
  knownSourceMs: 30 * 86_400_000,
  knownSourcesPerUser: 16,
};

/** The waiting time of one source after `failures` failures, 0 while under the threshold. */
export function backoffDelay(policy: LockoutPolicy, kind: FailureKind, failures: number): number {
  const threshold = kind === "password" ? policy.passwordThreshold : policy.codeThreshold;
  if (failures < threshold) return 0;
  const exponent = Math.min(failures - threshold, 30);
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** exponent);
}

/** How stale a known source's record may get before a success writes it again: a day, or less for short windows. */
export function knownRefreshMs(policy: LockoutPolicy): number {
  return Math.min(86_400_000, Math.floor(policy.knownSourceMs / 4));
}

/** What a check found. */
export type LockCheck =
  /** Refused: this source is backing off, or the identity is capped and this source is not known. */
  | { locked: "source" | "identity"; sourceFailures: number; identityFailures: number }
  /** Go ahead; the failures found are handed back to succeed() so that a clean identity costs no write. */
  | { locked: false; sourceFailures: number; identityFailures: number };

const CLEAR: LockCheck = Object.freeze({ locked: false, sourceFailures: 0, identityFailures: 0 });

/** Lockout decisions over a LockoutRepo. */
export class Lockout {
  private readonly refreshMs: number;

  constructor(
    private readonly repo: LockoutRepo,
    readonly policy: LockoutPolicy,
  ) {
    this.refreshMs = knownRefreshMs(policy);
  }

  /** Reads the source's and the identity's counters of `kind`, and only when the identity is capped whether `source` is known. */
  async check(key: string, source: string, kind: FailureKind, now: number): Promise<LockCheck> {
    // Both at once: a store that batches reads answers them with one statement.
    const [own, all] = await Promise.all([this.repo.get(key, kind, source), this.repo.get(key, kind)]);
    if (!own && !all) return CLEAR;
    const sourceFailures = own?.failures ?? 0;
    const identityFailures = all?.failures ?? 0;
    if (own && own.lockedUntil > now) return { locked: "source", sourceFailures, identityFailures };
    if (all && all.lockedUntil > now && !(await this.known(key, source, now))) return { locked: "identity", sourceFailures, identityFailures };
    return { locked: false, sourceFailures, identityFailures };
  }

  /** Whether `key` completed a login from `source` within the policy's window. */
  async known(key: string, source: string, now: number): Promise<boolean> {
    const last = await this.repo.knownSource(key, source);
    return last !== undefined && now - last <= this.policy.knownSourceMs;
  }

  /** Records a failure from `source` on its counter and the identity's (stale ones restart from zero). */
  async fail(key: string, source: string, kind: FailureKind, now: number): Promise<void> {
    const { policy } = this;
    const cap = kind === "password" ? policy.passwordIdentityCap : policy.codeIdentityCap;
    await this.repo.recordFailure(key, kind, source, now, {
      staleBefore: now - policy.resetAfterMs,
      lockedUntil: (scope, failures) => {
        if (scope === "identity") return failures >= cap ? now + policy.resetAfterMs : 0;
        const delay = backoffDelay(policy, kind, failures);
        return delay === 0 ? 0 : now + delay;
      },
    });
  }

  /** Clears the counters of one kind that the check found set, after that factor succeeded from `source`. */
  async succeed(key: string, source: string, kind: FailureKind, previous: LockCheck): Promise<void> {
    if (previous.sourceFailures > 0) await this.repo.reset(key, kind, source);
    if (previous.identityFailures > 0) await this.repo.reset(key, kind);
  }

  /** Whether a completed login at `now` from a source last recorded at `last` (null: never) must be written. */
  needsRecord(last: number | null | undefined, now: number): boolean {
    return last == null || now - last >= this.refreshMs;
  }

  /** A known-source record newer than this needs no write at `now` (needsRecord false). */
  knownSince(now: number): number {
    return now - this.refreshMs;
  }

  /** Records a completed login from `source`: a write only when the source is new or its record stale. */
  async recordSuccess(key: string, source: string, now: number): Promise<void> {
    if (!this.needsRecord(await this.repo.knownSource(key, source), now)) return;
    await this.repo.recordSuccess(key, source, now, { keep: this.policy.knownSourcesPerUser, forgetBefore: now - this.policy.knownSourceMs });
  }
}
