// Signed requests of the approver app (DESIGN "Approver app"; docs/app.md "Signed requests"): the
// middleware every device route after enrolment sits behind.
//
// Order of checks, cheapest and body-free first, so that nobody without a device key makes the
// server read an upload or verify a signature:
//   1. the three headers' shapes                                  → 401 malformed
//   2. Portcullis-Time within SIGNATURE_WINDOW_S of the clock     → 401 stale_time
//   3. the device: unknown → 401 unknown_device; removed → 403 removed_device
//   4. the body, read under the route's cap                       → 413
//   5. the ECDSA signature over METHOD, PATH-WITH-QUERY, TIME and SHA-256(BODY) → 401 bad_signature
//   6. the signature's single use, recorded in the store          → 401 replayed
// Then `device` and `deviceUser` are set on the context and the route runs.

import type { Context, MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { AuditEvent } from "../audit/events.ts";
import { bodyDigest, decodeSignature, DEVICE_ID, importDeviceKey, SIGNATURE_WINDOW_S, signatureId, signedText, verifyDeviceSignature } from "../devices/keys.ts";
import type { Store } from "../store/types.ts";
import { bodyCap, errorBody } from "./middleware.ts";
import type { HttpEnv } from "./types.ts";

export const DEVICE_HEADER = "Portcullis-Device";
export const TIME_HEADER = "Portcullis-Time";
export const SIGNATURE_HEADER = "Portcullis-Signature";

/** Why a signed request was refused; sent as `reason` in the error body (fixed words, never input). */
export type SignedRequestFailure = "malformed" | "stale_time" | "unknown_device" | "removed_device" | "bad_signature" | "replayed";

type Ctx = Context<HttpEnv>;

/** The path and query the device signed: as the request line carries them (after any proxy). */
export function pathWithQuery(c: Ctx): string {
  const url = new URL(c.req.url);
  return url.pathname + url.search;
}

/**
 * Authenticates a request signed by an enrolled device (see the file comment for the order), reading
 * the body under `maxBodyBytes`. On success sets `device` and `deviceUser` and records the use
 * (`lastSeenAt`, at most once a minute). A refusal answers JSON `{"error","requestId","reason"}` with
 * 401 (403 for a removed device) and emits `device.request_refused`; a store failure answers 503.
 */
export function signedRequest({
  store,
  now,
  maxBodyBytes,
  audit,
}: {
  store: Store;
  now: () => number;
  maxBodyBytes: number;
  audit: (event: AuditEvent) => void;
}): MiddlewareHandler<HttpEnv> {
  const cap = bodyCap(maxBodyBytes);
  return async function signedRequestMiddleware(c, next) {
    const refuse = (reason: SignedRequestFailure, who: { device?: string; user?: string } = {}) => {
      audit({ type: "device.request_refused", reason, ...who, client: c.get("clientIp") });
      const status = reason === "removed_device" ? 403 : 401;
      return c.json({ ...errorBody(c, status), reason }, status);
    };
    const id = c.req.header(DEVICE_HEADER) ?? "";
    const time = c.req.header(TIME_HEADER) ?? "";
    const signature = decodeSignature(c.req.header(SIGNATURE_HEADER) ?? "");
    if (!DEVICE_ID.test(id) || !/^\d{1,12}$/.test(time) || !signature) return refuse("malformed");
    const t = Number(time);
    const nowMs = now();
    if (Math.abs(nowMs / 1000 - t) > SIGNATURE_WINDOW_S) return refuse("stale_time", { device: id });

    let device, user;
    try {
      device = await store.devices.get(id);
      user = device ? await store.users.findById(device.userId) : undefined;
    } catch {
      throw new HTTPException(503);
    }
    if (!device || !user) return refuse("unknown_device");
    if (device.removedAt !== null) return refuse("removed_device", { device: id, user: user.username });
    const who = { device: id, user: user.username };

    return cap(c, async () => {
      const body = new Uint8Array(await c.req.arrayBuffer());
      const text = signedText(c.req.method, pathWithQuery(c), time, bodyDigest(body));
      let key: CryptoKey;
      try {
        key = await importDeviceKey(device.publicKey);
      } catch {
        // Keys are checked at enrolment; a stored key that no longer imports verifies nothing.
        c.res = refuse("bad_signature", who);
        return;
      }
      if (!(await verifyDeviceSignature(key, signature, text))) {
        c.res = refuse("bad_signature", who);
        return;
      }
      // Kept until the time can no longer be accepted (plus a second for the clock's rounding); the
      // primary key makes the first recorder win across processes.
      let first: boolean;
      try {
        first = await store.devices.useSignature(id, signatureId(signature), (t + SIGNATURE_WINDOW_S + 1) * 1000);
      } catch {
        throw new HTTPException(503);
      }
      if (!first) {
        c.res = refuse("replayed", who);
        return;
      }
      c.set("device", device);
      c.set("deviceUser", user);
      if (device.lastSeenAt === null || nowMs - device.lastSeenAt > 60_000) void store.devices.touch(id, nowMs).catch(() => {});
      await next();
    });
  };
}
