// Admin API: the stored audit log (GET /audit), newest first, with the admin web UI's filters and
// paging; operators may read it.

import * as v from "valibot";
import { LEAST_ROLE } from "../../admin/audit.ts";
import { listAuditEvents } from "../../admin/audit-log.ts";
import { apiAudit } from "./audit.ts";
import type { AdminRouter } from "./route.ts";

const TAG = "audit";

const text = (max: number, description: string) => v.optional(v.pipe(v.string(), v.maxLength(max), v.description(description)));

const auditQuery = v.object({
  from: text(40, "ISO 8601 date and time, inclusive; UTC unless it has a zone"),
  to: text(40, "ISO 8601 date and time, exclusive"),
  event: text(64, "an event name (auth.failure) or a prefix ending in '.' (admin.)"),
  actor: text(256, "who acted: an API key's name, ui:<account>, cli:<user>"),
  user: text(256, "the user concerned (normalised name)"),
  client: text(256, "the RADIUS client's name or the HTTP client's address"),
  outcome: text(32, "accept, reject, challenge, ok, failed, refused, approved, rejected…"),
  before: text(40, "the `next` of the previous page"),
  limit: v.optional(v.pipe(v.string(), v.regex(/^(?:[1-9]\d{0,2}|1000)$/), v.description("1-1000, default 100"))),
});

const auditEvent = v.object({
  id: v.number(),
  at: v.string(),
  event: v.string(),
  actor: v.nullable(v.string()),
  user: v.nullable(v.string()),
  client: v.nullable(v.string()),
  outcome: v.nullable(v.string()),
  node: v.pipe(v.string(), v.description("the process that emitted it: host:pid, /wN for RADIUS worker N")),
  fields: v.pipe(v.record(v.string(), v.unknown()), v.description("the event's other fields, as its log line has them; never a secret")),
});

/** Registers GET /audit. */
export function auditLogRoutes(r: AdminRouter): void {
  const { deps } = r;
  r.route(
    {
      method: "get",
      path: "/audit",
      summary: "Stored audit events of every process and node on the store, newest first",
      tag: TAG,
      minRole: LEAST_ROLE.read,
      query: auditQuery,
      responses: { 200: { description: "A page of events and the cursor of the next", schema: v.object({ events: v.array(auditEvent), next: v.nullable(v.string()) }) } },
      errors: [503],
    },
    async (c, { query }) => {
      const { limit, ...filter } = query;
      const page = await listAuditEvents({ store: deps.store, actor: apiAudit(deps, c.get("apiKey")).actor }, { ...filter, ...(limit === undefined ? {} : { limit: Number(limit) }) });
      return c.json(page);
    },
  );
}
