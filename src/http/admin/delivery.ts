// Admin API: the delivery test (a fixed test message through the configured channels, rate-limited)
// and the delivery log (masked destinations, never message text), admin role and up.

import * as v from "valibot";
import { deliveryLog, deliveryTest } from "../../admin/delivery.ts";
import type { DeliveryRepos } from "../../store/types.ts";
import { apiAudit } from "./audit.ts";
import type { AdminRouter } from "./route.ts";

const TAG = "delivery";

export { TEST_ENDPOINT, TEST_LIMITS, TEST_MESSAGE } from "../../admin/delivery.ts";

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
      const key = c.get("apiKey");
      // The per-caller limit counts under the key's ID, never the key.
      return c.json(await deliveryTest({ audit: apiAudit(deps, key) }, deps.delivery?.dispatcher, { ...body, limitKey: `admin:${key.id}` }));
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
      return c.json(await deliveryLog(log, { limit: query.limit === undefined ? 100 : Number(query.limit), ...(query.before === undefined ? {} : { before: Number(query.before) }) }));
    },
  );
}
