// Typed audit events: policy code emits these; the log, counters and (later) syslog subscribe.

import { log, logLine, logs, timestamp, type Level } from "./log.ts";

export type AuthFailureReason =
  | "chap_unsupported"
  | "eap_unsupported" // the Access-Request carries EAP-Message: answered Access-Reject (RFC 3579), nothing checked
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
  | "bad_reply_attribute" // a configured reply attribute cannot be encoded: fail closed
  // phone factors
  | "phone_unreachable" // no step of the user's chain could reach them: no phone, delivery failed, and no token to fall back to
  | "challenge_unsupported" // every step left needs an Access-Challenge, which the client cannot do (--otp-mode concat)
  | "approval_rejected" // the user tapped Reject (or picked a wrong number)
  | "approval_busy" // an approval for this user and client is pending from another source: not joined
  | "approval_limited" // the approver app's limits against fatigue refused a new request (reported lock, back-off, rate), and no later step was left
  | "no_device" // a self-service sign-in with the approver app, for a user without a live device
  | "timeout" // the approval hold ended (or the approval expired) without an answer
  | "code_expired"; // no live SMS code for this State: expired, used, or replaced

/**
 * Why a step of a phone chain was skipped: no delivery configured, no phone number or e-mail
 * address, the delivery was refused or failed, the step needs a challenge the client cannot do, no
 * active token, (challenge mode) nobody answered the approval before it expired, or the approver
 * app's limits against fatigue refused a new request (`app_limited`).
 */
export type PhoneSkipReason = "no_delivery" | "no_phone" | "not_delivered" | "needs_challenge" | "no_token" | "no_answer" | "app_limited";

export type AuditEvent =
  | { type: "auth.success"; channel: string; client: string; user: string; factors: readonly string[] }
  | {
      type: "auth.challenge";
      channel: string;
      client: string;
      user: string;
      /** What the next leg carries: the code (default), or a new password / its confirmation in the change flow. */
      step?: "code" | "new_password" | "confirm";
    }
  /**
   * A step of a phone chain (auth/phone.ts): `asked` when the factor went to the user (an approval
   * sent or joined, an SMS code sent, a code asked for), `skipped` when it could not be, and why.
   * The chain's last word is auth.success (whose `factors` name the one that succeeded) or auth.failure.
   */
  | { type: "auth.step"; channel: string; client: string; user: string; factor: "approval" | "sms" | "otp"; result: "asked" | "skipped"; reason?: PhoneSkipReason; detail?: string }
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
      /** The lockout source of the attempt (auth/sources.ts): "csid:<Calling-Station-Id>" or "nas:<client>". */
      source?: string;
      detail?: string;
    }
  | WebAuditEvent;

/** An admin API key's name: who made an admin API change (never the key itself). */
type By = { by: string };

/**
 * Admin API changes (issue 4). `by` is the calling key's name; the target is named (user, token ID,
 * client, key name, endpoint). Never a password, seed, shared secret or key.
 */
