// Password-reset sessions in SQLite: created once, moved on by conditional updates (stage = from).

import type { PasswordResetRepo, PasswordResetSession, PasswordResetStage } from "../types.ts";
import { prep, rethrow, type StoreContext } from "./context.ts";

/** A password_reset_sessions row (both back-ends read the same columns). */
export interface PasswordResetRow {
  id: string;
  portal: string;
  username: string;
  known: number;
  stage: PasswordResetStage;
  code_approval: string | null;
  code_failures: number;
  approvals: string;
  approved_by: string | null;
  source: string | null;
  created_at: number;
  updated_at: number;
  expires_at: number;
}

export const PASSWORD_RESET_COLUMNS = "id, portal, username, known, stage, code_approval, code_failures, approvals, approved_by, source, created_at, updated_at, expires_at";

export function toPasswordResetSession(r: PasswordResetRow): PasswordResetSession {
  let approvals: string[] = [];
  try {
    const parsed: unknown = JSON.parse(r.approvals);
    if (Array.isArray(parsed)) approvals = parsed.filter((x): x is string => typeof x === "string");
  } catch {
    approvals = [];
  }
  return {
    id: r.id,
    portal: r.portal,
    username: r.username,
    known: r.known === 1,
    stage: r.stage,
    codeApproval: r.code_approval,
    codeFailures: r.code_failures,
    approvals,
    approvedBy: r.approved_by,
    source: r.source,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    expiresAt: r.expires_at,
  };
}

export class SqlitePasswordResetRepo implements PasswordResetRepo {
  private readonly sInsert;
  private readonly sGet;
  private readonly sAdvance;
  private readonly sFail;
  private readonly sPurge;

  constructor(ctx: StoreContext) {
    const { db } = ctx;
    this.sInsert = prep(db, `INSERT INTO password_reset_sessions (${PASSWORD_RESET_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    this.sGet = prep<PasswordResetRow>(db, `SELECT ${PASSWORD_RESET_COLUMNS} FROM password_reset_sessions WHERE id = ? AND expires_at > ?`);
    this.sAdvance = prep(
      db,
      `UPDATE password_reset_sessions SET stage = ?, code_approval = COALESCE(?, code_approval), approvals = COALESCE(?, approvals),
         approved_by = COALESCE(?, approved_by), updated_at = ? WHERE id = ? AND stage = ? AND expires_at > ?`,
    );
    this.sFail = prep<{ code_failures: number }>(db, "UPDATE password_reset_sessions SET code_failures = code_failures + 1, updated_at = ? WHERE id = ? RETURNING code_failures");
    this.sPurge = prep(db, "DELETE FROM password_reset_sessions WHERE expires_at <= ?");
  }

  async create(s: PasswordResetSession): Promise<void> {
    try {
      this.sInsert.run(s.id, s.portal, s.username, s.known ? 1 : 0, s.stage, s.codeApproval, s.codeFailures, JSON.stringify(s.approvals), s.approvedBy, s.source, s.createdAt, s.updatedAt, s.expiresAt);
    } catch (err) {
      rethrow(err);
    }
  }

  async get(id: string, now: number): Promise<PasswordResetSession | undefined> {
    try {
      const row = this.sGet.get(id, now);
      return row ? toPasswordResetSession(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async advance(id: string, from: PasswordResetStage, patch: Partial<Pick<PasswordResetSession, "stage" | "codeApproval" | "approvals" | "approvedBy">>, now: number): Promise<boolean> {
    try {
      const r = this.sAdvance.run(patch.stage ?? from, patch.codeApproval ?? null, patch.approvals ? JSON.stringify(patch.approvals) : null, patch.approvedBy ?? null, now, id, from, now);
      return r.changes === 1;
    } catch (err) {
      rethrow(err);
    }
  }

  async failCode(id: string, now: number): Promise<number | undefined> {
    try {
      return this.sFail.get(now, id)?.code_failures;
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
