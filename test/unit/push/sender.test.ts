// The Web Push sender against the test push service on 127.0.0.1 (a real HTTP peer that checks
// VAPID and decrypts with an independent RFC 8291 decoder): parallel sends, TTL, Urgency, the
// payload, VAPID claims, removal on 404/410, failures that stay per device, no redirects, deadlines,
// and the allow-list at send time.

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { createPublicKey, verify } from "node:crypto";
import type { AuditEvent } from "../../../src/audit/events.ts";
import { hashEnrolmentCode, newDeviceId } from "../../../src/devices/keys.ts";
import { PushHosts } from "../../../src/push/hosts.ts";
import { PushSender, type PushSenderOptions } from "../../../src/push/sender.ts";
import { loadVapidKeys } from "../../../src/push/vapid.ts";
import type { SqliteStore } from "../../../src/store/sqlite/store.ts";
import type { Device, User } from "../../../src/store/types.ts";
import { parseVapidAuthorization, TestPushService, type TestSubscription } from "../../integration/helpers/push-service.ts";
import { cleanup, newUser, openIn, tempDir } from "../store/helpers.ts";

const SUBJECT = "mailto:ops@example.com";
let dir: string;
let store: SqliteStore;
let service: TestPushService;
let alice: User;
let events: AuditEvent[];

beforeEach(async () => {
  dir = tempDir();
  store = await openIn(dir);
  service = new TestPushService(SUBJECT);
  alice = await store.users.add(newUser("alice"));
  events = [];
});
afterEach(async () => {
  service.stop();
  await store.close();
  cleanup(dir);
});

let n = 0;
/** Enrols a device for alice with `sub` as its subscription (through the store, as the route does). */
async function device(sub: TestSubscription | null): Promise<Device> {
  const code = `code-${n++}`;
  await store.devices.addEnrolment({ codeHash: hashEnrolmentCode(code), userId: alice.id, createdAt: 0, expiresAt: Date.now() + 60_000 });
  const jwk = (await crypto.subtle.exportKey("jwk", (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])).publicKey)) as { x: string; y: string };
  const d = await store.devices.enrol(hashEnrolmentCode(code), Date.now(), {
    id: newDeviceId((k) => crypto.getRandomValues(new Uint8Array(k))),
    name: `phone ${n}`,
    publicKey: { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y },
    push: sub ? { endpoint: sub.endpoint, p256dh: sub.keys.p256dh, auth: sub.keys.auth } : null,
  });
  return d!;
}

async function sender(patch: Partial<PushSenderOptions> = {}): Promise<PushSender> {
  return new PushSender({
    devices: store.devices,
    vapid: await loadVapidKeys(store.serverSecrets),
    subject: SUBJECT,
    hosts: new PushHosts(["127.0.0.1"]),
    timeoutMs: 2000,
    audit: (e) => void events.push(e),
    ...patch,
  });
}

