// `[radius] workers = 2` with a switch relay: the supervisor holds the one connection to the relay
// (the relay knows one per appliance) and the workers' SMS codes, approval links and pushes go
// through it. Logins with different RADIUS Identifiers land on both workers (each log line of a worker carries
// `"worker":N`); every code and link arrives through the relay's gateway, and an answer on the
// relay's page, or the approver app's signed answer through the relay, completes a request held by a worker.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Appliance, Attr, Code, UDPClient, addLiveClient, buildAccessRequest, eventually, identifier, type RawAttribute, type ServerProcess } from "./helpers/appliance.ts";
import { Relay, smsRelayConfig } from "./helpers/switch-relay.ts";
import { DeviceClient } from "./helpers/device-client.ts";
import { TestPushService } from "./helpers/push-service.ts";
import { DELIVERY_LIMITS_OFF, SmsGateway } from "./helpers/sms-gateway.ts";

const PASSWORD = "correct horse battery";
const SUBJECT = "mailto:ops@example.test";
const LOGINS = 8;

let gateway: SmsGateway;
let push: TestPushService;
let relay: Relay;
let app: Appliance;
let server: ServerProcess;
let secret: string;

/** One Access-Request with `identifier` over raw UDP. */
async function leg(id: number, name: string, password: string, state?: Uint8Array) {
  using udp = await UDPClient.open("127.0.0.1");
  const enc = new TextEncoder();
  const attributes: RawAttribute[] = [
    [Attr.UserName, enc.encode(name)],
    [Attr.UserPassword, enc.encode(password)],
  ];
  if (state) attributes.push([Attr.State, state]);
  return await udp.exchange(buildAccessRequest({ identifier: id, secret, attributes }), server.port, secret, { timeoutMs: 20_000 });
}

const nextSms = (to: string, from: number) => gateway.waitFor(to, from);

beforeAll(async () => {
  gateway = new SmsGateway();
  push = new TestPushService(SUBJECT);
  relay = new Relay();
  relay.writeConfig(smsRelayConfig(gateway));
  await relay.start();
  app = new Appliance({ PORTCULLIS_RADIUS_WORKERS: "2" });
  const caFile = join(app.dataDir, "switch-ca.pem");
  writeFileSync(caFile, relay.cert());
  app.writeConfig(`
region = "SE"
[http]
tls = false
public_url = "${relay.url}"
[push]
subject = "${SUBJECT}"
allowed_hosts = ["127.0.0.1"]
[delivery]
${DELIVERY_LIMITS_OFF}
[switch]
urls = ["${relay.url}"]
ca_file = "${caFile}"
`);
  expect(await app.cli(["switch", "join", relay.url, await relay.token("branch-w")])).toContain("joined");
  server = await app.serve();
  await eventually("two workers listening", () => (server.logs.filter((l) => l.event === "radius.listening" && l.worker !== undefined).length >= 2 ? true : undefined), { tries: 300, timeoutMs: 30_000 });
  await eventually("connected to the relay", () => server.logs.find((l) => l.event === "switch.connected" && l.url === relay.url), { tries: 600, timeoutMs: 40_000 });
  secret = await addLiveClient(app, server, "vpn", "127.0.0.1", ["--approval-hold", "20"]);
  // Only the supervisor connects: one connection for the appliance.
  expect(server.logs.filter((l) => l.event === "switch.connected").every((l) => l.worker === undefined)).toBe(true);
}, 90_000);

afterAll(async () => {
  await app?.[Symbol.asyncDispose]();
  await relay?.home[Symbol.asyncDispose]();
  await gateway?.stop();
  push?.stop();
});

