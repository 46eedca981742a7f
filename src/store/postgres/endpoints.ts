// Magic Link endpoint profiles in PostgreSQL: one JSON settings document per name; "default" is
// synthesised from the built-in defaults until it is first stored.

import { DEFAULT_ENDPOINT, defaultEndpointProfile, type EndpointProfile, type EndpointRepo, StoreError } from "../types.ts";
import { pgPrep, rethrow, type PgStoreContext } from "./context.ts";

interface EndpointRow {
  name: string;
  settings: string;
}

/**
 * Reads a stored settings document over the defaults, so that a profile written by an older build
 * (fewer keys) still has every field.
 */
function toProfile(row: EndpointRow): EndpointProfile {
  const base = defaultEndpointProfile(row.name);
  let stored: Partial<EndpointProfile> = {};
  try {
    stored = JSON.parse(row.settings) as Partial<EndpointProfile>;
  } catch {
    throw new StoreError("corrupt", `endpoint profile "${row.name}" holds malformed settings`);
  }
  return {
    ...base,
    ...stored,
    name: row.name,
    texts: { ...base.texts, ...stored.texts },
    rateLimits: { ...base.rateLimits, ...stored.rateLimits },
    channels: Array.isArray(stored.channels) ? stored.channels : base.channels,
  };
}

export class PgEndpointRepo implements EndpointRepo {
  private readonly sList;
  private readonly sGet;
  private readonly sPut;
  private readonly sRemove;

  constructor(private readonly ctx: PgStoreContext) {
    const { db } = ctx;
    this.sList = pgPrep<EndpointRow>(db, "SELECT name, settings FROM endpoints ORDER BY name");
    this.sGet = pgPrep<EndpointRow>(db, "SELECT name, settings FROM endpoints WHERE name = ?");
    this.sPut = pgPrep(
      db,
      `INSERT INTO endpoints (name, settings, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at`,
    );
    this.sRemove = pgPrep(db, "DELETE FROM endpoints WHERE name = ?");
  }

  /** "default" first, then the others by name. Throws StoreError("corrupt") for malformed settings. */
  async list(): Promise<EndpointProfile[]> {
    let rows: EndpointRow[];
    try {
      rows = await this.sList.all();
    } catch (err) {
      rethrow(err);
    }
    const profiles = rows.map(toProfile);
    const def = profiles.find((p) => p.name === DEFAULT_ENDPOINT) ?? defaultEndpointProfile();
    return [def, ...profiles.filter((p) => p.name !== DEFAULT_ENDPOINT)];
  }

  async get(name: string): Promise<EndpointProfile | undefined> {
    let row: EndpointRow | null | undefined;
    try {
      row = await this.sGet.get(name);
    } catch (err) {
      rethrow(err);
    }
    if (row) return toProfile(row);
    return name === DEFAULT_ENDPOINT ? defaultEndpointProfile() : undefined;
  }

  async put(profile: EndpointProfile): Promise<void> {
    const { name, ...settings } = profile;
    try {
      await this.ctx.db.atomic(() => this.sPut.run(name, JSON.stringify(settings), this.ctx.now()));
      this.ctx.bumpGeneration();
    } catch (err) {
      rethrow(err);
    }
  }

  /** Throws StoreError("conflict") for "default". */
  async remove(name: string): Promise<boolean> {
    if (name === DEFAULT_ENDPOINT) throw new StoreError("conflict", 'the "default" endpoint cannot be removed');
    try {
      const gone = (await this.ctx.db.atomic(() => this.sRemove.run(name))) > 0;
      if (gone) this.ctx.bumpGeneration();
      return gone;
    } catch (err) {
      rethrow(err);
    }
  }
}
