// Password-reset sessions in PostgreSQL: created once, moved on by conditional updates (stage = from),
// so that of two nodes handling the same session's pages exactly one moves it on.

import type { PasswordResetRepo, PasswordResetSession, PasswordResetStage } from "../types.ts";
import { PASSWORD_RESET_COLUMNS, toPasswordResetSession, type PasswordResetRow } from "../sqlite/password-resets.ts";
import { pgPrep, rethrow, type PgStoreContext } from "./context.ts";

export class PgPasswordResetRepo implements PasswordResetRepo {
  private readonly sInsert;
  private readonly sGet;
  private readonly sAdvance;
  private readonly sFail;
  private readonly sPurge;

  constructor(ctx: PgStoreContext) {
    const { db } = ctx;
    this.sInsert = pgPrep(db, `INSERT INTO password_reset_sessions (${PASSWORD_RESET_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    this.sGet = pgPrep<PasswordResetRow>(db, `SELECT ${PASSWORD_RESET_COLUMNS} FROM password_reset_sessions WHERE id = ? AND expires_at > ?`);
    this.sAdvance = pgPrep(
      db,
      `UPDATE password_reset_sessions SET stage = ?, code_approval = COALESCE(?, code_approval), approvals = COALESCE(?, approvals),
         approved_by = COALESCE(?, approved_by), updated_at = ? WHERE id = ? AND stage = ? AND expires_at > ?`,
    );
    this.sFail = pgPrep<{ code_failures: number }>(db, "UPDATE password_reset_sessions SET code_failures = code_failures + 1, updated_at = ? WHERE id = ? RETURNING code_failures");
    this.sPurge = pgPrep(db, "DELETE FROM password_reset_sessions WHERE expires_at <= ?");
  }

  async create(s: PasswordResetSession): Promise<void> {
    try {
      await this.sInsert.run(s.id, s.portal, s.username, s.known ? 1 : 0, s.stage, s.codeApproval, s.codeFailures, JSON.stringify(s.approvals), s.approvedBy, s.source, s.createdAt, s.updatedAt, s.expiresAt);
    } catch (err) {
      rethrow(err);
    }
  }

  async get(id: string, now: number): Promise<PasswordResetSession | undefined> {
    try {
      const row = await this.sGet.get(id, now);
      return row ? toPasswordResetSession(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async advance(id: string, from: PasswordResetStage, patch: Partial<Pick<PasswordResetSession, "stage" | "codeApproval" | "approvals" | "approvedBy">>, now: number): Promise<boolean> {
    try {
      return (await this.sAdvance.run(patch.stage ?? from, patch.codeApproval ?? null, patch.approvals ? JSON.stringify(patch.approvals) : null, patch.approvedBy ?? null, now, id, from, now)) === 1;
    } catch (err) {
      rethrow(err);
    }
  }

  async failCode(id: string, now: number): Promise<number | undefined> {
    try {
      return (await this.sFail.get(now, id))?.code_failures;
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
