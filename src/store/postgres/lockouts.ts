// Back-off lockout counters in PostgreSQL, shared by every node: each failure is one upsert that
// increments under the row's lock, so concurrent failures on several nodes never lose a count.

import type { FailureKind, FailurePolicy, KnownSource, LockoutRepo, LockoutState } from "../types.ts";
import { BatchedRead } from "./batch.ts";
import { pgPrep, rethrow, type PgStoreContext } from "./context.ts";

interface LockoutRow {
  subject: string;
  kind: string;
  source: string;
  failures: number;
  locked_until: number;
  last_failure_at: number;
}

interface KnownRow {
  subject: string;
  source: string;
  last_success_at: number;
}

function toState(row: LockoutRow): LockoutState {
  return {
    key: row.subject,
    kind: row.kind as FailureKind,
    source: row.source,
    failures: row.failures,
    lockedUntil: row.locked_until,
    lastFailureAt: row.last_failure_at,
  };
}

const toKnown = (row: KnownRow): KnownSource => ({ key: row.subject, source: row.source, lastSuccessAt: row.last_success_at });

const COLUMNS = "subject, kind, source, failures, locked_until, last_failure_at";

export class PgLockoutRepo implements LockoutRepo {
  private readonly sGet;
  private readonly sList;
  private readonly sListFor;
  private readonly sBump;
  private readonly sSetLockedUntil;
  private readonly sReset;
  private readonly sClear;
  private readonly sPurge;
  private readonly sKnownAll;
  private readonly sKnownRow;
  private readonly sKnownFor;
  private readonly sUpsertKnown;
  private readonly sExpireKnown;
  private readonly sTrimKnown;
  private readonly sForget;
  private readonly getBatch: BatchedRead<LockoutRow>;
  private readonly knownBatch: BatchedRead<KnownRow>;

  constructor(private readonly ctx: PgStoreContext) {
    const { db } = ctx;
    this.sGet = pgPrep<LockoutRow>(db, `SELECT ${COLUMNS} FROM lockouts WHERE subject = ? AND kind = ? AND source = ?`);
    this.sList = pgPrep<LockoutRow>(db, `SELECT ${COLUMNS} FROM lockouts ORDER BY subject, kind, source`);
    this.sListFor = pgPrep<LockoutRow>(db, `SELECT ${COLUMNS} FROM lockouts WHERE subject = ? ORDER BY kind, source`);
    // A counter whose last failure is older than the policy's reset restarts from one.
    this.sBump = pgPrep<{ failures: number }>(
      db,
      `INSERT INTO lockouts (subject, kind, source, failures, locked_until, last_failure_at) VALUES (?1, ?2, ?3, 1, 0, ?4)
       ON CONFLICT (subject, kind, source) DO UPDATE SET
         failures = CASE WHEN lockouts.last_failure_at < ?5 THEN 1 ELSE lockouts.failures + 1 END,
         last_failure_at = excluded.last_failure_at
       RETURNING failures`,
    );
    this.sSetLockedUntil = pgPrep(db, "UPDATE lockouts SET locked_until = ? WHERE subject = ? AND kind = ? AND source = ?");
    this.sReset = pgPrep(db, "DELETE FROM lockouts WHERE subject = ? AND kind = ? AND source = ?");
    this.sClear = pgPrep(db, "DELETE FROM lockouts WHERE subject = ?");
    this.sPurge = pgPrep(db, "DELETE FROM lockouts WHERE last_failure_at < ? AND locked_until < ?");
    this.sKnownRow = pgPrep<KnownRow>(db, "SELECT subject, source, last_success_at FROM known_sources WHERE subject = ? AND source = ?");
    this.sKnownAll = pgPrep<KnownRow>(db, "SELECT subject, source, last_success_at FROM known_sources ORDER BY subject, last_success_at DESC, source");
    this.sKnownFor = pgPrep<KnownRow>(db, "SELECT subject, source, last_success_at FROM known_sources WHERE subject = ? ORDER BY last_success_at DESC, source");
    // Refreshed in place (an older success never moves a record back); `inserted` says whether the
    // source is new, the only case that can take the identity past its bound.
    this.sUpsertKnown = pgPrep<{ inserted: boolean }>(
      db,
      `INSERT INTO known_sources (subject, source, last_success_at) VALUES (?, ?, ?)
       ON CONFLICT (subject, source) DO UPDATE SET last_success_at = GREATEST(known_sources.last_success_at, excluded.last_success_at)
       RETURNING (xmax = 0) AS inserted`,
    );
    this.sExpireKnown = pgPrep(db, "DELETE FROM known_sources WHERE subject = ? AND last_success_at < ?");
    // All but the `keep` most recent (ties: by source, as knownSources lists them).
    this.sTrimKnown = pgPrep(
      db,
      `DELETE FROM known_sources WHERE subject = ?1 AND source IN (
         SELECT source FROM known_sources WHERE subject = ?1 ORDER BY last_success_at DESC, source OFFSET ?2)`,
    );
    this.sForget = pgPrep(db, "DELETE FROM known_sources WHERE last_success_at < ?");
    this.getBatch = new BatchedRead<LockoutRow>(
      db,
      `SELECT l.subject, l.kind, l.source, l.failures, l.locked_until, l.last_failure_at
       FROM lockouts l JOIN jsonb_to_recordset(?1::text::jsonb) AS k(subject text, kind text, source text)
         ON l.subject = k.subject AND l.kind = k.kind AND l.source = k.source
       WHERE l.subject = ANY (ARRAY(SELECT jsonb_array_elements(?1::text::jsonb) ->> 'subject'))`,
      (r) => JSON.stringify([r.subject, r.kind, r.source]),
      (...p) => this.sGet.all(...p),
    );
    this.knownBatch = new BatchedRead<KnownRow>(
      db,
      `SELECT s.subject, s.source, s.last_success_at
       FROM known_sources s JOIN jsonb_to_recordset(?1::text::jsonb) AS k(subject text, source text) ON s.subject = k.subject AND s.source = k.source
       WHERE s.subject = ANY (ARRAY(SELECT jsonb_array_elements(?1::text::jsonb) ->> 'subject'))`,
      (r) => JSON.stringify([r.subject, r.source]),
      (...p) => this.sKnownRow.all(...p),
    );
  }

