// Challenge state between RADIUS legs in SQLite: a consumable, deleted atomically on use.

import type { Challenge, ChallengeRepo } from "../types.ts";
import { prep, rethrow, type StoreContext } from "./context.ts";

interface ChallengeRow {
  id: string;
  client_name: string;
  user_id: number;
  username: string;
  expires_at: number;
  failures: number;
  data: string;
}

const COLUMNS = "id, client_name, user_id, username, expires_at, failures, data";

function toChallenge(row: ChallengeRow): Challenge {
  return {
    id: row.id,
    clientName: row.client_name,
    userId: row.user_id,
    username: row.username,
    expiresAt: row.expires_at,
    failures: row.failures,
    data: row.data,
  };
}

/** A challenge is live while now < expiresAt. */
export class SqliteChallengeRepo implements ChallengeRepo {
  private readonly sPut;
  private readonly sFind;
  private readonly sConsume;
  private readonly sFail;
  private readonly sPurge;

  constructor(ctx: StoreContext) {
    const { db } = ctx;
    this.sPut = prep(
      db,
      `INSERT INTO challenges (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET client_name = excluded.client_name, user_id = excluded.user_id,
         username = excluded.username, expires_at = excluded.expires_at, failures = excluded.failures, data = excluded.data`,
    );
    this.sFind = prep<ChallengeRow>(db, `SELECT ${COLUMNS} FROM challenges WHERE id = ? AND expires_at > ?`);
    // DELETE … RETURNING is one atomic statement: of two concurrent callers exactly one gets the row.
    this.sConsume = prep<ChallengeRow>(db, `DELETE FROM challenges WHERE id = ? AND expires_at > ? RETURNING ${COLUMNS}`);
    this.sFail = prep<{ failures: number }>(db, "UPDATE challenges SET failures = failures + 1 WHERE id = ? RETURNING failures");
    this.sPurge = prep(db, "DELETE FROM challenges WHERE expires_at <= ?");
  }

  /** Inserts or replaces. Throws StoreError("unavailable") when the database cannot be written. */
  async put(c: Challenge): Promise<void> {
    try {
      this.sPut.run(c.id, c.clientName, c.userId, c.username, c.expiresAt, c.failures, c.data);
    } catch (err) {
      rethrow(err);
    }
  }

  async find(id: string, now: number): Promise<Challenge | undefined> {
    try {
      const row = this.sFind.get(id, now);
      return row ? toChallenge(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async consume(id: string, now: number): Promise<Challenge | undefined> {
    try {
      const row = this.sConsume.get(id, now);
      return row ? toChallenge(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async fail(id: string): Promise<number | undefined> {
    try {
      return this.sFail.get(id)?.failures;
    } catch (err) {
      rethrow(err);
    }
  }

  async purgeExpired(now: number): Promise<number> {
    try {
      return this.sPurge.run(now).changes;
    } catch (err) {
      rethrow(err);
    }
  }
}
