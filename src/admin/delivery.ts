// Admin operations on delivery: a fixed test message through the configured channels (rate-limited
// per caller) and the delivery log (masked destinations, never message text). The admin API's
// /delivery routes call them; the CLI has no delivery command (it runs without the server's channels).

import type { Dispatcher } from "../delivery/index.ts";
import type { DeliveryLogEntry, DeliveryLogRepo } from "../store/types.ts";
import type { AdminContext } from "./context.ts";
import { AdminError, invalid } from "./errors.ts";

/** The test message. Fixed: a key holder must not send arbitrary text under the organisation's sender ID. */
export const TEST_MESSAGE = "Portcullis test message: delivery works.";
/** Endpoint name the test appears under in the delivery log and metrics. */
export const TEST_ENDPOINT = "admin-test";
/** Test messages per caller (on top of the configured per-number and overall limits). */
export const TEST_LIMITS = { perMinute: 3, perHour: 20 };

const notConfigured = () => new AdminError("unavailable", "delivery is not configured on this node", { expose: "delivery is not configured on this node" });

export interface DeliveryTestResult {
  ok: boolean;
  channel: string | null;
  reason: string | null;
  /** Short technical detail (HTTP status, SMTP code); never the text. */
  detail: string | null;
}

/**
 * Sends TEST_MESSAGE to `msisdn` and/or `email` through `dispatcher`, limited per `limitKey` (the
 * caller, never a key) by TEST_LIMITS, and records admin.delivery_test with the outcome (never the
 * destination). Answers a failed delivery as a result. Throws AdminError: "unavailable" without a
 * dispatcher, "invalid" (field `msisdn`) without a destination, "rate_limited".
 */
export async function deliveryTest(
  ctx: Pick<AdminContext, "audit">,
  dispatcher: Dispatcher | undefined,
  { msisdn, email, limitKey }: { msisdn?: string; email?: string; limitKey: string },
): Promise<DeliveryTestResult> {
  if (!dispatcher) throw notConfigured();
  if (msisdn === undefined && email === undefined) throw invalid("msisdn", "a phone number or an e-mail address");
  const result = await dispatcher.deliver({ msisdn, email, text: TEST_MESSAGE, subject: "Portcullis test message", endpoint: TEST_ENDPOINT, apiKeyId: limitKey, keyLimits: TEST_LIMITS });
  await ctx.audit.note({ type: "admin.delivery_test", ok: result.ok, ...(result.ok ? { channel: result.channel } : { reason: result.reason }) });
  if (result.ok) return { ok: true, channel: result.channel, reason: null, detail: null };
  if (result.reason === "rate_limited") throw new AdminError("rate_limited", result.detail, { expose: result.detail });
  return { ok: false, channel: null, reason: result.reason, detail: result.detail };
}

/** The newest `limit` entries of `log`, before ID `before` when given. Throws AdminError("unavailable") without a log. */
export async function deliveryLog(log: DeliveryLogRepo | undefined, { limit = 100, before }: { limit?: number; before?: number } = {}): Promise<Array<Omit<DeliveryLogEntry, "at"> & { at: string }>> {
  if (!log) throw notConfigured();
  const entries = await log.recent(limit, before);
  return entries.map((e) => ({ ...e, at: new Date(e.at).toISOString() }));
}