export type AdminEvent =
  | ({ type: "admin.user_added"; user: string } & By)
  | ({ type: "admin.user_updated"; user: string; /** Names of the changed fields ("password", never its value). */ fields: string[] } & By)
  | ({ type: "admin.user_removed"; user: string } & By)
  | ({ type: "admin.user_unlocked"; user: string; /** Whether a lockout counter was cleared. */ cleared: boolean } & By)
  | ({ type: "admin.users_imported"; count: number } & By)
  | ({ type: "admin.token_enrolled"; user: string; token: number; kind: string } & By)
  | ({ type: "admin.token_assigned"; token: number; user: string | null } & By)
  | ({ type: "admin.token_state"; token: number; state: string } & By)
  | ({ type: "admin.token_resynced"; token: number } & By)
  | ({ type: "admin.token_removed"; token: number } & By)
  | ({ type: "admin.tokens_imported"; count: number } & By)
  | ({ type: "admin.client_added"; client: string; address: string } & By)
  | ({ type: "admin.client_removed"; client: string } & By)
  /** Phone-factor settings of a client changed (`client set`, PATCH /clients/{name}); `fields` names them. */
  | ({ type: "admin.client_updated"; client: string; fields: string[] } & By)
  | ({ type: "admin.apikey_added"; apikey: string; role: string } & By)
  | ({ type: "admin.apikey_removed"; apikey: string } & By)
  | ({ type: "admin.apikey_state"; apikey: string; disabled: boolean } & By)
  | ({ type: "admin.endpoint_put"; endpoint: string } & By)
  | ({ type: "admin.endpoint_removed"; endpoint: string } & By)
  /** Some keys of a stored endpoint profile changed (`endpoint set`, PATCH /endpoints/{name}, the admin web UI); `fields` names them. */
  | ({ type: "admin.endpoint_updated"; endpoint: string; fields: string[] } & By)
  | ({ type: "admin.delivery_test"; ok: boolean; channel?: string; reason?: string } & By)
  | ({ type: "admin.key_rotated"; /** The new key's ID, never the key. */ keyId: string; resealed: number } & By)
  | ({ type: "admin.ldap_tested"; profile: string; ok: boolean } & By)
  /** An enrolment link for the approver app was made for `user` (the code is never logged). */
  | ({ type: "admin.device_enrolment_created"; user: string; expires_at: string } & By)
  /** A device was removed; `last_device`: the user has no approver device left (warn). */
  | ({ type: "admin.device_removed"; device: string; user: string; last_device: boolean } & By)
  /** A test push was sent to a device (admin API); `result` as in push.sent / push.failed. */
  | ({ type: "admin.push_tested"; device: string; result: string } & By)
  /** An account of the admin web UI was created (`portcullis admin add`); never its password or TOTP secret. */
  | ({ type: "admin.account_added"; account: string; role: string } & By)
  | ({ type: "admin.account_removed"; account: string } & By)
  /** The account got a new TOTP secret (its sessions ended). */
  | ({ type: "admin.account_totp_reset"; account: string } & By)
  /** The account changed its own password in the admin web UI (its other sessions ended); never a password. */
  | ({ type: "admin.account_password_changed"; account: string } & By)
  /** A test authentication through the appliance's own RADIUS listener: `outcome` accept, reject, challenge or no_answer (never the password or code). */
  | ({ type: "admin.client_tested"; client: string; user: string; outcome: string } & By)
  /** A user's test login from their page in the admin web UI, through `client` as admin.client_tested (never the password or code). */
  | ({ type: "admin.user_tested"; user: string; client: string; outcome: string } & By)
  /** A single-use sign-in link to the self-service portal was made for `user` (the code is never logged). */
  | ({ type: "admin.enrol_link_created"; user: string; expires_at: string } & By);

/**
 * The admin web UI's sign-ins (http/ui). `account` is named only when it exists; an unknown name
 * is logged as `userHash` (people type passwords into name fields). `client` is the address.
 */
export type UiEvent =
  /** `source`: local (an account of `portcullis admin add`) or ldap (a member of an `[admin_ui]` role group; `role` is the one found at this sign-in). */
  | { type: "ui.signed_in"; account: string; role: string; client: string; source?: "local" | "ldap" }
  /** `reason`: unknown_account, bad_password, bad_code, replayed_code, locked_out; for a directory user also no_role, no_token, directory_unavailable. */
  | { type: "ui.sign_in_failed"; account?: string; userHash?: string; reason: string; client: string }
  /** `reason`: signed_out (the button), idle (the idle timeout), expired (the absolute lifetime). */
  | { type: "ui.session_ended"; account: string; reason: "signed_out" | "idle" | "expired" }
  /** A form without the session's CSRF token, or a page the role may not use. */
  | { type: "ui.refused"; account: string; reason: "csrf" | "role"; path: string }
  /** A password change whose current password or code was refused; `reason` as in ui.sign_in_failed. */
  | { type: "ui.password_change_failed"; account: string; reason: string; client: string };

/**
 * The self-service portal. Its changes are admin.* events with `by` = "self:<user>"; these are its
 * sign-ins and refusals. A failed password sign-in is the engine's auth.failure (channel
 * "self-service"). Never a password, code, seed, link code or cookie.
 */
