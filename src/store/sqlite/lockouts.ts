// Back-off lockout counters in SQLite, keyed by normalised identity, failure kind and source (""
// for the identity's counter across every source), and the sources each identity logged in from.

import type { FailureKind, FailurePolicy, KnownSource, LockoutRepo, LockoutState } from "../types.ts";
import { prep, rethrow, type StoreContext } from "./context.ts";
import { GROUP_COMMIT_MAX } from "./tokens.ts";

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

/** A known-source write waiting for the next group commit. */
interface PendingSuccess {
  key: string;
  source: string;
  now: number;
  keep: number;
  forgetBefore: number;
  resolve(): void;
  reject(err: unknown): void;
}

const toKnown = (row: KnownRow): KnownSource => ({ key: row.subject, source: row.source, lastSuccessAt: row.last_success_at });

const COLUMNS = "subject, kind, source, failures, locked_until, last_failure_at";

export class SqliteLockoutRepo implements LockoutRepo {
  private readonly sGet;
  private readonly sList;
  private readonly sListFor;
  private readonly sBump;
  private readonly sSetLockedUntil;
  private readonly sReset;
  private readonly sClear;
  private readonly sPurge;
  private readonly sKnown;
  private readonly sKnownAll;
  private readonly sKnownFor;
  private readonly sTouchKnown;
  private readonly sInsertKnown;
  private readonly sExpireKnown;
  private readonly sCountKnown;
  private readonly sTrimKnown;
  private readonly sForget;
  private readonly txRecord;
  private readonly txSuccess;

  constructor(ctx: StoreContext) {
    const { db } = ctx;
    this.sGet = prep<LockoutRow>(db, `SELECT ${COLUMNS} FROM lockouts WHERE subject = ? AND kind = ? AND source = ?`);
    this.sList = prep<LockoutRow>(db, `SELECT ${COLUMNS} FROM lockouts ORDER BY subject, kind, source`);
    this.sListFor = prep<LockoutRow>(db, `SELECT ${COLUMNS} FROM lockouts WHERE subject = ? ORDER BY kind, source`);
    // A counter whose last failure is older than the policy's reset restarts from one.
    this.sBump = prep<{ failures: number }>(
      db,
      `INSERT INTO lockouts (subject, kind, source, failures, locked_until, last_failure_at) VALUES (?1, ?2, ?3, 1, 0, ?4)
       ON CONFLICT (subject, kind, source) DO UPDATE SET
         failures = CASE WHEN lockouts.last_failure_at < ?5 THEN 1 ELSE lockouts.failures + 1 END,
         last_failure_at = excluded.last_failure_at
       RETURNING failures`,
    );
    this.sSetLockedUntil = prep(db, "UPDATE lockouts SET locked_until = ? WHERE subject = ? AND kind = ? AND source = ?");
    this.sReset = prep(db, "DELETE FROM lockouts WHERE subject = ? AND kind = ? AND source = ?");
    this.sClear = prep(db, "DELETE FROM lockouts WHERE subject = ?");
    this.sPurge = prep(db, "DELETE FROM lockouts WHERE last_failure_at < ? AND locked_until < ?");
    this.sKnown = prep<{ last_success_at: number }>(db, "SELECT last_success_at FROM known_sources WHERE subject = ? AND source = ?");
    this.sKnownAll = prep<KnownRow>(db, "SELECT subject, source, last_success_at FROM known_sources ORDER BY subject, last_success_at DESC, source");
    this.sKnownFor = prep<KnownRow>(db, "SELECT subject, source, last_success_at FROM known_sources WHERE subject = ? ORDER BY last_success_at DESC, source");
    // An older success never moves a record back.
    this.sTouchKnown = prep(db, "UPDATE known_sources SET last_success_at = max(last_success_at, ?) WHERE subject = ? AND source = ?");
    this.sInsertKnown = prep(db, "INSERT INTO known_sources (subject, source, last_success_at) VALUES (?, ?, ?)");
    this.sExpireKnown = prep(db, "DELETE FROM known_sources WHERE subject = ? AND last_success_at < ?");
    this.sCountKnown = prep<{ n: number }>(db, "SELECT count(*) AS n FROM known_sources WHERE subject = ?");
    // All but the `keep` most recent (ties: by source, as knownSources lists them).
    this.sTrimKnown = prep(
      db,
      `DELETE FROM known_sources WHERE subject = ?1 AND source IN (
         SELECT source FROM known_sources WHERE subject = ?1 ORDER BY last_success_at DESC, source LIMIT -1 OFFSET ?2)`,
    );
    this.sForget = prep(db, "DELETE FROM known_sources WHERE last_success_at < ?");
    // Both increments and the policy's lockedUntil in one write transaction, so concurrent failures
    // (server and a second process) never lose a count.
    this.txRecord = db.transaction((key: string, kind: FailureKind, source: string, now: number, policy: FailurePolicy) => {
      const bump = (scope: "source" | "identity", at: string): LockoutState => {
        const failures = this.sBump.get(key, kind, at, now, policy.staleBefore)!.failures;
        const until = policy.lockedUntil(scope, failures);
        this.sSetLockedUntil.run(until, key, kind, at);
        return { key, kind, source: at, failures, lockedUntil: until, lastFailureAt: now };
      };
      return { source: bump("source", source), identity: bump("identity", "") };
    });
    // A known source's record is refreshed in place; only a new one can take the identity past its
    // bound, so only then are its expired sources forgotten and the oldest beyond `keep` dropped.
    this.txSuccess = db.transaction((batch: readonly PendingSuccess[]) => {
      for (const w of batch) this.applySuccess(w);
    });
  }

