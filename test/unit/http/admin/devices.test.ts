// Admin API /devices: enrolment links (with QR), listing, removal (the last device is flagged), and a
// test push that reaches the test push service; roles and audit events.

import { afterEach, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import type { AuditEvent } from "../../../../src/audit/events.ts";
import { appApiRoutes } from "../../../../src/devices/routes.ts";
import { buildPublicApp } from "../../../../src/http/app.ts";
import { PushHosts } from "../../../../src/push/hosts.ts";
import { PushSender } from "../../../../src/push/sender.ts";
import { loadVapidKeys } from "../../../../src/push/vapid.ts";
import { DeviceClient } from "../../../integration/helpers/device-client.ts";
import { TestPushService } from "../../../integration/helpers/push-service.ts";
import { cleanup, newUser } from "../../store/helpers.ts";
import { adminFixture } from "./helpers.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function fixture() {
  const events: AuditEvent[] = [];
  const service = new TestPushService("mailto:ops@example.com");
  const f = await adminFixture({ audit: (e) => void events.push(e), now: () => Date.now(), random: (n) => new Uint8Array(randomBytes(n)), configPatch: (c) => void (c.http.public_url = "https://mfa.example.com/") });
  f.deps.push = new PushSender({ devices: f.store.devices, vapid: await loadVapidKeys(f.store.serverSecrets), subject: "mailto:ops@example.com", hosts: new PushHosts(["127.0.0.1"]), timeoutMs: 2000, audit: f.deps.audit });
  cleanups.push(async () => {
    service.stop();
    await f.store.close();
    cleanup(f.dir);
  });
  await f.store.users.add(newUser("alice"));
  const pub = buildPublicApp(f.deps, [appApiRoutes]);
  /** Enrols a device from an admin-made link, with a subscription to the test service. */
  const enrol = async (sub = service.subscribe()) => {
    const made = await f.call("POST", "/devices/enrolments", { key: f.keys.admin, body: { user: "Alice" } });
    expect(made.status).toBe(201);
    const { link } = (await made.json()) as { link: string };
    const client = await DeviceClient.create();
    const res = await pub.request("http://x/app/api/v1/devices", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ enrolment: link.split("#enrol=")[1], public_key: client.publicJwk, name: "phone", push: TestPushService.json(sub) }) });
    expect(res.status).toBe(201);
    client.id = ((await res.json()) as { device: string }).device;
    return client;
  };
  return { ...f, events, service, enrol };
}

describe("admin API /devices", () => {
  test("POST /devices/enrolments: the link from public_url with the code in the fragment, a QR code, 10 minutes; audited without the code", async () => {
    const f = await fixture();
    const before = Date.now();
    const res = await f.call("POST", "/devices/enrolments", { key: f.keys.admin, body: { user: "alice" } });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { user: string; link: string; qrSvg: string; expiresAt: string };
    expect(body.user).toBe("alice");
    expect(body.link).toMatch(/^https:\/\/mfa\.example\.com\/app\/#enrol=[A-Za-z0-9_-]{22}$/);
    expect(body.qrSvg).toStartWith("<svg");
    const ttl = Date.parse(body.expiresAt) - before;
    expect(ttl).toBeGreaterThanOrEqual(10 * 60_000);
    expect(ttl).toBeLessThan(10 * 60_000 + 5000);
    const event = f.events.find((e) => e.type === "admin.device_enrolment_created")!;
    expect(event).toEqual({ type: "admin.device_enrolment_created", user: "alice", expires_at: body.expiresAt, by: "k-admin" });
    expect(JSON.stringify(f.events)).not.toContain(body.link.split("#enrol=")[1]!);
  });

  test("roles: an operator lists but cannot enrol or remove; unknown users are 404", async () => {
    const f = await fixture();
    expect((await f.call("POST", "/devices/enrolments", { key: f.keys.operator, body: { user: "alice" } })).status).toBe(403);
    expect((await f.call("GET", "/devices", { key: f.keys.operator })).status).toBe(200);
    expect((await f.call("POST", "/devices/enrolments", { key: f.keys.admin, body: { user: "nobody" } })).status).toBe(404);
    expect((await f.call("GET", "/devices?user=nobody", { key: f.keys.operator })).status).toBe(404);
    expect((await f.call("DELETE", `/devices/${"A".repeat(22)}`, { key: f.keys.operator })).status).toBe(403);
  });

  test("list, show and remove; removing the last device says so (and the audit event is a warning)", async () => {
    const f = await fixture();
    const one = await f.enrol();
    const two = await f.enrol();
    const list = (await (await f.call("GET", "/devices?user=alice", { key: f.keys.operator })).json()) as Array<Record<string, unknown>>;
    expect(list.map((d) => d.id).sort()).toEqual([one.id, two.id].sort());
    expect(list[0]).toMatchObject({ user: "alice", name: "phone", push: `127.0.0.1:${new URL(f.service.origin).port}`, removedAt: null });
    expect(JSON.stringify(list)).not.toContain("/push/");
    const r1 = await f.call("DELETE", `/devices/${one.id}`, { key: f.keys.admin });
    expect(await r1.json()).toMatchObject({ device: { id: one.id, push: null }, lastDevice: false });
    const r2 = await f.call("DELETE", `/devices/${two.id}`, { key: f.keys.admin });
    expect(await r2.json()).toMatchObject({ lastDevice: true });
    expect((await f.call("DELETE", `/devices/${two.id}`, { key: f.keys.admin })).status).toBe(404);
    expect(f.events.filter((e) => e.type === "admin.device_removed")).toEqual([
      { type: "admin.device_removed", device: one.id, user: "alice", last_device: false, by: "k-admin" },
      { type: "admin.device_removed", device: two.id, user: "alice", last_device: true, by: "k-admin" },
    ]);
    expect(await (await f.call("GET", "/devices", { key: f.keys.operator })).json()).toEqual([]);
    expect(((await (await f.call("GET", "/devices?all=true", { key: f.keys.operator })).json()) as unknown[]).length).toBe(2);
    expect((await f.call("GET", `/devices/${one.id}`, { key: f.keys.operator })).status).toBe(200);
  });

  test("POST /devices/{id}/push-test: the test push service receives {v:1,id:test-…} with a valid VAPID token", async () => {
    const f = await fixture();
    const d = await f.enrol();
    const res = await f.call("POST", `/devices/${d.id}/push-test`, { key: f.keys.admin });
    expect(await res.json()).toEqual({ result: "sent", host: `127.0.0.1:${new URL(f.service.origin).port}`, status: 201, reason: null });
    const [m] = await f.service.waitFor(1);
    expect(JSON.parse(m!.payload)).toEqual({ v: 1, id: expect.stringMatching(/^test-[A-Za-z0-9_-]{12}$/) });
    expect(m!.ttl).toBeLessThanOrEqual(60);
    expect(f.events).toContainEqual({ type: "admin.push_tested", device: d.id, result: "sent", by: "k-admin" });
  });
});
