// The stored audit log in PostgreSQL: appended in batches by every process of every node (one
// statement per batch, the rows as one JSON parameter), read by the admin web UI and API.

import { auditRecord, auditSelect, type AuditRow } from "../audit-query.ts";
import type { AuditLogRepo, AuditQuery, AuditRecord, AuthMinute, NewAuditRecord } from "../types.ts";
import { pgPrep, rethrow, type PgStoreContext } from "./context.ts";

export class PgAuditLogRepo implements AuditLogRepo {
  private readonly sAppend;
  private readonly sCounts;
  private readonly sMinutes;
  private readonly sOld;
  private readonly sCut;
  private readonly sDeleteUpTo;
  private readonly sPruneMinutes;

  constructor(private readonly ctx: PgStoreContext) {
    const { db } = ctx;
    this.sAppend = pgPrep(
      db,
      `INSERT INTO audit_log (at, event, actor, username, client, outcome, node, fields)
       SELECT at, event, actor, username, client, outcome, node, fields
         FROM jsonb_to_recordset(?::text::jsonb) AS r(at bigint, event text, actor text, username text, client text, outcome text, node text, fields text)`,
    );
    // Sorted keys: two nodes adding to the same minutes lock their rows in one order (no deadlock).
    this.sCounts = pgPrep(
      db,
      `INSERT INTO auth_minutes (minute, outcome, n)
       SELECT minute, outcome, n FROM jsonb_to_recordset(?::text::jsonb) AS r(minute bigint, outcome text, n bigint) ORDER BY minute, outcome
       ON CONFLICT (minute, outcome) DO UPDATE SET n = auth_minutes.n + excluded.n`,
    );
    this.sMinutes = pgPrep<{ minute: string | number; outcome: AuthMinute["outcome"]; n: string | number }>(db, "SELECT minute, outcome, n FROM auth_minutes WHERE minute >= ? ORDER BY minute");
    this.sOld = pgPrep(db, "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < ? ORDER BY at LIMIT ?)");
    this.sCut = pgPrep<{ hi: string | number | null }>(db, "SELECT max(id) AS hi FROM audit_log");
    this.sDeleteUpTo = pgPrep(db, "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE id <= ? ORDER BY id LIMIT ?)");
    this.sPruneMinutes = pgPrep(db, "DELETE FROM auth_minutes WHERE minute < ?");
  }

  async append(records: readonly NewAuditRecord[]): Promise<void> {
    if (records.length === 0) return;
    const rows = records.map((r) => ({ at: r.at, event: r.event, actor: r.actor, username: r.user, client: r.client, outcome: r.outcome, node: r.node, fields: JSON.stringify(r.fields) }));
    try {
      await this.sAppend.run(JSON.stringify(rows));
    } catch (err) {
      rethrow(err);
    }
  }

  async addCounts(counts: readonly AuthMinute[]): Promise<void> {
    if (counts.length === 0) return;
    try {
      await this.sCounts.run(JSON.stringify(counts));
    } catch (err) {
      rethrow(err);
    }
  }

  async list(query: AuditQuery): Promise<AuditRecord[]> {
    const { sql, params } = auditSelect(query);
    try {
      return (await pgPrep<AuditRow>(this.ctx.db, sql).all(...params)).map(auditRecord);
    } catch (err) {
      rethrow(err);
    }
  }

  async minutes(fromMinute: number): Promise<AuthMinute[]> {
    try {
      return (await this.sMinutes.all(fromMinute)).map((r) => ({ minute: Number(r.minute), outcome: r.outcome, n: Number(r.n) }));
    } catch (err) {
      rethrow(err);
    }
  }

  async prune(before: number, maxRows: number, batch: number): Promise<number> {
    try {
      await this.sPruneMinutes.run(before);
      let gone = await this.sOld.run(before, batch);
      if (gone < batch) {
        // IDs only grow (gaps only make fewer rows): keeping those above max(id) - maxRows keeps at most maxRows.
        const hi = Number((await this.sCut.get())?.hi ?? 0);
        if (hi > maxRows) gone += await this.sDeleteUpTo.run(hi - Math.max(0, Math.trunc(maxRows)), batch - gone);
      }
      return gone;
    } catch (err) {
      rethrow(err);
    }
  }
}
