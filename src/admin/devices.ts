// Admin operations on approver-app devices, shared by the CLI (`portcullis device …`) and the admin
// API (/api/admin/v1/devices): enrolment links, listing, removal, a test push. They print nothing
// and know no HTTP; the audited ones record through the audit port (admin/audit.ts).

import { hashEnrolmentCode, newEnrolmentCode } from "../devices/keys.ts";
import { endpointHost } from "../push/hosts.ts";
import type { PushSender } from "../push/sender.ts";
import type { Device, Store, User } from "../store/types.ts";
import type { AdminContext } from "./context.ts";
import { AdminError } from "./errors.ts";
import { findUser } from "./users.ts";

/** How long an enrolment link stays valid (DESIGN: 10 minutes). */
export const ENROLMENT_TTL_MS = 10 * 60_000;

/** Typed failures of the device operations; messages hold no input beyond an ID or a name. */
export class DeviceAdminError extends Error {
  constructor(
    readonly code: "no_public_url",
    message: string,
  ) {
    super(message);
    this.name = "DeviceAdminError";
  }
}

/** The enrolment link: `{public_url}/app/#enrol=CODE`. The code sits in the fragment, which browsers never send to a server. */
export function enrolmentLink(publicUrl: string, code: string): string {
  return `${publicUrl.replace(/\/+$/, "")}/app/#enrol=${code}`;
}

/**
 * Makes a single-use enrolment code for `user`, valid ENROLMENT_TTL_MS, and stores its hash. Returns
 * the link (which holds the code: show it once) and its expiry. Throws DeviceAdminError("no_public_url")
 * when `publicUrl` is empty (links are built only from it), and like DeviceRepo.addEnrolment.
 */
export async function createEnrolment(
  store: Store,
  user: User,
  { publicUrl, now, random }: { publicUrl: string; now: number; random: (n: number) => Uint8Array },
): Promise<{ link: string; expiresAt: number }> {
  if (!publicUrl) throw new DeviceAdminError("no_public_url", "http.public_url is not set; an enrolment link is built only from it");
  const code = newEnrolmentCode(random);
  const expiresAt = now + ENROLMENT_TTL_MS;
  await store.devices.addEnrolment({ codeHash: hashEnrolmentCode(code), userId: user.id, createdAt: now, expiresAt });
  return { link: enrolmentLink(publicUrl, code), expiresAt };
}

