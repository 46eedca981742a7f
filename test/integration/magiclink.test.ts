// Magic Link end to end against the compiled binary: a local HTTP server plays the SMS gateway
// (form POST, JSON answer checked with success_match), smtp-server plays the mail server for
// failover, and headless Chromium opens the link and taps Approve, Reject or a number. The API is
// called the way the Mideye clients call it: GET, `api-key` header, a 120 s client timeout.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { SMTPServer } from "smtp-server";
import { Appliance, eventually, type ServerProcess } from "./helpers/appliance.ts";
import { DELIVERY_LIMITS_OFF, SmsGateway, linkIn } from "./helpers/sms-gateway.ts";

const CHROMIUM = "/usr/bin/chromium";
const ALICE = "+46701230001"; // no e-mail
const BOB = "+46701230002"; // has an e-mail address (failover)

/** A plain SMTP server (no STARTTLS: TLS is the delivery tests' subject) recording messages. */
function smtpServer(): Promise<{ port: number; messages: string[]; close(): void }> {
  const messages: string[] = [];
  const server = new SMTPServer({
    disabledCommands: ["STARTTLS", "AUTH"],
    authOptional: true,
    logger: false,
    onData(stream, _session, cb) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        messages.push(Buffer.concat(chunks).toString("utf8").replace(/=\r?\n/g, "").replace(/=3D/g, "="));
        cb();
      });
    },
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const addr = server.server.address() as { port: number };
      resolve({ port: addr.port, messages, close: () => server.close() });
    });
  });
}

/** A port free right now (the public URL must be known before serve starts). */
function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

let appliance: Appliance;
let server: ServerProcess;
let gateway: SmsGateway;
let smtp: Awaited<ReturnType<typeof smtpServer>>;
let browser: Browser;
let base: string;
let key: string;
let tightKey: string;
let customKey: string;

async function newKey(name: string, extra: string[] = []): Promise<string> {
  const out = await appliance.cli(["apikey", "add", name, ...extra]);
  const m = /pcl_[A-Za-z0-9_-]{43}/.exec(out);
  if (!m) throw new Error("apikey add printed no key");
  return m[0];
}

/** Calls the API like the Mideye clients; resolves with status, content type and body. */
async function call(query: string, apiKey: string, { signal, path = "/api/sfwa/auth" }: { signal?: AbortSignal; path?: string } = {}) {
  const r = await fetch(`${base}${path}?${query}`, { headers: { "api-key": apiKey, Accept: "application/json" }, signal: signal ?? AbortSignal.timeout(120_000) });
  return { status: r.status, type: r.headers.get("content-type"), body: await r.text() };
}

/** Waits for the next SMS to `to` (after `from` messages) and returns its link. */
async function nextSms(from: number, to: string): Promise<string> {
  const link = linkIn(await gateway.waitFor(to, from));
  if (!link) throw new Error(`the SMS to ${to} holds no link`);
  return link;
}

