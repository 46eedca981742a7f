// The approver app's public device protocol (/app/api/v1), driven without a browser through the
// public app: enrolment with a link's code, signed PUT/DELETE of the push subscription, and every
// way a signed request is refused.

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { Hono } from "hono";
import type { AuditEvent } from "../../../src/audit/events.ts";
import { createEnrolment, removeDevice } from "../../../src/admin/devices.ts";
import { buildPublicApp } from "../../../src/http/app.ts";
import type { HttpDeps, HttpEnv } from "../../../src/http/types.ts";
import { PushHosts } from "../../../src/push/hosts.ts";
import { PushSender } from "../../../src/push/sender.ts";
import { loadVapidKeys } from "../../../src/push/vapid.ts";
import type { SqliteStore } from "../../../src/store/sqlite/store.ts";
import type { User } from "../../../src/store/types.ts";
import { DeviceClient, malleate } from "../../integration/helpers/device-client.ts";
import { cleanup, newUser } from "../store/helpers.ts";
import { testDeps } from "../http/helpers.ts";
import { createECDH, randomBytes } from "node:crypto";

const BASE = "http://appliance.test";
const NOW = 1_700_000_000_000;
const T = NOW / 1000;

let deps: HttpDeps;
let store: SqliteStore;
let dir: string;
let app: Hono<HttpEnv>;
let alice: User;
let events: AuditEvent[];
let clock: number;

beforeEach(async () => {
  events = [];
  clock = NOW;
  const t = await testDeps({ audit: (e) => void events.push(e), now: () => clock, random: (n) => new Uint8Array(randomBytes(n)), configPatch: (c) => void (c.http.public_url = "https://mfa.example.com") });
  deps = t.deps;
  store = t.store;
  dir = t.dir;
  deps.push = new PushSender({ devices: store.devices, vapid: await loadVapidKeys(store.serverSecrets), subject: "mailto:ops@example.com", hosts: new PushHosts(["127.0.0.1", "fcm.googleapis.com"]), timeoutMs: 1000, audit: deps.audit });
  app = buildPublicApp(deps);
  alice = await store.users.add(newUser("alice"));
});
afterEach(async () => {
  await store.close();
  cleanup(dir);
});

/** A fresh enrolment code for alice, as `device enrol alice` makes it. */
async function enrolmentCode(): Promise<string> {
  const { link } = await createEnrolment(store, alice, { publicUrl: deps.config.http.public_url, now: clock, random: deps.random });
  return /#enrol=([A-Za-z0-9_-]+)$/.exec(link)![1]!;
}

function subscription(endpoint = "http://127.0.0.1:9/push/abc") {
  const ua = createECDH("prime256v1");
  ua.generateKeys();
  return { endpoint, keys: { p256dh: ua.getPublicKey("base64url"), auth: randomBytes(16).toString("base64url") } };
}

const post = (body: unknown, headers: Record<string, string> = { "Content-Type": "application/json" }) =>
  app.request(`${BASE}/app/api/v1/devices`, { method: "POST", headers, body: typeof body === "string" ? body : JSON.stringify(body) });

/** An enrolled client. */
async function enrolled(): Promise<DeviceClient> {
  const client = await DeviceClient.create();
  const res = await post({ enrolment: await enrolmentCode(), public_key: client.publicJwk, name: "Alice's phone" });
  expect(res.status).toBe(201);
  client.id = ((await res.json()) as { device: string }).device;
  return client;
}

const send = (req: Request) => app.request(req);

