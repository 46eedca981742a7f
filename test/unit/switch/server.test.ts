// The relay's handling of one appliance connection, without sockets: authentication, per-appliance
// limits on top of the relay's delivery limits, link routing to the owning appliance, the approver
// app's event stream, and refusals.

import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { AuditEvent } from "../../../src/audit/events.ts";
import { createDispatcher } from "../../../src/delivery/dispatcher.ts";
import type { Channel } from "../../../src/delivery/types.ts";
import { PushHosts } from "../../../src/push/hosts.ts";
import { SwitchDb } from "../../../src/switch/db.ts";
import { MemoryRateLimits, NO_DELIVERY_LOG } from "../../../src/switch/memory.ts";
import { keyFromSeed, signAuth } from "../../../src/switch/protocol.ts";
import { MAX_STREAMS_PER_APPLIANCE, SwitchServer } from "../../../src/switch/server.tsx";

const PUBLIC = "https://relay.example";
const dirs: string[] = [];
const servers: SwitchServer[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(perMinute = 0) {
  const dir = mkdtempSync(join(tmpdir(), "switch-server-"));
  dirs.push(dir);
  const db = new SwitchDb(dir);
  const sent: string[] = [];
  const channel: Channel = { name: "sms", kind: "sms", send: async (m) => (sent.push(m.text), { ok: true }) };
  const mail: Channel = { name: "email", kind: "email", send: async (m) => (sent.push(`mail to ${m.to}: ${m.subject}: ${m.text}`), { ok: true }) };
  const audit: AuditEvent[] = [];
  const dispatcher = createDispatcher({
    channels: [channel, mail],
    region: "SE",
    allowList: { countries: ["SE"], prefixes: [] },
    limits: { perNumberPerMinute: 0, perNumberPerHour: 0, perKeyPerMinute: 0, perKeyPerHour: 0, overallPerMinute: 0, overallPerHour: 0 },
    rateLimits: new MemoryRateLimits(),
    deliveryLog: NO_DELIVERY_LOG,
  });
  const server = new SwitchServer({ db, publicUrl: PUBLIC, dispatcher, perAppliance: { perMinute, perHour: 0 }, pushHosts: new PushHosts(["127.0.0.1"]), pushTimeoutMs: 1000, audit: (e) => audit.push(e), log: () => {} });
  servers.push(server);
  return { db, server, sent, audit };
}

/** Connects a fake peer as appliance `name` (enrolling it with a fresh token) and returns its inbox. */
async function connect(s: ReturnType<typeof setup>, name: string) {
  const secret = randomBytes(32).toString("base64url");
  s.db.add(name, secret, Date.now());
  const key = keyFromSeed(new Uint8Array(randomBytes(32)));
  const inbox: Array<Record<string, unknown>> = [];
  let closed: number | undefined;
  const session = s.server.open({ send: (t) => inbox.push(JSON.parse(t)), close: (code) => (closed = code) }, "192.0.2.1");
  const nonce = String(inbox[0]!.nonce);
  let id = 0;
  const send = async (f: Record<string, unknown>) => {
    session.message(JSON.stringify({ ...f, id: ++id }));
    await sleep(5);
  };
  await send({ t: "hello", name, sig: signAuth(key.privateKey, nonce, PUBLIC, name), enrol: { token: `${name}.${secret}`, public_key: key.publicKey } });
  const raw = (f: Record<string, unknown>) => session.message(JSON.stringify(f));
  return { inbox, send, raw, closed: () => closed, last: (t: string) => inbox.filter((f) => f.t === t).at(-1) };
}

test("an enrolled appliance is welcomed; its messages go through the relay's channels", async () => {
  const s = setup();
  const a = await connect(s, "a1");
  expect(a.last("welcome")).toMatchObject({ name: "a1", public_url: PUBLIC });
  expect(s.server.connected()).toEqual(["a1"]);
  await a.send({ t: "deliver", to: "+46701234567", text: "Your code is 123456." });
  expect(a.last("result")).toMatchObject({ ok: true, channel: "sms" });
  expect(s.sent).toEqual(["Your code is 123456."]);
  await a.send({ t: "deliver", email: "ann@example.com", subject: "Sign-in request", text: "Approve: link" });
  expect(a.last("result")).toMatchObject({ ok: true, channel: "email" });
  expect(s.sent.at(-1)).toBe("mail to ann@example.com: Sign-in request: Approve: link");
});

test("per-appliance limit: the third message in a minute is refused; another appliance is not affected", async () => {
  const s = setup(2);
  const a = await connect(s, "a1");
  const b = await connect(s, "b1");
  for (let i = 0; i < 2; i++) {
    await a.send({ t: "deliver", to: `+4670123456${i}`, text: `m${i}` });
    expect(a.last("result")).toMatchObject({ ok: true });
  }
  await a.send({ t: "deliver", to: "+46701234569", text: "m3" });
  expect(a.last("result")).toMatchObject({ ok: false, reason: "rate_limited" });
  await b.send({ t: "deliver", to: "+46701234569", text: "b" });
  expect(b.last("result")).toMatchObject({ ok: true });
});

test("a page is forwarded to the appliance that sent its link, and only its answer is taken", async () => {
  const s = setup();
  const a = await connect(s, "a1");
  const b = await connect(s, "b1");
  const token = "T".repeat(43);
  await a.send({ t: "deliver", to: "+46701234567", text: `Approve: ${PUBLIC}/ml/${token}` });
  await b.send({ t: "deliver", to: "+46701234568", text: `Approve: ${PUBLIC}/ml/${token}` });
  expect(b.last("result")).toMatchObject({ ok: false, reason: "rejected" });
  expect(s.audit).toContainEqual({ type: "switch.frame_refused", appliance: "b1", reason: "foreign_link" });

  const page = s.server.fetch(new Request(`${PUBLIC}/ml/${token}`), { remoteAddress: "198.51.100.7" });
  await sleep(5);
  const req = a.last("http")!;
  expect(req).toMatchObject({ method: "GET", path: `/ml/${token}`, address: "198.51.100.7" });
  expect(b.last("http")).toBeUndefined();
  await b.send({ t: "http-res", re: req.id, status: 200, headers: {}, body: "forged" });
  expect(s.audit).toContainEqual({ type: "switch.frame_refused", appliance: "b1", reason: "unknown_request" });
  await a.send({ t: "http-res", re: req.id, status: 200, headers: { "content-type": "text/html; charset=utf-8", "set-cookie": "x=1" }, body: "<p>page</p>" });
  const res = await page;
  expect(res.status).toBe(200);
  expect(await res.text()).toBe("<p>page</p>");
  expect(res.headers.get("set-cookie")).toBeNull();

  const unknown = await s.server.fetch(new Request(`${PUBLIC}/ml/${"U".repeat(43)}`), { remoteAddress: "198.51.100.7" });
  expect(unknown.status).toBe(404);
});

test("a wrong signature and a replayed frame close the connection", async () => {
  const s = setup();
  const inbox: Array<Record<string, unknown>> = [];
  let closed: number | undefined;
  const session = s.server.open({ send: (t) => inbox.push(JSON.parse(t)), close: (c) => (closed = c) }, "192.0.2.9");
  s.db.add("c1", "s".repeat(43), Date.now());
  session.message(JSON.stringify({ id: 1, t: "hello", name: "c1", sig: "A".repeat(86), enrol: { token: `c1.${"s".repeat(43)}`, public_key: "B".repeat(43) } }));
  expect(closed).toBe(4401);
  expect(s.audit).toContainEqual({ type: "switch.auth_refused", reason: "bad_signature", appliance: "c1", client: "192.0.2.9" });
  // The token was not spent by the failed attempt.
  expect(s.db.get("c1")!.tokenExpires).not.toBeNull();

  const a = await connect(s, "a1");
  a.inbox.length = 0;
  await a.send({ t: "ping" });
  expect(a.last("pong")).toBeDefined();
  // A frame whose id is not above the last one accepted is a replay: the connection is closed.
  a.raw({ id: 2, t: "ping" });
  expect(a.closed()).toBe(4400);
  expect(s.audit).toContainEqual({ type: "switch.frame_refused", appliance: "a1", reason: "malformed_or_replayed" });
});

test("at most 8 unauthenticated connections per address; authenticated ones do not count", async () => {
  const s = setup();
  const closes: Array<number | undefined> = [];
  const sessions = Array.from({ length: 9 }, (_, i) => {
    closes.push(undefined);
    return s.server.open({ send: () => {}, close: (c) => (closes[i] = c) }, "203.0.113.5");
  });
  expect(closes.slice(0, 8)).toEqual(Array(8).fill(undefined));
  expect(closes[8]).toBe(4401);
  sessions[8]!.close(4401, "");
  // Another address is not affected; one that leaves makes room.
  let other: number | undefined;
  s.server.open({ send: () => {}, close: (c) => (other = c) }, "203.0.113.6");
  expect(other).toBeUndefined();
  sessions[0]!.close(1000, "");
  let again: number | undefined;
  s.server.open({ send: () => {}, close: (c) => (again = c) }, "203.0.113.5");
  expect(again).toBeUndefined();
  const a = await connect(s, "a1");
  expect(a.last("welcome")).toBeDefined();
});


test("the approver app's event stream: routed by device, relayed as the appliance writes it, bounded per appliance, ended with the connection", async () => {
  const s = setup();
  const a = await connect(s, "a1");
  const b = await connect(s, "b1");
  const device = "D".repeat(22);
  expect(s.db.claimDevice(device, "a1", Date.now())).toBe(true);
  const open = () => s.server.fetch(new Request(`${PUBLIC}/app/api/v1/events`, { headers: { "Portcullis-Device": device, "Portcullis-Time": "1", "Portcullis-Signature": "x" } }), { remoteAddress: "198.51.100.7" });
  // A device the relay never saw enrolled reaches no appliance.
  const stranger = await s.server.fetch(new Request(`${PUBLIC}/app/api/v1/events`, { headers: { "Portcullis-Device": "E".repeat(22) } }), { remoteAddress: "198.51.100.7" });
  expect(stranger.status).toBe(404);

  const pending = open();
  await sleep(5);
  const req = a.last("stream")!;
  expect(req).toMatchObject({ method: "GET", path: "/app/api/v1/events", headers: { "portcullis-device": device } });
  expect(b.last("stream")).toBeUndefined();
  await a.send({ t: "stream-res", re: req.id, status: 200, headers: { "content-type": "text/event-stream" }, streaming: true });
  await a.send({ t: "stream-data", re: req.id, data: "event: request\ndata: {}\n\n" });
  const res = await pending;
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("text/event-stream");
  const reader = res.body!.getReader();
  expect(new TextDecoder().decode((await reader.read()).value)).toBe("event: request\ndata: {}\n\n");

  // One stream fewer than the bound is open; the next fills it, and one more is refused.
  const more: Array<Promise<Response>> = [];
  for (let i = 1; i < MAX_STREAMS_PER_APPLIANCE; i++) more.push(open());
  await sleep(20);
  const full = await open();
  expect(full.status).toBe(429);

  // The phone leaves: the appliance is told.
  await reader.cancel();
  await sleep(5);
  expect(a.inbox.some((f) => f.t === "stream-close" && f.re === req.id)).toBe(true);

  // The appliance's connection goes: its streams end (answered ones) or fail over to 503 (unanswered).
  const second = a.inbox.filter((f) => f.t === "stream").at(-1)!;
  await a.send({ t: "stream-res", re: second.id, status: 200, headers: {}, streaming: true });
  s.db.remove("a1");
  await sleep(1100);
  const answered = await Promise.race([more.at(-1)!, sleep(1000).then(() => undefined)]);
  expect(answered?.status).toBe(200);
  expect((await answered!.body!.getReader().read()).done).toBe(true);
  for (const p of more.slice(0, -1)) expect((await p).status).toBe(503);
});

test("protocol v2 is routed like v1, by device: its event stream as a stream, its other calls through the tunnel; another prefix is not the app's API", async () => {
  const s = setup();
  const a = await connect(s, "a1");
  const device = "F".repeat(22);
  expect(s.db.claimDevice(device, "a1", Date.now())).toBe(true);
  const headers = { "Portcullis-Device": device, "Portcullis-Time": "1", "Portcullis-Signature": "x" };
  const stream = s.server.fetch(new Request(`${PUBLIC}/app/api/v2/events`, { headers }), { remoteAddress: "198.51.100.7" });
  await sleep(5);
  const sreq = a.last("stream")!;
  expect(sreq).toMatchObject({ method: "GET", path: "/app/api/v2/events", headers: { "portcullis-device": device } });
  await a.send({ t: "stream-res", re: sreq.id, status: 200, headers: { "content-type": "text/event-stream" }, streaming: true });
  expect((await stream).status).toBe(200);
  const list = s.server.fetch(new Request(`${PUBLIC}/app/api/v2/requests`, { headers }), { remoteAddress: "198.51.100.7" });
  await sleep(5);
  const hreq = a.last("http")!;
  expect(hreq).toMatchObject({ method: "GET", path: "/app/api/v2/requests" });
  await a.send({ t: "http-res", re: hreq.id, status: 200, headers: { "content-type": "application/json" }, body: '{"requests":[]}' });
  expect(await (await list).text()).toBe('{"requests":[]}');
  expect((await s.server.fetch(new Request(`${PUBLIC}/app/api/v2/events`, { method: "POST", headers }), { remoteAddress: "198.51.100.7" })).status).toBe(405);
  expect((await s.server.fetch(new Request(`${PUBLIC}/app/api/v2/requests`, { headers: { ...headers, "Portcullis-Device": "G".repeat(22) } }), { remoteAddress: "198.51.100.7" })).status).toBe(404);
  // Not a version the appliances speak: the app's file routes answer it (not found), nothing is forwarded.
  const before = a.inbox.length;
  expect((await s.server.fetch(new Request(`${PUBLIC}/app/api/v3/requests`, { headers }), { remoteAddress: "198.51.100.7" })).status).toBe(404);
  expect(a.inbox.length).toBe(before);
});

test("metrics: connected and enrolled appliances, frames in and out, refusals by reason, link routes and requests in flight", async () => {
  const s = setup();
  const value = (name: string) => {
    const text = s.server.metrics.render();
    const line = text.split("\n").find((l) => l.startsWith(`${name} `));
    return line === undefined ? undefined : Number(line.slice(name.length + 1));
  };
  expect(value("portcullis_switch_appliances_connected")).toBe(0);
  const a = await connect(s, "a1");
  // challenge and welcome out; hello in.
  expect(value('portcullis_switch_frames_total{direction="out"}')).toBe(2);
  expect(value('portcullis_switch_frames_total{direction="in"}')).toBe(1);
  expect(value("portcullis_switch_appliances_connected")).toBe(1);
  expect(value("portcullis_switch_appliances_enrolled")).toBe(1);

  const token = "M".repeat(43);
  await a.send({ t: "deliver", to: "+46701234567", text: `Approve: ${PUBLIC}/ml/${token}` });
  expect(value("portcullis_switch_link_routes")).toBe(1);
  const page = s.server.fetch(new Request(`${PUBLIC}/ml/${token}`), { remoteAddress: "198.51.100.7" });
  await sleep(5);
  expect(value("portcullis_switch_requests_in_flight")).toBe(1);
  await a.send({ t: "http-res", re: a.last("http")!.id, status: 200, headers: {}, body: "<p>page</p>" });
  expect((await page).status).toBe(200);
  expect(value("portcullis_switch_requests_in_flight")).toBe(0);
  expect(value("portcullis_switch_requests_forwarded_total")).toBe(1);
  await a.send({ t: "http-res", re: 999, status: 200, headers: {}, body: "forged" });
  expect(value('portcullis_switch_frames_refused_total{reason="unknown_request"}')).toBe(1);

  const session = s.server.open({ send: () => {}, close: () => {} }, "192.0.2.9");
  expect(value("portcullis_switch_connections_unauthenticated")).toBe(1);
  session.message(JSON.stringify({ id: 1, t: "hello", name: "nobody", sig: "A".repeat(86) }));
  session.close(4401, "");
  expect(value('portcullis_switch_connections_refused_total{reason="not_enrolled"}')).toBe(1);
  expect(value("portcullis_switch_connections_unauthenticated")).toBe(0);
  // Nothing from a frame or a request becomes a label: the phone number and the token appear nowhere.
  const text = s.server.metrics.render();
  expect(text).not.toContain("46701234567");
  expect(text).not.toContain(token);
});
