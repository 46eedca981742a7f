// Typed audit events: policy code emits these; the log, counters and (later) syslog subscribe.

import { log } from "./log.ts";

export type AuthFailureReason =
  | "chap_unsupported"
  | "no_username"
  | "empty_password"
  | "locked_out"
  | "unknown_user"
  | "bad_password"
  | "bad_code"
  | "replayed_code"
  | "account_disabled"
  | "account_expired"
  | "type_not_allowed"
  | "type_not_implemented"
  | "no_token"
  | "state_unknown"
  | "state_mismatch"
  | "too_many_codes"
  | "store_error"
  // directories (issue 3)
  | "directory_unavailable" // a profile could not answer (every URL down, timeout); the next profile is NOT tried
  | "identity_conflict" // a directory user's name is held by another record (a local user, or another linked user)
  | "account_locked" // AD 775 / lockoutTime, OpenLDAP pwdAccountLockedTime
  | "not_permitted" // AD 530 (logon hours) / 531 (workstation)
  | "password_expired" // AD 532 / ppolicy passwordExpired, where the change flow cannot run (concat, code-only)
  | "must_change" // AD 773 / ppolicy changeAfterReset, where the change flow cannot run
  | "not_in_group" // not a (nested) member of every required_groups entry
  | "password_change_failed" // the directory refused the change for a reason other than its policy
  | "bad_reply_attribute"; // a configured reply attribute cannot be encoded: fail closed

export type AuditEvent =
  | { type: "auth.success"; channel: string; client: string; user: string; factors: string[] }
  | {
      type: "auth.challenge";
      channel: string;
      client: string;
      user: string;
      /** What the next leg carries: the code (default), or a new password / its confirmation in the change flow. */
      step?: "code" | "new_password" | "confirm";
    }
  /** An expired or must-change directory password was changed over RADIUS, after the second factor. */
  | { type: "auth.password_changed"; channel: string; client: string; user: string; directory: string }
  /**
   * The phone attribute of a directory user changed since it was last seen. It may be self-writable
   * (AD lets users edit their own mobile), so every change is audited; numbers are masked to the
   * last two digits.
   */
  | { type: "directory.phone_changed"; directory: string; user: string; from: string | null; to: string | null }
  /** A hardware token named by the profile's token_attribute was assigned to (or refused for) a directory user. */
  | { type: "directory.token_assigned"; directory: string; user: string; serial: string }
  | { type: "directory.token_refused"; directory: string; user: string; serial: string; detail: string }
  | {
      type: "auth.failure";
      channel: string;
      client: string;
      /** The normalised name when the account exists; otherwise only userHash is set. */
      user?: string;
      userHash?: string;
      reason: AuthFailureReason;
      detail?: string;
    };

export type AuditSink = (event: AuditEvent) => void;

/** Fans one event out to several subscribers; a failing subscriber never breaks authentication. */
export class AuditBus {
  private readonly sinks: AuditSink[] = [];
  subscribe(sink: AuditSink): void {
    this.sinks.push(sink);
  }
  emit = (event: AuditEvent): void => {
    for (const sink of this.sinks) {
      try {
        sink(event);
      } catch {
        // subscribers are best-effort
      }
    }
  };
}

/** The default subscriber: one structured log line per event (never a password or code). */
export function logSink(event: AuditEvent): void {
  const { type, ...fields } = event;
  log(type === "auth.failure" || type === "directory.phone_changed" || type === "directory.token_refused" ? "warn" : "info", type, fields);
}
