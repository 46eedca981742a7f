// Local users in SQLite, including the all-or-nothing bulk import.

import type { AuthType } from "../../domain/auth-types.ts";
import type { NewUser, User, UserImportRow, UserRepo } from "../types.ts";
import { StoreError } from "../types.ts";
import { prep, rethrow, type StoreContext } from "./context.ts";
import type { SqliteTokenRepo } from "./tokens.ts";

interface UserRow {
  id: number;
  username: string;
  password_hash: string | null;
  type: string | null;
  phone: string | null;
  email: string | null;
  disabled: number;
  expires_at: number | null;
  directory: string | null;
  external_id: string | null;
  directory_phone: string | null;
  created_at: number;
}

const COLUMNS = "id, username, password_hash, type, phone, email, disabled, expires_at, directory, external_id, directory_phone, created_at";
const PROGRESS_EVERY = 1000;

function toUser(row: UserRow): User {
  return {
    id: row.id,
    username: row.username,
    passwordHash: row.password_hash,
    type: row.type as AuthType | null,
    phone: row.phone,
    email: row.email,
    disabled: row.disabled === 1,
    expiresAt: row.expires_at,
    directory: row.directory,
    externalId: row.external_id,
    directoryPhone: row.directory_phone,
    createdAt: row.created_at,
  };
}

/** The uniqueness violated: the username, or the directory link (a second record for one directory user). */
function conflictMessage(err: unknown, username: string): string {
  const text = err instanceof Error ? err.message : "";
  return /external_id/.test(text) ? `user '${username}': another record is already linked to this directory user` : `user '${username}' exists`;
}

function isCheckViolation(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === "SQLITE_CONSTRAINT_CHECK";
}

/**
 * Refuses what the schema's CHECKs would: a record with no type must be directory-linked, and an
 * external ID needs its directory. Thrown as TypeError: it is a programming error, not input.
 */
function checkShape(user: NewUser): void {
  if (user.type === null && user.directory === null) throw new TypeError(`user '${user.username}': a record without a type must be linked to a directory`);
  if (user.externalId !== null && user.directory === null) throw new TypeError(`user '${user.username}': an external ID needs its directory`);
}

export class SqliteUserRepo implements UserRepo {
  private readonly sList;
  private readonly sCount;
  private readonly sFindByName;
  private readonly sFindById;
  private readonly sFindByExternal;
  private readonly sInsert;
  private readonly sUpdate;
  private readonly sDelete;
  private readonly txImport;

