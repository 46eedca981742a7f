// Admin operations on approver-app devices, shared by the CLI (`portcullis device …`) and the admin
// API (/api/admin/v1/devices): enrolment links, listing, removal. They print nothing and know no HTTP;
// each adapter audits the change its own way (admin_events from the CLI, the bus from the API).

import { hashEnrolmentCode, newEnrolmentCode } from "../devices/keys.ts";
import { endpointHost } from "../push/hosts.ts";
import type { Device, Store, User } from "../store/types.ts";

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
