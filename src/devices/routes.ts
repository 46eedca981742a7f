// The approver app's public device protocol (DESIGN "Approver app"; docs/app.md): enrolment and the
// push subscription. Later routes (requests, events, answers) sit behind the same signedRequest
// middleware. Versions 1 and 2 have the same paths under their prefixes and the same semantics; v2
// also shows requests of kind "self-service" (requests.ts, APP_PROTOCOL_KINDS).
//
//   POST   /app/api/v{n}/devices   {"enrolment","public_key","name","push"?} → 201 {"device","vapid_public_key"}
//   PUT    /app/api/v{n}/push      (signed) {"endpoint","keys":{"p256dh","auth"}} → 204
//   DELETE /app/api/v{n}/push      (signed) → 204
//   GET /app/api/v{n}/requests, GET /app/api/v{n}/events, POST /app/api/v{n}/requests/{id}: requests.ts

import type { Context } from "hono";
import { BODY_LIMITS, bodyCap, errorBody, type ValidationIssue } from "../http/middleware.ts";
import { signedRequest } from "../http/device-auth.ts";
import type { HttpEnv, RouteModule } from "../http/types.ts";
import { APP_PROTOCOL_VERSIONS, type AppProtocolVersion } from "../approvals/app.ts";
import { parsePushSubscription, type SubscriptionRefusal } from "../push/subscription.ts";
import { endpointHost } from "../push/hosts.ts";
import { StoreError, type PushSubscription } from "../store/types.ts";
import { isSafeDisplayText } from "../util/display-text.ts";
import { ENROLMENT_CODE, hashEnrolmentCode, newDeviceId, parseDevicePublicKey } from "./keys.ts";
import { appRequestRoutes } from "./requests.ts";

/** Every path of protocol version 1 starts with this. */
export const APP_API = "/app/api/v1";
/** Every path of protocol version 2 starts with this (what the embedded app speaks). */
export const APP_API_V2 = "/app/api/v2";

/** The path prefix of a protocol version. */
export function appApiPrefix(version: AppProtocolVersion): string {
  return `/app/api/v${version}`;
}

/** Longest device name, in characters. */
export const MAX_DEVICE_NAME = 64;

type Ctx = Context<HttpEnv>;

const PUSH_EXPECTED: Record<SubscriptionRefusal, { path: string; expected: string }> = {
  malformed: { path: "push.endpoint", expected: "an absolute URL without credentials or fragment, at most 2048 characters" },
  not_https: { path: "push.endpoint", expected: "an https: URL" },
  host_not_allowed: { path: "push.endpoint", expected: "a URL of a push service listed in [push] allowed_hosts" },
  bad_keys: { path: "push.keys", expected: "{p256dh: 65-byte P-256 point, auth: 16 bytes}, base64url" },
};

function badRequest(c: Ctx, issues: ValidationIssue[]): Response {
  return c.json({ ...errorBody(c, 400), issues }, 400);
}

