// API keys in PostgreSQL: only the SHA-256 of each key and a display prefix are stored.

import type { ApiKey, ApiKeyRepo, ApiKeyRole, NewApiKey } from "../types.ts";
import { pgPrep, rethrow, type PgStoreContext } from "./context.ts";

interface ApiKeyRow {
  id: number;
  name: string;
  role: ApiKeyRole;
  endpoint: string | null;
  hash: string;
  prefix: string;
  expires_at: number | null;
  disabled: number;
  created_at: number;
  last_used_at: number | null;
}

const COLUMNS = "id, name, role, endpoint, hash, prefix, expires_at, disabled, created_at, last_used_at";

function toApiKey(row: ApiKeyRow): ApiKey {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    endpoint: row.endpoint,
    hash: row.hash,
    prefix: row.prefix,
    expiresAt: row.expires_at,
    disabled: row.disabled === 1,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
  };
}

export class PgApiKeyRepo implements ApiKeyRepo {
  private readonly sAdd;
  private readonly sList;
  private readonly sByName;
  private readonly sByHash;
  private readonly sRemove;
  private readonly sDisable;
  private readonly sTouch;

  constructor(private readonly ctx: PgStoreContext) {
    const { db } = ctx;
    this.sAdd = pgPrep<ApiKeyRow>(
      db,
      `INSERT INTO api_keys (name, role, endpoint, hash, prefix, expires_at, disabled, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING ${COLUMNS}`,
    );
    this.sList = pgPrep<ApiKeyRow>(db, `SELECT ${COLUMNS} FROM api_keys ORDER BY name`);
    this.sByName = pgPrep<ApiKeyRow>(db, `SELECT ${COLUMNS} FROM api_keys WHERE name = ?`);
    this.sByHash = pgPrep<ApiKeyRow>(db, `SELECT ${COLUMNS} FROM api_keys WHERE hash = ?`);
    this.sRemove = pgPrep(db, "DELETE FROM api_keys WHERE name = ?");
    this.sDisable = pgPrep(db, "UPDATE api_keys SET disabled = ? WHERE name = ?");
    this.sTouch = pgPrep(db, "UPDATE api_keys SET last_used_at = ? WHERE id = ?");
  }

  /** Throws StoreError("conflict") when the name exists. */
  async add(key: NewApiKey): Promise<ApiKey> {
    try {
      const row = (await this.ctx.db.atomic(() => this.sAdd.get(key.name, key.role, key.endpoint, key.hash, key.prefix, key.expiresAt, key.disabled ? 1 : 0, this.ctx.now())))!;
      this.ctx.bumpGeneration();
      return toApiKey(row);
    } catch (err) {
      rethrow(err, { conflict: `API key "${key.name}" already exists` });
    }
  }

  async list(): Promise<ApiKey[]> {
    try {
      return (await this.sList.all()).map(toApiKey);
    } catch (err) {
      rethrow(err);
    }
  }

  async findByName(name: string): Promise<ApiKey | undefined> {
    try {
      const row = await this.sByName.get(name);
      return row ? toApiKey(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async findByHash(hash: string): Promise<ApiKey | undefined> {
    try {
      const row = await this.sByHash.get(hash);
      return row ? toApiKey(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async remove(name: string): Promise<boolean> {
    try {
      const gone = (await this.ctx.db.atomic(() => this.sRemove.run(name))) > 0;
      if (gone) this.ctx.bumpGeneration();
      return gone;
    } catch (err) {
      rethrow(err);
    }
  }

  async setDisabled(name: string, disabled: boolean): Promise<boolean> {
    try {
      const changed = (await this.ctx.db.atomic(() => this.sDisable.run(disabled ? 1 : 0, name))) > 0;
      if (changed) this.ctx.bumpGeneration();
      return changed;
    } catch (err) {
      rethrow(err);
    }
  }

  async touch(id: number, now: number): Promise<void> {
    try {
      await this.sTouch.run(now, id);
    } catch (err) {
      rethrow(err);
    }
  }
}
