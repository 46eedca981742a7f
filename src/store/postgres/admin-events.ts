// Admin events in PostgreSQL: changes recorded in the change's own transaction, claimed once
// across every node (FOR UPDATE SKIP LOCKED: two nodes never emit one event twice).

import type { AdminEventRecord, AdminEventRepo, NewAdminEventRecord } from "../types.ts";
import { pgPrep, rethrow, type PgStoreContext } from "./context.ts";

interface Row {
  id: number;
  at: number;
  actor: string;
  type: string;
  fields: string;
}

function parseFields(text: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

export class PgAdminEventRepo implements AdminEventRepo {
  private readonly sAppend;
  private readonly sClaim;
  private readonly sPurge;

  constructor(private readonly ctx: PgStoreContext) {
    const { db } = ctx;
    this.sAppend = pgPrep<{ id: number }>(db, "INSERT INTO admin_events (at, actor, type, fields) VALUES (?, ?, ?, ?) RETURNING id");
    this.sClaim = pgPrep<Row>(
      db,
      `UPDATE admin_events SET emitted_at = ?1 WHERE id IN (
         SELECT id FROM admin_events WHERE emitted_at IS NULL ORDER BY id LIMIT ?2 FOR UPDATE SKIP LOCKED)
       RETURNING id, at, actor, type, fields`,
    );
    this.sPurge = pgPrep(db, "DELETE FROM admin_events WHERE at < ? AND emitted_at IS NOT NULL");
  }

  private async insert(record: NewAdminEventRecord): Promise<number> {
    return (await this.sAppend.get(record.at, record.actor, record.type, JSON.stringify(record.fields)))!.id;
  }

  /** The change and its record commit together: the repositories' statements join this transaction. */
  async recordWith<T>(change: () => Promise<T>, describe: (result: T) => NewAdminEventRecord | null): Promise<T> {
    try {
      return await this.ctx.db.transaction(async () => {
        const result = await change();
        const record = describe(result);
        if (record) await this.insert(record);
        return result;
      });
    } catch (err) {
      rethrow(err);
    }
  }

  async append(record: NewAdminEventRecord): Promise<number> {
    try {
      return await this.insert(record);
    } catch (err) {
      rethrow(err);
    }
  }

  async claimPending(limit: number, now: number): Promise<AdminEventRecord[]> {
    const n = Math.max(0, Math.min(Math.trunc(limit), 10_000));
    try {
      const rows = await this.sClaim.all(now, n);
      rows.sort((a, b) => a.id - b.id);
      return rows.map((r) => ({ id: r.id, at: r.at, actor: r.actor, type: r.type, fields: parseFields(r.fields) }));
    } catch (err) {
      rethrow(err);
    }
  }

  async purgeBefore(at: number): Promise<number> {
    try {
      return await this.sPurge.run(at);
    } catch (err) {
      rethrow(err);
    }
  }
}
