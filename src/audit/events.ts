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
  | "store_error";

export type AuditEvent =
  | { type: "auth.success"; channel: string; client: string; user: string; factors: string[] }
  | { type: "auth.challenge"; channel: string; client: string; user: string }
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
  log(type === "auth.failure" ? "warn" : "info", type, fields);
}
