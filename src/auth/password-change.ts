// The expired / must-change password flow over RADIUS PAP, after a bind that proved the password
// but reported it expired (AD 532) or to be changed (AD 773):
//
//   "enter a new password" ─► "again" (mismatch: start over) ─► second factor ─► changePassword
//     ─► accept │ policy refusal: the directory's message, "enter a new password" (the second
//     factor stays done for the rest of the flow)
//
// The password changes only after the second factor, so a stale password alone never takes over
// an account. Both passwords ride in the challenge row, sealed under a key derived from the raw
// State (challenge-secrets.ts); the store never sees them.

import { createHash, timingSafeEqual } from "node:crypto";
import type { AuditSink } from "../audit/events.ts";
import type { Attempt, Decision, ReplyAttribute } from "./attempt.ts";
import type { ChangeSecrets } from "./challenge-secrets.ts";
import type { ChallengeData, Challenges } from "./challenge.ts";
import type { Decisions } from "./decisions.ts";
import { notImplemented, type SecondFactor, type SecondFactors } from "./factors.ts";
import { CHANGE_PROMPTS } from "./messages.ts";
import type { Subject } from "./resolve.ts";

export class PasswordChange {
  constructor(
    private readonly out: Decisions,
    private readonly challenges: Challenges,
    private readonly factors: SecondFactors,
    /** The factor a change-flow challenge asks for: a code (a challenge row names no other factor yet). */
    private readonly code: SecondFactor,
    private readonly audit: AuditSink,
  ) {}

  /**
   * Starts the flow. The user must be able to finish it: a second factor (or type password where
   * the channel allows it), else the refusal comes now, before any new password is asked for.
   */
  async start(attempt: Attempt, subject: Subject, oldPassword: string, attributes: ReplyAttribute[]): Promise<Decision> {
    const user = subject.record;
    if (subject.type === "password") {
      if (!attempt.channel.allowPasswordOnly) return this.out.reject(attempt, "type_not_allowed", user, "client does not allow password-only users");
    } else {
      const unimplemented = notImplemented(subject.type);
      if (unimplemented) return this.out.refuse(attempt, unimplemented, user);
      const unavailable = await this.factors.of(subject.type).unavailable(user);
      if (unavailable) return this.out.reject(attempt, unavailable, user);
    }
    const data: ChallengeData = { next: "new_password", attributes, change: { codeDone: false, sealed: "" } };
    return this.challenges.issue(attempt, user, 0, CHANGE_PROMPTS.newPassword, data, { old: oldPassword }, "new_password");
  }

  /** A leg that carries a new password ("new_password") or its confirmation ("confirm"). */
  async step(attempt: Attempt, subject: Subject, data: ChallengeData, secrets: ChangeSecrets, failures: number): Promise<Decision> {
    const record = subject.record;
    const typed = attempt.secret ?? "";
    if (data.next === "new_password") {
      if (typed === "") return this.challenges.issue(attempt, record, failures, CHANGE_PROMPTS.newPassword, { ...data, next: "new_password" }, secrets, "new_password");
      return this.challenges.issue(attempt, record, failures, CHANGE_PROMPTS.confirm, { ...data, next: "confirm" }, { old: secrets.old, new: typed }, "confirm");
    }
    if (secrets.new === undefined || !sameText(secrets.new, typed)) {
      return this.challenges.issue(attempt, record, failures, CHANGE_PROMPTS.mismatch, { ...data, next: "new_password" }, { old: secrets.old }, "new_password");
    }
    // No second factor to wait for: it already succeeded in this flow, or the type has none.
    if (data.change!.codeDone || subject.type === "password") return this.change(attempt, subject, secrets, data, failures);
    return this.challenges.issue(attempt, record, failures, this.code.prompt, { ...data, next: "code" }, secrets, "code");
  }

  /** The change itself: only reached after the second factor (or for type password, after the confirmation). */
  async change(attempt: Attempt, subject: Subject, secrets: ChangeSecrets, data: ChallengeData, failures: number): Promise<Decision> {
    const user = subject.record;
    if (!subject.dir || secrets.new === undefined) return this.out.reject(attempt, "password_change_failed", user, "no directory or no new password in this flow");
    const { directory, entry } = subject.dir;
    const result = await directory.changePassword(entry, secrets.old, secrets.new);
    if (result.ok) {
      this.audit({ type: "auth.password_changed", channel: attempt.channel.kind, client: attempt.channel.name, user: user.username, directory: directory.name });
      return this.out.completed(attempt, user.username, user, subject.type === "password" ? ["password"] : ["password", "otp"], data.attributes ?? []);
    }
    if (result.reason === "policy") {
      // The second factor stays satisfied for the rest of this flow: the retry goes straight to the change.
      const prompt = `${result.message.trim()} ${CHANGE_PROMPTS.retry}`.trim();
      this.out.note(attempt, user, "password_change_failed", "refused by the directory's password policy; re-challenged");
      return this.challenges.issue(attempt, user, failures, prompt, { ...data, next: "new_password" }, { old: secrets.old }, "new_password", false);
    }
    return this.out.reject(attempt, "password_change_failed", user, `${result.reason}: ${result.detail}`);
  }
}

/** Constant-time equality of two typed passwords (lengths are compared on their hashes). */
function sameText(a: string, b: string): boolean {
  const ha = createHash("sha256").update(a, "utf8").digest();
  const hb = createHash("sha256").update(b, "utf8").digest();
  return timingSafeEqual(ha, hb);
}
