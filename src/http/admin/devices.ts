// Admin API: approver-app devices (enrolment links with an SVG QR code, list, show, remove, a test
// push), as `portcullis device …` does, through the same operations (admin/devices.ts).

import * as v from "valibot";
import { deleteDevice, describeDevice, enrolDevice, listDevices, pushTest, showDevice } from "../../admin/devices.ts";
import { findUser } from "../../admin/users.ts";
import { DEVICE_ID } from "../../devices/keys.ts";
import { svgQR } from "../../otp/index.ts";
import { adminContextOf } from "./audit.ts";
import type { AdminRouter } from "./route.ts";

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

  r.route(
    { method: "get", path: "/devices", summary: "List approver devices, optionally of one user", tag: TAG, minRole: "operator", query: listQuery, responses: { 200: { description: "Devices", schema: v.array(deviceView) } }, errors: [404] },
    async (c, { query }) => {
      const user = query.user === undefined ? undefined : await findUser(deps, query.user, "user");
      return c.json(await listDevices(store, { ...(user ? { user } : {}), includeRemoved: query.all === "true" }));
    },
  );

  r.route(
    { method: "get", path: "/devices/:id", summary: "Show a device", tag: TAG, minRole: "operator", params: deviceParams, responses: { 200: { description: "The device", schema: deviceView } }, errors: [404] },
    async (c, { params }) => c.json(await showDevice(deps, params.id)),
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
      const made = await enrolDevice(adminContextOf(deps, c), body.user);
      return c.json({ user: made.user.username, link: made.link, qrSvg: await svgQR(made.link), expiresAt: new Date(made.expiresAt).toISOString() }, 201);
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
      const removed = await deleteDevice(adminContextOf(deps, c), params.id);
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
    async (c, { params }) => c.json(await pushTest(adminContextOf(deps, c), deps.push, params.id)),
  );
}
