// Local users in PostgreSQL, including the all-or-nothing bulk import.

import type { AuthType } from "../../domain/auth-types.ts";
import { pgConstraint } from "../../runtime/postgres.ts";
import type { NewUser, User, UserImportRow, UserRepo } from "../types.ts";
import { StoreError } from "../types.ts";
import { BatchedRead } from "./batch.ts";
import { conflictingValue, isCheckViolation, pgPrep, rethrow, valuesList, type PgStoreContext } from "./context.ts";
import type { PgTokenRepo } from "./tokens.ts";

export interface UserRow {
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
const INSERT_CASTS = ["text", "text", "text", "text", "text", "integer", "bigint", "text", "text", "text", "bigint"] as const;

/** @internal Also used by the login reads (login-reads.ts). */
export function toUser(row: UserRow): User {
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
  const text = `${pgConstraint(err)} ${err instanceof Error ? err.message : ""}`;
  return /external/.test(text) ? `user '${username}': another record is already linked to this directory user` : `user '${username}' exists`;
}

function checkShape(user: NewUser): void {
  if (user.type === null && user.directory === null) throw new TypeError(`user '${user.username}': a record without a type must be linked to a directory`);
  if (user.externalId !== null && user.directory === null) throw new TypeError(`user '${user.username}': an external ID needs its directory`);
}

export class PgUserRepo implements UserRepo {
  private readonly sList;
  private readonly sCount;
  private readonly sFindByName;
  private readonly sFindById;
  private readonly sFindByExternal;
  private readonly sInsert;
  private readonly sUpdate;
  private readonly sDelete;
  private readonly byName: BatchedRead<UserRow>;

