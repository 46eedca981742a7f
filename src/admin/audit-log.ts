// Reading the stored audit log (audit_log, written by every process and node on the store): the
// filters, their checks and paging, for the admin web UI's audit page and GET /api/admin/v1/audit.
// Operators may read it (LEAST_ROLE.read).

import { auditLogOf, type AuditQuery, type AuditRecord, type Store } from "../store/types.ts";
import { LEAST_ROLE, requireRole, type Actor } from "./audit.ts";
import { AdminError, invalid } from "./errors.ts";

/** The filters as an adapter receives them (query strings, form fields); empty strings are "any". */
export interface AuditFilter {
  /** ISO 8601 ("2026-12-03T10:00:00Z"); without a zone it is UTC ("2026-12-03T10:00", "2026-12-03"). Inclusive. */
  from?: string;
  /** As `from`; exclusive. */
  to?: string;
  /** An event name ("auth.failure") or a prefix ending in "." ("admin."). */
  event?: string;
  actor?: string;
  user?: string;
  client?: string;
  outcome?: string;
  /** The `next` of the previous page. */
  before?: string;
  /** 1-1000, default 100. */
  limit?: number;
}

/** One event as the UI and the API show it. */
export interface AuditEventView {
  id: number;
  /** ISO 8601. */
  at: string;
  event: string;
  actor: string | null;
  user: string | null;
  client: string | null;
  outcome: string | null;
  /** The process that emitted it. */
  node: string;
  /** The event's other fields, as its log line has them (never a secret). */
  fields: Record<string, unknown>;
}

export interface AuditPage {
  events: AuditEventView[];
  /** Pass as `before` for the next (older) page; null on the last page. */
  next: string | null;
}

const EVENT = /^[a-z][a-z_]*(\.[a-z_]*)?$/;
const OUTCOME = /^[a-z][a-z_]{0,31}$/;
const CURSOR = /^(\d{1,15})-(\d{1,15})$/;

/** A time filter as unix ms; a value without a zone is read as UTC. */
function time(field: string, value: string | undefined): number | undefined {
  if (value === undefined || value === "") return undefined;
  const v = value.trim();
  const withZone = /^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : /[zZ]|[+-]\d{2}:?\d{2}$/.test(v) ? v : `${v}Z`;
  const ms = /^\d{4}-\d{2}-\d{2}/.test(v) ? Date.parse(withZone) : NaN;
  if (!Number.isFinite(ms)) throw invalid(field, "must be a date and time (ISO 8601, UTC unless a zone is given)");
  return ms;
}

function name(field: string, value: string | undefined, max = 256): string | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v === "") return undefined;
  if (v.length > max || /[\u0000-\u001f]/.test(v)) throw invalid(field, `must be at most ${max} characters, without control characters`);
  return v;
}

/** The newest stored events that match `filter`, newest first, with the cursor of the next page. */
export async function listAuditEvents(ctx: { store: Store; actor: Actor }, filter: AuditFilter): Promise<AuditPage> {
  requireRole(ctx.actor, LEAST_ROLE.read);
  const repo = auditLogOf(ctx.store);
  if (!repo) throw new AdminError("unavailable", "this store keeps no audit log");
  const limit = filter.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw invalid("limit", "must be 1-1000");
  const event = name("event", filter.event, 64);
  if (event !== undefined && !EVENT.test(event)) throw invalid("event", "must be an event name (auth.failure) or a prefix ending in '.' (admin.)");
  const outcome = name("outcome", filter.outcome, 32);
  if (outcome !== undefined && !OUTCOME.test(outcome)) throw invalid("outcome", "must be an outcome word (accept, reject, failed…)");
  let before: AuditQuery["before"];
  if (filter.before !== undefined && filter.before !== "") {
    const m = CURSOR.exec(filter.before);
    if (!m) throw invalid("before", "must be the `next` of a previous page");
    before = { at: Number(m[1]), id: Number(m[2]) };
  }
  const query: AuditQuery = { limit: limit + 1 };
  const from = time("from", filter.from);
  const to = time("to", filter.to);
  if (from !== undefined) query.from = from;
  if (to !== undefined) query.to = to;
  if (event !== undefined) query.event = event;
  if (outcome !== undefined) query.outcome = outcome;
  const actor = name("actor", filter.actor);
  const user = name("user", filter.user);
  const client = name("client", filter.client);
  if (actor !== undefined) query.actor = actor;
  if (user !== undefined) query.user = user;
  if (client !== undefined) query.client = client;
  if (before) query.before = before;
  const rows = await repo.list(query);
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return { events: page.map(view), next: rows.length > limit && last ? `${last.at}-${last.id}` : null };
}

function view(r: AuditRecord): AuditEventView {
  return { id: r.id, at: new Date(r.at).toISOString(), event: r.event, actor: r.actor, user: r.user, client: r.client, outcome: r.outcome, node: r.node, fields: r.fields };
}
