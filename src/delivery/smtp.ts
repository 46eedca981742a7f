// The e-mail channel: SMTP submission with STARTTLS (required by default) and AUTH, through nodemailer.

import type { Transporter } from "nodemailer";
import type SMTPTransport from "nodemailer/lib/smtp-transport";
import type { Channel, ChannelFailure, DeliveryResult, OutboundMessage, SendOptions } from "./types.ts";

export interface SMTPOptions {
  /** Channel name for logs and metrics; default "email". */
  name?: string;
  host: string;
  port: number;
  /** Refuse to send unless the server upgrades with STARTTLS (ignored with `secure`). */
  starttls: boolean;
  /** Implicit TLS from the first byte (port 465). */
  secure: boolean;
  /** AUTH credentials; omitted means no AUTH. */
  auth?: { user: string; password: string };
  /** Envelope and header sender. */
  from: string;
  /** PEM CA bundle that signs the server's certificate; default the system roots. */
  ca?: string;
  /** Connection, greeting and socket timeout, and the bound on the whole send. */
  timeoutMs: number;
  /** Default subject when a message has none. */
  subject?: string;
}

// nodemailer's error codes → our failure reasons. Anything else is the server's fault.
const REASONS: Record<string, ChannelFailure> = {
  ECONNECTION: "network",
  ESOCKET: "network",
  EDNS: "network",
  ETIMEDOUT: "timeout",
  EAUTH: "rejected",
  ENOAUTH: "rejected",
  EENVELOPE: "rejected",
  EMESSAGE: "rejected",
  ETLS: "network",
  EREQUIRETLS: "rejected",
};

/** nodemailer's code and the SMTP reply code; never its message, which may quote the server or an address. */
function describe(err: unknown): { reason: ChannelFailure; detail: string } {
  const e = err as { code?: unknown; responseCode?: unknown } | null;
  const code = typeof e?.code === "string" && /^[A-Z_]{1,20}$/.test(e.code) ? e.code : "unknown";
  const smtp = typeof e?.responseCode === "number" ? ` ${e.responseCode}` : "";
  // STARTTLS required but not offered surfaces as ETLS/EPROTOCOL depending on the stage.
  const reason = REASONS[code] ?? (typeof e?.responseCode === "number" && e.responseCode >= 500 ? "rejected" : "gateway_error");
  return { reason, detail: `smtp ${code}${smtp}` };
}

/**
 * An SMTP channel. Each send opens one connection (no pool: approvals are rare and a pooled
 * connection would outlive a changed password).
 *
 * @throws TypeError when host or from is empty.
 */
export function createSMTPChannel(opts: SMTPOptions): Channel {
  if (opts.host === "" || opts.from === "") throw new TypeError("smtp: host and from must be set");
  // nodemailer costs ~90 ms to load: load it on the first message, not at every start-up.
  const transportOptions: SMTPTransport.Options = {
    host: opts.host,
    port: opts.port,
    secure: opts.secure,
    requireTLS: !opts.secure && opts.starttls,
    auth: opts.auth ? { user: opts.auth.user, pass: opts.auth.password } : undefined,
    tls: { minVersion: "TLSv1.2", ...(opts.ca ? { ca: opts.ca } : {}) },
    connectionTimeout: opts.timeoutMs,
    greetingTimeout: opts.timeoutMs,
    socketTimeout: opts.timeoutMs,
    disableFileAccess: true,
    disableUrlAccess: true,
  };
  let transport: Promise<Transporter> | undefined;
  const getTransport = () => (transport ??= import("nodemailer").then((m) => m.createTransport(transportOptions)));
  const name = opts.name ?? "email";
  return {
    name,
    kind: "email",
    async send(msg: OutboundMessage, { signal }: SendOptions = {}): Promise<DeliveryResult> {
      if (signal?.aborted) return { ok: false, reason: "timeout", detail: "aborted by the caller" };
      let onAbort: (() => void) | undefined;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stop = new Promise<DeliveryResult>((resolve) => {
        onAbort = () => resolve({ ok: false, reason: "timeout", detail: "aborted by the caller" });
        signal?.addEventListener("abort", onAbort, { once: true });
        // The per-step timeouts bound each SMTP reply; this bounds the whole exchange.
        timer = setTimeout(() => resolve({ ok: false, reason: "timeout", detail: `no answer within ${opts.timeoutMs * 3} ms` }), opts.timeoutMs * 3);
      });
      const sending = getTransport()
        .then((t) => t.sendMail({
          from: opts.from,
          to: msg.to,
          subject: msg.subject ?? opts.subject ?? "Sign-in request",
          text: msg.text,
          headers: { "Auto-Submitted": "auto-generated" },
          disableFileAccess: true,
          disableUrlAccess: true,
        }))
        .then((info): DeliveryResult => {
          const id = typeof info.messageId === "string" && /^[\x21-\x7e]{1,200}$/.test(info.messageId) ? info.messageId : undefined;
          return id === undefined ? { ok: true } : { ok: true, providerId: id };
        })
        .catch((err: unknown): DeliveryResult => ({ ok: false, ...describe(err) }));
      try {
        return await Promise.race([sending, stop]);
      } finally {
        clearTimeout(timer);
        if (onAbort) signal?.removeEventListener("abort", onAbort);
      }
    },
  };
}
