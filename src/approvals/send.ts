// Sending one text (an approval link, an SMS code) through the delivery dispatcher: the one place
// that links the caller's abort signal to the delivery and finds the e-mail address for a number.

import type { Dispatcher, DispatchResult } from "../delivery/dispatcher.ts";

/** Where to send a text, and under which name its limits are counted. */
export interface TextTarget {
  /** Phone number, E.164 or local format in the configured region. */
  msisdn?: string | null;
  /** E-mail address; undefined asks `emailFor(msisdn)`, null means none. */
  email?: string | null;
  /** Delivery channels in failover order; [] or undefined means the configured order. */
  channels?: readonly string[];
  /** For the delivery log and limits: the endpoint profile, or "radius:CLIENT". */
  endpoint: string;
  /** For the per-key limit and the log: the API key's ID, or "radius:CLIENT". */
  rateKey: string;
  /** Refuse numbers that belong to no known user (SMS pumping defence). */
  requireKnownUser?: boolean;
  /** E-mail subject; default the sender's. */
  subject?: string;
}

/** What sendText needs: the dispatchers, the address book and the default subject. */
export interface TextSender {
  dispatcherFor(channels: readonly string[]): Dispatcher;
  emailFor?(e164: string): Promise<string | undefined>;
  emailSubject: string;
}

/**
 * Sends `text` to `to` through the dispatcher for its channels: every SMS-pumping defence and
 * limit applies there. Never throws for a delivery problem; a store failure propagates.
 *
 * The delivery gets its own signal, linked to the caller's only while it runs: the HTTP channel
 * combines it with a timeout (AbortSignal.any), and the caller's signal, which lives as long as the
 * whole wait, must not keep those alive.
 */
export async function sendText(sender: TextSender, to: TextTarget, text: string, signal?: AbortSignal): Promise<DispatchResult> {
  const abortDelivery = new AbortController();
  const onAbort = () => abortDelivery.abort();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const msisdn = to.msisdn ?? undefined;
    const email = to.email === undefined ? (msisdn && sender.emailFor ? await sender.emailFor(msisdn) : undefined) : (to.email ?? undefined);
    return await sender.dispatcherFor(to.channels ?? []).deliver({
      msisdn,
      email,
      text,
      subject: to.subject ?? sender.emailSubject,
      endpoint: to.endpoint,
      apiKeyId: to.rateKey,
      requireKnownUser: to.requireKnownUser ?? false,
      signal: abortDelivery.signal,
    });
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}