export type SelfServiceEvent =
  /**
   * A browser signed in: `method` `password_totp` (password and a token code), `app` (password and
   * an approver-app approval) or `link` (an administrator's link).
   */
  | { type: "selfservice.signed_in"; user: string; method: "password_totp" | "link" | "app"; client: string }
  /** A sign-in attempt (password or link) was refused by the per-address limit before any check. */
  | { type: "selfservice.rate_limited"; client: string }
  /** A link was refused: unknown, used or expired (which one is not told). */
  | { type: "selfservice.link_refused"; client: string }
  | { type: "selfservice.signed_out"; user: string }
  /** The code typed to confirm a TOTP app being enrolled did not match (the pending seed stays until it expires). */
  | { type: "selfservice.totp_unconfirmed"; user: string }
  /** A removal was refused: `last_factor` (an administrator must remove the last token or device), `not_owner`. */
  | { type: "selfservice.removal_refused"; user: string; what: "token" | "device"; reason: "last_factor" | "not_owner" };

/**
 * The approver app's devices and Web Push. Never a key, an enrolment code, a signature, or a push
 * endpoint's path (its secret part): only the endpoint's host.
 */
export type DeviceEvent =
  /** A device was enrolled with a code from `device enrol`; `push`: it sent a subscription. */
  | { type: "device.enrolled"; user: string; device: string; name: string; push: boolean; client: string }
  /** An enrolment was refused: `reason` `bad_code` (unknown, used or expired), `bad_key`, or a subscription refusal. */
  | { type: "device.enrolment_refused"; reason: string; client: string }
  /** A device replaced (`PUT /app/api/v1/push`) or removed (`DELETE`) its push subscription. */
  | { type: "device.push_set"; user: string; device: string; host: string }
  | { type: "device.push_removed"; user: string; device: string }
  /** A subscription was refused: `malformed`, `not_https`, `host_not_allowed`, `bad_keys`. */
  | { type: "device.push_refused"; user: string; device: string; reason: string; client: string }
  /** A signed request was refused (docs/app.md "Errors"): `malformed`, `unknown_device`, `removed_device`, `stale_time`, `bad_signature`, `replayed`. */
  | { type: "device.request_refused"; reason: string; device?: string; user?: string; client: string }
  /** A push service accepted a notification (2xx). */
  | { type: "push.sent"; user: string; device: string; host: string; status: number }
  /** A notification did not reach the push service: `status` (another answer), `timeout`, `network`, `redirect`, `host_not_allowed`, `bad_subscription`, `no_subject`. */
  | { type: "push.failed"; user: string; device: string; host: string; reason: string; status?: number }
  /** The push service answered 404 or 410 (RFC 8030 §7.3: the subscription is gone): it was removed from the device. */
  | { type: "push.subscription_removed"; user: string; device: string; host: string; status: number };

/**
 * Magic Link sessions (issue 4). Numbers are masked (delivery/phone.ts maskNumber); never the link,
 * its token, the CSRF token, the API key or the message text.
 */
export type MagicLinkEvent =
  /** One API call ended: which key (by name) asked, from where, and what it was answered. */
  | { type: "magiclink.call"; key: string; endpoint: string; client: string; code: string }
  /** A call refused before any session: bad/expired key, wrong endpoint, bad parameters, the endpoint's limits. */
  | { type: "magiclink.bad_request"; reason: string; key?: string; endpoint?: string; client?: string; fields?: string[] }
  /** A session was created and its link delivered: the call now waits. */
  | { type: "magiclink.sent"; endpoint: string; to: string; channel: string; timeout_s: number; number_match: boolean }
  /** A session was created but its link could not be delivered (refused or every channel failed); it is closed as failed. */
  | { type: "magiclink.not_delivered"; endpoint: string; to: string; reason: string; code: string }
  /** The user answered on the approval page (a wrong number-matching pick is a rejection). */
  | { type: "magiclink.answered"; endpoint: string; status: "accepted" | "rejected"; wrong_number: boolean }
  /** A delivered session ended: accepted, rejected, expired (touch-timeout) or cancelled (the caller disconnected). */
  | { type: "magiclink.outcome"; endpoint: string; to: string; outcome: string; code: string }
  /** A call passed `sms-text` but its endpoint does not allow custom text: the endpoint's text was sent. Once per API key per process. */
  | { type: "magiclink.custom_text_ignored"; key: string; endpoint: string };

