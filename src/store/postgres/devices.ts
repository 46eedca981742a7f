// Approver devices in PostgreSQL: enrolment codes consumed with the device insert in one transaction,
// removal as one conditional UPDATE, and signature replay records guarded by their primary key.

import type { Device, DeviceEnrolment, DevicePublicKey, DeviceRepo, PushSubscription } from "../types.ts";
import { pgPrep, rethrow, type PgStoreContext } from "./context.ts";

interface Row {
  id: string;
  user_id: number;
  name: string;
  public_key: string;
  push_endpoint: string | null;
  push_p256dh: string | null;
  push_auth: string | null;
  created_at: number;
  last_seen_at: number | null;
  removed_at: number | null;
}

const COLUMNS = "id, user_id, name, public_key, push_endpoint, push_p256dh, push_auth, created_at, last_seen_at, removed_at";

function toDevice(r: Row): Device {
  const jwk = JSON.parse(r.public_key) as DevicePublicKey;
  return {
    id: r.id,
    userId: r.user_id,
    name: r.name,
    publicKey: { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y },
    push: r.push_endpoint !== null && r.push_p256dh !== null && r.push_auth !== null ? { endpoint: r.push_endpoint, p256dh: r.push_p256dh, auth: r.push_auth } : null,
    createdAt: r.created_at,
    lastSeenAt: r.last_seen_at,
    removedAt: r.removed_at,
  };
}

/** The stored JWK text: exactly the four members, in a fixed order. */
function keyText(k: DevicePublicKey): string {
  return JSON.stringify({ kty: "EC", crv: "P-256", x: k.x, y: k.y });
}

export class PgDeviceRepo implements DeviceRepo {
  private readonly sAddEnrolment;
  private readonly sConsume;
  private readonly sLiveEnrolments;
  private readonly sInsert;
  private readonly sGet;
  private readonly sList;
  private readonly sListUser;
  private readonly sRemove;
  private readonly sLive;
  private readonly sSetPush;
  private readonly sDropPush;
  private readonly sTouch;
  private readonly sUseSig;
  private readonly sPurgeEnrolments;
  private readonly sPurgeSigs;

  constructor(private readonly ctx: PgStoreContext) {
    const { db } = ctx;
    this.sAddEnrolment = pgPrep(db, "INSERT INTO device_enrolments (code_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)");
    // Single use: of any number of concurrent consumers of one code, one DELETE removes the row.
    this.sConsume = pgPrep<{ user_id: number }>(db, "DELETE FROM device_enrolments WHERE code_hash = ? AND expires_at > ? RETURNING user_id");
    this.sLiveEnrolments = pgPrep<{ code_hash: string; expires_at: number }>(db, "SELECT code_hash, expires_at FROM device_enrolments WHERE expires_at > ? ORDER BY created_at DESC LIMIT ?");
    this.sInsert = pgPrep(db, `INSERT INTO devices (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)`);
    this.sGet = pgPrep<Row>(db, `SELECT ${COLUMNS} FROM devices WHERE id = ?`);
    this.sList = pgPrep<Row>(db, `SELECT ${COLUMNS} FROM devices ORDER BY created_at, id`);
    this.sListUser = pgPrep<Row>(db, `SELECT ${COLUMNS} FROM devices WHERE user_id = ? ORDER BY created_at, id`);
    this.sRemove = pgPrep<Row>(
      db,
      `UPDATE devices SET removed_at = ?, push_endpoint = NULL, push_p256dh = NULL, push_auth = NULL WHERE id = ? AND removed_at IS NULL RETURNING ${COLUMNS}`,
    );
    this.sLive = pgPrep<{ n: number }>(db, "SELECT count(*) AS n FROM devices WHERE user_id = ? AND removed_at IS NULL");
    this.sSetPush = pgPrep(db, "UPDATE devices SET push_endpoint = ?, push_p256dh = ?, push_auth = ? WHERE id = ? AND removed_at IS NULL");
    this.sDropPush = pgPrep(db, "UPDATE devices SET push_endpoint = NULL, push_p256dh = NULL, push_auth = NULL WHERE id = ? AND push_endpoint = ?");
    this.sTouch = pgPrep(db, "UPDATE devices SET last_seen_at = ? WHERE id = ?");
    this.sUseSig = pgPrep(db, "INSERT INTO device_signatures (device_id, sig, expires_at) VALUES (?, ?, ?) ON CONFLICT (device_id, sig) DO NOTHING");
    this.sPurgeEnrolments = pgPrep(db, "DELETE FROM device_enrolments WHERE expires_at <= ?");
    this.sPurgeSigs = pgPrep(db, "DELETE FROM device_signatures WHERE expires_at < ?");
  }

