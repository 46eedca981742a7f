// The audit log's read, shared by the SQLite and PostgreSQL repositories: the filters as portable
// SQL with `?` placeholders, newest first by (at, id), and the row mapping.

import type { AuditQuery, AuditRecord } from "./types.ts";

export const AUDIT_COLUMNS = "id, at, event, actor, username, client, outcome, node, fields";

export interface AuditRow {
  id: number | string;
  at: number | string;
  event: string;
  actor: string | null;
  username: string | null;
  client: string | null;
  outcome: string | null;
  node: string;
  fields: string;
}

/** The most rows one read returns. */
export const AUDIT_READ_MAX = 1000;

/** The string just above every string that starts with `prefix` (its last character + 1). */
function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

/** The SELECT for `q` and its parameters. An `event` ending in "." matches as a prefix (a range, so the index serves it). */
export function auditSelect(q: AuditQuery): { sql: string; params: Array<string | number> } {
  const where: string[] = [];
  const params: Array<string | number> = [];
  if (q.from !== undefined) (where.push("at >= ?"), params.push(q.from));
  if (q.to !== undefined) (where.push("at < ?"), params.push(q.to));
  if (q.event) {
    if (q.event.endsWith(".")) (where.push("event >= ? AND event < ?"), params.push(q.event, prefixEnd(q.event)));
    else (where.push("event = ?"), params.push(q.event));
  }
  if (q.actor) (where.push("actor = ?"), params.push(q.actor));
  if (q.user) (where.push("username = ?"), params.push(q.user));
  if (q.outcome) (where.push("outcome = ?"), params.push(q.outcome));
  if (q.client) (where.push("client = ?"), params.push(q.client));
  if (q.before) (where.push("(at < ? OR (at = ? AND id < ?))"), params.push(q.before.at, q.before.at, q.before.id));
  params.push(Math.max(1, Math.min(Math.trunc(q.limit) || 1, AUDIT_READ_MAX)));
  const sql = `SELECT ${AUDIT_COLUMNS} FROM audit_log${where.length ? ` WHERE ${where.join(" AND ")}` : ""} ORDER BY at DESC, id DESC LIMIT ?`;
  return { sql, params };
}

/** A stored `fields` value that is not a JSON object reads as {}. */
function parseFields(text: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

export function auditRecord(r: AuditRow): AuditRecord {
  return {
    id: Number(r.id),
    at: Number(r.at),
    event: r.event,
    actor: r.actor,
    user: r.username,
    client: r.client,
    outcome: r.outcome,
    node: r.node,
    fields: parseFields(r.fields),
  };
}
