// The stored audit log in SQLite: appended in batches by every process on the file (the server and
// its RADIUS workers), read by the admin web UI and API.

import type { SQLStatement } from "../../runtime/sqlite.ts";
import { auditRecord, auditSelect, type AuditRow } from "../audit-query.ts";
import type { AuditLogRepo, AuditQuery, AuditRecord, AuthMinute, NewAuditRecord } from "../types.ts";
import { prep, rethrow, type StoreContext } from "./context.ts";

export class SqliteAuditLogRepo implements AuditLogRepo {
  private readonly sInsert;
  private readonly sCount;
  private readonly sMinutes;
  private readonly sOld;
  private readonly sCut;
  private readonly sDeleteUpTo;
  private readonly sPruneMinutes;
  private readonly txAppend;
  private readonly txCounts;
  /** Read statements by their text (one per combination of filters). */
  private readonly reads = new Map<string, SQLStatement<AuditRow>>();

  constructor(private readonly ctx: StoreContext) {
    const { db } = ctx;
    this.sInsert = prep(db, "INSERT INTO audit_log (at, event, actor, username, client, outcome, node, fields) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    this.sCount = prep(db, "INSERT INTO auth_minutes (minute, outcome, n) VALUES (?, ?, ?) ON CONFLICT (minute, outcome) DO UPDATE SET n = n + excluded.n");
    this.sMinutes = prep<AuthMinute>(db, "SELECT minute, outcome, n FROM auth_minutes WHERE minute >= ? ORDER BY minute");
    this.sOld = prep(db, "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < ? ORDER BY at LIMIT ?)");
    this.sCut = prep<{ hi: number | null }>(db, "SELECT max(id) AS hi FROM audit_log");
    this.sDeleteUpTo = prep(db, "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE id <= ? ORDER BY id LIMIT ?)");
    this.sPruneMinutes = prep(db, "DELETE FROM auth_minutes WHERE minute < ?");
    this.txAppend = db.transaction((records: readonly NewAuditRecord[]) => {
      for (const r of records) this.sInsert.run(r.at, r.event, r.actor, r.user, r.client, r.outcome, r.node, JSON.stringify(r.fields));
    });
    this.txCounts = db.transaction((counts: readonly AuthMinute[]) => {
      for (const c of counts) this.sCount.run(c.minute, c.outcome, c.n);
    });
  }

  async append(records: readonly NewAuditRecord[]): Promise<void> {
    if (records.length === 0) return;
    try {
      this.txAppend.immediate(records);
    } catch (err) {
      rethrow(err);
    }
  }

  async addCounts(counts: readonly AuthMinute[]): Promise<void> {
    if (counts.length === 0) return;
    try {
      this.txCounts.immediate(counts);
    } catch (err) {
      rethrow(err);
    }
  }

  async list(query: AuditQuery): Promise<AuditRecord[]> {
    const { sql, params } = auditSelect(query);
    try {
      let stmt = this.reads.get(sql);
      if (!stmt) this.reads.set(sql, (stmt = prep<AuditRow>(this.ctx.db, sql)));
      return stmt.all(...params).map(auditRecord);
    } catch (err) {
      rethrow(err);
    }
  }

  async minutes(fromMinute: number): Promise<AuthMinute[]> {
    try {
      return this.sMinutes.all(fromMinute);
    } catch (err) {
      rethrow(err);
    }
  }

  async prune(before: number, maxRows: number, batch: number): Promise<number> {
    try {
      this.sPruneMinutes.run(before);
      let gone = this.sOld.run(before, batch).changes;
      if (gone < batch) {
        // IDs only grow: keeping those above max(id) - maxRows keeps at most maxRows rows, found
        // through the primary key (no scan of the rows kept).
        const hi = this.sCut.get()?.hi;
        if (hi !== null && hi !== undefined && hi > maxRows) gone += this.sDeleteUpTo.run(hi - Math.max(0, Math.trunc(maxRows)), batch - gone).changes;
      }
      return gone;
    } catch (err) {
      rethrow(err);
    }
  }
}
