// Admin web UI accounts and sessions in SQLite: the TOTP secret sealed per account name, its
// high-water mark moved only upwards, sessions keyed by the SHA-256 of their cookie value.

import type { SealContext } from "../seal.ts";
import type { AdminAccount, AdminAccountRepo, AdminSession } from "../types.ts";
import { prep, rethrow, type Sealer, type StoreContext } from "./context.ts";

/** Where an admin account's TOTP secret is sealed: bound to the account name. */
export function adminTotpContext(name: string): SealContext {
  return { table: "admin_accounts", column: "totp_secret", rowKey: name };
}

/** An admin_accounts row (both back-ends read the same columns). */
export interface AdminAccountRow {
  id: number;
  name: string;
  role: AdminAccount["role"];
  password_hash: string;
  totp_secret: string;
  totp_last_step: number;
  created_at: number;
  last_sign_in_at: number | null;
}

export interface AdminSessionRow {
  token_hash: string;
  account_id: number;
  csrf: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
}

export const ADMIN_ACCOUNT_COLUMNS = "id, name, role, password_hash, totp_secret, totp_last_step, created_at, last_sign_in_at";

/** An account from its row, the TOTP secret opened. */
export function toAdminAccount(r: AdminAccountRow, sealer: Sealer): AdminAccount {
  return {
    id: r.id,
    name: r.name,
    role: r.role,
    passwordHash: r.password_hash,
    totpSecret: sealer.open(r.totp_secret, adminTotpContext(r.name)),
    totpLastStep: r.totp_last_step,
    createdAt: r.created_at,
    lastSignInAt: r.last_sign_in_at,
  };
}

export function toAdminSession(r: AdminSessionRow): AdminSession {
  return { tokenHash: r.token_hash, accountId: r.account_id, csrf: r.csrf, createdAt: r.created_at, lastSeenAt: r.last_seen_at, expiresAt: r.expires_at };
}

export class SqliteAdminAccountRepo implements AdminAccountRepo {
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

  constructor(ctx: StoreContext) {
    const { db } = ctx;
    this.sealer = ctx.sealer;
    this.now = ctx.now;
    this.sAdd = prep<AdminAccountRow>(db, `INSERT INTO admin_accounts (name, role, password_hash, totp_secret, totp_last_step, created_at) VALUES (?, ?, ?, ?, 0, ?) RETURNING ${ADMIN_ACCOUNT_COLUMNS}`);
    this.sGet = prep<AdminAccountRow>(db, `SELECT ${ADMIN_ACCOUNT_COLUMNS} FROM admin_accounts WHERE name = ?`);
    this.sGetId = prep<AdminAccountRow>(db, `SELECT ${ADMIN_ACCOUNT_COLUMNS} FROM admin_accounts WHERE id = ?`);
    this.sList = prep<AdminAccountRow>(db, `SELECT ${ADMIN_ACCOUNT_COLUMNS} FROM admin_accounts ORDER BY name`);
    this.sRemove = prep(db, "DELETE FROM admin_accounts WHERE name = ?");
    this.sSetTotp = prep(db, "UPDATE admin_accounts SET totp_secret = ?, totp_last_step = 0 WHERE name = ?");
    this.sSetPassword = prep(db, "UPDATE admin_accounts SET password_hash = ? WHERE name = ?");
    this.sEndSessions = prep(db, "DELETE FROM admin_sessions WHERE account_id = (SELECT id FROM admin_accounts WHERE name = ?)");
    this.sEndOtherSessions = prep(db, "DELETE FROM admin_sessions WHERE account_id = (SELECT id FROM admin_accounts WHERE name = ?) AND token_hash <> ?");
    this.sAdvance = prep(db, "UPDATE admin_accounts SET totp_last_step = ?, last_sign_in_at = ? WHERE id = ? AND totp_last_step < ?");
    this.sAddSession = prep(db, "INSERT INTO admin_sessions (token_hash, account_id, csrf, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)");
    this.sGetSession = prep<AdminSessionRow>(db, "SELECT token_hash, account_id, csrf, created_at, last_seen_at, expires_at FROM admin_sessions WHERE token_hash = ?");
    this.sTouch = prep(db, "UPDATE admin_sessions SET last_seen_at = ? WHERE token_hash = ?");
    this.sDeleteSession = prep(db, "DELETE FROM admin_sessions WHERE token_hash = ?");
    this.sPurge = prep(db, "DELETE FROM admin_sessions WHERE expires_at <= ? OR last_seen_at < ?");
  }

  async add(a: { name: string; role: AdminAccount["role"]; passwordHash: string; totpSecret: Uint8Array }): Promise<AdminAccount> {
    try {
      const row = this.sAdd.get(a.name, a.role, a.passwordHash, this.sealer.seal(a.totpSecret, adminTotpContext(a.name)), this.now())!;
      return toAdminAccount(row, this.sealer);
    } catch (err) {
      rethrow(err, { conflict: `admin account ${a.name} exists` });
    }
  }

  async get(name: string): Promise<AdminAccount | undefined> {
    try {
      const row = this.sGet.get(name);
      return row ? toAdminAccount(row, this.sealer) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async getById(id: number): Promise<AdminAccount | undefined> {
    try {
      const row = this.sGetId.get(id);
      return row ? toAdminAccount(row, this.sealer) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async list(): Promise<AdminAccount[]> {
    try {
      return this.sList.all().map((r) => toAdminAccount(r, this.sealer));
    } catch (err) {
      rethrow(err);
    }
  }

  async remove(name: string): Promise<boolean> {
    try {
      return this.sRemove.run(name).changes === 1;
    } catch (err) {
      rethrow(err);
    }
  }

  async setTotp(name: string, secret: Uint8Array): Promise<boolean> {
    try {
      const changed = this.sSetTotp.run(this.sealer.seal(secret, adminTotpContext(name)), name).changes === 1;
      if (changed) this.sEndSessions.run(name);
      return changed;
    } catch (err) {
      rethrow(err);
    }
  }

  async setPassword(name: string, passwordHash: string, { keepSession }: { keepSession?: string } = {}): Promise<boolean> {
    try {
      const changed = this.sSetPassword.run(passwordHash, name).changes === 1;
      if (changed) {
        if (keepSession === undefined) this.sEndSessions.run(name);
        else this.sEndOtherSessions.run(name, keepSession);
      }
      return changed;
    } catch (err) {
      rethrow(err);
    }
  }

  async advanceStep(id: number, step: number, now: number): Promise<boolean> {
    try {
      return this.sAdvance.run(step, now, id, step).changes === 1;
    } catch (err) {
      rethrow(err);
    }
  }

  async createSession(s: AdminSession): Promise<void> {
    try {
      this.sAddSession.run(s.tokenHash, s.accountId, s.csrf, s.createdAt, s.lastSeenAt, s.expiresAt);
    } catch (err) {
      rethrow(err);
    }
  }

  async getSession(tokenHash: string): Promise<AdminSession | undefined> {
    try {
      const r = this.sGetSession.get(tokenHash);
      return r ? toAdminSession(r) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async touchSession(tokenHash: string, now: number): Promise<void> {
    try {
      this.sTouch.run(now, tokenHash);
    } catch (err) {
      rethrow(err);
    }
  }

  async deleteSession(tokenHash: string): Promise<void> {
    try {
      this.sDeleteSession.run(tokenHash);
    } catch (err) {
      rethrow(err);
    }
  }

  async purgeSessions(now: number, idleMs: number): Promise<number> {
    try {
      return this.sPurge.run(now, now - idleMs).changes;
    } catch (err) {
      rethrow(err);
    }
  }
}