/** Delivery (issue 4): destinations masked, never the text, link or gateway credentials. */
export type DeliveryEvent =
  /** One channel attempt failed (the next channel is tried, if any). */
  | { type: "delivery.failed"; channel: string; endpoint: string; to: string; reason: string; detail: string }
  /** A request was refused before any channel: invalid number, allow-list, unknown user, rate limit, no usable channel. */
  | { type: "delivery.refused"; endpoint: string; to: string; country: string | null; reason: string; detail: string };

/**
 * Approvals (approvals/service.ts) of kind `radius` and `password-reset`; Magic Link calls keep their
 * magiclink.* events, which report the same steps. `id` is the approval's internal ID (never the link
 * or its token) and ties the events of one approval together; `user` is the resolved identity,
 * `source` the Calling-Station-Id or address as reported.
 */
export type ApprovalEvent =
  /** A pending approval was created; the user is asked next. */
  | { type: "approval.created"; id: string; kind: string; client: string; user: string | null; source: string | null; expires_in_s: number; number_match: boolean }
  /** A request joined the approval already pending for the same user and client (no second message). */
  | { type: "approval.joined"; id: string; kind: string; client: string; user: string | null; source: string | null }
  /** A request found an approval pending for the same user and client but from another source: not joined, refused. */
  | { type: "approval.join_refused"; id: string; kind: string; client: string; user: string | null; source: string | null; pending_source: string | null }
  /** The link reached a channel (`channel` sms-link / email-link / switch; `via` the delivery channel's name). */
  | { type: "approval.delivered"; id: string; kind: string; client: string; channel: string; via: string }
  /** The link could not be delivered; the approval was closed as failed. */
  | { type: "approval.not_delivered"; id: string; kind: string; client: string; reason: string }
  /** The user answered (a wrong number-matching pick is a rejection). */
  | { type: "approval.answered"; id: string; kind: string; client: string; user: string | null; state: "approved" | "rejected" | "reported"; wrong_number: boolean }
  /** Nobody answered before the approval's expiry. */
  | { type: "approval.expired"; id: string; kind: string }
  /** Whoever waited went away (or gave up) before an answer. */
  | { type: "approval.cancelled"; id: string; kind: string }
  /** The approval went to the user's approver app (`devices`: live devices; `push`: those with a subscription). */
  | { type: "approval.app_request"; id: string; kind: string; client: string; user: string; devices: number; push: number }
  /** A device answered an app request (signed): `state` approved / rejected / reported, `wrong_number` for a wrong pick, `code` when answered by the code typed at the VPN. */
  | { type: "approval.app_answered"; id: string; kind: string; client: string; user: string; device: string; state: "approved" | "rejected" | "reported"; wrong_number: boolean }
  /** The user reported the request as not theirs ("This wasn't me"): it was rejected, and the user's app requests are locked until `until`. */
  | { type: "approval.reported"; id: string; kind: string; client: string; user: string; device: string; source: string | null; until: string | null }
  /** A rejection started (or lengthened) the user's back-off: no app request before `until`. */
  | { type: "approval.backoff"; user: string; strikes: number; until: string }
  /** An app request was refused by the limits against fatigue: `locked` (reported), `backoff` (rejected), `rate_limited` (per minute / hour). */
  | { type: "approval.limited"; kind: string; client: string; user: string; reason: "locked" | "backoff" | "rate_limited" }
  /** A code typed at the VPN (challenge mode, code to phone) did not match: the approval was rejected. */
  | { type: "approval.wrong_code"; id: string; client: string; user: string };

