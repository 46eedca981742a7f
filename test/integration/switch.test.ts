// The switch relay end to end on loopback: two relays (`switch serve`, each with its own data
// directory and generated certificate, the test SMS gateway behind them) and an appliance that has
// no public URL of its own and reaches phones only through them. RADIUS types 2 and 6 and a Magic
// Link call go through the relay, answered in headless Chromium on the relay's pages; a relay killed
// mid-flow and restarted, failover to the secondary and back, and the refusals (wrong and reused
// token, removed appliance, oversized frame, replayed frame, another appliance's link or request).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { Appliance, Attr, Code, ServerProcess, UDPClient, addLiveClient, buildAccessRequest, eventually, identifier, type LogLine } from "./helpers/appliance.ts";
import { Relay, smsRelayConfig } from "./helpers/switch-relay.ts";
import { attr, quote, radclient, radclientPath } from "./helpers/radclient.ts";
import { keyFromSeed, signAuth } from "../../src/switch/protocol.ts";
import { DeviceClient } from "./helpers/device-client.ts";
import { TestPushService } from "./helpers/push-service.ts";
import { decodeBase32, encodeBase32, totp } from "../../scripts/bench/radius-wire.ts";
import { DELIVERY_LIMITS_OFF, SmsGateway, codeIn } from "./helpers/sms-gateway.ts";

const CHROMIUM = "/usr/bin/chromium";
const PASSWORD = "correct horse battery";

const linkIn = (text: string) => /(https:\/\/[^\s]+\/ml\/[A-Za-z0-9_-]{43})/.exec(text)?.[1];

const SUBJECT = "mailto:ops@example.test";
let gateway: SmsGateway;
let push: TestPushService;
let r1: Relay;
let r2: Relay;
let app: Appliance;
let server: ServerProcess;
let browser: Browser;
let secret: string;
let apiKey: string;
let caFile: string;
let nextPhone = 200;
/** The scripted approver device enrolled on branch-1 through relay 1. */
let phoneA: DeviceClient | undefined;
const phones: Record<string, string> = {};

async function user(name: string, type: string): Promise<void> {
  phones[name] = `+4670123${String(nextPhone++).padStart(4, "0")}`;
  await app.cli(["user", "add", name, "--password-stdin", "--type", type, "--phone", phones[name]!], { stdin: PASSWORD });
}

const nextSms = (to: string, from: number) => gateway.waitFor(to, from);
const rad = (attrs: string[]) => radclient(server.port, secret, attrs);

/** Starts a held login (type touch) over raw UDP; resolves with the reply's code when it comes. */
async function held(name: string, on: { server: ServerProcess; secret: string } = { server, secret }): Promise<number> {
  using udp = await UDPClient.open("127.0.0.1");
  const enc = new TextEncoder();
  const packet = buildAccessRequest({ identifier: identifier(), secret: on.secret, attributes: [[Attr.UserName, enc.encode(name)], [Attr.UserPassword, enc.encode(PASSWORD)]] });
  const reply = await udp.exchange(packet, on.server.port, on.secret, { timeoutMs: 40_000 });
  return reply.code;
}

/**
 * Enrols a scripted device through a relay with the code of an enrolment link. The relay routes the
 * call once the appliance has announced the code (within seconds of `device enrol`); until then it
 * answers 404, which leaves the code unspent.
 */
async function enrolThrough(relay: Relay, link: string, device: DeviceClient, sub?: ReturnType<TestPushService["subscribe"]>, version: 1 | 2 = 1): Promise<void> {
  const code = /#enrol=([A-Za-z0-9_-]{22})/.exec(link)![1]!;
  const post = () =>
    fetch(`${relay.url}/app/api/v${version}/devices`, {
      tls: { ca: relay.cert() },
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ enrolment: code, public_key: device.publicJwk, name: "phone", ...(sub ? { push: TestPushService.json(sub) } : {}) }),
    } as RequestInit);
  const res = await eventually(
    "the enrolment to be routed",
    async () => {
      const r = await post();
      if (r.status === 404) return undefined;
      return r;
    },
    { tries: 100, timeoutMs: 20_000, everyMs: 200 },
  );
  expect(res.status).toBe(201);
  device.id = ((await res.json()) as { device: string }).device;
}