  async get(key: string, kind: FailureKind, source = ""): Promise<LockoutState | undefined> {
    try {
      const row = this.sGet.get(key, kind, source);
      return row ? toState(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async list(key?: string): Promise<LockoutState[]> {
    try {
      return (key === undefined ? this.sList.all() : this.sListFor.all(key)).map(toState);
    } catch (err) {
      rethrow(err);
    }
  }

  async recordFailure(key: string, kind: FailureKind, source: string, now: number, policy: FailurePolicy): Promise<{ source: LockoutState; identity: LockoutState }> {
    if (source === "") throw new TypeError("recordFailure needs the failure's source");
    try {
      return this.txRecord.immediate(key, kind, source, now, policy);
    } catch (err) {
      rethrow(err);
    }
  }

  async reset(key: string, kind: FailureKind, source = ""): Promise<void> {
    try {
      this.sReset.run(key, kind, source);
    } catch (err) {
      rethrow(err);
    }
  }

  async clear(key: string): Promise<boolean> {
    try {
      return this.sClear.run(key).changes > 0;
    } catch (err) {
      rethrow(err);
    }
  }

  async purgeStale(lastFailureBefore: number, now: number): Promise<number> {
    try {
      return this.sPurge.run(lastFailureBefore, now).changes;
    } catch (err) {
      rethrow(err);
    }
  }

  async knownSource(key: string, source: string): Promise<number | undefined> {
    try {
      return this.sKnown.get(key, source)?.last_success_at;
    } catch (err) {
      rethrow(err);
    }
  }

  async knownSources(key?: string): Promise<KnownSource[]> {
    try {
      return (key === undefined ? this.sKnownAll.all() : this.sKnownFor.all(key)).map(toKnown);
    } catch (err) {
      rethrow(err);
    }
  }

  /**
   * Resolves once the write has committed. Writes arriving in the same event-loop turn share one
   * transaction (group commit, as the tokens' high-water marks do): the first logins of the day
   * come in bursts, and one commit per login would cost each of them a commit of its own.
   */
  recordSuccess(key: string, source: string, now: number, bounds: { keep: number; forgetBefore: number }): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ key, source, now, keep: bounds.keep, forgetBefore: bounds.forgetBefore, resolve, reject });
      if (this.pending.length >= GROUP_COMMIT_MAX) return this.commitPending();
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(this.endOfTurn);
      }
    });
  }

  private pending: PendingSuccess[] = [];
  private flushScheduled = false;

  private readonly endOfTurn = (): void => {
    this.flushScheduled = false;
    this.commitPending();
  };

  /** Commits every pending known-source write in one transaction and settles their promises. */
  private commitPending(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    try {
      this.txSuccess.immediate(batch);
    } catch (err) {
      for (const w of batch) {
        try {
          rethrow(err);
        } catch (mapped) {
          w.reject(mapped);
        }
      }
      return;
    }
    for (const w of batch) w.resolve();
  }

  /**
   * A known source's record is refreshed in place; only a new one can take the identity past its
   * bound, so only then are its expired sources forgotten and the oldest beyond `keep` dropped.
   */
  private applySuccess(w: PendingSuccess): void {
    if (this.sTouchKnown.run(w.now, w.key, w.source).changes > 0) return;
    this.sInsertKnown.run(w.key, w.source, w.now);
    this.sExpireKnown.run(w.key, w.forgetBefore);
    if (this.sCountKnown.get(w.key)!.n > w.keep) this.sTrimKnown.run(w.key, w.keep);
  }

  async forgetSources(before: number): Promise<number> {
    try {
      return this.sForget.run(before).changes;
    } catch (err) {
      rethrow(err);
    }
  }
}