describe("RADIUS workers with a switch relay", () => {
  test("type mobile (2) logins on both workers: each code goes out through the supervisor's connection to the relay", async () => {
    for (let i = 0; i < LOGINS; i++) {
      const name = `sw-w${i}`;
      const phone = `+4670124${String(i).padStart(4, "0")}`;
      await app.cli(["user", "add", name, "--password-stdin", "--type", "mobile", "--phone", phone], { stdin: PASSWORD });
      const from = gateway.messages.length;
      // The workers' BPF program picks the worker by Identifier % 2: consecutive Identifiers alternate.
      const first = await leg(100 + i, name, PASSWORD);
      expect(first.code).toBe(Code.AccessChallenge);
      const code = /code is ([0-9A-Z]+)\./.exec(await nextSms(phone, from))![1]!;
      const ok = await leg(200 + i, name, code, first.attributes.find(([t]) => t === Attr.State)![1]);
      expect(ok.code).toBe(Code.AccessAccept);
    }
    const workers = new Set(server.logs.filter((l) => l.event === "auth.step" && String(l.user).startsWith("sw-w") && l.factor === "sms").map((l) => l.worker));
    expect([...workers].sort()).toEqual([1, 2]);
    // The relay saw two connections of the appliance: `switch join`'s, then the supervisor's, which stayed.
    expect(relay.proc!.logs.filter((l) => l.event === "switch.appliance_connected").length).toBe(2);
    expect(server.logs.filter((l) => l.event === "switch.connected").length).toBe(1);
  }, 120_000);

  test("type touch (6): a request held by a worker completes when its link is answered on the relay's page", async () => {
    const phone = "+46701249999";
    await app.cli(["user", "add", "sw-wt", "--password-stdin", "--type", "touch", "--phone", phone], { stdin: PASSWORD });
    const from = gateway.messages.length;
    using udp = await UDPClient.open("127.0.0.1");
    const enc = new TextEncoder();
    const packet = buildAccessRequest({ identifier: identifier(), secret, attributes: [[Attr.UserName, enc.encode("sw-wt")], [Attr.UserPassword, enc.encode(PASSWORD)]] });
    const pending = udp.exchange(packet, server.port, secret, { timeoutMs: 40_000 });
    const link = /(https:\/\/\S+\/ml\/[A-Za-z0-9_-]{43})/.exec(await nextSms(phone, from))![1]!;
    expect(link.startsWith(`${relay.url}/ml/`)).toBe(true);
    const asked = await server.waitForLog((l) => l.event === "auth.step" && l.user === "sw-wt" && l.factor === "approval", { timeoutMs: 10_000 });
    expect(asked.worker).toBeDefined();
    // The page and its Approve form, as a browser posts it.
    const ca = { tls: { ca: relay.cert() } } as RequestInit;
    const page = await (await fetch(link, ca)).text();
    const form = new URLSearchParams({ csrf: /name="csrf" value="([^"]+)"/.exec(page)![1]!, action: "approve" });
    const answered = await fetch(link, { ...ca, method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: form.toString() });
    expect(answered.status).toBe(200);
    expect((await pending).code).toBe(Code.AccessAccept);
  }, 60_000);

  test("the approver app: a worker's push goes out through the supervisor's connection; the answer through the relay accepts the request the worker holds", async () => {
    await app.cli(["user", "add", "sw-wp", "--password-stdin", "--type", "touch"], { stdin: PASSWORD });
    const code = /#enrol=([A-Za-z0-9_-]{22})/.exec(await app.cli(["device", "enrol", "sw-wp"]))![1]!;
    const device = await DeviceClient.create();
    const ca = { tls: { ca: relay.cert() } } as RequestInit;
    const body = JSON.stringify({ enrolment: code, public_key: device.publicJwk, name: "phone", push: TestPushService.json(push.subscribe()) });
    // The relay routes the enrolment once the supervisor announced the code (every 2 s); 404 until then.
    const res = await eventually(
      "the enrolment to be routed",
      async () => {
        const r = await fetch(`${relay.url}/app/api/v1/devices`, { ...ca, method: "POST", headers: { "Content-Type": "application/json" }, body });
        return r.status === 404 ? undefined : r;
      },
      { tries: 100, timeoutMs: 20_000, everyMs: 200 },
    );
    expect(res.status).toBe(201);
    device.id = ((await res.json()) as { device: string }).device;

    const pushed = push.messages.length;
    using udp = await UDPClient.open("127.0.0.1");
    const enc = new TextEncoder();
    const packet = buildAccessRequest({ identifier: identifier(), secret, attributes: [[Attr.UserName, enc.encode("sw-wp")], [Attr.UserPassword, enc.encode(PASSWORD)]] });
    const pending = udp.exchange(packet, server.port, secret, { timeoutMs: 40_000 });
    const [m] = (await push.waitFor(pushed + 1, 20_000)).slice(pushed);
    const id = (JSON.parse(m!.payload) as { id: string }).id;
    // A worker opened the request and sent the push; the relay posted it.
    const asked = await server.waitForLog((l) => l.event === "auth.step" && l.user === "sw-wp" && l.factor === "approval", { timeoutMs: 10_000 });
    expect(asked.worker).toBeDefined();
    await relay.proc!.waitForLog((l) => l.event === "switch.push" && l.status === 201, { timeoutMs: 10_000 });
    const path = `/app/api/v1/requests/${id}`;
    const answer = JSON.stringify({ decision: "approve" });
    const r = await fetch(`${relay.url}${path}`, { ...ca, method: "POST", headers: { ...(await device.headers("POST", path, answer)), "Content-Type": "application/json" }, body: answer });
    expect(r.status).toBe(200);
    expect((await pending).code).toBe(Code.AccessAccept);
  }, 60_000);
});
