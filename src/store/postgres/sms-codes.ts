// SMS one-time codes in PostgreSQL: one keyed hash per challenge State, consumed by one conditional DELETE,
// deleted by the wrong attempt that reaches the limit.

import type { SmsCode, SmsCodeRepo } from "../types.ts";
import { pgPrep, rethrow, type PgStoreContext } from "./context.ts";

interface SmsCodeRow {
  state: string;
  client: string;
  username: string;
  hash: string;
  created_at: number;
  expires_at: number;
  failures: number;
}

const COLUMNS = "state, client, username, hash, created_at, expires_at, failures";

function toCode(row: SmsCodeRow): SmsCode {
  return { state: row.state, client: row.client, user: row.username, hash: row.hash, createdAt: row.created_at, expiresAt: row.expires_at, failures: row.failures };
}

/** A code is live while now < expiresAt. */
export class PgSmsCodeRepo implements SmsCodeRepo {
  private readonly sPut;
  private readonly sFind;
  private readonly sConsume;
  private readonly sFail;
  private readonly sDropSpent;
  private readonly sRemove;
  private readonly sPurge;
  /**
   * Count and, at the limit, delete in one transaction: the UPDATE's row lock serialises concurrent
   * attempts on every node, no node ever sees the code at its limit (and could still consume it),
   * and the attempt that reaches the limit is the one that deletes it.
   */

  constructor(private readonly ctx: PgStoreContext) {
    const { db } = ctx;
    this.sPut = pgPrep(
      db,
      `INSERT INTO sms_codes (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (state) DO UPDATE SET client = excluded.client, username = excluded.username, hash = excluded.hash,
         created_at = excluded.created_at, expires_at = excluded.expires_at, failures = excluded.failures`,
    );
    this.sFind = pgPrep<SmsCodeRow>(db, `SELECT ${COLUMNS} FROM sms_codes WHERE state = ? AND expires_at > ?`);
    // One statement: of any number of concurrent callers exactly one deletes the row.
    this.sConsume = pgPrep(db, "DELETE FROM sms_codes WHERE state = ? AND hash = ? AND expires_at > ?");
    this.sFail = pgPrep<{ failures: number }>(db, "UPDATE sms_codes SET failures = failures + 1 WHERE state = ? AND hash = ? RETURNING failures");
    this.sDropSpent = pgPrep(db, "DELETE FROM sms_codes WHERE state = ? AND hash = ? AND failures >= ?");
    this.sRemove = pgPrep(db, "DELETE FROM sms_codes WHERE state = ?");
    this.sPurge = pgPrep(db, "DELETE FROM sms_codes WHERE expires_at <= ?");
  }

  async put(c: SmsCode): Promise<void> {
    try {
      await this.sPut.run(c.state, c.client, c.user, c.hash, c.createdAt, c.expiresAt, c.failures);
    } catch (err) {
      rethrow(err);
    }
  }

  async find(state: string, now: number): Promise<SmsCode | undefined> {
    try {
      const row = await this.sFind.get(state, now);
      return row ? toCode(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async consume(state: string, hash: string, now: number): Promise<boolean> {
    try {
      return (await this.sConsume.run(state, hash, now)) === 1;
    } catch (err) {
      rethrow(err);
    }
  }

  async fail(state: string, hash: string, maxFailures: number): Promise<number | undefined> {
    try {
      return await this.ctx.db.transaction(async () => {
        const failures = (await this.sFail.get(state, hash))?.failures;
        if (failures === undefined) return undefined;
        if (failures >= maxFailures) await this.sDropSpent.run(state, hash, maxFailures);
        return Math.min(failures, maxFailures);
      });
    } catch (err) {
      rethrow(err);
    }
  }

  async remove(state: string): Promise<boolean> {
    try {
      return (await this.sRemove.run(state)) === 1;
    } catch (err) {
      rethrow(err);
    }
  }

  async purgeExpired(now: number): Promise<number> {
    try {
      return (await this.sPurge.run(now));
    } catch (err) {
      rethrow(err);
    }
  }
}