/** Reads a relayed event stream until its text satisfies `until` (or it ends: undefined). */
async function readEvents(reader: ReadableStreamDefaultReader<Uint8Array>, until: (text: string) => boolean, timeoutMs = 20_000): Promise<string | undefined> {
  const dec = new TextDecoder();
  let text = "";
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 1000 && Date.now() < deadline; i++) {
    const next = await Promise.race([reader.read(), Bun.sleep(Math.max(1, deadline - Date.now())).then(() => "timeout" as const)]);
    if (next === "timeout") throw new Error(`no matching event within ${timeoutMs} ms; got ${JSON.stringify(text.slice(0, 500))}`);
    if (next.done) return until(text) ? text : undefined;
    text += dec.decode(next.value, { stream: true });
    if (until(text)) return text;
  }
  throw new Error("the event stream did not match");
}

/** Opens a link in headless Chromium and presses Approve, as a user does; returns the result text. */
async function approve(link: string): Promise<string> {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await ctx.newPage();
  try {
    await page.goto(link);
    await page.click("#approve");
    await page.waitForSelector("#result");
    return (await page.textContent("#result")) ?? "";
  } finally {
    await ctx.close();
  }
}

/** The n-th (1-based) log line of `event` on the appliance matching `pred`. */
const waitLog = (p: ServerProcess, pred: (l: LogLine) => boolean, timeoutMs = 30_000) => p.waitForLog(pred, { timeoutMs });
const connectedTo = (url: string, from: number) => eventually(`connected to ${url}`, () => server.logs.slice(from).find((l) => l.event === "switch.connected" && l.url === url), { tries: 600, timeoutMs: 40_000 });

/** A type 2 login through the switch: challenge, code from the SMS the relay sent, accept. */
async function mobileLogin(name: string): Promise<void> {
  const from = gateway.messages.length;
  const first = await rad([`User-Name = ${name}`, `User-Password = ${quote(PASSWORD)}`]);
  expect(first.code).toBe("Access-Challenge");
  const code = codeIn(await nextSms(phones[name]!, from))!;
  const ok = await rad([`User-Name = ${name}`, `User-Password = ${quote(code)}`, `State = ${attr(first, "State")}`]);
  expect(ok.code).toBe("Access-Accept");
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: these tests need headless Chromium`);
  if (!radclientPath) throw new Error("radclient not installed: apt-get install freeradius-utils");
  gateway = new SmsGateway();
  push = new TestPushService(SUBJECT);
  r1 = new Relay();
  r2 = new Relay();
  // The relays send SMS through the test gateway, without limits.
  r1.writeConfig(smsRelayConfig(gateway));
  r2.writeConfig(smsRelayConfig(gateway));
  await Promise.all([r1.start(), r2.start()]);
  app = new Appliance();
  caFile = join(app.dataDir, "switch-ca.pem");
  writeFileSync(caFile, r1.cert() + r2.cert());
  app.writeConfig(`
region = "SE"
[http]
tls = false
# the approver app's enrolment links point at the primary relay
public_url = "${r1.url}"
[delivery]
${DELIVERY_LIMITS_OFF}
[push]
subject = "${SUBJECT}"
allowed_hosts = ["127.0.0.1"]
[switch]
urls = ["${r1.url}", "${r2.url}"]
ca_file = "${caFile}"
primary_retry_s = 1
`);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"] });
}, 90_000);

afterAll(async () => {
  if (process.env.SWITCH_TEST_DEBUG) for (const l of server?.logs ?? []) if (String(l.event).startsWith("switch") || String(l.event).startsWith("auth")) console.log(JSON.stringify(l));
  await browser?.close();
  await app?.[Symbol.asyncDispose]();
  await r1?.home[Symbol.asyncDispose]();
  await r2?.home[Symbol.asyncDispose]();
  await gateway?.stop();
  push?.stop();
});

describe("enrolment", () => {
  test("a wrong token is refused and audited; the right one joins; reusing it is refused", async () => {
    const t1 = await r1.token("branch-1");
    const wrong = t1.slice(0, -4) + (t1.endsWith("AAAA") ? "BBBB" : "AAAA");
    const bad = await app.run(["switch", "join", r1.url, wrong]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("refused the token");
    expect(await waitLog(r1.proc!, (l) => l.event === "switch.auth_refused" && l.reason === "wrong_token")).toMatchObject({ appliance: "branch-1" });

    expect(await app.cli(["switch", "join", r1.url, t1])).toContain("joined");
    const list = await r1.home.cli(["switch", "appliance", "list", "--json"]);
    expect(JSON.parse(list)).toMatchObject([{ name: "branch-1", state: "enrolled" }]);

    const again = await app.run(["switch", "join", r1.url, t1]);
    expect(again.code).not.toBe(0);
    expect(await waitLog(r1.proc!, (l) => l.event === "switch.auth_refused" && l.reason === "no_token")).toMatchObject({ appliance: "branch-1" });
    // The token never appears in the relay's log.
    expect(JSON.stringify(r1.proc!.logs)).not.toContain(t1.split(".")[1]!);

    // The second relay knows the appliance under the same name and key.
    expect(await app.cli(["switch", "join", r2.url, await r2.token("branch-1")])).toContain("joined");
  }, 120_000);

  test("the appliance connects to the primary; /readyz and /metrics show it", async () => {
    server = await app.serve();
    await connectedTo(r1.url, 0);
    secret = await addLiveClient(app, server, "vpn", "127.0.0.1", ["--approval-hold", "20"]);
    const ready = await (await fetch(`http://127.0.0.1:${server.adminPort}/readyz`)).json();
    expect(ready).toMatchObject({ status: "ready", switch: { state: "connected", url: r1.url } });
    const metrics = await (await fetch(`http://127.0.0.1:${server.adminPort}/metrics`)).text();
    expect(metrics).toContain(`portcullis_switch_connected{url="${r1.url}"} 1`);
    expect(metrics).toContain(`portcullis_switch_connected{url="${r2.url}"} 0`);
    const key = await app.cli(["apikey", "add", "web"]);
    apiKey = /pcl_[A-Za-z0-9_-]{43}/.exec(key)![0];
  }, 60_000);
});

