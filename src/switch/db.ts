// The relay's own state (switch.db in its data directory): enrolled appliances, their enrolment
// tokens (hashed, single use), the requests in flight (a link token's hash → the appliance that
// owns it, until it expires), and the approver app's routes (an enrolment code's hash → the
// appliance that made it, until it expires; an enrolled device's ID → its appliance). Nothing
// else: no message, no number, no answer, no device key is kept.

import { chmodSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { openDatabase, type SQLDatabase } from "../runtime/sqlite.ts";
import { hashSecret, sameHash } from "./protocol.ts";

export const SWITCH_DB_FILE = "switch.db";

/** Enrolment tokens are valid this long. */
export const TOKEN_LIFETIME_MS = 3_600_000;

export interface ApplianceRow {
  name: string;
  publicKey: string | null;
  createdAt: number;
  enrolledAt: number | null;
  /** A pending enrolment token's expiry (unix ms), null when none is pending. */
  tokenExpires: number | null;
}

export type EnrolResult = { ok: true } | { ok: false; reason: "unknown_appliance" | "no_token" | "token_expired" | "wrong_token" };

export class SwitchDb {
  private readonly db: SQLDatabase;

  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const path = join(dataDir, SWITCH_DB_FILE);
    this.db = openDatabase(path);
    try {
      chmodSync(path, 0o600);
    } catch {
      // Not ours to change (another owner): the directory's mode still protects it.
    }
    this.db.exec("PRAGMA journal_mode = WAL");
    this.db.exec("PRAGMA busy_timeout = 5000");
    // Routes are re-created by the next message if a power cut loses the last commits: no fsync per message.
    this.db.exec("PRAGMA synchronous = NORMAL");
    this.db.exec(`CREATE TABLE IF NOT EXISTS appliances (
      name TEXT PRIMARY KEY,
      public_key TEXT,
      token_hash TEXT,
      token_expires INTEGER,
      created_at INTEGER NOT NULL,
      enrolled_at INTEGER
    )`);
    this.db.exec(`CREATE TABLE IF NOT EXISTS links (
      hash TEXT PRIMARY KEY,
      appliance TEXT NOT NULL REFERENCES appliances(name) ON DELETE CASCADE,
      expires_at INTEGER NOT NULL
    )`);
    this.db.exec(`CREATE TABLE IF NOT EXISTS enrolments (
      hash TEXT PRIMARY KEY,
      appliance TEXT NOT NULL REFERENCES appliances(name) ON DELETE CASCADE,
      expires_at INTEGER NOT NULL
    )`);
    this.db.exec(`CREATE TABLE IF NOT EXISTS devices (
      id TEXT PRIMARY KEY,
      appliance TEXT NOT NULL REFERENCES appliances(name) ON DELETE CASCADE,
      created_at INTEGER NOT NULL
    )`);
    this.db.exec("PRAGMA foreign_keys = ON");
  }

  close(): void {
    this.db.close();
  }

  /** Adds an appliance with a fresh token; throws Error("exists") when the name is taken. */
  add(name: string, secret: string, now: number): void {
    const r = this.db.prepare("INSERT INTO appliances (name, token_hash, token_expires, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING").run(name, hashSecret(secret), now + TOKEN_LIFETIME_MS, now);
    if (r.changes === 0) throw new Error("exists");
  }

  list(): ApplianceRow[] {
    return this.db
      .prepare<{ name: string; public_key: string | null; created_at: number; enrolled_at: number | null; token_expires: number | null }>("SELECT name, public_key, created_at, enrolled_at, token_expires FROM appliances ORDER BY name")
      .all()
      .map((r) => ({ name: r.name, publicKey: r.public_key, createdAt: r.created_at, enrolledAt: r.enrolled_at, tokenExpires: r.token_expires }));
  }

  get(name: string): ApplianceRow | undefined {
    return this.list().find((a) => a.name === name);
  }

  /** Removes an appliance and its requests in flight; false when there was none. */
  remove(name: string): boolean {
    this.db.prepare("DELETE FROM links WHERE appliance = ?").run(name);
    this.db.prepare("DELETE FROM enrolments WHERE appliance = ?").run(name);
    this.db.prepare("DELETE FROM devices WHERE appliance = ?").run(name);
    return this.db.prepare("DELETE FROM appliances WHERE name = ?").run(name).changes > 0;
  }

  /**
   * Exchanges a token for registering `publicKey`: the token must be the pending one, unexpired,
   * and it is spent by the same conditional write (single use even between two racing connections).
   */
  enrol(name: string, secret: string, publicKey: string, now: number): EnrolResult {
    const row = this.db.prepare<{ token_hash: string | null; token_expires: number | null }>("SELECT token_hash, token_expires FROM appliances WHERE name = ?").get(name);
    if (!row) return { ok: false, reason: "unknown_appliance" };
    if (row.token_hash === null) return { ok: false, reason: "no_token" };
    const h = hashSecret(secret);
    if (!sameHash(h, row.token_hash)) return { ok: false, reason: "wrong_token" };
    if ((row.token_expires ?? 0) <= now) return { ok: false, reason: "token_expired" };
    const r = this.db.prepare("UPDATE appliances SET public_key = ?, enrolled_at = ?, token_hash = NULL, token_expires = NULL WHERE name = ? AND token_hash = ?").run(publicKey, now, name, h);
    return r.changes === 1 ? { ok: true } : { ok: false, reason: "no_token" };
  }

  /** Records that the link `hash` belongs to `appliance` until `expiresAt`; false when another appliance holds it. */
  claimLink(hash: string, appliance: string, expiresAt: number): boolean {
    const r = this.db.prepare("INSERT INTO links (hash, appliance, expires_at) VALUES (?, ?, ?) ON CONFLICT (hash) DO UPDATE SET expires_at = excluded.expires_at WHERE links.appliance = excluded.appliance").run(hash, appliance, expiresAt);
    return r.changes === 1;
  }

  /** The appliance that owns a live link, if any. */
  linkOwner(hash: string, now: number): string | undefined {
    return this.db.prepare<{ appliance: string }>("SELECT appliance FROM links WHERE hash = ? AND expires_at > ?").get(hash, now)?.appliance;
  }

  /** Records that the enrolment code `hash` was made by `appliance`, until `expiresAt`; false when another appliance holds it. */
  claimEnrolment(hash: string, appliance: string, expiresAt: number): boolean {
    const r = this.db.prepare("INSERT INTO enrolments (hash, appliance, expires_at) VALUES (?, ?, ?) ON CONFLICT (hash) DO UPDATE SET expires_at = excluded.expires_at WHERE enrolments.appliance = excluded.appliance").run(hash, appliance, expiresAt);
    return r.changes === 1;
  }

  /** The appliance that made a live enrolment code, if any. */
  enrolmentOwner(hash: string, now: number): string | undefined {
    return this.db.prepare<{ appliance: string }>("SELECT appliance FROM enrolments WHERE hash = ? AND expires_at > ?").get(hash, now)?.appliance;
  }

  /** Records that device `id` is enrolled on `appliance` (the code is spent); false when another appliance holds that ID. */
  claimDevice(id: string, appliance: string, now: number): boolean {
    const r = this.db.prepare("INSERT INTO devices (id, appliance, created_at) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET created_at = devices.created_at WHERE devices.appliance = excluded.appliance").run(id, appliance, now);
    return r.changes === 1;
  }

  /** The appliance a device is enrolled on, if the relay saw its enrolment. */
  deviceOwner(id: string): string | undefined {
    return this.db.prepare<{ appliance: string }>("SELECT appliance FROM devices WHERE id = ?").get(id)?.appliance;
  }

  forgetEnrolment(hash: string): void {
    this.db.prepare("DELETE FROM enrolments WHERE hash = ?").run(hash);
  }

  /** Links whose route has not expired (approval links in flight). */
  liveLinks(now: number): number {
    return this.db.prepare<{ n: number }>("SELECT count(*) AS n FROM links WHERE expires_at > ?").get(now)?.n ?? 0;
  }

  purgeExpired(now: number): number {
    return this.db.prepare("DELETE FROM links WHERE expires_at <= ?").run(now).changes + this.db.prepare("DELETE FROM enrolments WHERE expires_at <= ?").run(now).changes;
  }
}