/** Answers a link with a plain form POST (CSRF token read from the page). */
async function answerByForm(link: string, action: "approve" | "reject"): Promise<Response> {
  const html = await (await fetch(link)).text();
  const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? "";
  return fetch(link, { method: "POST", body: new URLSearchParams({ csrf, action }) });
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: these tests need headless Chromium (apt-get install -y chromium)`);
  gateway = new SmsGateway();
  smtp = await smtpServer();
  appliance = new Appliance();
  const port = freePort();
  base = `http://127.0.0.1:${port}`;
  appliance.writeConfig(`
region = "SE"
[http]
public_url = "${base}"
tls = false
[delivery]
allowed_prefixes = ["+468"]
${DELIVERY_LIMITS_OFF}
${gateway.smsConfig()}
[delivery.smtp]
host = "127.0.0.1"
port = ${smtp.port}
starttls = false
from = "Portcullis <mfa@example.com>"
[[endpoint]]
name = "default"
per_number_per_minute = 1000
per_number_per_hour = 10000
per_key_per_minute = 0
overall_per_minute = 0
[[endpoint]]
name = "tight"
per_number_per_minute = 1
per_key_per_minute = 0
overall_per_minute = 0
[[endpoint]]
name = "custom"
allow_custom_sms_text = true
per_number_per_minute = 1000
per_number_per_hour = 10000
per_key_per_minute = 0
overall_per_minute = 0
`);
  await appliance.cli(["user", "add", "alice", "--phone", ALICE]);
  await appliance.cli(["user", "add", "bob", "--phone", BOB, "--email", "bob@example.com"]);
  key = await newKey("web");
  tightKey = await newKey("tight", ["--endpoint", "tight"]);
  customKey = await newKey("custom", ["--endpoint", "custom"]);
  server = await appliance.serve({ httpListen: `127.0.0.1:${port}` });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await appliance?.[Symbol.asyncDispose]();
  await gateway?.stop();
  smtp?.close();
});

describe("approval in a real browser", () => {
  test("bare GETs change nothing; Chromium taps Approve → TOUCH_ACCEPTED; the link is then single-use", async () => {
    const from = gateway.messages.length;
    const pending = call(`msisdn=${encodeURIComponent(ALICE)}`, key);
    const link = await nextSms(from, ALICE);
    expect(link.startsWith(`${base}/ml/`)).toBe(true);
    // Link scanners: GET and HEAD, repeatedly.
    for (let i = 0; i < 3; i++) expect((await fetch(link)).status).toBe(200);
    expect((await fetch(link, { method: "HEAD" })).status).toBe(200);
    const csrf = /name="csrf" value="([^"]+)"/.exec(await (await fetch(link)).text())?.[1] ?? "";
    const page = await browser.newPage();
    await page.goto(link);
    expect(await page.getAttribute("html", "lang")).toBe("en");
    await page.click("#approve");
    await page.waitForSelector("#result");
    expect(await page.textContent("#result")).toContain("Sign-in approved");
    expect(await pending).toEqual({ status: 200, type: "application/json", body: '{"code":"TOUCH_ACCEPTED"}' });
    // Single use: reloading shows it was answered; another POST changes nothing.
    await page.goto(link);
    expect(await page.textContent("body")).toContain("already answered");
    const again = await fetch(link, { method: "POST", body: new URLSearchParams({ csrf, action: "reject" }) });
    expect(again.status).toBe(409);
    await page.close();
  });

  test("custom texts are shown escaped; Chromium taps Reject → TOUCH_REJECTED and the reject text", async () => {
    const from = gateway.messages.length;
    const q = new URLSearchParams({ msisdn: ALICE, "title-text": "<i>Acme VPN</i>", "authentication-text": "Sign in to the VPN?", "button-reject-text": "Not me", "touch-reject-text": "Rejected, thanks." });
    const pending = call(q.toString(), key);
    const link = await nextSms(from, ALICE);
    const page = await browser.newPage();
    await page.goto(link);
    expect(await page.textContent("#title")).toBe("<i>Acme VPN</i>");
    expect(await page.textContent("#question")).toBe("Sign in to the VPN?");
    expect(await page.textContent("#reject")).toBe("Not me");
    await page.click("#reject");
    await page.waitForSelector("#result");
    expect(await page.textContent("#result")).toBe("Rejected, thanks.");
    expect((await pending).body).toBe('{"code":"TOUCH_REJECTED"}');
    await page.close();
  });

  test("number matching: Chromium picks a wrong number → TOUCH_REJECTED", async () => {
    const from = gateway.messages.length;
    const pending = call(`msisdn=${encodeURIComponent(ALICE)}&match-number=37`, key);
    const link = await nextSms(from, ALICE);
    const page = await browser.newPage();
    await page.goto(link);
    const picks = await page.$$eval('button[name="pick"]', (bs) => bs.map((b) => b.getAttribute("value") ?? ""));
    expect(picks).toContain("37");
    expect(picks).toHaveLength(3);
    await page.click(`button[name="pick"][value="${picks.find((p) => p !== "37")}"]`);
    await page.waitForSelector("#result");
    expect((await pending).body).toBe('{"code":"TOUCH_REJECTED"}');
    await page.close();
  });
});