describe("through the relay", () => {
  test("type mobile (2): the SMS code goes out through the relay's gateway", async () => {
    await user("sw-m1", "mobile");
    await mobileLogin("sw-m1");
  }, 60_000);

  test("type touch (6): the link is on the relay's public_url and approving it there accepts the held request", async () => {
    await user("sw-t1", "touch");
    const from = gateway.messages.length;
    const pending = held("sw-t1");
    const link = linkIn(await nextSms(phones["sw-t1"]!, from))!;
    expect(link.startsWith(`${r1.url}/ml/`)).toBe(true);
    expect(await approve(link)).toBeTruthy();
    expect(await pending).toBe(Code.AccessAccept);
  }, 60_000);

  test("Magic Link: the call completes with TOUCH_ACCEPTED when the relay's page is approved", async () => {
    const msisdn = "+46701239999";
    const from = gateway.messages.length;
    const call = fetch(`http://127.0.0.1:${server.httpPort}/api/sfwa/auth?msisdn=${encodeURIComponent(msisdn)}`, { headers: { "api-key": apiKey }, signal: AbortSignal.timeout(60_000) }).then((r) => r.text());
    const link = linkIn(await nextSms(msisdn, from))!;
    expect(link.startsWith(`${r1.url}/ml/`)).toBe(true);
    await approve(link);
    expect(await call).toBe('{"code":"TOUCH_ACCEPTED"}');
  }, 60_000);

  test("the approver app through the relay: enrolment, the push (encrypted and signed by the appliance), the request list and the answer", async () => {
    await user("sw-p1", "touch");
    const ca = { tls: { ca: r1.cert() } } as RequestInit;
    const out = await app.cli(["device", "enrol", "sw-p1"]);
    const enrolLink = /(https:\/\/\S+\/app\/#enrol=[A-Za-z0-9_-]{22})/.exec(out)![1]!;
    expect(enrolLink.startsWith(`${r1.url}/app/#enrol=`)).toBe(true);
    // The app's page and files come from the relay itself.
    const page = await fetch(`${r1.url}/app/`, ca);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toContain("require-trusted-types-for");
    const device = await DeviceClient.create();
    phoneA = device;
    const sub = push.subscribe();
    // Enrolled over protocol v2, as the embedded app does.
    await enrolThrough(r1, enrolLink, device, sub, 2);
    const pushed = push.messages.length;
    const pending = held("sw-p1");
    const [m] = (await push.waitFor(pushed + 1, 20_000)).slice(pushed);
    const id = (JSON.parse(m!.payload) as { id: string }).id;
    await waitLog(r1.proc!, (l) => l.event === "switch.push" && l.appliance === "branch-1" && l.status === 201);
    const listPath = "/app/api/v1/requests";
    const listed = await fetch(`${r1.url}${listPath}`, { ...ca, headers: await device.headers("GET", listPath) });
    expect(listed.status).toBe(200);
    expect(((await listed.json()) as { requests: Array<{ id: string }> }).requests.map((r) => r.id)).toEqual([id]);
    // Protocol v2 (what the embedded app speaks) is routed per device the same way.
    const listV2 = "/app/api/v2/requests";
    const listedV2 = await fetch(`${r1.url}${listV2}`, { ...ca, headers: await device.headers("GET", listV2) });
    expect(listedV2.status).toBe(200);
    expect(((await listedV2.json()) as { requests: Array<{ id: string; kind: string }> }).requests.map((r) => [r.id, r.kind])).toEqual([[id, "radius"]]);
    // A request signed for another path is refused by the appliance, as on its own listener.
    const path = `/app/api/v2/requests/${id}`;
    const body = JSON.stringify({ decision: "approve" });
    const forged = await fetch(`${r1.url}${path}`, { ...ca, method: "POST", headers: { ...(await device.headers("POST", listPath, body)), "Content-Type": "application/json" }, body });
    expect(forged.status).toBe(401);
    const answer = await fetch(`${r1.url}${path}`, { ...ca, method: "POST", headers: { ...(await device.headers("POST", path, body)), "Content-Type": "application/json" }, body });
    expect(answer.status).toBe(200);
    expect(await pending).toBe(Code.AccessAccept);
    // An event stream without a device is not routed.
    expect((await fetch(`${r1.url}/app/api/v1/events`, ca)).status).toBe(404);
    expect((await fetch(`${r1.url}/app/api/v2/events`, ca)).status).toBe(404);
  }, 60_000);

  test("two appliances on one relay: each device's calls reach its own appliance, and never the other's", async () => {
    // A second appliance, branch-2, on relay 1 only, with its own user and device.
    await using b = new Appliance();
    const bCa = join(b.dataDir, "switch-ca.pem");
    writeFileSync(bCa, r1.cert());
    b.writeConfig(`
region = "SE"
[http]
tls = false
public_url = "${r1.url}"
[push]
subject = "${SUBJECT}"
allowed_hosts = ["127.0.0.1"]
[switch]
urls = ["${r1.url}"]
ca_file = "${bCa}"
`);
    expect(await b.cli(["switch", "join", r1.url, await r1.token("branch-2")])).toContain("joined");
    const bServer = await b.serve();
    await eventually("branch-2 connected", () => bServer.logs.find((l) => l.event === "switch.connected"), { tries: 400, timeoutMs: 30_000 });
    const bSecret = await addLiveClient(b, bServer, "vpn", "127.0.0.1", ["--approval-hold", "20"]);
    await b.cli(["user", "add", "sw-b1", "--password-stdin", "--type", "touch", "--phone", "+46701238801"], { stdin: PASSWORD });
    const phoneB = await DeviceClient.create();
    await enrolThrough(r1, /(https:\/\/\S+\/app\/#enrol=[A-Za-z0-9_-]{22})/.exec(await b.cli(["device", "enrol", "sw-b1"]))![1]!, phoneB, push.subscribe());

    // A second device on branch-1, enrolled while branch-2 is connected too.
    await user("sw-p2", "touch");
    const phoneA2 = await DeviceClient.create();
    await enrolThrough(r1, /(https:\/\/\S+\/app\/#enrol=[A-Za-z0-9_-]{22})/.exec(await app.cli(["device", "enrol", "sw-p2"]))![1]!, phoneA2, push.subscribe());

    const ca = { tls: { ca: r1.cert() } } as RequestInit;
    const list = async (d: DeviceClient, as?: string) => {
      const path = "/app/api/v1/requests";
      const res = await fetch(`${r1.url}${path}`, { ...ca, headers: { ...(await d.headers("GET", path)), ...(as ? { "Portcullis-Device": as } : {}) } });
      return { status: res.status, ids: res.status === 200 ? ((await res.json()) as { requests: Array<{ id: string }> }).requests.map((r) => r.id) : [] };
    };
    const answer = async (d: DeviceClient, id: string) => {
      const path = `/app/api/v1/requests/${id}`;
      const body = JSON.stringify({ decision: "approve" });
      return (await fetch(`${r1.url}${path}`, { ...ca, method: "POST", headers: { ...(await d.headers("POST", path, body)), "Content-Type": "application/json" }, body })).status;
    };

    const events = async (d: DeviceClient) => {
      const path = "/app/api/v1/events";
      const res = await fetch(`${r1.url}${path}`, { ...ca, headers: await d.headers("GET", path) });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toContain("text/event-stream");
      return res.body!.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    };
    // Each device's event stream, relayed: it carries its own appliance's requests only.
    const streamA = await events(phoneA2);
    const streamB = await events(phoneB);
    const pendingA = held("sw-p2");
    const pendingB = held("sw-b1", { server: bServer, secret: bSecret });
    const idA = (await eventually("A's request listed", async () => (await list(phoneA2)).ids[0], { tries: 100, timeoutMs: 20_000, everyMs: 200 }))!;
    const idB = (await eventually("B's request listed", async () => (await list(phoneB)).ids[0], { tries: 100, timeoutMs: 20_000, everyMs: 200 }))!;
    expect(idA).not.toBe(idB);
    const seenA = (await readEvents(streamA, (t) => t.includes(idA)))!;
    expect(seenA).toContain("event: request");
    expect(seenA).not.toContain(idB);
    expect((await readEvents(streamB, (t) => t.includes(idB)))!).not.toContain(idA);
    expect((await list(phoneA2)).ids).toEqual([idA]);
    expect((await list(phoneB)).ids).toEqual([idB]);
    // A's device cannot answer B's request: its call goes to A, which has no such request.
    expect(await answer(phoneA2, idB)).toBe(404);
    // Naming B's device while signing with A's key goes to B, which refuses the signature.
    expect((await list(phoneA2, phoneB.id)).status).toBe(401);
    // A device the relay never saw enrolled is not routed anywhere.
    const stranger = await DeviceClient.create();
    stranger.id = "AAAAAAAAAAAAAAAAAAAAAA";
    expect((await list(stranger)).status).toBe(404);
    expect(await answer(phoneB, idB)).toBe(200);
    expect(await pendingB).toBe(Code.AccessAccept);
    expect(await answer(phoneA2, idA)).toBe(200);
    expect(await pendingA).toBe(Code.AccessAccept);

    // A removed appliance's routes go with it.
    expect(await r1.home.cli(["switch", "appliance", "remove", "branch-2"])).toContain("removed");
    await waitLog(r1.proc!, (l) => l.event === "switch.appliance_removed" && l.appliance === "branch-2");
    expect((await list(phoneB)).status).toBe(404);
    expect((await list(phoneA2)).status).toBe(200);
    // Its relayed event stream ended with its connection (the app then polls); A's stays open.
    expect(await readEvents(streamB, () => false)).toBeUndefined();
    await streamA.cancel();
  }, 120_000);

  test("a relay killed mid-flow and started again: the held request still completes, and the next login works", async () => {
    await user("sw-t2", "touch");
    const from = gateway.messages.length;
    const pending = held("sw-t2");
    const link = linkIn(await nextSms(phones["sw-t2"]!, from))!;
    const mark = server.logs.length;
    r1.kill();
    await waitLog(server, (l) => l.event === "switch.disconnected" && l.url === r1.url);
    await r1.start();
    await connectedTo(r1.url, mark);
    await approve(link);
    expect(await pending).toBe(Code.AccessAccept);
    await mobileLogin("sw-m1");
  }, 90_000);

  test("killing the primary moves traffic to the secondary, and back when it returns", async () => {
    const mark = server.logs.length;
    r1.kill();
    await connectedTo(r2.url, mark);
    expect(server.logs.slice(mark).some((l) => l.event === "switch.failover" && l.from === r1.url && l.to === r2.url)).toBe(true);
    await mobileLogin("sw-m1");
    await user("sw-t3", "touch");
    const from = gateway.messages.length;
    const pending = held("sw-t3");
    const link = linkIn(await nextSms(phones["sw-t3"]!, from))!;
    expect(link.startsWith(`${r2.url}/ml/`)).toBe(true);
    await approve(link);
    expect(await pending).toBe(Code.AccessAccept);

    const back = server.logs.length;
    await r1.start();
    await connectedTo(r1.url, back);
    expect(server.logs.slice(back).some((l) => l.event === "switch.failover" && l.from === r2.url && l.to === r1.url)).toBe(true);
    await mobileLogin("sw-m1");
  }, 120_000);
});

/** A raw WebSocket to a relay, for the refusals; resolves frames as they come. */
function rawSocket(relay: Relay) {
  const frames: Array<Record<string, unknown>> = [];
  let closed: { code: number; reason: string } | undefined;
  const ws = new WebSocket(`wss://127.0.0.1:${relay.port}/switch/v1`, { tls: { ca: relay.cert() } } as unknown as string[]);
  ws.onmessage = (e) => frames.push(JSON.parse(String(e.data)));
  ws.onclose = (e) => (closed = { code: e.code, reason: e.reason });
  return {
    ws,
    frames,
    closed: () => closed,
    next: (t: string) => eventually(`frame ${t}`, () => frames.find((f) => f.t === t)),
    whenClosed: () => eventually("the relay to close", () => closed),
  };
}

describe("refusals", () => {
  /** Enrols a second appliance "intruder" on relay 1 with a raw socket and returns it, authenticated. */
  async function intruder() {
    const token = await r1.token(`intruder-${nextPhone++}`);
    const name = token.split(".")[0]!;
    const key = keyFromSeed(crypto.getRandomValues(new Uint8Array(32)));
    const s = rawSocket(r1);
    const ch = await s.next("challenge");
    s.ws.send(JSON.stringify({ id: 1, t: "hello", name, sig: signAuth(key.privateKey, String(ch.nonce), String(ch.public_url), name), enrol: { token, public_key: key.publicKey } }));
    await s.next("welcome");
    return { ...s, name };
  }

  test("a frame larger than the maximum closes the connection (1009)", async () => {
    const s = await intruder();
    s.ws.send(JSON.stringify({ id: 2, t: "deliver", to: "+46701230001", text: "x".repeat(70 * 1024) }));
    expect((await s.whenClosed()).code).toBe(1009);
  }, 30_000);

  test("a replayed frame id closes the connection", async () => {
    const s = await intruder();
    s.ws.send(JSON.stringify({ id: 5, t: "ping" }));
    await s.next("pong");
    s.ws.send(JSON.stringify({ id: 5, t: "ping" }));
    expect((await s.whenClosed()).code).toBe(4400);
  }, 30_000);

  test("another appliance's link and another connection's request are refused and audited", async () => {
    // A link of the real appliance's, in flight on relay 1.
    await user("sw-t4", "touch");
    const from = gateway.messages.length;
    const pending = held("sw-t4");
    const link = linkIn(await nextSms(phones["sw-t4"]!, from))!;
    const s = await intruder();
    const sent = gateway.messages.length;
    s.ws.send(JSON.stringify({ id: 2, t: "deliver", to: "+46701230002", text: `Approve: ${link}` }));
    const result = await s.next("result");
    expect(result).toMatchObject({ ok: false, reason: "rejected" });
    expect(gateway.messages.length).toBe(sent);
    await waitLog(r1.proc!, (l) => l.event === "switch.frame_refused" && l.appliance === s.name && l.reason === "foreign_link");
    s.ws.send(JSON.stringify({ id: 3, t: "http-res", re: 1, status: 200, headers: {}, body: "forged" }));
    await waitLog(r1.proc!, (l) => l.event === "switch.frame_refused" && l.appliance === s.name && l.reason === "unknown_request");
    // The link still belongs to its appliance: approving it completes the login.
    await approve(link);
    expect(await pending).toBe(Code.AccessAccept);
  }, 60_000);

  test("an unenrolled key is refused; a removed appliance's connection is closed at once", async () => {
    const key = keyFromSeed(crypto.getRandomValues(new Uint8Array(32)));
    const s = rawSocket(r1);
    const ch = await s.next("challenge");
    s.ws.send(JSON.stringify({ id: 1, t: "hello", name: "branch-1", sig: signAuth(key.privateKey, String(ch.nonce), String(ch.public_url), "branch-1") }));
    expect((await s.whenClosed()).code).toBe(4401);
    await waitLog(r1.proc!, (l) => l.event === "switch.auth_refused" && l.reason === "bad_signature");

    const mark = server.logs.length;
    expect(await r1.home.cli(["switch", "appliance", "remove", "branch-1"])).toContain("removed");
    await waitLog(r1.proc!, (l) => l.event === "switch.appliance_removed" && l.appliance === "branch-1");
    const gone = await eventually("the appliance to be cut off", () => server.logs.slice(mark).find((l) => l.event === "switch.disconnected" && l.url === r1.url));
    expect(gone.code).toBe(4403);
    // It is refused from then on, and carries on through the secondary.
    await connectedTo(r2.url, mark);
    await waitLog(r1.proc!, (l) => l.event === "switch.auth_refused" && l.appliance === "branch-1" && l.reason === "not_enrolled");
    // Its approver device is no longer routed by relay 1 (its route outlived relay 1's restarts until now).
    const path = "/app/api/v1/requests";
    expect((await fetch(`${r1.url}${path}`, { tls: { ca: r1.cert() }, headers: await phoneA!.headers("GET", path) } as RequestInit)).status).toBe(404);
  }, 60_000);
});

describe("no relay reachable", () => {
  test("a login that needs the relay falls back as a failed delivery does: TOTP for type 2, FAILED_DELIVERY for Magic Link", async () => {
    await user("sw-m9", "mobile");
    const seed = encodeBase32(crypto.getRandomValues(new Uint8Array(20)));
    await app.cli(["token", "add", "sw-m9", "--totp", "--secret", seed]);
    const mark = server.logs.length;
    r1.kill();
    r2.kill();
    await eventually("both relays gone", () => (server.logs.slice(mark).filter((l) => l.event === "switch.disconnected").length > 0 ? true : undefined), { tries: 300, timeoutMs: 20_000 });
    const first = await rad([`User-Name = sw-m9`, `User-Password = ${quote(PASSWORD)}`]);
    expect(first.code).toBe("Access-Challenge");
    expect(attr(first, "Reply-Message")).toContain("authenticator app");
    const ok = await rad([`User-Name = sw-m9`, `User-Password = ${totp(decodeBase32(seed), { now: Date.now() })}`, `State = ${attr(first, "State")}`]);
    expect(ok.code).toBe("Access-Accept");
    const call = await fetch(`http://127.0.0.1:${server.httpPort}/api/sfwa/auth?msisdn=${encodeURIComponent("+46701239998")}`, { headers: { "api-key": apiKey }, signal: AbortSignal.timeout(30_000) });
    expect(await call.text()).toBe('{"code":"FAILED_DELIVERY"}');
    const ready = await (await fetch(`http://127.0.0.1:${server.adminPort}/readyz`)).json();
    expect(ready).toMatchObject({ status: "ready", switch: { state: "connecting", url: null } });
  }, 60_000);
});
