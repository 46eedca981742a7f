// Admin web UI accounts and sessions in PostgreSQL, with the same statements as SQLite: the TOTP
// secret sealed per account name, its high-water mark moved only upwards by one guarded UPDATE
// (a code is accepted once, whichever node signs in), sessions keyed by the SHA-256 of their cookie.

import type { AdminAccount, AdminAccountRepo, AdminSession } from "../types.ts";
import type { Sealer } from "../sealer.ts";
import { ADMIN_ACCOUNT_COLUMNS, adminTotpContext, toAdminAccount, toAdminSession, type AdminAccountRow, type AdminSessionRow } from "../sqlite/admin-accounts.ts";
import { pgPrep, rethrow, type PgStoreContext } from "./context.ts";

export class PgAdminAccountRepo implements AdminAccountRepo {
  private readonly sealer: Sealer;
  private readonly now: () => number;
  private readonly sAdd;
  private readonly sGet;
  private readonly sGetId;
  private readonly sList;
  private readonly sRemove;
  private readonly sSetTotp;
  private readonly sSetPassword;
  private readonly sEndSessions;
  private readonly sEndOtherSessions;
  private readonly sAdvance;
  private readonly sAddSession;
  private readonly sGetSession;
  private readonly sTouch;
  private readonly sDeleteSession;
  private readonly sPurge;

  constructor(ctx: PgStoreContext) {
    const { db } = ctx;
    this.sealer = ctx.sealer;
    this.now = ctx.now;
    this.sAdd = pgPrep<AdminAccountRow>(db, `INSERT INTO admin_accounts (name, role, password_hash, totp_secret, totp_last_step, created_at) VALUES (?, ?, ?, ?, 0, ?) RETURNING ${ADMIN_ACCOUNT_COLUMNS}`);
    this.sGet = pgPrep<AdminAccountRow>(db, `SELECT ${ADMIN_ACCOUNT_COLUMNS} FROM admin_accounts WHERE name = ?`);
    this.sGetId = pgPrep<AdminAccountRow>(db, `SELECT ${ADMIN_ACCOUNT_COLUMNS} FROM admin_accounts WHERE id = ?`);
    this.sList = pgPrep<AdminAccountRow>(db, `SELECT ${ADMIN_ACCOUNT_COLUMNS} FROM admin_accounts ORDER BY name`);
    this.sRemove = pgPrep(db, "DELETE FROM admin_accounts WHERE name = ?");
    this.sSetTotp = pgPrep(db, "UPDATE admin_accounts SET totp_secret = ?, totp_last_step = 0 WHERE name = ?");
    this.sSetPassword = pgPrep(db, "UPDATE admin_accounts SET password_hash = ? WHERE name = ?");
    this.sEndSessions = pgPrep(db, "DELETE FROM admin_sessions WHERE account_id = (SELECT id FROM admin_accounts WHERE name = ?)");
    this.sEndOtherSessions = pgPrep(db, "DELETE FROM admin_sessions WHERE account_id = (SELECT id FROM admin_accounts WHERE name = ?) AND token_hash <> ?");
    this.sAdvance = pgPrep(db, "UPDATE admin_accounts SET totp_last_step = ?, last_sign_in_at = ? WHERE id = ? AND totp_last_step < ?");
    this.sAddSession = pgPrep(db, "INSERT INTO admin_sessions (token_hash, account_id, csrf, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)");
    this.sGetSession = pgPrep<AdminSessionRow>(db, "SELECT token_hash, account_id, csrf, created_at, last_seen_at, expires_at FROM admin_sessions WHERE token_hash = ?");
    this.sTouch = pgPrep(db, "UPDATE admin_sessions SET last_seen_at = ? WHERE token_hash = ?");
    this.sDeleteSession = pgPrep(db, "DELETE FROM admin_sessions WHERE token_hash = ?");
    this.sPurge = pgPrep(db, "DELETE FROM admin_sessions WHERE expires_at <= ? OR last_seen_at < ?");
  }

  async add(a: { name: string; role: AdminAccount["role"]; passwordHash: string; totpSecret: Uint8Array }): Promise<AdminAccount> {
    try {
      const row = (await this.sAdd.get(a.name, a.role, a.passwordHash, this.sealer.seal(a.totpSecret, adminTotpContext(a.name)), this.now()))!;
      return toAdminAccount(row, this.sealer);
    } catch (err) {
      rethrow(err, { conflict: `admin account ${a.name} exists` });
    }
  }

  async get(name: string): Promise<AdminAccount | undefined> {
    try {
      const row = await this.sGet.get(name);
      return row ? toAdminAccount(row, this.sealer) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async getById(id: number): Promise<AdminAccount | undefined> {
    try {
      const row = await this.sGetId.get(id);
      return row ? toAdminAccount(row, this.sealer) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async list(): Promise<AdminAccount[]> {
    try {
      return (await this.sList.all()).map((r) => toAdminAccount(r, this.sealer));
    } catch (err) {
      rethrow(err);
    }
  }

  async remove(name: string): Promise<boolean> {
    try {
      return (await this.sRemove.run(name)) === 1;
    } catch (err) {
      rethrow(err);
    }
  }

  async setTotp(name: string, secret: Uint8Array): Promise<boolean> {
    try {
      const changed = (await this.sSetTotp.run(this.sealer.seal(secret, adminTotpContext(name)), name)) === 1;
      if (changed) await this.sEndSessions.run(name);
      return changed;
    } catch (err) {
      rethrow(err);
    }
  }

  async setPassword(name: string, passwordHash: string, { keepSession }: { keepSession?: string } = {}): Promise<boolean> {
    try {
      const changed = (await this.sSetPassword.run(passwordHash, name)) === 1;
      if (changed) {
        if (keepSession === undefined) await this.sEndSessions.run(name);
        else await this.sEndOtherSessions.run(name, keepSession);
      }
      return changed;
    } catch (err) {
      rethrow(err);
    }
  }

  async advanceStep(id: number, step: number, now: number): Promise<boolean> {
    try {
      return (await this.sAdvance.run(step, now, id, step)) === 1;
    } catch (err) {
      rethrow(err);
    }
  }

  async createSession(s: AdminSession): Promise<void> {
    try {
      await this.sAddSession.run(s.tokenHash, s.accountId, s.csrf, s.createdAt, s.lastSeenAt, s.expiresAt);
    } catch (err) {
      rethrow(err);
    }
  }

  async getSession(tokenHash: string): Promise<AdminSession | undefined> {
    try {
      const r = await this.sGetSession.get(tokenHash);
      return r ? toAdminSession(r) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async touchSession(tokenHash: string, now: number): Promise<void> {
    try {
      await this.sTouch.run(now, tokenHash);
    } catch (err) {
      rethrow(err);
    }
  }

  async deleteSession(tokenHash: string): Promise<void> {
    try {
      await this.sDeleteSession.run(tokenHash);
    } catch (err) {
      rethrow(err);
    }
  }

  async purgeSessions(now: number, idleMs: number): Promise<number> {
    try {
      return await this.sPurge.run(now, now - idleMs);
    } catch (err) {
      rethrow(err);
    }
  }
}
