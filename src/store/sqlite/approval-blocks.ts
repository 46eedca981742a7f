// The approver app's back-off rows in SQLite: one per user, read and written in one transaction.

import type { ApprovalBlock, ApprovalBlockRepo } from "../types.ts";
import { prep, rethrow, type StoreContext } from "./context.ts";

interface Row {
  username: string;
  strikes: number;
  blocked_until: number;
  reason: "rejected" | "reported";
  updated_at: number;
}

const toBlock = (r: Row): ApprovalBlock => ({ user: r.username, strikes: r.strikes, blockedUntil: r.blocked_until, reason: r.reason, updatedAt: r.updated_at });

export class SqliteApprovalBlockRepo implements ApprovalBlockRepo {
  private readonly sGet;
  private readonly sPut;
  private readonly sClear;
  private readonly sPurge;
  private readonly txStrike;

  constructor(ctx: StoreContext) {
    const { db } = ctx;
    this.sGet = prep<Row>(db, "SELECT username, strikes, blocked_until, reason, updated_at FROM approval_blocks WHERE username = ?");
    this.sPut = prep(
      db,
      "INSERT INTO approval_blocks (username, strikes, blocked_until, reason, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (username) DO UPDATE SET strikes = excluded.strikes, blocked_until = excluded.blocked_until, reason = excluded.reason, updated_at = excluded.updated_at",
    );
    this.sClear = prep(db, "DELETE FROM approval_blocks WHERE username = ?");
    this.sPurge = prep(db, "DELETE FROM approval_blocks WHERE blocked_until < ? AND updated_at < ?");
    this.txStrike = db.transaction((user: string, next: (current: ApprovalBlock | undefined) => ApprovalBlock): ApprovalBlock => {
      const row = this.sGet.get(user);
      const b = next(row ? toBlock(row) : undefined);
      this.sPut.run(user, b.strikes, b.blockedUntil, b.reason, b.updatedAt);
      return { ...b, user };
    });
  }

  async get(user: string): Promise<ApprovalBlock | undefined> {
    try {
      const row = this.sGet.get(user);
      return row ? toBlock(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async strike(user: string, next: (current: ApprovalBlock | undefined) => ApprovalBlock): Promise<ApprovalBlock> {
    try {
      // IMMEDIATE: the read and the write under one write lock, so that two processes never both read the old row.
      return this.txStrike.immediate(user, next);
    } catch (err) {
      rethrow(err);
    }
  }

  async clear(user: string): Promise<boolean> {
    try {
      return this.sClear.run(user).changes === 1;
    } catch (err) {
      rethrow(err);
    }
  }

  async purgeExpired(before: number): Promise<number> {
    try {
      return this.sPurge.run(before, before).changes;
    } catch (err) {
      rethrow(err);
    }
  }
}