describe("API outcomes", () => {
  test("a wrong key and a disabled key → HTTP 200 BAD_REQUEST", async () => {
    expect(await call(`msisdn=${encodeURIComponent(ALICE)}`, "pcl_" + "x".repeat(43))).toEqual({ status: 200, type: "application/json", body: '{"code":"BAD_REQUEST"}' });
    const k = await newKey("soon-disabled");
    await appliance.cli(["apikey", "disable", "soon-disabled"]);
    expect((await call(`msisdn=${encodeURIComponent(ALICE)}`, k)).body).toBe('{"code":"BAD_REQUEST"}');
  });

  test("the endpoint's per-number limit → BAD_REQUEST on the second call", async () => {
    const from = gateway.messages.length;
    const pending = call(`msisdn=${encodeURIComponent(ALICE)}`, tightKey, { path: "/api/sfwa/auth/tight" });
    const link = await nextSms(from, ALICE);
    await answerByForm(link, "approve");
    expect((await pending).body).toBe('{"code":"TOUCH_ACCEPTED"}');
    expect((await call(`msisdn=${encodeURIComponent(ALICE)}`, tightKey, { path: "/api/sfwa/auth/tight" })).body).toBe('{"code":"BAD_REQUEST"}');
  });

  test("a number outside the allow-list → FAILED_DELIVERY, the gateway sees nothing", async () => {
    const from = gateway.messages.length;
    expect((await call(`msisdn=${encodeURIComponent("+12025550123")}`, key)).body).toBe('{"code":"FAILED_DELIVERY"}');
    expect(gateway.messages.length).toBe(from);
  });

  test.each(["error-body", "down"] as const)("gateway %s and no e-mail address → FAILED_DELIVERY", async (mode) => {
    gateway.mode = mode;
    try {
      expect((await call(`msisdn=${encodeURIComponent(ALICE)}`, key)).body).toBe('{"code":"FAILED_DELIVERY"}');
    } finally {
      gateway.mode = "ok";
    }
  });

  test("gateway down → failover to e-mail; the link in the mail approves → TOUCH_ACCEPTED", async () => {
    gateway.mode = "down";
    try {
      const from = smtp.messages.length;
      const pending = call(`msisdn=${encodeURIComponent(BOB)}`, key);
      const link = await eventually("an e-mail", () => smtp.messages.slice(from).map(linkIn).find(Boolean));
      expect(smtp.messages.at(-1)).toContain("bob@example.com");
      expect((await answerByForm(link, "approve")).status).toBe(200);
      expect((await pending).body).toBe('{"code":"TOUCH_ACCEPTED"}');
    } finally {
      gateway.mode = "ok";
    }
  });

  test("a client that disconnects cancels its session: the link is dead", async () => {
    const from = gateway.messages.length;
    const ctrl = new AbortController();
    const pending = call(`msisdn=${encodeURIComponent(ALICE)}`, key, { signal: ctrl.signal }).catch(() => "aborted");
    const link = await nextSms(from, ALICE);
    ctrl.abort();
    expect(await pending).toBe("aborted");
    await eventually("the link to die", async () => ((await fetch(link)).status === 404 ? true : undefined));
    expect(await (await fetch(link)).text()).toContain("no longer valid");
  });

  test("touch-timeout=15 passes unanswered → USER_NOT_RESPONDED", async () => {
    const from = gateway.messages.length;
    const started = Date.now();
    const r = await call(`msisdn=${encodeURIComponent(ALICE)}&touch-timeout=15`, key);
    expect(r.body).toBe('{"code":"USER_NOT_RESPONDED"}');
    expect(Date.now() - started).toBeGreaterThanOrEqual(14_000);
    expect(gateway.messages.length).toBe(from + 1);
  }, 40_000);

  test("/metrics counts outcomes and deliveries", async () => {
    const text = await (await fetch(`http://127.0.0.1:${server.adminPort}/metrics`)).text();
    expect(text).toMatch(/portcullis_magiclink_outcomes_total\{code="TOUCH_ACCEPTED"\} [1-9]/);
    expect(text).toMatch(/portcullis_magiclink_outcomes_total\{code="BAD_REQUEST"\} [1-9]/);
    expect(text).toMatch(/portcullis_deliveries_total\{channel="sms",result="ok"\} [1-9]/);
    expect(text).toMatch(/portcullis_deliveries_total\{channel="email",result="ok"\} 1/);
    expect(text).toMatch(/portcullis_sms_messages_total\{country="SE"\} [1-9]/);
  });

  test("no log line holds a link token or an API key", () => {
    const all = JSON.stringify(server.logs);
    for (const m of gateway.messages) {
      const token = /\/ml\/([A-Za-z0-9_-]{43})/.exec(m.message)?.[1];
      if (token) expect(all).not.toContain(token);
    }
    expect(all).not.toContain(key);
  });
});