/** A device as listed: never its key or its push endpoint's path (the host says which push service). */
export interface DeviceView {
  id: string;
  user: string | null;
  name: string;
  /** The push service host, or null without a subscription. */
  push: string | null;
  createdAt: string;
  lastSeenAt: string | null;
  removedAt: string | null;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function describeDevice(d: Device, username: string | null): DeviceView {
  return { id: d.id, user: username, name: d.name, push: d.push ? endpointHost(d.push.endpoint) : null, createdAt: iso(d.createdAt)!, lastSeenAt: iso(d.lastSeenAt), removedAt: iso(d.removedAt) };
}

/** Devices (of one user when given), live ones unless `includeRemoved`, with their owners' names. */
export async function listDevices(store: Store, { user, includeRemoved = false }: { user?: User; includeRemoved?: boolean } = {}): Promise<DeviceView[]> {
  const devices = await store.devices.list({ ...(user ? { userId: user.id } : {}), includeRemoved });
  const names = user ? new Map([[user.id, user.username]]) : new Map((await store.users.list()).map((u) => [u.id, u.username]));
  return devices.map((d) => describeDevice(d, names.get(d.userId) ?? null));
}

/**
 * Removes a live device (its key stays, refused with 403 from now on; its push subscription is
 * dropped). Returns it with its owner's name and whether it was the user's last live device, or
 * undefined when there is no live device with that ID.
 */
export async function removeDevice(store: Store, id: string, now: number): Promise<{ device: Device; user: string; lastDevice: boolean } | undefined> {
  const removed = await store.devices.remove(id, now);
  if (!removed) return undefined;
  const owner = await store.users.findById(removed.device.userId);
  return { device: removed.device, user: owner?.username ?? `#${removed.device.userId}`, lastDevice: removed.remaining === 0 };
}

/**
 * Makes a single-use enrolment link for the user named `rawUser` (createEnrolment) and records
 * admin.device_enrolment_created. Throws AdminError: "not_found" (field `user`), "conflict" when
 * `[http] public_url` is empty (links are built only from it).
 */
export async function enrolDevice(ctx: AdminContext, rawUser: string): Promise<{ user: User; link: string; expiresAt: number }> {
  const user = await findUser(ctx, rawUser, "user");
  const publicUrl = ctx.config.http.public_url;
  if (!publicUrl) {
    const why = "http.public_url is not set; the enrolment link is built only from it";
    throw new AdminError("conflict", why, { expose: why });
  }
  const made = await ctx.audit.change(
    () => createEnrolment(ctx.store, user, { publicUrl, now: ctx.now(), random: ctx.random }),
    (r) => ({ type: "admin.device_enrolment_created", user: user.username, expires_at: new Date(r.expiresAt).toISOString() }),
  );
  return { user, ...made };
}

function noDevice(id: string): AdminError {
  return new AdminError("not_found", `no device with ID ${id}`, { field: "id" });
}

/** One device as listed (also a removed one). Throws AdminError("not_found"). */
export async function showDevice(ctx: Pick<AdminContext, "store">, id: string): Promise<DeviceView> {
  const d = await ctx.store.devices.get(id);
  if (!d) throw noDevice(id);
  return describeDevice(d, (await ctx.store.users.findById(d.userId))?.username ?? null);
}

/**
 * Removes live device `id` (removeDevice) and records admin.device_removed. Returns it, its owner's
 * name and whether it was their last live device. Throws AdminError("not_found").
 */
export async function deleteDevice(ctx: AdminContext, id: string): Promise<{ device: Device; user: string; lastDevice: boolean }> {
  const removed = await ctx.audit.change(
    () => removeDevice(ctx.store, id, ctx.now()),
    (r) => (r ? { type: "admin.device_removed", device: r.device.id, user: r.user, last_device: r.lastDevice } : null),
  );
  if (!removed) throw noDevice(id);
  return removed;
}

export interface PushTestOutcome {
  result: "sent" | "gone" | "failed" | "refused" | "no_subscription";
  host: string | null;
  status: number | null;
  reason: string | null;
}

/**
 * Sends one test notification (`{"v":1,"id":"test-…"}`, 60 s TTL) to live device `id` through
 * `push` and records admin.push_tested with the outcome. Throws AdminError: "not_found" (no live
 * device, or its user is gone), "unavailable" without push on this server.
 */
export async function pushTest(ctx: AdminContext, push: PushSender | undefined, id: string): Promise<PushTestOutcome> {
  const d = await ctx.store.devices.get(id);
  if (!d || d.removedAt !== null) throw noDevice(id);
  const user = await ctx.store.users.findById(d.userId);
  if (!user) throw noDevice(id);
  if (!push) throw new AdminError("unavailable", "push is not available on this server", { expose: "push is not available on this server" });
  if (!d.push) {
    await ctx.audit.note({ type: "admin.push_tested", device: d.id, result: "no_subscription" });
    return { result: "no_subscription", host: null, status: null, reason: null };
  }
  const noticeId = `test-${Buffer.from(ctx.random(9)).toString("base64url")}`;
  const [outcome] = await push.notifyDevices(user.username, [d], { id: noticeId, expiresAt: ctx.now() + 60_000 });
  const o = outcome!;
  await ctx.audit.note({ type: "admin.push_tested", device: d.id, result: o.result });
  return { result: o.result, host: o.host, status: "status" in o && o.status !== undefined ? o.status : null, reason: "reason" in o ? (o.reason ?? null) : null };
}
