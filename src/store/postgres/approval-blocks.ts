// The approver app's back-off rows in PostgreSQL: one per user. A strike is a read-modify-write under
// the row's lock, so that concurrent strikes on any nodes are applied one after the other.

import type { ApprovalBlock, ApprovalBlockRepo } from "../types.ts";
import { pgPrep, rethrow, type PgStoreContext } from "./context.ts";

interface Row {
  username: string;
  strikes: number;
  blocked_until: number;
  reason: "rejected" | "reported";
  updated_at: number;
}

const COLUMNS = "username, strikes, blocked_until, reason, updated_at";
const toBlock = (r: Row): ApprovalBlock => ({ user: r.username, strikes: r.strikes, blockedUntil: r.blocked_until, reason: r.reason, updatedAt: r.updated_at });

export class PgApprovalBlockRepo implements ApprovalBlockRepo {
  private readonly sGet;
  private readonly sCreate;
  private readonly sLock;
  private readonly sPut;
  private readonly sClear;
  private readonly sPurge;

  constructor(private readonly ctx: PgStoreContext) {
    const { db } = ctx;
    this.sGet = pgPrep<Row>(db, `SELECT ${COLUMNS} FROM approval_blocks WHERE username = ?`);
    // A placeholder row, so that there is a row to lock; RETURNING tells whether this call made it
    // (an INSERT that meets another transaction's uncommitted row waits for it, then does nothing).
    this.sCreate = pgPrep<{ username: string }>(
      db,
      "INSERT INTO approval_blocks (username, strikes, blocked_until, reason, updated_at) VALUES (?, 0, 0, 'rejected', 0) ON CONFLICT (username) DO NOTHING RETURNING username",
    );
    this.sLock = pgPrep<Row>(db, `SELECT ${COLUMNS} FROM approval_blocks WHERE username = ? FOR UPDATE`);
    this.sPut = pgPrep(db, "UPDATE approval_blocks SET strikes = ?, blocked_until = ?, reason = ?, updated_at = ? WHERE username = ?");
    this.sClear = pgPrep(db, "DELETE FROM approval_blocks WHERE username = ?");
    this.sPurge = pgPrep(db, "DELETE FROM approval_blocks WHERE blocked_until < ?1 AND updated_at < ?1");
  }

  async get(user: string): Promise<ApprovalBlock | undefined> {
    try {
      const row = await this.sGet.get(user);
      return row ? toBlock(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async strike(user: string, next: (current: ApprovalBlock | undefined) => ApprovalBlock): Promise<ApprovalBlock> {
    try {
      return await this.ctx.db.transaction(async () => {
        const created = (await this.sCreate.get(user)) !== undefined;
        // The row lock is held until commit: a concurrent strike waits here and then reads this one's result.
        const row = await this.sLock.get(user);
        const b = next(created || !row ? undefined : toBlock(row));
        await this.sPut.run(b.strikes, b.blockedUntil, b.reason, b.updatedAt, user);
        return { ...b, user };
      });
    } catch (err) {
      rethrow(err);
    }
  }

  async clear(user: string): Promise<boolean> {
    try {
      return (await this.sClear.run(user)) === 1;
    } catch (err) {
      rethrow(err);
    }
  }

  async purgeExpired(before: number): Promise<number> {
    try {
      return await this.sPurge.run(before);
    } catch (err) {
      rethrow(err);
    }
  }
}
