// The leg that answers an Access-Challenge: the State is consumed first (single-use) and must have
// been issued to this client for this name; the user is read again (a directory entry afresh, its
// status may have changed), and only then is the leg's step taken: a new password or its
// confirmation (password-change.ts), a phone approval's answer (phone.ts), or the code of the
// factor the State was issued for (a TOTP/HOTP code, or an SMS code).

import type { Store } from "../store/types.ts";
import { accountStatus, directoryStatus } from "./account.ts";
import type { Attempt, Decision } from "./attempt.ts";
import type { Challenges, OpenedChallenge } from "./challenge.ts";
import type { Decisions } from "./decisions.ts";
import type { FactorResult, SecondFactor } from "./factors.ts";
import type { Lockout } from "./lockout.ts";
import type { PasswordChange } from "./password-change.ts";
import type { PhoneFlow } from "./phone.ts";
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
    /** The TOTP/HOTP factor: what a challenge row without a factor (or with "otp") asks for. */
    private readonly code: SecondFactor,
    /** SMS codes and approvals: challenge rows naming "sms" or "approval". */
    private readonly phone: PhoneFlow,
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
    // An approval leg carries nothing to check (an empty User-Password is normal): its answer is in the store.
    if (opened.data.factor === "approval") return this.phone.approvalLeg(attempt, key, subject, opened);
    return this.secondFactor(attempt, key, subject, opened);
  }

  /**
   * The second factor: a TOTP/HOTP code or an SMS code (the row's factor), checked and consumed under
   * the code counters (wrong SMS codes count against the same back-off as wrong TOTP codes). A wrong
   * code gets a fresh State until the challenge's failures reach the limit (an SMS code stays bound
   * to the State it was sent for, carried in the row); a replayed, expired or invalidated code ends
   * the flow at once.
   */
  private async secondFactor(attempt: Attempt, key: string, subject: Subject, challenge: OpenedChallenge): Promise<Decision> {
    const { now } = attempt;
    const record = subject.record;
    const { data, secrets } = challenge;
    const source = sourceOf(attempt);
    const codeLock = await this.lockout.check(key, source, "code", now);
    if (codeLock.locked) return this.out.lockedOut(attempt, key, "code", codeLock, record);
    const sms = data.factor === "sms";
    const result: FactorResult = sms ? await this.phone.verifySms(attempt, key, data) : await this.code.verify(record, attempt.secret ?? "", now);
    if (result === "ok") {
      await this.lockout.succeed(key, source, "code", codeLock);
      if (secrets) return this.change.change(attempt, subject, secrets, { ...data, change: { ...data.change!, codeDone: true } }, challenge.row.failures);
      return this.out.completed(attempt, key, record, sms ? PASSWORD_SMS : PASSWORD_OTP, data.attributes ?? []);
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

const PASSWORD_OTP: readonly string[] = Object.freeze(["password", "otp"]);
const PASSWORD_SMS: readonly string[] = Object.freeze(["password", "sms"]);
