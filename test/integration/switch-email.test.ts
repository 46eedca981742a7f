// E-mail through the switch relay end to end on loopback: a relay whose only channel is a real
// SMTP server (smtp-server, STARTTLS on a generated certificate, AUTH PLAIN), and an appliance whose
// only channel is the relay and that has no public URL of its own. Approval links and SMS codes for
// users with an e-mail address arrive at the SMTP server, links on the relay's public_url; answering
// on the relay's page in headless Chromium completes the held RADIUS request and the Magic Link call.
// With the SMTP server down the appliance sees a failed delivery and falls back as it always does.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { chromium, type Browser } from "playwright-core";
import { SMTPServer, type SMTPServerSession } from "smtp-server";
import { Appliance, Attr, Code, ServerProcess, UDPClient, addLiveClient, buildAccessRequest, eventually, identifier } from "./helpers/appliance.ts";
import { Relay } from "./helpers/switch-relay.ts";
import { attr, quote, radclient, radclientPath } from "./helpers/radclient.ts";
import { generateSelfSigned } from "../../src/http/tls.ts";
import { decodeBase32, encodeBase32, totp } from "../../scripts/bench/radius-wire.ts";
import { DELIVERY_LIMITS_OFF } from "./helpers/sms-gateway.ts";

const CHROMIUM = "/usr/bin/chromium";
const PASSWORD = "correct horse battery";
const SMTP_USER = "relay@example.test";
const SMTP_PASSWORD = "smtp-p4ssword-s3cret";

interface Mail {
  to: string[];
  raw: string;
  secure: boolean;
  authed: boolean;
}

/** A real SMTP server on 127.0.0.1 requiring STARTTLS and AUTH; records each message. */
class MailServer {
  readonly messages: Mail[] = [];
  port = 0;
  private server?: SMTPServer;
  constructor(private readonly tls: { cert: string; key: string }) {}

