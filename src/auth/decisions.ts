// How every flow ends: an accept, a reject or a drop, each with its one audit event. The flows
// decide *which*; this module alone writes the events, so each outcome is logged the same way
// whatever flow (or the warm path) reached it.

import type { AuditEvent, AuditSink, AuthFailureReason } from "../audit/events.ts";
import { DirectoryUnavailableError } from "../directory/types.ts";
import { normalizeUsername, usernameHash } from "../domain/identity.ts";
import { PasswordOverloadedError } from "../runtime/password.ts";
import type { Store, User } from "../store/types.ts";
import type { Attempt, Decision, ReplyAttribute } from "./attempt.ts";
import type { Refusal } from "./factors.ts";
import type { LockCheck, Lockout } from "./lockout.ts";
import { PROVEN_PASSWORD_MESSAGES } from "./messages.ts";
import { sourceOf } from "./sources.ts";

/** The factors of an accepted code-only login and its (absent) reply attributes: shared, never mutated. */
export const OTP_ONLY: readonly string[] = Object.freeze(["otp"]);
export const NO_ATTRIBUTES: readonly ReplyAttribute[] = Object.freeze([]);

export class Decisions {
  constructor(
    private readonly store: Store,
    private readonly lockout: Lockout,
    private readonly audit: AuditSink,
    private readonly realms: "strip" | "keep",
  ) {}

  /** The decision when a step threw: overload drops, an unavailable directory or store rejects. */
  failed(attempt: Attempt, err: unknown): Decision {
    if (err instanceof PasswordOverloadedError) return { kind: "drop", reason: "overloaded" };
    // A profile that cannot answer stops the attempt: never fall through to the next profile
    // because this one timed out.
    if (err instanceof DirectoryUnavailableError) return this.reject(attempt, "directory_unavailable", undefined, `${err.profile}: ${err.message}`);
    this.audit({ type: "auth.failure", channel: attempt.channel.kind, client: attempt.channel.name, reason: "store_error", source: sourceOf(attempt), detail: err instanceof Error ? err.name : "error" });
    return { kind: "reject", reason: "store_error" };
  }

  /**
   * A completed login: its source is recorded as known to the lockout (a write only when the source
   * is new or its record stale, lockout.ts), then the accept.
   */
  async completed(attempt: Attempt, key: string, user: User, factors: readonly string[], attributes: readonly ReplyAttribute[]): Promise<Decision> {
    await this.lockout.recordSuccess(key, sourceOf(attempt), attempt.now);
    return this.accept(attempt, user, factors, attributes);
  }

  /** The accept and its auth.success line; no lockout write (completed() is the usual way in). */
  accept(attempt: Attempt, user: User, factors: readonly string[], attributes: readonly ReplyAttribute[]): Decision {
    this.audit({ type: "auth.success", channel: attempt.channel.kind, client: attempt.channel.name, user: user.username, factors });
    return attributes.length > 0 ? { kind: "accept", user: user.username, attributes: [...attributes] } : { kind: "accept", user: user.username };
  }

  /**
   * A reject before the user is resolved: the audit line names the account when the store holds a
   * record of that name (a typed password never matches one), else only the name's hash.
   */
  async rejectByName(attempt: Attempt, key: string, reason: AuthFailureReason, detail?: string): Promise<Decision> {
    const record = key === "" ? undefined : await this.store.users.findByName(key);
    return this.reject(attempt, reason, record, detail);
  }

  /** A refusal by the lockout, before any expensive work; the detail says which counter refused. */
  async lockedOut(attempt: Attempt, key: string, kind: "password" | "code", check: LockCheck, user?: User): Promise<Decision> {
    const detail = check.locked === "identity" ? `${kind} (identity cap, unknown source)` : `${kind} (source back-off)`;
    if (user) return this.reject(attempt, "locked_out", user, detail);
    return this.rejectByName(attempt, key, "locked_out", detail);
  }

  /** A reject for a refusal found by a check (factors.ts, account.ts). */
  refuse(attempt: Attempt, refusal: Refusal, user: User, proven = false): Decision {
    return this.reject(attempt, refusal.reason, user, refusal.detail, proven);
  }

  /** `proven`: the password was proven in this attempt, so a clear text from messages.ts may be shown. */
  reject(attempt: Attempt, reason: AuthFailureReason, user?: User, detail?: string, proven = false): Decision {
    const event: AuditEvent = { type: "auth.failure", channel: attempt.channel.kind, client: attempt.channel.name, reason };
    if (user) event.user = user.username;
    else event.userHash = usernameHash(normalizeUsername(attempt.username, { realms: this.realms }));
    event.source = sourceOf(attempt);
    if (detail) event.detail = detail;
    this.audit(event);
    const message = proven ? PROVEN_PASSWORD_MESSAGES[reason] : undefined;
    return message ? { kind: "reject", reason, message } : { kind: "reject", reason };
  }

  /** An auth.failure line that is not the attempt's decision (a wrong code that is re-challenged, a refused new password). */
  note(attempt: Attempt, user: User, reason: AuthFailureReason, detail: string): void {
    this.audit({ type: "auth.failure", channel: attempt.channel.kind, client: attempt.channel.name, user: user.username, reason, source: sourceOf(attempt), detail });
  }
}