/** SMS one-time codes (approvals/sms-codes.ts): never the code, its hash or the message text; numbers masked. */
export type SmsCodeEvent =
  /** A code was issued and handed to a channel. */
  | { type: "sms_code.sent"; client: string; user: string; channel: string; to: string; expires_in_s: number }
  /** A code was issued but could not be delivered (refused, or every channel failed); it was removed. */
  | { type: "sms_code.not_delivered"; client: string; user: string; to: string; reason: string }
  /** Wrong codes reached the limit: the code was invalidated. */
  | { type: "sms_code.invalidated"; client: string; user: string; failures: number }
  // the switch relay: on the appliance (connection to the relay) and on the relay (appliances)
  /** The appliance's connection to a relay authenticated. */
  | { type: "switch.connected"; url: string; name: string }
  /** The appliance's connection to a relay ended (`code`/`reason` of the WebSocket close). */
  | { type: "switch.disconnected"; url: string; code: number; reason: string }
  /** The appliance now uses another relay than before (the primary failed, or came back). */
  | { type: "switch.failover"; from: string; to: string }
  /** Relay: an appliance authenticated. */
  | { type: "switch.appliance_connected"; appliance: string; client: string }
  /** Relay: an appliance's connection ended. */
  | { type: "switch.appliance_disconnected"; appliance: string }
  /** Relay: an enrolment token was exchanged for the appliance's key. */
  | { type: "switch.appliance_enrolled"; appliance: string; client: string }
  /** Relay: a connected appliance was removed (`switch appliance remove`); its connection was closed. */
  | { type: "switch.appliance_removed"; appliance: string }
  /** Relay: a connection failed to authenticate (wrong, reused or expired token, bad signature, unknown or removed appliance). */
  | { type: "switch.auth_refused"; reason: string; appliance: string; client: string }
  /** Relay: a Web Push message (encrypted and signed by the appliance) was posted to a push service for an appliance. */
  | { type: "switch.push"; appliance: string; host: string; status: number }
  /** Relay: a frame from an authenticated appliance was refused (malformed, replayed, another appliance's request or link). */
  | { type: "switch.frame_refused"; appliance: string; reason: string };

/**
 * The password-reset portal (reset/service.ts, docs/password-reset.md). `user` is the normalised
 * name for a known user and its short hash (usernameHash) for a name that matched no one.
 */
export type PasswordResetEvent =
  /** A username was submitted and a reset session created (`known`: whether the name matched a user). */
  | { type: "password_reset.started"; portal: string; user: string; known: boolean; source: string }
  /** A limit refused a start: `limit` user, address or portal. */
  | { type: "password_reset.limited"; portal: string; user: string; source: string; limit: "user" | "address" | "portal" }
  /** The one-time code went out: `channel` "app" (shown in the approver app) or the delivery channel. */
  | { type: "password_reset.code_sent"; portal: string; user: string; channel: string }
  /** No code could be sent (no phone, delivery refused or failed). */
  | { type: "password_reset.code_not_sent"; portal: string; user: string; reason: string }
  /** A wrong (or no longer valid) code; `final` when it ended the reset. */
  | { type: "password_reset.code_failed"; portal: string; user: string; final: boolean }
  /** The approvers were asked: how many through the app, how many by SMS link. */
  | { type: "password_reset.approval_requested"; portal: string; user: string; app: number; sms: number }
  | { type: "password_reset.approved"; portal: string; user: string; by: string }
  | { type: "password_reset.rejected"; portal: string; user: string; by: string }
  /** The directory (or the local length rule) refused the new password; the user may try another. */
  | { type: "password_reset.policy_refused"; portal: string; user: string }
  /** The password was changed. */
  | { type: "password_reset.changed"; portal: string; user: string; directory: string; approved_by: string }
  /** The reset ended without a change: `reason` code, approval_expired, no_approver_reached, user_gone, or the directory's refusal. */
  | { type: "password_reset.failed"; portal: string; user: string; reason: string };

export type WebAuditEvent = AdminEvent | MagicLinkEvent | DeliveryEvent | DeviceEvent | ApprovalEvent | SmsCodeEvent | PasswordResetEvent | SelfServiceEvent | UiEvent;

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

/** Delivery refusals that point at abuse (SMS pumping, probing) are warnings; the rest are info. */
const WARN_REFUSALS = new Set(["rate_limited", "country_not_allowed", "number_type_not_allowed", "unknown_user"]);