  async addEnrolment(e: DeviceEnrolment): Promise<void> {
    try {
      await this.ctx.db.atomic(() => this.sAddEnrolment.run(e.codeHash, e.userId, e.createdAt, e.expiresAt));
    } catch (err) {
      rethrow(err, { conflict: "enrolment code already exists", missing: "no such user" });
    }
  }

  async enrol(codeHash: string, now: number, device: { id: string; name: string; publicKey: DevicePublicKey; push: PushSubscription | null }): Promise<Device | undefined> {
    try {
      const row = await this.ctx.db.transaction(async () => {
        const code = await this.sConsume.get(codeHash, now);
        if (!code) return undefined;
        const d = device;
        await this.sInsert.run(d.id, code.user_id, d.name, keyText(d.publicKey), d.push?.endpoint ?? null, d.push?.p256dh ?? null, d.push?.auth ?? null, now);
        return await this.sGet.get(d.id);
      });
      return row ? toDevice(row) : undefined;
    } catch (err) {
      rethrow(err, { conflict: "device ID already exists" });
    }
  }

  async liveEnrolments(now: number, limit: number): Promise<Array<{ codeHash: string; expiresAt: number }>> {
    try {
      const rows = await this.sLiveEnrolments.all(now, limit);
      return rows.map((r) => ({ codeHash: r.code_hash, expiresAt: Number(r.expires_at) }));
    } catch (err) {
      rethrow(err);
    }
  }

  async get(id: string): Promise<Device | undefined> {
    try {
      const row = await this.sGet.get(id);
      return row ? toDevice(row) : undefined;
    } catch (err) {
      rethrow(err);
    }
  }

  async list({ userId, includeRemoved = false }: { userId?: number; includeRemoved?: boolean } = {}): Promise<Device[]> {
    try {
      const rows = userId === undefined ? await this.sList.all() : await this.sListUser.all(userId);
      return rows.filter((r) => includeRemoved || r.removed_at === null).map(toDevice);
    } catch (err) {
      rethrow(err);
    }
  }

  async remove(id: string, now: number): Promise<{ device: Device; remaining: number } | undefined> {
    try {
      return await this.ctx.db.transaction(async () => {
        const row = await this.sRemove.get(now, id);
        if (!row) return undefined;
        return { device: toDevice(row), remaining: (await this.sLive.get(row.user_id))!.n };
      });
    } catch (err) {
      rethrow(err);
    }
  }

  async setPush(id: string, push: PushSubscription | null): Promise<boolean> {
    try {
      return (await this.sSetPush.run(push?.endpoint ?? null, push?.p256dh ?? null, push?.auth ?? null, id)) === 1;
    } catch (err) {
      rethrow(err);
    }
  }

  async dropPush(id: string, endpoint: string): Promise<boolean> {
    try {
      return (await this.sDropPush.run(id, endpoint)) === 1;
    } catch (err) {
      rethrow(err);
    }
  }

  async touch(id: string, now: number): Promise<void> {
    try {
      await this.sTouch.run(now, id);
    } catch (err) {
      rethrow(err);
    }
  }

  async useSignature(deviceId: string, sig: string, expiresAt: number): Promise<boolean> {
    try {
      return (await this.sUseSig.run(deviceId, sig, expiresAt)) === 1;
    } catch (err) {
      rethrow(err);
    }
  }

  async purgeExpired(now: number): Promise<number> {
    try {
      return (await this.sPurgeEnrolments.run(now)) + (await this.sPurgeSigs.run(now));
    } catch (err) {
      rethrow(err);
    }
  }
}