describe("POST /app/api/v1/devices (enrolment)", () => {
  test("201 {device, vapid_public_key}; the device holds the key, the name and the subscription", async () => {
    const client = await DeviceClient.create();
    const sub = subscription();
    const res = await post({ enrolment: await enrolmentCode(), public_key: client.publicJwk, name: " Alice's phone ", push: sub });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { device: string; vapid_public_key: string };
    expect(Object.keys(body).sort()).toEqual(["device", "vapid_public_key"]);
    expect(body.device).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(body.vapid_public_key).toBe(deps.push!.vapidPublicKey);
    const d = (await store.devices.get(body.device))!;
    expect(d).toMatchObject({ userId: alice.id, name: "Alice's phone", publicKey: { kty: "EC", crv: "P-256", x: client.publicJwk.x, y: client.publicJwk.y }, push: { endpoint: sub.endpoint, ...sub.keys } });
    expect(events).toContainEqual({ type: "device.enrolled", user: "alice", device: body.device, name: "Alice's phone", push: true, client: expect.any(String) });
  });

  test("a code works once: the second use is 401 bad_code", async () => {
    const code = await enrolmentCode();
    const first = await DeviceClient.create();
    expect((await post({ enrolment: code, public_key: first.publicJwk, name: "one" })).status).toBe(201);
    const res = await post({ enrolment: code, public_key: (await DeviceClient.create()).publicJwk, name: "two" });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: "unauthorized", reason: "bad_code" });
    expect((await store.devices.list()).length).toBe(1);
  });

  test("a code is good for 10 minutes", async () => {
    const code = await enrolmentCode();
    clock = NOW + 10 * 60_000;
    const res = await post({ enrolment: code, public_key: (await DeviceClient.create()).publicJwk, name: "late" });
    expect(res.status).toBe(401);
    clock = NOW + 10 * 60_000 - 1;
    const code2 = await enrolmentCode();
    clock += 10 * 60_000 - 1;
    expect((await post({ enrolment: code2, public_key: (await DeviceClient.create()).publicJwk, name: "in time" })).status).toBe(201);
  });

  const jwk = async () => (await DeviceClient.create()).publicJwk;
  test.each([
    ["off the curve", async () => ({ ...(await jwk()), y: (await jwk()).x })],
    ["a private key (d)", async () => ({ ...(await jwk()), d: "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94" })],
    ["another curve", async () => ({ ...(await jwk()), crv: "P-384" })],
    ["an RSA key", async () => ({ kty: "RSA", n: "abc", e: "AQAB" })],
    ["x of 31 bytes", async () => ({ ...(await jwk()), x: "A".repeat(42) })],
    ["x with padding", async () => ({ ...(await jwk()), x: `${(await jwk()).x}=` })],
    ["x not canonical (unused bits set)", async () => ({ ...(await jwk()), x: (await jwk()).x.slice(0, 42) + "B" })],
    ["an unknown member", async () => ({ ...(await jwk()), kid: "x" })],
    ["key_ops other than verify", async () => ({ ...(await jwk()), key_ops: ["sign"] })],
    ["a string", async () => "not a key"],
  ])("a public key that is %s is refused with 400, and the code stays usable", async (_, make) => {
    const code = await enrolmentCode();
    const res = await post({ enrolment: code, public_key: await make(), name: "phone" });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { issues: Array<{ path: string }> };
    expect(body.issues.map((i) => i.path)).toEqual(["public_key"]);
    expect((await post({ enrolment: code, public_key: await jwk(), name: "phone" })).status).toBe(201);
  });

  test("WebCrypto's own export (with ext and key_ops) is accepted and stored reduced to kty, crv, x, y", async () => {
    const client = await DeviceClient.create();
    expect(client.publicJwk.key_ops).toEqual(["verify"]);
    const res = await post({ enrolment: await enrolmentCode(), public_key: client.publicJwk, name: "phone" });
    const d = (await store.devices.get(((await res.json()) as { device: string }).device))!;
    expect(d.publicKey).toEqual({ kty: "EC", crv: "P-256", x: client.publicJwk.x, y: client.publicJwk.y });
  });

  test.each([
    ["a host not on allowed_hosts", "https://push.attacker.test/x", "push.endpoint"],
    ["http: to a host not listed", "http://192.0.2.1/push/x", "push.endpoint"],
    ["http: to an allowed name", "http://fcm.googleapis.com/fcm/send/x", "push.endpoint"],
    ["a loopback address not listed", "http://127.0.0.2:9/push/x", "push.endpoint"],
  ])("a push endpoint on %s is refused (400), nothing is stored, the code stays usable", async (_, endpoint, path) => {
    const code = await enrolmentCode();
    const client = await DeviceClient.create();
    const res = await post({ enrolment: code, public_key: client.publicJwk, name: "phone", push: subscription(endpoint) });
    expect(res.status).toBe(400);
    const text = await res.text();
    expect(JSON.parse(text).issues.map((i: { path: string }) => i.path)).toEqual([path]);
    expect(text).not.toContain(new URL(endpoint).host);
    expect(await store.devices.list()).toEqual([]);
    expect((await post({ enrolment: code, public_key: client.publicJwk, name: "phone" })).status).toBe(201);
  });

  test.each([
    ["a bad code shape", { enrolment: "short" }, "enrolment"],
    ["no name", { name: "" }, "name"],
    ["a name of 65 characters", { name: "x".repeat(65) }, "name"],
    ["a name with bidi controls", { name: "pay\u202Eevil" }, "name"],
    ["a name on two lines", { name: "a\nb" }, "name"],
  ])("%s → 400 naming the field, never echoing input", async (_, patch, path) => {
    const res = await post({ enrolment: await enrolmentCode(), public_key: await jwk(), name: "phone", ...patch });
    expect(res.status).toBe(400);
    const text = await res.text();
    expect(JSON.parse(text).issues.map((i: { path: string }) => i.path)).toEqual([path]);
    const name = (patch as { name?: string }).name;
    if (name !== undefined && name.length > 3) expect(text).not.toContain(name);
  });

  test("not JSON, an unknown member, or a body over 8 KiB: 400, 400, 413", async () => {
    expect((await post("{", { "Content-Type": "application/json" })).status).toBe(400);
    expect((await post({ enrolment: await enrolmentCode(), public_key: await jwk(), name: "p" }, { "Content-Type": "text/plain" })).status).toBe(400);
    expect((await post({ enrolment: await enrolmentCode(), public_key: await jwk(), name: "p", admin: true })).status).toBe(400);
    const big = JSON.stringify({ enrolment: await enrolmentCode(), public_key: await jwk(), name: "p", pad: "x".repeat(9000) });
    expect((await post(big, { "Content-Type": "application/json", "Content-Length": String(big.length) })).status).toBe(413);
  });
});

