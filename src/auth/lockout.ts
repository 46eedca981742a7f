// Lockout by back-off: after a threshold of failures, each further failure doubles a waiting time.
//
// Counters live in the store, keyed on the normalised identity, separately for passwords and codes.
// They are consulted before any expensive work (argon2, LDAP bind) and the threshold should sit
// below the directory's own lockout so that Portcullis never locks the AD account itself.

import type { FailureKind, LockoutRepo } from "../store/types.ts";

export interface LockoutPolicy {
  /** Failures allowed before back-off starts, per kind. */
  passwordThreshold: number;
  codeThreshold: number;
  /** First waiting time once the threshold is reached, doubled for each further failure. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** A counter whose last failure is older than this starts again from zero. */
  resetAfterMs: number;
}

export const DEFAULT_LOCKOUT: LockoutPolicy = {
  passwordThreshold: 5,
  codeThreshold: 5,
  baseDelayMs: 2_000,
  maxDelayMs: 900_000,
  resetAfterMs: 900_000,
};

/** The waiting time after `failures` failures, 0 while under the threshold. */
export function backoffDelay(policy: LockoutPolicy, kind: FailureKind, failures: number): number {
  const threshold = kind === "password" ? policy.passwordThreshold : policy.codeThreshold;
  if (failures < threshold) return 0;
  const exponent = Math.min(failures - threshold, 30);
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** exponent);
}

/** Lockout decisions over a LockoutRepo. */
export class Lockout {
  constructor(
    private readonly repo: LockoutRepo,
    private readonly policy: LockoutPolicy,
  ) {}

  /**
   * Reads the counter once: `locked` while `key` must be refused for `kind` without any expensive
   * work; `failures` is handed back to succeed() so that a clean identity costs no write.
   */
  async check(key: string, kind: FailureKind, now: number): Promise<{ locked: boolean; failures: number }> {
    const state = await this.repo.get(key, kind);
    if (!state) return { locked: false, failures: 0 };
    return { locked: state.lockedUntil > now, failures: state.failures };
  }

  /** Records a failure; a stale counter (older than resetAfter) restarts from zero first. */
  async fail(key: string, kind: FailureKind, now: number): Promise<void> {
    const state = await this.repo.get(key, kind);
    if (state && now - state.lastFailureAt > this.policy.resetAfterMs) await this.repo.reset(key, kind);
    await this.repo.recordFailure(key, kind, now, (failures) => {
      const delay = backoffDelay(this.policy, kind, failures);
      return delay === 0 ? 0 : now + delay;
    });
  }

  /** Clears the counter of one kind after that factor succeeded; no write when it was already clear. */
  async succeed(key: string, kind: FailureKind, previous: { failures: number }): Promise<void> {
    if (previous.failures > 0) await this.repo.reset(key, kind);
  }
}