/** The JSON body, or undefined when it is not JSON (or not declared as JSON). Never throws. */
async function jsonBody(c: Ctx): Promise<unknown> {
  if (!/^application\/json\s*(;|$)/i.test(c.req.header("content-type") ?? "")) return undefined;
  try {
    return await c.req.json();
  } catch {
    return undefined;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/** Registers the device protocol, every version, on the public app. Without `deps.push` every route answers 503. */
export const appApiRoutes: RouteModule = (app, deps) => {
  const signed = signedRequest({ store: deps.store, now: deps.now, maxBodyBytes: BODY_LIMITS.device, audit: deps.audit });
  for (const version of APP_PROTOCOL_VERSIONS) versionRoutes(app, deps, signed, appApiPrefix(version), version);
};

function versionRoutes(app: Parameters<RouteModule>[0], deps: Parameters<RouteModule>[1], signed: ReturnType<typeof signedRequest>, APP_API: string, version: AppProtocolVersion): void {
  const { store } = deps;
  const clientOf = (c: Ctx) => c.get("clientIp");

  // Enrolment carries no signature (the device has no key on file yet): the single-use code is the
  // credential. Everything is checked before the code is consumed, so a refused key or subscription
  // leaves the code usable for a corrected attempt.
  app.post(`${APP_API}/devices`, bodyCap(BODY_LIMITS.device), async (c) => {
    const push = deps.push;
    if (!push) return c.json(errorBody(c, 503), 503);
    const body = await jsonBody(c);
    if (!isObject(body)) return badRequest(c, [{ path: "", expected: "a JSON object (Content-Type: application/json)" }]);
    for (const k of Object.keys(body)) {
      if (!["enrolment", "public_key", "name", "push"].includes(k)) return badRequest(c, [{ path: "(unknown key)", expected: "never" }]);
    }
    const issues: ValidationIssue[] = [];
    if (typeof body.enrolment !== "string" || !ENROLMENT_CODE.test(body.enrolment)) issues.push({ path: "enrolment", expected: "the code from the enrolment link (22 base64url characters)" });
    const name = typeof body.name === "string" ? body.name.trim() : undefined;
    if (name === undefined || name === "" || [...name].length > MAX_DEVICE_NAME || !isSafeDisplayText(name) || /[\r\n\t]/.test(name)) {
      issues.push({ path: "name", expected: `1-${MAX_DEVICE_NAME} characters of one line, without control or bidirectional formatting characters` });
    }
    const publicKey = await parseDevicePublicKey(body.public_key);
    if (!publicKey) issues.push({ path: "public_key", expected: 'a P-256 public JWK {"kty":"EC","crv":"P-256","x","y"} of a point on the curve' });
    let subscription: PushSubscription | null = null;
    if (body.push !== undefined && body.push !== null) {
      const parsed = await parsePushSubscription(body.push, push.hosts);
      if (parsed.ok) subscription = parsed.subscription;
      else issues.push(PUSH_EXPECTED[parsed.reason]);
    }
    if (issues.length > 0) {
      deps.audit({ type: "device.enrolment_refused", reason: issues.map((i) => i.path.split(".")[0]).join(","), client: clientOf(c) });
      return badRequest(c, issues);
    }
    let device;
    for (let attempt = 0; ; attempt++) {
      try {
        device = await store.devices.enrol(hashEnrolmentCode(body.enrolment as string), deps.now(), { id: newDeviceId(deps.random), name: name!, publicKey: publicKey!, push: subscription });
        break;
      } catch (e) {
        // A random ID collided (2^-128): draw another; the code was not consumed.
        if (!(e instanceof StoreError && e.code === "conflict") || attempt >= 3) throw e;
      }
    }
    if (!device) {
      deps.audit({ type: "device.enrolment_refused", reason: "bad_code", client: clientOf(c) });
      return c.json({ ...errorBody(c, 401), reason: "bad_code" }, 401);
    }
    const user = await store.users.findById(device.userId);
    deps.audit({ type: "device.enrolled", user: user?.username ?? `#${device.userId}`, device: device.id, name: device.name, push: subscription !== null, client: clientOf(c) });
    return c.json({ device: device.id, vapid_public_key: push.vapidPublicKey }, 201);
  });

  app.put(`${APP_API}/push`, signed, async (c) => {
    const push = deps.push;
    if (!push) return c.json(errorBody(c, 503), 503);
    const device = c.get("device");
    const user = c.get("deviceUser");
    const body = await jsonBody(c);
    if (!isObject(body)) return badRequest(c, [{ path: "", expected: "a JSON object (Content-Type: application/json)" }]);
    const parsed = await parsePushSubscription(body, push.hosts);
    if (!parsed.ok) {
      deps.audit({ type: "device.push_refused", user: user.username, device: device.id, reason: parsed.reason, client: clientOf(c) });
      const issue = PUSH_EXPECTED[parsed.reason];
      return badRequest(c, [{ path: issue.path.replace(/^push\./, ""), expected: issue.expected }]);
    }
    // A device removed between the signature check and this write is not given a subscription.
    if (!(await store.devices.setPush(device.id, parsed.subscription))) return c.json({ ...errorBody(c, 403), reason: "removed_device" }, 403);
    deps.audit({ type: "device.push_set", user: user.username, device: device.id, host: endpointHost(parsed.subscription.endpoint) });
    return c.body(null, 204);
  });

  app.delete(`${APP_API}/push`, signed, async (c) => {
    const device = c.get("device");
    const user = c.get("deviceUser");
    if (!(await store.devices.setPush(device.id, null))) return c.json({ ...errorBody(c, 403), reason: "removed_device" }, 403);
    deps.audit({ type: "device.push_removed", user: user.username, device: device.id });
    return c.body(null, 204);
  });

  appRequestRoutes(app, deps, signed, APP_API, version);
}