describe("destination types (default allow-list: region SE, plus allowed_prefixes = [\"+468\"])", () => {
  // touch-timeout=15 bounds a call that (wrongly) goes out and waits.
  test.each([
    ["premium rate 0900", "+46900123456"],
    ["premium rate 0939", "+46939123456"],
    ["premium rate 099x", "+469911234"],
    ["0991, in no range the metadata knows", "+46991123456"],
    ["a Gothenburg landline (only +468 is listed)", "+46311234567"],
    ["a shared-cost number", "+46771123456"],
  ])("%s → FAILED_DELIVERY, the gateway sees nothing, the refusal is logged masked", async (_, msisdn) => {
    const from = gateway.messages.length;
    const logsFrom = server.logs.length;
    expect((await call(`msisdn=${encodeURIComponent(msisdn)}&touch-timeout=15`, key)).body).toBe('{"code":"FAILED_DELIVERY"}');
    expect(gateway.messages.length).toBe(from);
    await server.waitForLog((l) => l.event === "magiclink.call", { from: logsFrom });
    const refused = server.logs.slice(logsFrom).filter((l) => l.event === "delivery.refused");
    expect(refused).toEqual([expect.objectContaining({ level: "warn", reason: "number_type_not_allowed", to: `+46…${msisdn.slice(-2)}`, country: "SE" })]);
    expect(JSON.stringify(server.logs.slice(logsFrom))).not.toContain(msisdn.slice(3));
  });

  test("a Stockholm landline is sent because +468 is listed in allowed_prefixes", async () => {
    const from = gateway.messages.length;
    const pending = call(`msisdn=${encodeURIComponent("+4681234567")}`, key);
    const link = await nextSms(from, "+4681234567");
    await answerByForm(link, "approve");
    expect((await pending).body).toBe('{"code":"TOUCH_ACCEPTED"}');
  });
});

