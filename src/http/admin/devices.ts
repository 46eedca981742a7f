// Admin API: approver-app devices (enrolment links with an SVG QR code, list, show, remove, a test
// push), as `portcullis device …` does, through the same operations (admin/devices.ts).

import * as v from "valibot";
import { createEnrolment, describeDevice, listDevices, removeDevice } from "../../admin/devices.ts";
import { cleanUsername } from "../../admin/validate.ts";
import { DEVICE_ID } from "../../devices/keys.ts";
import { svgQR } from "../../otp/index.ts";
import type { User } from "../../store/types.ts";
import { fail, type AdminRouter } from "./route.ts";

const TAG = "devices";

const isoTime = v.pipe(v.string(), v.description("ISO 8601 UTC timestamp"));

/** A device as listed: never its public key or its push endpoint's path. */
export const deviceView = v.object({
  id: v.pipe(v.string(), v.description("22 base64url characters")),
  user: v.nullable(v.string()),
  name: v.string(),
  push: v.pipe(v.nullable(v.string()), v.description("the push service's host, or null without a subscription")),
  createdAt: isoTime,
  lastSeenAt: v.nullable(isoTime),
  removedAt: v.nullable(isoTime),
});

const deviceParams = v.object({ id: v.pipe(v.string(), v.regex(DEVICE_ID), v.description("a device ID (22 base64url characters)")) });

const listQuery = v.object({
  user: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(253))),
  all: v.optional(v.pipe(v.picklist(["true", "false"]), v.description("true: also removed devices"))),
});

const enrolBody = v.strictObject({ user: v.pipe(v.string(), v.minLength(1), v.maxLength(253)) });

const enrolment = v.object({
  user: v.string(),
  link: v.pipe(v.string(), v.description("{public_url}/app/#enrol=CODE: single use; it holds the code, shown only now")),
  qrSvg: v.pipe(v.string(), v.description("the link as an SVG QR code")),
  expiresAt: isoTime,
});

const pushOutcome = v.object({
  result: v.picklist(["sent", "gone", "failed", "refused", "no_subscription"]),
  host: v.nullable(v.string()),
  status: v.nullable(v.number()),
  reason: v.nullable(v.string()),
});

/** Registers /devices routes. */
export function deviceRoutes(r: AdminRouter): void {
  const { deps } = r;
  const { store } = deps;
  const userByName = async (raw: string): Promise<User | undefined> => {
    const name = cleanUsername(raw, deps.config.radius.realms);
    return name === undefined ? undefined : store.users.findByName(name);
  };

  r.route(
    { method: "get", path: "/devices", summary: "List approver devices, optionally of one user", tag: TAG, minRole: "operator", query: listQuery, responses: { 200: { description: "Devices", schema: v.array(deviceView) } }, errors: [404] },
    async (c, { query }) => {
      let user: User | undefined;
      if (query.user !== undefined) {
        user = await userByName(query.user);
        if (!user) return fail(c, 404, "no such user");
      }
      return c.json(await listDevices(store, { ...(user ? { user } : {}), includeRemoved: query.all === "true" }));
    },
  );

  r.route(
    { method: "get", path: "/devices/:id", summary: "Show a device", tag: TAG, minRole: "operator", params: deviceParams, responses: { 200: { description: "The device", schema: deviceView } }, errors: [404] },
    async (c, { params }) => {
      const d = await store.devices.get(params.id);
      if (!d) return fail(c, 404);
      return c.json(describeDevice(d, (await store.users.findById(d.userId))?.username ?? null));
    },
  );

  r.route(
    {
      method: "post",
      path: "/devices/enrolments",
      summary: "Make a single-use enrolment link ({public_url}/app/#enrol=CODE, valid 10 minutes) for a user's approver app",
      tag: TAG,
      minRole: "admin",
      body: enrolBody,
      responses: { 201: { description: "The link, once", schema: enrolment } },
      errors: [404, 409],
    },
    async (c, { body }) => {
      const user = await userByName(body.user);
      if (!user) return fail(c, 404, "no such user");
      if (!deps.config.http.public_url) return fail(c, 409, "http.public_url is not set; an enrolment link is built only from it");
      const made = await createEnrolment(store, user, { publicUrl: deps.config.http.public_url, now: deps.now(), random: deps.random });
      const expiresAt = new Date(made.expiresAt).toISOString();
      deps.audit({ type: "admin.device_enrolment_created", user: user.username, expires_at: expiresAt, by: c.get("apiKey").name });
      return c.json({ user: user.username, link: made.link, qrSvg: await svgQR(made.link), expiresAt }, 201);
    },
  );

  r.route(
    {
      method: "delete",
      path: "/devices/:id",
      summary: "Remove a device: its requests are refused (403) from now on and its push subscription is dropped",
      tag: TAG,
      minRole: "admin",
      params: deviceParams,
      responses: { 200: { description: "The removed device; lastDevice: its user has no approver device left", schema: v.object({ device: deviceView, lastDevice: v.boolean() }) } },
      errors: [404],
    },
    async (c, { params }) => {
      const removed = await removeDevice(store, params.id, deps.now());
      if (!removed) return fail(c, 404);
      deps.audit({ type: "admin.device_removed", device: removed.device.id, user: removed.user, last_device: removed.lastDevice, by: c.get("apiKey").name });
      return c.json({ device: describeDevice(removed.device, removed.user), lastDevice: removed.lastDevice });
    },
  );

  r.route(
    {
      method: "post",
      path: "/devices/:id/push-test",
      summary: "Send a test notification to a device (payload {\"v\":1,\"id\":\"test-…\"}, 60 s TTL) and answer what the push service said",
      tag: TAG,
      minRole: "admin",
      params: deviceParams,
      responses: { 200: { description: "The outcome", schema: pushOutcome } },
      errors: [404, 503],
    },
    async (c, { params }) => {
      const d = await store.devices.get(params.id);
      if (!d || d.removedAt !== null) return fail(c, 404);
      const user = await store.users.findById(d.userId);
      if (!user) return fail(c, 404);
      if (!deps.push) return fail(c, 503, "push is not available on this server");
      const by = c.get("apiKey").name;
      if (!d.push) {
        deps.audit({ type: "admin.push_tested", device: d.id, result: "no_subscription", by });
        return c.json({ result: "no_subscription", host: null, status: null, reason: null });
      }
      const id = `test-${Buffer.from(deps.random(9)).toString("base64url")}`;
      const [outcome] = await deps.push.notifyDevices(user.username, [d], { id, expiresAt: deps.now() + 60_000 });
      const o = outcome!;
      deps.audit({ type: "admin.push_tested", device: d.id, result: o.result, by });
      return c.json({ result: o.result, host: o.host, status: "status" in o && o.status !== undefined ? o.status : null, reason: "reason" in o ? o.reason : null });
    },
  );
}