describe("PushSender", () => {
  test("every device with a subscription gets the encrypted {v,id} with TTL = time left, Urgency high and a VAPID token for the service's origin", async () => {
    const a = await device(service.subscribe());
    const b = await device(service.subscribe());
    await device(null); // no subscription: skipped
    const s = await sender();
    const outcomes = await s.notifyUser(alice, { id: "req_1", expiresAt: Date.now() + 90_500 });
    expect(outcomes.map((o) => o.result).sort()).toEqual(["sent", "sent"]);
    expect(new Set(outcomes.map((o) => o.device))).toEqual(new Set([a.id, b.id]));
    const messages = await service.waitFor(2);
    for (const m of messages) {
      expect(JSON.parse(m.payload)).toEqual({ v: 1, id: "req_1" });
      expect(m.payload).toBe('{"v":1,"id":"req_1"}');
      expect(m.ttl).toBeGreaterThan(85);
      expect(m.ttl).toBeLessThanOrEqual(90);
      expect(m.urgency).toBe("high");
      expect(m.claims.aud).toBe(service.origin);
      expect(m.claims.sub).toBe(SUBJECT);
      expect(m.k).toBe(s.vapidPublicKey);
      const now = Math.floor(Date.now() / 1000);
      expect(m.claims.exp).toBeGreaterThan(now + 11 * 3600);
      expect(m.claims.exp).toBeLessThanOrEqual(now + 12 * 3600 + 5);
    }
    expect(events.filter((e) => e.type === "push.sent").length).toBe(2);
  });

  test("the VAPID token: header {typ JWT, alg ES256}, claims aud/exp/sub only, ES256 by the stored key (checked with node:crypto)", async () => {
    const sub = service.subscribe();
    await device(sub);
    let authorization = "";
    const s = await sender({
      fetch: (async (url: string, init: RequestInit) => {
        authorization = new Headers(init.headers).get("authorization") ?? "";
        return fetch(url, init);
      }) as typeof fetch,
    });
    await s.notifyUser(alice, { id: "x", expiresAt: Date.now() + 30_000 });
    const { t, k } = parseVapidAuthorization(authorization)!;
    expect(k).toBe(s.vapidPublicKey);
    const [h, c, sig] = t.split(".");
    expect(JSON.parse(Buffer.from(h!, "base64url").toString())).toEqual({ typ: "JWT", alg: "ES256" });
    const claims = JSON.parse(Buffer.from(c!, "base64url").toString());
    expect(Object.keys(claims).sort()).toEqual(["aud", "exp", "sub"]);
    expect(claims.aud).toBe(service.origin);
    const point = Buffer.from(k, "base64url");
    const key = createPublicKey({ key: { kty: "EC", crv: "P-256", x: point.subarray(1, 33).toString("base64url"), y: point.subarray(33).toString("base64url") }, format: "jwk" });
    expect(verify("sha256", Buffer.from(`${h}.${c}`), { key, dsaEncoding: "ieee-p1363" }, Buffer.from(sig!, "base64url"))).toBe(true);
  });

  test.each([404, 410])("a %i removes the subscription; the audit names the host, never the endpoint's path", async (status) => {
    const sub = service.subscribe(status);
    const d = await device(sub);
    const s = await sender();
    const [o] = await s.notifyUser(alice, { id: "r", expiresAt: Date.now() + 30_000 });
    expect(o).toEqual({ device: d.id, host: new URL(service.origin).host, result: "gone", status });
    expect((await store.devices.get(d.id))!.push).toBeNull();
    expect(events).toEqual([{ type: "push.subscription_removed", user: "alice", device: d.id, host: new URL(service.origin).host, status }]);
    expect(JSON.stringify(events)).not.toContain(new URL(sub.endpoint).pathname);
    // Nothing left to send to.
    expect(await s.notifyUser(alice, { id: "r2", expiresAt: Date.now() + 30_000 })).toEqual([]);
  });

  test("one failing, one hanging and one redirecting device never stop the others, never throw, and keep their subscriptions", async () => {
    const ok = await device(service.subscribe());
    const broken = await device(service.subscribe(500));
    const slow = await device(service.subscribe("hang"));
    const moved = await device(service.subscribe("redirect"));
    const s = await sender({ timeoutMs: 300 });
    const outcomes = await s.notifyUser(alice, { id: "r", expiresAt: Date.now() + 30_000 });
    const by = new Map(outcomes.map((o) => [o.device, o]));
    expect(by.get(ok.id)).toMatchObject({ result: "sent", status: 201 });
    expect(by.get(broken.id)).toMatchObject({ result: "failed", reason: "status", status: 500 });
    expect(by.get(slow.id)).toMatchObject({ result: "failed", reason: "timeout" });
    expect(by.get(moved.id)).toMatchObject({ result: "failed", reason: "redirect", status: 307 });
    // The redirect was not followed.
    expect(service.hits.get("/elsewhere")).toBeUndefined();
    for (const d of [broken, slow, moved]) expect((await store.devices.get(d.id))!.push).not.toBeNull();
    expect(events.filter((e) => e.type === "push.failed").length).toBe(3);
  });

  test("a host no longer allowed, an expired request and a missing subject are refused without a request", async () => {
    await device(service.subscribe());
    const notAllowed = await sender({ hosts: new PushHosts(["fcm.googleapis.com"]) });
    expect((await notAllowed.notifyUser(alice, { id: "r", expiresAt: Date.now() + 30_000 }))[0]).toMatchObject({ result: "refused", reason: "host_not_allowed" });
    const s = await sender();
    expect((await s.notifyUser(alice, { id: "r", expiresAt: Date.now() + 999 }))[0]).toMatchObject({ result: "refused", reason: "expired" });
    const noSubject = await sender({ subject: "" });
    expect((await noSubject.notifyUser(alice, { id: "r", expiresAt: Date.now() + 30_000 }))[0]).toMatchObject({ result: "refused", reason: "no_subject" });
    expect([...service.hits.values()].reduce((a, b) => a + b, 0)).toBe(0);
  });

  test("a removed device gets nothing; a notice ID that could carry anything but an ID is a programming error", async () => {
    const d = await device(service.subscribe());
    await store.devices.remove(d.id, Date.now());
    const s = await sender();
    expect(await s.notifyUser(alice, { id: "r", expiresAt: Date.now() + 30_000 })).toEqual([]);
    await expect(s.notifyUser(alice, { id: "alice's code 123456", expiresAt: Date.now() + 30_000 })).rejects.toThrow(TypeError);
  });
});
