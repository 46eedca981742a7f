// Web Push sender (RFC 8030 §5): one encrypted notification per device, in parallel, over fetch.
//
// Each request is built by the web-push package (encryption, RFC 8291 aes128gcm; headers) and its
// VAPID header (RFC 8292) is made here through web-push's getVapidHeaders with the audience taken
// from the WHATWG-parsed endpoint, then sent with fetch (web-push's own sender uses node:https):
//
//   POST {endpoint}
//   TTL: {seconds the request has left}        never web-push's 4-week default
//   Urgency: high                               (RFC 8030 §5.3) the phone should wake for it
//   Content-Encoding: aes128gcm
//   Authorization: vapid t={JWT aud=origin of the endpoint, exp ≤ 24 h, sub=[push] subject}, k={public key}
//
//   body = RFC 8291 encryption of {"v":1,"id":REQUEST_ID}
//
// The payload names only the request: the app fetches what it is about over its own signed channel,
// so no user name, service, code or secret ever passes through a push service, even encrypted.
// Redirects are not followed, each request has a deadline, and a 404 or 410 (RFC 8030 §7.3: the
// subscription expired or was unsubscribed) removes the subscription. A failure on one device never
// stops the others and never throws to the caller: each device gets an outcome.

import webpush from "web-push";
import type { AuditEvent } from "../audit/events.ts";
import type { Device, DeviceRepo } from "../store/types.ts";
import { endpointHost, type PushHosts } from "./hosts.ts";
import type { VapidKeys } from "./vapid.ts";

/** What a notification is about: the request the app should fetch, and when it stops mattering. */
export interface PushNotice {
  /** The request's ID (at most 64 characters of A-Z a-z 0-9 _ -). The payload carries nothing else. */
  id: string;
  /** unix ms when the request expires: the push TTL is the time left until then. */
  expiresAt: number;
}

/** The outcome for one device (`host` is the endpoint's host only: its path is a secret). */
export type PushOutcome =
  | { device: string; host: string; result: "sent"; status: number }
  /** The push service said the subscription is gone (404/410); it was removed from the device. */
  | { device: string; host: string; result: "gone"; status: number }
  | { device: string; host: string; result: "failed"; reason: "status" | "timeout" | "network" | "redirect" | "bad_subscription"; status?: number }
  /** Not sent: the host is no longer allowed, the request has expired, or no VAPID subject is configured. */
  | { device: string; host: string; result: "refused"; reason: "host_not_allowed" | "expired" | "no_subject" };

export interface PushSenderOptions {
  /** Where subscriptions are read and dropped. */
  devices: Pick<DeviceRepo, "list" | "dropPush">;
  vapid: VapidKeys;
  /** RFC 8292 §2.1 `sub`: a mailto: or https: contact. "" refuses every send (`no_subject`). */
  subject: string;
  hosts: PushHosts;
  /** Deadline of each request to a push service, ms. */
  timeoutMs: number;
  audit: (event: AuditEvent) => void;
  /** unix ms; default Date.now. The VAPID expiry is checked by web-push against the real clock. */
  now?: () => number;
  /** default globalThis.fetch (tests pass their own to count calls). */
  fetch?: typeof fetch;
}

const NOTICE_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** VAPID token lifetime: RFC 8292 §2 allows at most 24 hours; 12 hours as web-push and the push services expect. */
const VAPID_TTL_S = 12 * 3600;

/** Sends approval notifications; create one per process with the store's VAPID keys. */
export class PushSender {
  private readonly now: () => number;
  private readonly fetch: typeof fetch;

  constructor(private readonly o: PushSenderOptions) {
    this.now = o.now ?? Date.now;
    this.fetch = o.fetch ?? globalThis.fetch;
  }

  /** The allow-list subscriptions are checked against when a device stores one. */
  get hosts(): PushHosts {
    return this.o.hosts;
  }

  /** The applicationServerKey the app subscribes with (base64url, 65 bytes). */
  get vapidPublicKey(): string {
    return this.o.vapid.publicKey;
  }

  /**
   * Notifies every live device of `user` that has a subscription, in parallel. Resolves with one
   * outcome per device (none when no device has push); never rejects for a device's failure.
   * Throws TypeError for a malformed notice ID (a programming error), and rejects when the store
   * cannot list the devices.
   */
  async notifyUser(user: { id: number; username: string }, notice: PushNotice): Promise<PushOutcome[]> {
    if (!NOTICE_ID.test(notice.id)) throw new TypeError("push notice id must be 1-64 base64url characters");
    const devices = await this.o.devices.list({ userId: user.id });
    return this.notifyDevices(user.username, devices, notice);
  }