describe("texts", () => {
  const PARAMS = ["sms-text", "authentication-text", "touch-accept-text", "touch-reject-text", "button-accept-text", "button-reject-text", "title-text"];
  test.each(PARAMS)("%s with a right-to-left override → BAD_REQUEST naming the parameter; nothing sent", async (param) => {
    const from = gateway.messages.length;
    const logsFrom = server.logs.length;
    const q = new URLSearchParams({ msisdn: ALICE, "touch-timeout": "15", [param]: "Approve \u202eevorppA {link}" });
    expect((await call(q.toString(), customKey, { signal: AbortSignal.timeout(20_000) })).body).toBe('{"code":"BAD_REQUEST"}');
    expect(gateway.messages.length).toBe(from);
    const line = await server.waitForLog((l) => l.event === "magiclink.bad_request", { from: logsFrom });
    expect(line).toMatchObject({ reason: "parameters", endpoint: "custom", fields: [param] });
    expect(JSON.stringify(server.logs.slice(logsFrom))).not.toContain("evorppA");
  });

  test("sms-text on an endpoint without custom text: the endpoint's text goes out, the call proceeds, the key is logged once", async () => {
    const logsFrom = server.logs.length;
    const q = new URLSearchParams({ msisdn: ALICE, "sms-text": "URGENT: your account is frozen, verify now {link}" }).toString();
    for (let i = 0; i < 2; i++) {
      const from = gateway.messages.length;
      const pending = call(q, key);
      const link = await nextSms(from, ALICE);
      const message = gateway.messages.slice(from).find((m) => m.to === ALICE)!.message;
      expect(message).toBe(`Approve or reject your sign-in: ${link}`);
      await answerByForm(link, "approve");
      expect((await pending).body).toBe('{"code":"TOUCH_ACCEPTED"}');
    }
    // The ignored text is logged when the message is built, before each call's own line.
    let calls = 0;
    await server.waitForLog((l) => l.event === "magiclink.call" && ++calls === 2, { from: logsFrom });
    const ignored = server.logs.slice(logsFrom).filter((l) => l.event === "magiclink.custom_text_ignored");
    expect(ignored).toEqual([expect.objectContaining({ level: "warn", key: "web", endpoint: "default" })]);
  });

  test("an endpoint with allow_custom_sms_text = true sends the caller's text, and start-up named it", async () => {
    const from = gateway.messages.length;
    const pending = call(new URLSearchParams({ msisdn: ALICE, "sms-text": "Acme VPN: {link}" }).toString(), customKey, { path: "/api/sfwa/auth/custom" });
    const link = await nextSms(from, ALICE);
    expect(gateway.messages.slice(from).find((m) => m.to === ALICE)!.message).toBe(`Acme VPN: ${link}`);
    await answerByForm(link, "approve");
    expect((await pending).body).toBe('{"code":"TOUCH_ACCEPTED"}');
    const warned = server.logs.filter((l) => l.event === "endpoint.custom_sms_text_allowed").map((l) => l.endpoint);
    expect(warned).toEqual(["custom"]);
  });
});

describe("over HTTPS with the generated certificate as the trusted CA", () => {
  test("the API call and the answer work with certificate verification on", async () => {
    await using a = new Appliance();
    const port = freePort();
    const url = `https://127.0.0.1:${port}`;
    a.writeConfig(`region = "SE"\n[http]\npublic_url = "${url}"\n[delivery.sms]\nurl = "http://127.0.0.1:${gateway.port}/sms"\nbody = "to={to}&message={message}"\n`);
    const out = await a.cli(["apikey", "add", "tls"]);
    const k = /pcl_[A-Za-z0-9_-]{43}/.exec(out)![0];
    await a.serve({ httpListen: `127.0.0.1:${port}` });
    const ca = readFileSync(join(a.dataDir, "http-cert.pem"), "utf8");
    const from = gateway.messages.length;
    const pending = fetch(`${url}/api/sfwa/auth?msisdn=${encodeURIComponent(ALICE)}`, { headers: { "api-key": k }, tls: { ca } }).then((r) => r.text());
    const link = await nextSms(from, ALICE);
    expect(link.startsWith(`${url}/ml/`)).toBe(true);
    const html = await (await fetch(link, { tls: { ca } })).text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(html)![1]!;
    expect((await fetch(link, { method: "POST", body: new URLSearchParams({ csrf, action: "approve" }), tls: { ca } })).status).toBe(200);
    expect(await pending).toBe('{"code":"TOUCH_ACCEPTED"}');
  });
});
