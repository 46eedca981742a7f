// Typed errors for untrusted RADIUS input: a stable `code` that the server switches on to drop and count.

/** Why a datagram was refused. Stable strings: metrics and logs key on them. */
export type RADIUSErrorCode =
  | "malformed"
  | "unknown_code"
  | "bad_authenticator"
  | "missing_message_authenticator"
  | "bad_message_authenticator"
  | "proxy_state_without_message_authenticator"
  | "eap_without_message_authenticator";

const MESSAGES: Record<RADIUSErrorCode, string> = {
  malformed: "malformed RADIUS packet",
  unknown_code: "unsupported RADIUS code",
  bad_authenticator: "RADIUS authenticator check failed",
  missing_message_authenticator: "Message-Authenticator required but absent",
  bad_message_authenticator: "Message-Authenticator check failed",
  proxy_state_without_message_authenticator: "Proxy-State without Message-Authenticator",
  eap_without_message_authenticator: "EAP-Message without Message-Authenticator",
};

/**
 * A datagram that must be silently discarded (RFC 2865 §3). The message is fixed per code and
 * never carries packet bytes, secrets or computed digests.
 */
export class RADIUSError extends Error {
  override readonly name = "RADIUSError";
  readonly code: RADIUSErrorCode;

  constructor(code: RADIUSErrorCode) {
    super(MESSAGES[code]);
    this.code = code;
  }
}