  async get(key: string, kind: FailureKind, source = ""): Promise<LockoutState | undefined> {
    try {
      const row = (await this.getBatch.load(JSON.stringify([key, kind, source]), { subject: key, kind, source }, [key, kind, source]))[0];
      return row ? toState(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async list(key?: string): Promise<LockoutState[]> {
    try {
      return (key === undefined ? await this.sList.all() : await this.sListFor.all(key)).map(toState);
    } catch (err) {
      rethrow(err);
    }
  }

  /** Both increments and the policy's lockedUntil in one transaction. */
  async recordFailure(key: string, kind: FailureKind, source: string, now: number, policy: FailurePolicy): Promise<{ source: LockoutState; identity: LockoutState }> {
    if (source === "") throw new TypeError("recordFailure needs the failure's source");
    try {
      return await this.ctx.db.transaction(async () => {
        const bump = async (scope: "source" | "identity", at: string): Promise<LockoutState> => {
          const failures = (await this.sBump.get(key, kind, at, now, policy.staleBefore))!.failures;
          const until = policy.lockedUntil(scope, failures);
          await this.sSetLockedUntil.run(until, key, kind, at);
          return { key, kind, source: at, failures, lockedUntil: until, lastFailureAt: now };
        };
        // Source row first, then the identity row: every node takes the two row locks in one order.
        const s = await bump("source", source);
        const identity = await bump("identity", "");
        return { source: s, identity };
      });
    } catch (err) {
      rethrow(err);
    }
  }

  async reset(key: string, kind: FailureKind, source = ""): Promise<void> {
    try {
      await this.sReset.run(key, kind, source);
    } catch (err) {
      rethrow(err);
    }
  }

  async clear(key: string): Promise<boolean> {
    try {
      return (await this.sClear.run(key)) > 0;
    } catch (err) {
      rethrow(err);
    }
  }

  async purgeStale(lastFailureBefore: number, now: number): Promise<number> {
    try {
      return await this.sPurge.run(lastFailureBefore, now);
    } catch (err) {
      rethrow(err);
    }
  }

  async knownSource(key: string, source: string): Promise<number | undefined> {
    try {
      return (await this.knownBatch.load(JSON.stringify([key, source]), { subject: key, source }, [key, source]))[0]?.last_success_at;
    } catch (err) {
      rethrow(err);
    }
  }

  async knownSources(key?: string): Promise<KnownSource[]> {
    try {
      return (key === undefined ? await this.sKnownAll.all() : await this.sKnownFor.all(key)).map(toKnown);
    } catch (err) {
      rethrow(err);
    }
  }

  /**
   * A known source's record is refreshed in place by one statement; a new one then forgets the
   * identity's expired sources and drops the oldest beyond `keep`.
   */
  async recordSuccess(key: string, source: string, now: number, bounds: { keep: number; forgetBefore: number }): Promise<void> {
    try {
      const row = await this.sUpsertKnown.get(key, source, now);
      if (!row?.inserted) return;
      await this.sExpireKnown.run(key, bounds.forgetBefore);
      await this.sTrimKnown.run(key, bounds.keep);
    } catch (err) {
      rethrow(err);
    }
  }

  async forgetSources(before: number): Promise<number> {
    try {
      return await this.sForget.run(before);
    } catch (err) {
      rethrow(err);
    }
  }
}
