// Admin API: the delivery test (a fixed test message through the configured channels, rate-limited)
// and the delivery log (masked destinations, never message text), admin role and up.

import * as v from "valibot";
import type { DeliveryLogEntry, DeliveryRepos } from "../../store/types.ts";
import { badRequest, fail, type AdminRouter } from "./route.ts";

const TAG = "delivery";

/** The test message. Fixed: a key holder must not send arbitrary text under the organisation's sender ID. */
export const TEST_MESSAGE = "Portcullis test message: delivery works.";
/** Endpoint name the test appears under in the delivery log and metrics. */
export const TEST_ENDPOINT = "admin-test";
/** Test messages per API key (on top of the configured per-number and overall limits). */
export const TEST_LIMITS = { perMinute: 3, perHour: 20 };

const testBody = v.strictObject({
  msisdn: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(32), v.description("E.164, or local form when `region` is set"))),
  email: v.optional(v.pipe(v.string(), v.minLength(3), v.maxLength(254))),
});

const testResult = v.object({
  ok: v.boolean(),
  channel: v.nullable(v.string()),
  reason: v.nullable(v.string()),
  detail: v.nullable(v.pipe(v.string(), v.description("short technical detail (HTTP status, SMTP code); never the text"))),
});

const logQuery = v.object({
  limit: v.optional(v.pipe(v.string(), v.regex(/^(?:[1-9]\d{0,2}|1000)$/), v.description("1-1000, default 100"))),
  before: v.optional(v.pipe(v.string(), v.regex(/^[1-9]\d{0,14}$/), v.description("only entries with a smaller id (paging)"))),
});

const logEntry = v.object({
  id: v.number(),
  at: v.string(),
  channel: v.nullable(v.string()),
  destination: v.pipe(v.string(), v.description("masked")),
  country: v.nullable(v.string()),
  endpoint: v.string(),
  apiKeyId: v.string(),
  result: v.picklist(["sent", "failed", "refused"]),
  reason: v.nullable(v.string()),
  detail: v.nullable(v.string()),
  providerId: v.nullable(v.string()),
});

const describeEntry = (e: DeliveryLogEntry): v.InferOutput<typeof logEntry> => ({ ...e, at: new Date(e.at).toISOString() });

/** Registers /delivery routes. */
export function deliveryRoutes(r: AdminRouter): void {
  const { deps } = r;

  r.route(
    {
      method: "post",
      path: "/delivery/test",
      summary: "Send a fixed test message to a number or address through the configured channels (rate-limited per key)",
      tag: TAG,
      minRole: "admin",
      body: testBody,
      responses: { 200: { description: "Sent, or why not (allow-list, every channel failed…)", schema: testResult } },
      errors: [429, 503],
    },
    async (c, { body }) => {
      const delivery = deps.delivery;
      if (!delivery) return fail(c, 503, "delivery is not configured on this node");
      if (body.msisdn === undefined && body.email === undefined) return badRequest(c, "msisdn", "a phone number or an e-mail address");
      const key = c.get("apiKey");
      const result = await delivery.dispatcher.deliver({
        msisdn: body.msisdn,
        email: body.email,
        text: TEST_MESSAGE,
        subject: "Portcullis test message",
        endpoint: TEST_ENDPOINT,
        apiKeyId: `admin:${key.id}`,
        keyLimits: TEST_LIMITS,
      });
      deps.audit({ type: "admin.delivery_test", ok: result.ok, by: key.name, ...(result.ok ? { channel: result.channel } : { reason: result.reason }) });
      if (result.ok) return c.json({ ok: true, channel: result.channel, reason: null, detail: null });
      if (result.reason === "rate_limited") return fail(c, 429, result.detail);
      return c.json({ ok: false, channel: null, reason: result.reason, detail: result.detail });
    },
  );

  r.route(
    {
      method: "get",
      path: "/delivery/log",
      summary: "Recent delivery attempts and refusals, newest first (masked destinations)",
      tag: TAG,
      minRole: "admin",
      query: logQuery,
      responses: { 200: { description: "Entries", schema: v.array(logEntry) } },
      errors: [503],
    },
    async (c, { query }) => {
      // The log lives in the store: without a dispatcher, a store that offers it still answers.
      const log = deps.delivery?.log ?? (deps.store as Partial<DeliveryRepos>).deliveryLog;
      if (!log) return fail(c, 503, "delivery is not configured on this node");
      const entries = await log.recent(query.limit === undefined ? 100 : Number(query.limit), query.before === undefined ? undefined : Number(query.before));
      return c.json(entries.map(describeEntry));
    },
  );
}