  constructor(
    private readonly ctx: StoreContext,
    private readonly tokens: SqliteTokenRepo,
  ) {
    const { db } = ctx;
    this.sList = prep<UserRow>(db, `SELECT ${COLUMNS} FROM users ORDER BY username`);
    this.sCount = prep<{ n: number }>(db, "SELECT count(*) AS n FROM users");
    this.sFindByName = prep<UserRow>(db, `SELECT ${COLUMNS} FROM users WHERE username = ?`);
    this.sFindById = prep<UserRow>(db, `SELECT ${COLUMNS} FROM users WHERE id = ?`);
    this.sFindByExternal = prep<UserRow>(db, `SELECT ${COLUMNS} FROM users WHERE directory = ? AND external_id = ?`);
    this.sInsert = prep(
      db,
      `INSERT INTO users (username, password_hash, type, phone, email, disabled, expires_at, directory, external_id, directory_phone, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    // One statement for any patch: each column comes with a flag saying whether to set it, so a
    // field can be set to NULL (phone removed) and nothing is compiled per call.
    this.sUpdate = prep(
      db,
      `UPDATE users SET
         username = CASE WHEN ? THEN ? ELSE username END,
         password_hash = CASE WHEN ? THEN ? ELSE password_hash END,
         type = CASE WHEN ? THEN ? ELSE type END,
         phone = CASE WHEN ? THEN ? ELSE phone END,
         email = CASE WHEN ? THEN ? ELSE email END,
         disabled = CASE WHEN ? THEN ? ELSE disabled END,
         expires_at = CASE WHEN ? THEN ? ELSE expires_at END,
         directory = CASE WHEN ? THEN ? ELSE directory END,
         external_id = CASE WHEN ? THEN ? ELSE external_id END,
         directory_phone = CASE WHEN ? THEN ? ELSE directory_phone END
       WHERE id = ?`,
    );
    this.sDelete = prep(db, "DELETE FROM users WHERE username = ?");
    this.txImport = db.transaction((rows: UserImportRow[], onProgress?: (done: number) => void) => {
      let done = 0;
      for (const row of rows) {
        const id = this.insert(row.user);
        for (const token of row.tokens) this.tokens.insert({ ...token, userId: id });
        done++;
        if (onProgress && done % PROGRESS_EVERY === 0) onProgress(done);
      }
      if (onProgress && done % PROGRESS_EVERY !== 0) onProgress(done);
    });
  }

  /**
   * Inserts synchronously; returns the new id. Throws StoreError("conflict") for a duplicate username
   * or directory link, and TypeError for a record the schema refuses (no type and no directory).
   */
  private insert(user: NewUser, createdAt = this.ctx.now()): number {
    checkShape(user);
    try {
      return Number(
        this.sInsert.run(
          user.username,
          user.passwordHash,
          user.type,
          user.phone,
          user.email,
          user.disabled ? 1 : 0,
          user.expiresAt,
          user.directory,
          user.externalId,
          user.directoryPhone,
          createdAt,
        ).lastInsertRowid,
      );
    } catch (err) {
      rethrow(err, { conflict: conflictMessage(err, user.username) });
    }
  }

  async list(): Promise<User[]> {
    try {
      return this.sList.all().map(toUser);
    } catch (err) {
      rethrow(err);
    }
  }

  async count(): Promise<number> {
    try {
      return this.sCount.get()!.n;
    } catch (err) {
      rethrow(err);
    }
  }

  async findByName(username: string): Promise<User | undefined> {
    try {
      const row = this.sFindByName.get(username);
      return row ? toUser(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async findById(id: number): Promise<User | undefined> {
    try {
      const row = this.sFindById.get(id);
      return row ? toUser(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  /** The record linked to a directory user: profile name + stable ID (objectGUID / entryUUID). */
  async findByExternal(directory: string, externalId: string): Promise<User | undefined> {
    try {
      const row = this.sFindByExternal.get(directory, externalId);
      return row ? toUser(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  /**
   * Throws StoreError("conflict") when the username or the (directory, externalId) pair exists, and
   * TypeError for a record without a type that is not directory-linked.
   */
  async add(user: NewUser): Promise<User> {
    const createdAt = this.ctx.now();
    const id = this.insert(user, createdAt);
    this.ctx.bumpGeneration();
    return { ...user, id, createdAt };
  }

  /**
   * Changes the given fields. Throws StoreError("not_found") when no user has this id and
   * StoreError("conflict") when a new username is taken.
   */
  async update(id: number, patch: Partial<NewUser>): Promise<void> {
    const has = (k: keyof NewUser) => (Object.hasOwn(patch, k) && patch[k] !== undefined ? 1 : 0);
    let changes: number;
    try {
      changes = this.sUpdate.run(
        has("username"),
        patch.username ?? null,
        has("passwordHash"),
        patch.passwordHash ?? null,
        has("type"),
        patch.type ?? null,
        has("phone"),
        patch.phone ?? null,
        has("email"),
        patch.email ?? null,
        has("disabled"),
        patch.disabled === undefined ? null : patch.disabled ? 1 : 0,
        has("expiresAt"),
        patch.expiresAt ?? null,
        has("directory"),
        patch.directory ?? null,
        has("externalId"),
        patch.externalId ?? null,
        has("directoryPhone"),
        patch.directoryPhone ?? null,
        id,
      ).changes;
    } catch (err) {
      if (isCheckViolation(err)) throw new TypeError(`user ${id}: a record without a type must be linked to a directory`);
      rethrow(err, { conflict: conflictMessage(err, patch.username ?? `${id}`) });
    }
    if (changes === 0) throw new StoreError("not_found", `user ${id} not found`);
    this.ctx.bumpGeneration();
  }

  /** Removes the user; their tokens become unassigned (ON DELETE SET NULL), their challenges go. */
  async remove(username: string): Promise<boolean> {
    try {
      const removed = this.sDelete.run(username).changes > 0;
      if (removed) this.ctx.bumpGeneration();
      return removed;
    } catch (err) {
      rethrow(err);
    }
  }

  /**
   * One BEGIN IMMEDIATE transaction for all rows: every row or none. Throws StoreError("conflict")
   * naming the first duplicate username or token serial (also duplicates within `rows`).
   */
  async importMany(rows: UserImportRow[], onProgress?: (done: number) => void): Promise<void> {
    try {
      this.txImport.immediate(rows, onProgress);
    } catch (err) {
      rethrow(err);
    }
    this.ctx.bumpGeneration();
  }
}