  constructor(
    private readonly ctx: PgStoreContext,
    private readonly tokens: PgTokenRepo,
  ) {
    const { db } = ctx;
    this.sList = pgPrep<UserRow>(db, `SELECT ${COLUMNS} FROM users ORDER BY username`);
    this.sCount = pgPrep<{ n: number }>(db, "SELECT count(*) AS n FROM users");
    this.sFindByName = pgPrep<UserRow>(db, `SELECT ${COLUMNS} FROM users WHERE username = ?`);
    this.sFindById = pgPrep<UserRow>(db, `SELECT ${COLUMNS} FROM users WHERE id = ?`);
    this.sFindByExternal = pgPrep<UserRow>(db, `SELECT ${COLUMNS} FROM users WHERE directory = ? AND external_id = ?`);
    this.sInsert = pgPrep<{ id: number }>(
      db,
      `INSERT INTO users (username, password_hash, type, phone, email, disabled, expires_at, directory, external_id, directory_phone, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
    );
    // One statement for any patch: each column comes with a flag saying whether to set it.
    this.sUpdate = pgPrep(
      db,
      `UPDATE users SET
         username = CASE WHEN ?::boolean THEN ? ELSE username END,
         password_hash = CASE WHEN ?::boolean THEN ? ELSE password_hash END,
         type = CASE WHEN ?::boolean THEN ? ELSE type END,
         phone = CASE WHEN ?::boolean THEN ? ELSE phone END,
         email = CASE WHEN ?::boolean THEN ? ELSE email END,
         disabled = CASE WHEN ?::boolean THEN ?::integer ELSE disabled END,
         expires_at = CASE WHEN ?::boolean THEN ?::bigint ELSE expires_at END,
         directory = CASE WHEN ?::boolean THEN ? ELSE directory END,
         external_id = CASE WHEN ?::boolean THEN ? ELSE external_id END,
         directory_phone = CASE WHEN ?::boolean THEN ? ELSE directory_phone END
       WHERE id = ?`,
    );
    this.sDelete = pgPrep(db, "DELETE FROM users WHERE username = ?");
    this.byName = new BatchedRead<UserRow>(
      db,
      `SELECT ${COLUMNS} FROM users WHERE username = ANY (ARRAY(SELECT jsonb_array_elements_text(?::text::jsonb)))`,
      (r) => r.username,
      (...p) => this.sFindByName.all(...p),
    );
  }

  private async insert(user: NewUser, createdAt = this.ctx.now()): Promise<number> {
    checkShape(user);
    try {
      const row = await this.ctx.db.atomic(() => this.sInsert.get(
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
      ));
      return row!.id;
    } catch (err) {
      rethrow(err, { conflict: conflictMessage(err, user.username) });
    }
  }

  async list(): Promise<User[]> {
    try {
      return (await this.sList.all()).map(toUser);
    } catch (err) {
      rethrow(err);
    }
  }

  async count(): Promise<number> {
    try {
      return (await this.sCount.get())!.n;
    } catch (err) {
      rethrow(err);
    }
  }

  async findByName(username: string): Promise<User | undefined> {
    try {
      const row = (await this.byName.load(username, username, [username]))[0];
      return row ? toUser(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async findById(id: number): Promise<User | undefined> {
    try {
      const row = await this.sFindById.get(id);
      return row ? toUser(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async findByExternal(directory: string, externalId: string): Promise<User | undefined> {
    try {
      const row = await this.sFindByExternal.get(directory, externalId);
      return row ? toUser(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async add(user: NewUser): Promise<User> {
    const createdAt = this.ctx.now();
    const id = await this.insert(user, createdAt);
    this.ctx.bumpGeneration();
    return { ...user, id, createdAt };
  }

  async update(id: number, patch: Partial<NewUser>): Promise<void> {
    const has = (k: keyof NewUser) => Object.hasOwn(patch, k) && patch[k] !== undefined;
    let changes: number;
    try {
      changes = await this.ctx.db.atomic(() => this.sUpdate.run(
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
      ));
    } catch (err) {
      if (isCheckViolation(err)) throw new TypeError(`user ${id}: a record without a type must be linked to a directory`);
      rethrow(err, { conflict: conflictMessage(err, patch.username ?? `${id}`) });
    }
    if (changes === 0) throw new StoreError("not_found", `user ${id} not found`);
    this.ctx.bumpGeneration();
  }

  async remove(username: string): Promise<boolean> {
    try {
      const removed = (await this.ctx.db.atomic(() => this.sDelete.run(username))) > 0;
      if (removed) this.ctx.bumpGeneration();
      return removed;
    } catch (err) {
      rethrow(err);
    }
  }

  /**
   * One transaction for all rows: every row or none. Users and tokens go in with one statement per
   * thousand rows. Throws StoreError("conflict") naming a duplicate username or token serial.
   */
  async importMany(rows: UserImportRow[], onProgress?: (done: number) => void): Promise<void> {
    for (const row of rows) checkShape(row.user);
    const createdAt = this.ctx.now();
    try {
      await this.ctx.db.transaction(async () => {
        let done = 0;
        for (let start = 0; start < rows.length; start += PROGRESS_EVERY) {
          const chunk = rows.slice(start, start + PROGRESS_EVERY);
          const params: (string | number | null)[] = [];
          for (const { user: u } of chunk) {
            params.push(u.username, u.passwordHash, u.type, u.phone, u.email, u.disabled ? 1 : 0, u.expiresAt, u.directory, u.externalId, u.directoryPhone, createdAt);
          }
          let inserted: { id: number; username: string }[];
          try {
            ({ rows: inserted } = await this.ctx.db.query<{ id: number; username: string }>(
              `INSERT INTO users (username, password_hash, type, phone, email, disabled, expires_at, directory, external_id, directory_phone, created_at)
               VALUES ${valuesList(chunk.length, INSERT_CASTS)} RETURNING id, username`,
              params,
            ));
          } catch (err) {
            rethrow(err, { conflict: conflictMessage(err, conflictingValue(err) ?? chunk[0]!.user.username) });
          }
          const ids = new Map(inserted.map((r) => [r.username, r.id]));
          const tokens = chunk.flatMap((r) => r.tokens.map((t) => ({ ...t, userId: ids.get(r.user.username)! })));
          if (tokens.length > 0) await this.tokens.insertMany(tokens);
          done += chunk.length;
          onProgress?.(done);
        }
      });
    } catch (err) {
      rethrow(err);
    }
    this.ctx.bumpGeneration();
  }
}
