// Back-off lockout counters in SQLite, keyed by normalised identity and failure kind.

import type { FailureKind, LockoutRepo, LockoutState } from "../types.ts";
import { prep, rethrow, type StoreContext } from "./context.ts";

interface LockoutRow {
  subject: string;
  kind: string;
  failures: number;
  locked_until: number;
  last_failure_at: number;
}

function toState(row: LockoutRow): LockoutState {
  return {
    key: row.subject,
    kind: row.kind as FailureKind,
    failures: row.failures,
    lockedUntil: row.locked_until,
    lastFailureAt: row.last_failure_at,
  };
}

export class SqliteLockoutRepo implements LockoutRepo {
  private readonly sGet;
  private readonly sList;
  private readonly sBump;
  private readonly sSetLockedUntil;
  private readonly sReset;
  private readonly sClear;
  private readonly sPurge;
  private readonly txRecord;

  constructor(ctx: StoreContext) {
    const { db } = ctx;
    this.sGet = prep<LockoutRow>(db, "SELECT subject, kind, failures, locked_until, last_failure_at FROM lockouts WHERE subject = ? AND kind = ?");
    this.sList = prep<LockoutRow>(db, "SELECT subject, kind, failures, locked_until, last_failure_at FROM lockouts");
    this.sBump = prep<{ failures: number }>(
      db,
      `INSERT INTO lockouts (subject, kind, failures, locked_until, last_failure_at) VALUES (?, ?, 1, 0, ?)
       ON CONFLICT (subject, kind) DO UPDATE SET failures = lockouts.failures + 1, last_failure_at = excluded.last_failure_at
       RETURNING failures`,
    );
    this.sSetLockedUntil = prep(db, "UPDATE lockouts SET locked_until = ? WHERE subject = ? AND kind = ?");
    this.sReset = prep(db, "DELETE FROM lockouts WHERE subject = ? AND kind = ?");
    this.sClear = prep(db, "DELETE FROM lockouts WHERE subject = ?");
    this.sPurge = prep(db, "DELETE FROM lockouts WHERE last_failure_at < ? AND locked_until < ?");
    // Increment and the policy's lockedUntil in one write transaction, so concurrent failures
    // (server and a second process) never lose a count.
    this.txRecord = db.transaction((key: string, kind: FailureKind, now: number, lockedUntil: (failures: number) => number): LockoutState => {
      const failures = this.sBump.get(key, kind, now)!.failures;
      const until = lockedUntil(failures);
      this.sSetLockedUntil.run(until, key, kind);
      return { key, kind, failures, lockedUntil: until, lastFailureAt: now };
    });
  }

  async get(key: string, kind: FailureKind): Promise<LockoutState | undefined> {
    try {
      const row = this.sGet.get(key, kind);
      return row ? toState(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async list(): Promise<LockoutState[]> {
    try {
      return this.sList.all().map(toState);
    } catch (err) {
      rethrow(err);
    }
  }

  async recordFailure(key: string, kind: FailureKind, now: number, lockedUntil: (failures: number) => number): Promise<LockoutState> {
    try {
      return this.txRecord.immediate(key, kind, now, lockedUntil);
    } catch (err) {
      rethrow(err);
    }
  }

  async reset(key: string, kind: FailureKind): Promise<void> {
    try {
      this.sReset.run(key, kind);
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
}