  async start(port = 0): Promise<void> {
    this.server = new SMTPServer({
      key: this.tls.key,
      cert: this.tls.cert,
      authMethods: ["PLAIN"],
      logger: false,
      onAuth: (auth, _s, cb) => (auth.username === SMTP_USER && auth.password === SMTP_PASSWORD ? cb(null, { user: auth.username }) : cb(Object.assign(new Error("Invalid username or password"), { responseCode: 535 }))),
      onData: (stream, session: SMTPServerSession, cb) => {
        const chunks: Buffer[] = [];
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("end", () => {
          this.messages.push({ to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString("utf8"), secure: session.secure, authed: session.user !== undefined });
          cb();
        });
      },
    });
    await new Promise<void>((resolve) => this.server!.listen(port, "127.0.0.1", resolve));
    this.port = (this.server as unknown as { server: { address(): AddressInfo } }).server.address().port;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  to(address: string, from: number): Mail[] {
    return this.messages.slice(from).filter((m) => m.to.includes(address));
  }
}

/** The decoded text body of a one-part message (nodemailer may quoted-printable it). */
function bodyOf(raw: string): string {
  const [head, ...rest] = raw.split("\r\n\r\n");
  const body = rest.join("\r\n\r\n");
  if (/content-transfer-encoding:\s*quoted-printable/i.test(head!)) return body.replace(/=\r\n/g, "").replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  return body;
}

const linkIn = (text: string) => /(https:\/\/[^\s]+\/ml\/[A-Za-z0-9_-]{43})/.exec(text)?.[1];

let mail: MailServer;
let relay: Relay;
let app: Appliance;
let server: ServerProcess;
let browser: Browser;
let secret: string;
let apiKey: string;

const nextMail = (to: string, from: number) => eventually(`an e-mail to ${to}`, () => mail.to(to, from)[0], { tries: 400, timeoutMs: 20_000 });
const rad = (attrs: string[]) => radclient(server.port, secret, attrs);

/** Starts a held login over raw UDP; resolves with the reply's code when it comes. */
async function held(name: string): Promise<number> {
  using udp = await UDPClient.open("127.0.0.1");
  const enc = new TextEncoder();
  const packet = buildAccessRequest({ identifier: identifier(), secret, attributes: [[Attr.UserName, enc.encode(name)], [Attr.UserPassword, enc.encode(PASSWORD)]] });
  return (await udp.exchange(packet, server.port, secret, { timeoutMs: 40_000 })).code;
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

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: these tests need headless Chromium`);
  if (!radclientPath) throw new Error("radclient not installed: apt-get install freeradius-utils");
  const tls = await generateSelfSigned(["127.0.0.1"], { now: Date.now(), random: (n) => new Uint8Array(randomBytes(n)) });
  mail = new MailServer(tls);
  await mail.start();
  relay = new Relay();
  writeFileSync(join(relay.home.dataDir, "smtp-ca.pem"), tls.cert);
  writeFileSync(join(relay.home.dataDir, "smtp.pass"), `${SMTP_PASSWORD}\n`, { mode: 0o600 });
  // The relay's only channel is e-mail.
  relay.writeConfig(
    `
[delivery]
${DELIVERY_LIMITS_OFF}
[delivery.smtp]
host = "127.0.0.1"
port = ${mail.port}
user = "${SMTP_USER}"
password_file = "${join(relay.home.dataDir, "smtp.pass")}"
from = "Portcullis relay <${SMTP_USER}>"
ca_file = "${join(relay.home.dataDir, "smtp-ca.pem")}"
timeout_ms = 3000
`,
    // Metrics on a listener of their own, on loopback.
    `metrics_listen = "127.0.0.1:0"`,
  );
  await relay.start();
  app = new Appliance();
  const caFile = join(app.dataDir, "switch-ca.pem");
  writeFileSync(caFile, relay.cert());
  // No public_url and no channel of its own: links are built on the switch placeholder.
  app.writeConfig(`
region = "SE"
[http]
tls = false
[delivery]
${DELIVERY_LIMITS_OFF}
[switch]
urls = ["${relay.url}"]
ca_file = "${caFile}"
`);
  expect(await app.cli(["switch", "join", relay.url, await relay.token("branch-mail")])).toContain("joined");
  server = await app.serve();
  await eventually("connected to the relay", () => server.logs.find((l) => l.event === "switch.connected" && l.url === relay.url), { tries: 600, timeoutMs: 40_000 });
  secret = await addLiveClient(app, server, "vpn", "127.0.0.1", ["--approval-hold", "20"]);
  apiKey = /pcl_[A-Za-z0-9_-]{43}/.exec(await app.cli(["apikey", "add", "web"]))![0];
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"] });
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await app?.[Symbol.asyncDispose]();
  await relay?.home[Symbol.asyncDispose]();
  await mail?.stop();
});

describe("e-mail through the relay", () => {
  test("type touch (6): the approval link arrives by e-mail on the relay's public_url; approving it there accepts the held request", async () => {
    const to = "em-t1@example.test";
    await app.cli(["user", "add", "em-t1", "--password-stdin", "--type", "touch", "--email", to], { stdin: PASSWORD });
    const from = mail.messages.length;
    const pending = held("em-t1");
    const m = await nextMail(to, from);
    expect(m.to).toEqual([to]);
    // Sent by the relay's SMTP channel: STARTTLS, then AUTH.
    expect([m.secure, m.authed]).toEqual([true, true]);
    expect(m.raw).toMatch(new RegExp(`^To: ${to.replace(/\./g, "\\.")}\\r$`, "m"));
    expect(m.raw).toMatch(/^Subject: Sign-in request\r$/m);
    const body = bodyOf(m.raw);
    const link = linkIn(body)!;
    expect(link.startsWith(`${relay.url}/ml/`)).toBe(true);
    expect(body).not.toContain("switch.invalid");
    expect(await approve(link)).toContain("approved");
    expect(await pending).toBe(Code.AccessAccept);
  }, 60_000);

  test("type mobile (2): the one-time code arrives by e-mail", async () => {
    const to = "em-m1@example.test";
    await app.cli(["user", "add", "em-m1", "--password-stdin", "--type", "mobile", "--email", to], { stdin: PASSWORD });
    const from = mail.messages.length;
    const first = await rad([`User-Name = em-m1`, `User-Password = ${quote(PASSWORD)}`]);
    expect(first.code).toBe("Access-Challenge");
    expect(attr(first, "Reply-Message")).toContain("e-mail");
    const code = /code is ([0-9A-Z]+)\./.exec(bodyOf((await nextMail(to, from)).raw))![1]!;
    const ok = await rad([`User-Name = em-m1`, `User-Password = ${quote(code)}`, `State = ${attr(first, "State")}`]);
    expect(ok.code).toBe("Access-Accept");
  }, 60_000);

  test("Magic Link: the relay has no SMS gateway, so the link goes to the number's user by e-mail; approving it completes the call", async () => {
    const msisdn = "+46701238877";
    const to = "em-ml@example.test";
    await app.cli(["user", "add", "em-ml", "--phone", msisdn, "--email", to]);
    const from = mail.messages.length;
    const call = fetch(`http://127.0.0.1:${server.httpPort}/api/sfwa/auth?msisdn=${encodeURIComponent(msisdn)}`, { headers: { "api-key": apiKey }, signal: AbortSignal.timeout(60_000) }).then((r) => r.text());
    const link = linkIn(bodyOf((await nextMail(to, from)).raw))!;
    expect(link.startsWith(`${relay.url}/ml/`)).toBe(true);
    await approve(link);
    expect(await call).toBe('{"code":"TOUCH_ACCEPTED"}');
  }, 60_000);
});

