// Admin events in SQLite: CLI changes recorded in their own transaction, claimed once by the server.

import type { AdminEventRecord, AdminEventRepo, NewAdminEventRecord } from "../types.ts";
import { prep, rethrow, type StoreContext } from "./context.ts";

interface Row {
  id: number;
  at: number;
  actor: string;
  type: string;
  fields: string;
}

/** A stored `fields` value that is not a JSON object reads as {} (the row is still emitted, by type). */
function parseFields(text: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

export class SqliteAdminEventRepo implements AdminEventRepo {
  private readonly sAppend;
  private readonly sPending;
  private readonly sMark;
  private readonly sPurge;
  private readonly txClaim;

  constructor(private readonly ctx: StoreContext) {
    const { db } = ctx;
    this.sAppend = prep(db, "INSERT INTO admin_events (at, actor, type, fields) VALUES (?, ?, ?, ?)");
    this.sPending = prep<Row>(db, "SELECT id, at, actor, type, fields FROM admin_events WHERE emitted_at IS NULL ORDER BY id LIMIT ?");
    this.sMark = prep(db, "UPDATE admin_events SET emitted_at = ? WHERE emitted_at IS NULL AND id <= ?");
    this.sPurge = prep(db, "DELETE FROM admin_events WHERE at < ? AND emitted_at IS NOT NULL");
    this.txClaim = db.transaction((limit: number, now: number): AdminEventRecord[] => {
      const rows = this.sPending.all(limit);
      if (rows.length > 0) this.sMark.run(now, rows[rows.length - 1]!.id);
      return rows.map((r) => ({ id: r.id, at: r.at, actor: r.actor, type: r.type, fields: parseFields(r.fields) }));
    });
  }

  private insert(record: NewAdminEventRecord): number {
    return Number(this.sAppend.run(record.at, record.actor, record.type, JSON.stringify(record.fields)).lastInsertRowid);
  }

  async recordWith<T>(change: () => Promise<T>, describe: (result: T) => NewAdminEventRecord | null): Promise<T> {
    const { db } = this.ctx;
    try {
      // IMMEDIATE: the write lock is taken (or waited for, busy_timeout) before the change reads
      // anything, so the change cannot fail half-way with SQLITE_BUSY. The repositories' own
      // transactions nest inside as savepoints.
      db.exec("BEGIN IMMEDIATE");
    } catch (err) {
      rethrow(err);
    }
    try {
      const result = await change();
      const record = describe(result);
      if (record) this.insert(record);
      db.exec("COMMIT");
      return result;
    } catch (err) {
      try {
        db.exec("ROLLBACK");
      } catch {
        // SQLite already rolled back (e.g. SQLITE_FULL ends the transaction itself)
      }
      rethrow(err);
    }
  }

  async append(record: NewAdminEventRecord): Promise<number> {
    try {
      return this.insert(record);
    } catch (err) {
      rethrow(err);
    }
  }

  async claimPending(limit: number, now: number): Promise<AdminEventRecord[]> {
    const n = Math.max(0, Math.min(Math.trunc(limit), 10_000));
    try {
      return this.txClaim.immediate(n, now);
    } catch (err) {
      rethrow(err);
    }
  }

  async purgeBefore(at: number): Promise<number> {
    try {
      return this.sPurge.run(at).changes;
    } catch (err) {
      rethrow(err);
    }
  }
}