/** The log level of an event's line (docs/events.md lists them). */
export function levelOf(event: AuditEvent): Level {
  switch (event.type) {
    case "auth.failure":
    case "directory.phone_changed":
    case "directory.token_refused":
    case "delivery.failed":
    case "magiclink.custom_text_ignored":
    case "approval.join_refused":
    case "approval.reported":
    case "approval.limited":
    case "approval.wrong_code":
    case "sms_code.invalidated":
    case "ui.sign_in_failed":
    case "ui.refused":
    case "ui.password_change_failed":
    case "password_reset.limited":
    case "password_reset.rejected":
    case "password_reset.failed":
    case "password_reset.code_failed":
      return "warn";
    case "delivery.refused":
      return WARN_REFUSALS.has(event.reason) ? "warn" : "info";
    case "selfservice.link_refused":
    case "selfservice.rate_limited":
    case "selfservice.removal_refused":
    case "device.request_refused":
    case "device.enrolment_refused":
    case "device.push_refused":
    case "push.failed":
    case "switch.disconnected":
    case "switch.failover":
    case "switch.auth_refused":
    case "switch.frame_refused":
    case "switch.appliance_removed":
      return "warn";
    case "admin.device_removed":
      return event.last_device ? "warn" : "info";
    case "auth.step":
      return event.result === "skipped" ? "warn" : "info";
    default:
      return "info";
  }
}

/** The default subscriber: one structured log line per event (never a password or code). */
export function logSink(event: AuditEvent): void {
  if (event.type === "auth.success" && logs("info")) return logLine("info", successLine(event));
  const { type, ...fields } = event;
  log(levelOf(event), type, fields);
}

/**
 * A string as a JSON string literal: the same text as JSON.stringify, which it calls for anything
 * but printable ASCII without a quote or backslash (every such string is its own JSON text inside
 * quotes). The common case, a client or user name, then costs a scan instead of a serialiser call.
 */
function q(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return JSON.stringify(s);
  }
  return `"${s}"`;
}

/**
 * The auth.success line, built directly (one per accepted login, the hottest line): the same text
 * as log("info", "auth.success", fields), field for field and in the same order, without the
 * intermediate object. Strings go through JSON.stringify, so escaping is unchanged.
 */
function successLine(event: Extract<AuditEvent, { type: "auth.success" }>): string {
  let factors = "";
  for (const f of event.factors) factors += (factors === "" ? "" : ",") + q(f);
  return `{"ts":"${timestamp()}","level":"info","event":"auth.success","channel":${q(event.channel)},"client":${q(event.client)},"user":${q(event.user)},"factors":[${factors}]}`;
}

type LogFn = (level: Level, event: string, fields?: Record<string, unknown>) => void;

const str = (v: unknown): string => (typeof v === "string" ? v : "");
const num = (v: unknown): number => (typeof v === "number" ? v : 0);

/**
 * The Magic Link service (magiclink/service.ts) reports through a `log` callback. This adapter turns
 * its session lines (magiclink.sent, .not_delivered, .answered, .outcome, .bad_request,
 * .custom_text_ignored) into typed events on the bus, under the same names and fields, and passes
 * every other line (operational errors) to `fallback`. It goes away once the service emits typed
 * events itself.
 */
export function magicLinkAuditLog(emit: (event: AuditEvent) => void, fallback: LogFn): LogFn {
  return function magicLinkLog(level, event, fields = {}) {
    const f = fields;
    switch (event) {
      case "magiclink.sent":
        return emit({ type: event, endpoint: str(f.endpoint), to: str(f.to), channel: str(f.channel), timeout_s: num(f.timeout_s), number_match: f.number_match === true });
      case "magiclink.not_delivered":
        return emit({ type: event, endpoint: str(f.endpoint), to: str(f.to), reason: str(f.reason), code: str(f.code) });
      case "magiclink.answered":
        return emit({ type: event, endpoint: str(f.endpoint), status: f.status === "accepted" ? "accepted" : "rejected", wrong_number: f.wrong_number === true });
      case "magiclink.outcome":
        return emit({ type: event, endpoint: str(f.endpoint), to: str(f.to), outcome: str(f.outcome), code: str(f.code) });
      case "magiclink.custom_text_ignored":
        return emit({ type: event, key: str(f.key), endpoint: str(f.endpoint) });
      case "magiclink.bad_request":
        return emit({
          type: event,
          reason: str(f.reason),
          ...(typeof f.key === "string" ? { key: f.key } : {}),
          ...(typeof f.endpoint === "string" ? { endpoint: f.endpoint } : {}),
          ...(Array.isArray(f.fields) ? { fields: f.fields.filter((x): x is string => typeof x === "string") } : {}),
        });
      default:
        return fallback(level, event, fields);
    }
  };
}