describe("the relay's SMTP server down", () => {
  test("the appliance sees a failed delivery and falls back: TOTP for type touch-plus (7), FAILED_DELIVERY for Magic Link", async () => {
    const to = "em-p1@example.test";
    await app.cli(["user", "add", "em-p1", "--password-stdin", "--type", "touch-plus", "--email", to], { stdin: PASSWORD });
    const seed = encodeBase32(crypto.getRandomValues(new Uint8Array(20)));
    await app.cli(["token", "add", "em-p1", "--totp", "--secret", seed]);
    const port = mail.port;
    await mail.stop();
    const sent = mail.messages.length;
    const relayMark = relay.proc!.logs.length;
    const mark = server.logs.length;

    const first = await rad([`User-Name = em-p1`, `User-Password = ${quote(PASSWORD)}`]);
    expect(first.code).toBe("Access-Challenge");
    expect(attr(first, "Reply-Message")).toContain("authenticator app");
    const ok = await rad([`User-Name = em-p1`, `User-Password = ${totp(decodeBase32(seed), { now: Date.now() })}`, `State = ${attr(first, "State")}`]);
    expect(ok.code).toBe("Access-Accept");
    // The relay's e-mail channel failed; the appliance's switch channel reported it as failed.
    expect(relay.proc!.logs.slice(relayMark).some((l) => l.event === "delivery.failed" && l.channel === "email" && l.reason === "network")).toBe(true);
    const failed = server.logs.slice(mark).find((l) => l.event === "delivery.failed" && l.channel === "switch");
    expect(failed).toMatchObject({ reason: "gateway_error", detail: "switch: all_channels_failed" });
    expect(JSON.stringify(server.logs.slice(mark))).not.toContain(to);

    const msisdn = "+46701238878";
    await app.cli(["user", "add", "em-ml2", "--phone", msisdn, "--email", "em-ml2@example.test"]);
    const call = await fetch(`http://127.0.0.1:${server.httpPort}/api/sfwa/auth?msisdn=${encodeURIComponent(msisdn)}`, { headers: { "api-key": apiKey }, signal: AbortSignal.timeout(30_000) });
    expect(await call.text()).toBe('{"code":"FAILED_DELIVERY"}');
    expect(mail.messages.length).toBe(sent);

    // The SMTP server back on its port: the next approval e-mail goes out again.
    await mail.start(port);
    const from = mail.messages.length;
    const pending = held("em-t1");
    const link = linkIn(bodyOf((await nextMail("em-t1@example.test", from)).raw))!;
    await approve(link);
    expect(await pending).toBe(Code.AccessAccept);
  }, 90_000);
});

describe("the relay's /metrics", () => {
  test("served on metrics_listen only, never on the public listener; counts appliances, frames, deliveries by channel and result, refusals by reason", async () => {
    // An appliance that is not enrolled is refused: counted by reason.
    const ws = new WebSocket(`wss://127.0.0.1:${relay.port}/switch/v1`, { tls: { ca: relay.cert() } } as unknown as string[]);
    const closed = new Promise<number>((resolve) => (ws.onclose = (e) => resolve(e.code)));
    ws.onmessage = () => ws.send(JSON.stringify({ id: 1, t: "hello", name: "stranger", sig: "A".repeat(86) }));
    expect(await closed).toBe(4401);

    const at = await relay.proc!.waitForLog((l) => l.event === "switch.metrics_listening", { timeoutMs: 5000 });
    expect(at.address).toBe("127.0.0.1");
    const res = await fetch(`http://127.0.0.1:${at.port}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = await res.text();
    const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}"]/g, "\\$&")} (\\S+)$`, "m").exec(text)?.[1]);
    expect(value("portcullis_switch_appliances_connected")).toBe(1);
    expect(value("portcullis_switch_appliances_enrolled")).toBe(1);
    expect(value('portcullis_switch_frames_total{direction="in"}')).toBeGreaterThan(5);
    expect(value('portcullis_switch_frames_total{direction="out"}')).toBeGreaterThan(5);
    // Two approval links, a code and a Magic Link by e-mail; two failed while the SMTP server was down.
    expect(value('portcullis_switch_deliveries_total{channel="email",result="ok"}')).toBe(4);
    expect(value('portcullis_switch_deliveries_total{channel="email",result="network"}')).toBe(2);
    // The relay has no SMS gateway: the two Magic Link messages for a number were refused before any channel.
    expect(value('portcullis_switch_deliveries_refused_total{reason="all_channels_failed"}')).toBe(2);
    expect(value('portcullis_switch_connections_refused_total{reason="not_enrolled"}')).toBe(1);
    expect(value("portcullis_switch_requests_in_flight")).toBe(0);
    expect(value("portcullis_switch_requests_forwarded_total")).toBeGreaterThanOrEqual(6);
    expect(text).toContain("portcullis_switch_event_streams_open 0");
    expect(text).not.toContain("example.test");

    // The public listener does not serve them.
    const pub = await fetch(`${relay.url}/metrics`, { tls: { ca: relay.cert() } } as RequestInit);
    expect(pub.status).toBe(404);
    expect(await pub.text()).not.toContain("portcullis_switch");
  }, 30_000);
});
