// The values the engine takes and gives: one attempt in (who, through which channel, what was
// typed), one decision out. Adapters (RADIUS, later HTTP) build the first and encode the second.

import type { AuthFailureReason } from "../audit/events.ts";
import type { ClientPhoneSettings, FirstFactor, OTPMode } from "../store/types.ts";

/** How the channel (a RADIUS client, or the self-service portal's sign-in) presents factors. */
export interface Channel {
  kind: "radius" | "self-service";
  /** Client name; challenge state is bound to it. */
  name: string;
  firstFactor: FirstFactor;
  otpMode: OTPMode;
  allowPasswordOnly: boolean;
  /** User sources in order (LDAP profile names, "local"); null: every profile in config order, then local. */
  directories: string[] | null;
  /** Phone-factor settings (approval hold and mode, number matching, SMS code format); absent: DEFAULT_CLIENT_PHONE. */
  phone?: Readonly<ClientPhoneSettings>;
}

/** One authentication attempt as a value. */
export interface Attempt {
  channel: Channel;
  /** The name as presented (User-Name); normalised by the engine. */
  username: string;
  /** What the user typed into the password field (User-Password, NUL padding removed). */
  secret?: string;
  /** Challenge state from a previous Access-Challenge (second leg). */
  state?: Uint8Array;
  /**
   * "chap" and "other" are refused: no cleartext password is stored to check them against. "eap"
   * (the request carries EAP-Message) is refused because EAP is not implemented (RFC 3579).
   */
  method: "pap" | "chap" | "eap" | "other";
  now: number;
  /**
   * Where the attempt comes from, for the lockout (sources.ts): "csid:…" from the request's
   * Calling-Station-Id. Absent: the channel itself ("nas:<name>").
   */
  source?: string;
}

/** A reply attribute by dictionary name ("Class", "Filter-Id", "Fortinet-Group-Name"); the adapter encodes it. */
export interface ReplyAttribute {
  name: string;
  value: string | number;
}

export type Decision =
  /**
   * `attributes`: the group reply attributes of a directory user, in configuration order; absent
   * when there are none (so a decision without directories is exactly the offline core's).
   */
  | { kind: "accept"; user: string; attributes?: ReplyAttribute[] }
  /** No answer at all: the appliance is overloaded and the NAS should retry or fail over. */
  | { kind: "drop"; reason: "overloaded" }
  /**
   * `message` is set only where the password was proven (messages.ts); the adapter shows its
   * generic text otherwise.
   */
  | { kind: "reject"; reason: AuthFailureReason; message?: string }
  /**
   * `approval`: the approval a challenge-mode phone step waits on (its ID, the number to match, its
   * end), for adapters that show it themselves (the self-service page); RADIUS sends only the prompt.
   */
  | { kind: "challenge"; state: Uint8Array; prompt: string; timeoutS: number; approval?: { id: string; number: number | null; expiresAt: number } };

/**
 * A request whose idempotency record has not been looked up yet (Engine.guarded): its key, and its
 * Access-Accept without reply attributes, encoded (undefined when it cannot be sent).
 */
export interface ReplyGuard {
  key: string;
  expiresAt: number;
  accept(): Uint8Array | undefined;
}

/** What Engine.guarded settled: a reply another node recorded, or the decision (with its record written when `recorded`). */
export type Guarded = { kind: "recorded"; reply: Uint8Array } | { kind: "decided"; decision: Decision; recorded?: Uint8Array };