describe("signed requests (PUT and DELETE /app/api/v1/push)", () => {
  const PATH = "/app/api/v1/push";

  test("a good signed PUT stores the subscription (204); DELETE removes it (204)", async () => {
    const client = await enrolled();
    const sub = subscription();
    const res = await send(await client.request(BASE, "PUT", PATH, sub, { time: T }));
    expect(res.status).toBe(204);
    const d = (await store.devices.get(client.id))!;
    expect(d.push).toEqual({ endpoint: sub.endpoint, ...sub.keys });
    expect(d.lastSeenAt).toBe(NOW);
    expect(events).toContainEqual({ type: "device.push_set", user: "alice", device: client.id, host: "127.0.0.1:9" });
    expect((await send(await client.request(BASE, "DELETE", PATH, undefined, { time: T }))).status).toBe(204);
    expect((await store.devices.get(client.id))!.push).toBeNull();
  });

  test("a bad signature (another key's) is 401 bad_signature", async () => {
    const client = await enrolled();
    const impostor = await DeviceClient.create();
    impostor.id = client.id;
    const res = await send(await impostor.request(BASE, "PUT", PATH, subscription(), { time: T }));
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: "unauthorized", reason: "bad_signature" });
    expect((await store.devices.get(client.id))!.push).toBeNull();
  });

  test("a replayed request is 401 replayed, and so is its malleated twin (r, n − s)", async () => {
    const client = await enrolled();
    const req = await client.request(BASE, "PUT", PATH, subscription(), { time: T });
    const copy = req.clone() as Request;
    const twinHeaders = new Headers(req.headers);
    twinHeaders.set("Portcullis-Signature", malleate(req.headers.get("Portcullis-Signature")!));
    const twin = new Request(req.url, { method: "PUT", headers: twinHeaders, body: await req.clone().text() });
    expect((await send(req)).status).toBe(204);
    const again = await send(copy);
    expect(again.status).toBe(401);
    expect(await again.json()).toMatchObject({ reason: "replayed" });
    const t = await send(twin);
    expect(t.status).toBe(401);
    expect(await t.json()).toMatchObject({ reason: "replayed" });
    expect(events.filter((e) => e.type === "device.request_refused").map((e) => (e as { reason: string }).reason)).toEqual(["replayed", "replayed"]);
  });

  test.each([
    ["61 s behind", T - 61, 401],
    ["61 s ahead", T + 61, 401],
    ["60 s behind", T - 60, 204],
    ["60 s ahead", T + 60, 204],
  ])("a time %s → %i", async (_, time, status) => {
    const client = await enrolled();
    const res = await send(await client.request(BASE, "PUT", PATH, subscription(), { time }));
    expect(res.status).toBe(status);
    if (status === 401) expect(await res.json()).toMatchObject({ reason: "stale_time" });
  });

  test("a removed device is 403 removed_device; an unknown one is 401 unknown_device", async () => {
    const client = await enrolled();
    await removeDevice(store, client.id, NOW);
    const res = await send(await client.request(BASE, "PUT", PATH, subscription(), { time: T }));
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: "forbidden", reason: "removed_device" });
    const stranger = await DeviceClient.create();
    stranger.id = "A".repeat(22);
    const r2 = await send(await stranger.request(BASE, "DELETE", PATH, undefined, { time: T }));
    expect(r2.status).toBe(401);
    expect(await r2.json()).toMatchObject({ reason: "unknown_device" });
  });

  test("an altered body or path does not verify (401 bad_signature)", async () => {
    const client = await enrolled();
    const body = subscription();
    const altered = await send(await client.request(BASE, "PUT", PATH, body, { time: T, signBody: JSON.stringify({ ...body, endpoint: "http://127.0.0.1:9/push/other" }) }));
    expect(altered.status).toBe(401);
    expect(await altered.json()).toMatchObject({ reason: "bad_signature" });
    const otherPath = await send(await client.request(BASE, "DELETE", PATH, undefined, { time: T, signPath: `${PATH}?all=1` }));
    expect(otherPath.status).toBe(401);
    const otherMethod = await client.headers("DELETE", PATH, "", { time: T });
    expect((await app.request(`${BASE}${PATH}`, { method: "PUT", headers: otherMethod })).status).toBe(401);
    expect((await store.devices.get(client.id))!.push).toBeNull();
  });

  test.each([
    ["no headers", {}],
    ["a device ID of the wrong shape", { "Portcullis-Device": "x" }],
    ["a time that is not a number", { "Portcullis-Time": "soon" }],
    ["a signature of 63 bytes", { "Portcullis-Signature": Buffer.alloc(63).toString("base64url") }],
    ["a DER signature", { "Portcullis-Signature": Buffer.alloc(70, 0x30).toString("base64url") }],
  ])("%s → 401 malformed", async (_, override) => {
    const client = await enrolled();
    const headers = _ === "no headers" ? {} : { ...(await client.headers("DELETE", PATH, "", { time: T })), ...override };
    const res = await app.request(`${BASE}${PATH}`, { method: "DELETE", headers });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ reason: "malformed" });
  });

  test("a subscription for a host not allowed is refused (400) after the signature; nothing is stored", async () => {
    const client = await enrolled();
    const res = await send(await client.request(BASE, "PUT", PATH, subscription("https://push.attacker.test/x"), { time: T }));
    expect(res.status).toBe(400);
    expect((await store.devices.get(client.id))!.push).toBeNull();
    expect(events).toContainEqual({ type: "device.push_refused", user: "alice", device: client.id, reason: "host_not_allowed", client: expect.any(String) });
  });

  test("a body over 8 KiB is 413 once the device and time are known; before that, 401 without reading it", async () => {
    const client = await enrolled();
    const big = JSON.stringify({ pad: "x".repeat(9000) });
    const h = await client.headers("PUT", PATH, big, { time: T });
    const res = await app.request(`${BASE}${PATH}`, { method: "PUT", headers: { ...h, "Content-Type": "application/json", "Content-Length": String(big.length) }, body: big });
    expect(res.status).toBe(413);
    const stale = await client.headers("PUT", PATH, big, { time: T - 3600 });
    expect((await app.request(`${BASE}${PATH}`, { method: "PUT", headers: { ...stale, "Content-Type": "application/json" }, body: big })).status).toBe(401);
  });
});