  /** Like notifyUser for given devices (removed ones and those without push are skipped). */
  async notifyDevices(username: string, devices: readonly Device[], notice: PushNotice): Promise<PushOutcome[]> {
    if (!NOTICE_ID.test(notice.id)) throw new TypeError("push notice id must be 1-64 base64url characters");
    const targets = devices.filter((d) => d.removedAt === null && d.push !== null);
    return Promise.all(targets.map((d) => this.sendOne(username, d, notice)));
  }

  private async sendOne(username: string, device: Device, notice: PushNotice): Promise<PushOutcome> {
    const push = device.push!;
    const host = endpointHost(push.endpoint);
    const base = { device: device.id, host };
    const outcome = await this.attempt(device, notice).catch((): PushOutcome => ({ ...base, result: "failed", reason: "network" }));
    const who = { user: username, device: device.id, host };
    switch (outcome.result) {
      case "sent":
        this.o.audit({ type: "push.sent", ...who, status: outcome.status });
        break;
      case "gone":
        this.o.audit({ type: "push.subscription_removed", ...who, status: outcome.status });
        break;
      case "failed":
        this.o.audit({ type: "push.failed", ...who, reason: outcome.reason, ...(outcome.status === undefined ? {} : { status: outcome.status }) });
        break;
      case "refused":
        if (outcome.reason !== "expired") this.o.audit({ type: "push.failed", ...who, reason: outcome.reason });
        break;
    }
    return outcome;
  }

  private async attempt(device: Device, notice: PushNotice): Promise<PushOutcome> {
    const push = device.push!;
    const base = { device: device.id, host: endpointHost(push.endpoint) };
    if (!this.o.subject) return { ...base, result: "refused", reason: "no_subject" };
    // Checked again at send time: the allow-list may have shrunk since the subscription was stored.
    const checked = this.o.hosts.check(push.endpoint);
    if (!checked.ok) return { ...base, result: "refused", reason: "host_not_allowed" };
    const now = this.now();
    // TTL at most the request's remaining lifetime: a notification delivered after the request
    // ended would only show a stale prompt.
    const ttl = Math.floor((notice.expiresAt - now) / 1000);
    if (ttl <= 0) return { ...base, result: "refused", reason: "expired" };

    let details: ReturnType<typeof webpush.generateRequestDetails>;
    let authorization: string;
    try {
      // vapidDetails null: web-push would otherwise derive the audience with the legacy url.parse.
      details = webpush.generateRequestDetails({ endpoint: checked.url.href, keys: { p256dh: push.p256dh, auth: push.auth } }, JSON.stringify({ v: 1, id: notice.id }), {
        TTL: ttl,
        urgency: "high",
        contentEncoding: "aes128gcm",
        // null (not undefined) also ignores anything set with web-push's module-wide setVapidDetails.
        vapidDetails: null as unknown as undefined,
      });
      authorization = webpush.getVapidHeaders(checked.url.origin, this.o.subject, this.o.vapid.publicKey, this.o.vapid.privateKey, "aes128gcm", Math.floor(now / 1000) + VAPID_TTL_S).Authorization;
    } catch {
      return { ...base, result: "failed", reason: "bad_subscription" };
    }
    const headers: Record<string, string> = { Authorization: authorization };
    for (const [k, v] of Object.entries(details.headers)) headers[k] = String(v);

    let res: Response;
    try {
      res = await this.fetch(checked.url.href, {
        method: "POST",
        headers,
        body: details.body as Uint8Array<ArrayBuffer>,
        redirect: "manual",
        signal: AbortSignal.timeout(this.o.timeoutMs),
      });
    } catch (err) {
      const name = (err as { name?: string } | null)?.name;
      return { ...base, result: "failed", reason: name === "TimeoutError" || name === "AbortError" ? "timeout" : "network" };
    }
    // The answer's body is of no use (and may be large): release the connection without reading it.
    void res.body?.cancel().catch(() => {});
    if (res.status >= 200 && res.status < 300) return { ...base, result: "sent", status: res.status };
    if (res.status === 404 || res.status === 410) {
      await this.o.devices.dropPush(device.id, push.endpoint).catch(() => false);
      return { ...base, result: "gone", status: res.status };
    }
    if (res.status >= 300 && res.status < 400) return { ...base, result: "failed", reason: "redirect", status: res.status };
    return { ...base, result: "failed", reason: "status", status: res.status };
  }
}
