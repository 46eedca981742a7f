// Challenge state between RADIUS legs in PostgreSQL: a consumable, deleted atomically on use, so
// any node can answer the second leg and of two nodes completing it at once exactly one wins.

import type { Challenge, ChallengeRepo } from "../types.ts";
import { pgPrep, rethrow, type PgStoreContext } from "./context.ts";

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

export class PgChallengeRepo implements ChallengeRepo {
  private readonly sPut;
  private readonly sFind;
  private readonly sConsume;
  private readonly sFail;
  private readonly sPurge;

  constructor(ctx: PgStoreContext) {
    const { db } = ctx;
    this.sPut = pgPrep(
      db,
      `INSERT INTO challenges (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET client_name = excluded.client_name, user_id = excluded.user_id,
         username = excluded.username, expires_at = excluded.expires_at, failures = excluded.failures, data = excluded.data`,
    );
    this.sFind = pgPrep<ChallengeRow>(db, `SELECT ${COLUMNS} FROM challenges WHERE id = ? AND expires_at > ?`);
    // DELETE … RETURNING is one atomic statement: of two concurrent callers exactly one gets the row.
    this.sConsume = pgPrep<ChallengeRow>(db, `DELETE FROM challenges WHERE id = ? AND expires_at > ? RETURNING ${COLUMNS}`);
    this.sFail = pgPrep<{ failures: number }>(db, "UPDATE challenges SET failures = failures + 1 WHERE id = ? RETURNING failures");
    this.sPurge = pgPrep(db, "DELETE FROM challenges WHERE expires_at <= ?");
  }

  async put(c: Challenge): Promise<void> {
    try {
      await this.sPut.run(c.id, c.clientName, c.userId, c.username, c.expiresAt, c.failures, c.data);
    } catch (err) {
      rethrow(err);
    }
  }

  async find(id: string, now: number): Promise<Challenge | undefined> {
    try {
      const row = await this.sFind.get(id, now);
      return row ? toChallenge(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async consume(id: string, now: number): Promise<Challenge | undefined> {
    try {
      const row = await this.sConsume.get(id, now);
      return row ? toChallenge(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async fail(id: string): Promise<number | undefined> {
    try {
      return (await this.sFail.get(id))?.failures;
    } catch (err) {
      rethrow(err);
    }
  }

  async purgeExpired(now: number): Promise<number> {
    try {
      return await this.sPurge.run(now);
    } catch (err) {
      rethrow(err);
    }
  }
}
