// The leg that answers an Access-Challenge: the State is consumed first (single-use) and must have
// been issued to this client for this name; the user is read again (a directory entry afresh, its
// status may have changed), and only then is the leg's step taken: a new password or its
// confirmation (password-change.ts), or the second factor.

import type { Store } from "../store/types.ts";
import { accountStatus, directoryStatus } from "./account.ts";
import type { Attempt, Decision } from "./attempt.ts";
import type { Challenges, OpenedChallenge } from "./challenge.ts";
import type { Decisions } from "./decisions.ts";
import type { SecondFactor } from "./factors.ts";
import type { Lockout } from "./lockout.ts";
import type { PasswordChange } from "./password-change.ts";
import type { Resolver, Subject } from "./resolve.ts";
import { sourceOf } from "./sources.ts";

export interface SecondLegOptions {
  challengeMaxFailures: number;
  /** The Reply-Message of the fresh challenge after a wrong code. */
  retryPrompt: string;
}

export class SecondLeg {
  constructor(
    private readonly store: Store,
    private readonly options: SecondLegOptions,
    private readonly lockout: Lockout,
    private readonly out: Decisions,
    private readonly resolver: Resolver,
    private readonly challenges: Challenges,
    private readonly change: PasswordChange,
    /** The factor a challenge asks for: a code (a challenge row names no other factor yet). */
    private readonly code: SecondFactor,
  ) {}

  async run(attempt: Attempt, key: string, state: Uint8Array): Promise<Decision> {
    const { now, channel } = attempt;
    const row = await this.challenges.consume(state, now);
    if (!row) return this.out.rejectByName(attempt, key, "state_unknown");
    if (!this.challenges.boundTo(row, channel, key)) return this.out.rejectByName(attempt, key, "state_mismatch", "State presented by another client or user");
    const record = await this.store.users.findById(row.userId);
    if (!record || record.username !== key) return this.out.rejectByName(attempt, key, "state_mismatch");
    const reread = await this.resolver.reload(attempt, record, key);
    if ("decision" in reread) return reread.decision;
    const subject = reread.subject;
    const status = accountStatus(record, now);
    if (status) return this.out.reject(attempt, status, record);
    // The password was proven on the first leg (an expired one included, which is why this flow exists).
    const dirStatus = directoryStatus(subject, "account");
    if (dirStatus) return this.out.reject(attempt, dirStatus, record, "directory account status");

    const opened = this.challenges.open(row, state, channel);
    if ("detail" in opened) return this.out.reject(attempt, "state_unknown", record, opened.detail);
    // A leg other than "code" belongs to the change flow: its row always holds sealed secrets (challenge.ts).
    if (opened.data.next !== "code") return this.change.step(attempt, subject, opened.data, opened.secrets!, opened.row.failures);
    return this.secondFactor(attempt, key, subject, opened);
  }

  /**
   * The second factor: checked and consumed under the code counters. A wrong code gets a fresh State
   * until the challenge's failures reach the limit; a replayed code ends the flow at once.
   */
  private async secondFactor(attempt: Attempt, key: string, subject: Subject, challenge: OpenedChallenge): Promise<Decision> {
    const { now } = attempt;
    const record = subject.record;
    const { data, secrets } = challenge;
    const source = sourceOf(attempt);
    const codeLock = await this.lockout.check(key, source, "code", now);
    if (codeLock.locked) return this.out.lockedOut(attempt, key, "code", codeLock, record);
    const result = await this.code.verify(record, attempt.secret ?? "", now);
    if (result === "ok") {
      await this.lockout.succeed(key, source, "code", codeLock);
      if (secrets) return this.change.change(attempt, subject, secrets, { ...data, change: { ...data.change!, codeDone: true } }, challenge.row.failures);
      return this.out.completed(attempt, key, record, ["password", "otp"], data.attributes ?? []);
    }
    await this.lockout.fail(key, source, "code", now);
    // A replayed code is not a typo: someone holds a used code. End the flow at once.
    if (result !== "bad_code") return this.out.reject(attempt, result, record);
    const failures = challenge.row.failures + 1;
    if (failures >= this.options.challengeMaxFailures) return this.out.reject(attempt, "too_many_codes", record);
    this.out.note(attempt, record, result, "re-challenged");
    return this.challenges.issue(attempt, record, failures, this.options.retryPrompt, data, secrets, "code", false);
  }
}
