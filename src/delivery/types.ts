// The delivery contract: one Channel interface for every way a message reaches a user, and its typed result.

/** Why a channel failed. Callers switch on it; `detail` says more for the log. */
export type ChannelFailure = "gateway_error" | "rejected" | "timeout" | "network";

/**
 * The outcome of one send. `detail` is short and technical (an HTTP status, an SMTP code); it never
 * holds the message text, the link, the destination or a credential, so it may be logged as is.
 */
export type DeliveryResult = { ok: true; providerId?: string } | { ok: false; reason: ChannelFailure; detail: string };

export interface OutboundMessage {
  /** E.164 number for an SMS channel, e-mail address for an e-mail channel. */
  to: string;
  text: string;
  /** E-mail subject; SMS channels ignore it. */
  subject?: string;
}

export interface SendOptions {
  /** Aborts the send (e.g. the waiting API caller went away); the result is then a timeout. */
  signal?: AbortSignal;
}

/**
 * A way to send a message. `send` never throws for a delivery problem: every failure, including a
 * network error or a timeout, comes back as `{ ok: false }`.
 */
export interface Channel {
  /** Shown in logs and metrics: "sms", "email", "sms-backup". */
  readonly name: string;
  readonly kind: "sms" | "email";
  send(msg: OutboundMessage, opts: SendOptions): Promise<DeliveryResult>;
}
