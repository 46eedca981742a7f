// The approver app through the switch relay in headless Chromium: the app's page comes from the
// relay's public_url, enrols from the link `device enrol` prints (the relay routes the call by the
// code's hash to the appliance that announced it), and keeps its event stream open through the
// relay. A held RADIUS request (radclient) and a challenge-mode one (number matching) arrive over
// that relayed stream and are answered by tapping in the page; the NAS gets Access-Accept.
//
// Chromium trusts the relay's generated certificate by its public key
// (--ignore-certificate-errors-spki-list), so the page is a secure context with a working service
// worker, as on a phone with a publicly trusted certificate.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { X509Certificate, createHash } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { Appliance, Attr, Code, UDPClient, addLiveClient, attributeValues, buildAccessRequest, eventually, identifier, type RawAttribute, type ServerProcess } from "./helpers/appliance.ts";
import { Relay } from "./helpers/switch-relay.ts";
import { quote, radclient, radclientPath } from "./helpers/radclient.ts";

const CHROMIUM = "/usr/bin/chromium";
const PASSWORD = "correct horse battery";

setDefaultTimeout(120_000);

let relay: Relay;
let app: Appliance;
let server: ServerProcess;
let browser: Browser;
let metricsPort: number;
const secrets: Record<string, string> = {};

/** base64(SHA-256(SubjectPublicKeyInfo)) of a PEM certificate, as Chromium's SPKI allow-list wants it. */
function spkiHash(pem: string): string {
  const der = new X509Certificate(pem).publicKey.export({ type: "spki", format: "der" });
  return createHash("sha256").update(der).digest("base64");
}

/**
 * One leg at the challenge-mode client (127.0.0.2) over raw UDP: radclient sends from 127.0.0.1 (the
 * hold-mode client) and cannot send the empty password of a user who just presses Enter.
 */
async function challengeLeg(name: string, password: string, state?: Uint8Array) {
  using udp = await UDPClient.open("127.0.0.2");
  const enc = new TextEncoder();
  const attributes: RawAttribute[] = [
    [Attr.UserName, enc.encode(name)],
    [Attr.UserPassword, enc.encode(password)],
  ];
  if (state) attributes.push([Attr.State, state]);
  return await udp.exchange(buildAccessRequest({ identifier: identifier(), secret: secrets.challenge!, attributes }), server.port, secrets.challenge!, { timeoutMs: 20_000 });
}

async function metric(series: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  return Number(new RegExp(`^${series.replace(/[{}"]/g, "\\$&")} (\\S+)$`, "m").exec(text)?.[1]);
}

/**
 * Opens the enrolment link in a fresh profile, names the device and taps Enrol. The relay routes
 * the call once the appliance has announced the code (every 2 s); until then the page says
 * "Enrolment failed (HTTP 404). Try again in a moment." and the user taps again, as here.
 */
async function enrolInBrowser(user: string): Promise<{ context: BrowserContext; page: Page; problems: string[] }> {
  const out = await app.cli(["device", "enrol", user]);
  const link = /^(https:\/\/\S+\/app\/#enrol=[A-Za-z0-9_-]{22})$/m.exec(out)![1]!;
  expect(link.startsWith(`${relay.url}/app/#enrol=`)).toBe(true);
  const context = await browser.newContext({ serviceWorkers: "allow", viewport: { width: 390, height: 760 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error" && !/status of 404/.test(m.text())) problems.push(m.text());
    else if (/Content Security Policy|Trusted Type/i.test(m.text())) problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(`uncaught: ${e.message}`));
  await page.goto(link);
  expect(await page.evaluate("window.isSecureContext")).toBe(true);
  await page.waitForSelector("#view-enrol:not([hidden])");
  await page.fill("#device-name", `${user}'s phone`);
  for (let i = 0; i < 40; i++) {
    await page.click("#enrol");
    const done = await page.waitForFunction(
      () => {
        // Runs in the page (a function, not a string: the app's CSP has no 'unsafe-eval').
        const d = (globalThis as unknown as { document: { getElementById(id: string): { hidden?: boolean; disabled?: boolean; textContent: string | null } | null } }).document;
        const main = d.getElementById("view-main");
        if (main && !main.hidden) return "enrolled";
        return /HTTP 404/.test(d.getElementById("status")?.textContent ?? "") && !d.getElementById("enrol")?.disabled ? "retry" : false;
      },
      undefined,
      { timeout: 20_000 },
    );
    if ((await done.jsonValue()) === "enrolled") break;
    await page.waitForTimeout(500);
  }
  await page.waitForSelector("#view-main:not([hidden])", { timeout: 1000 });
  return { context, page, problems };
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: these tests need headless Chromium`);
  if (!radclientPath) throw new Error("radclient not installed: apt-get install freeradius-utils");
  relay = new Relay();
  relay.writeConfig(
    `
[push]
allowed_hosts = ["127.0.0.1"]
`,
    `metrics_listen = "127.0.0.1:0"`,
  );
  await relay.start();
  metricsPort = Number((await relay.proc!.waitForLog((l) => l.event === "switch.metrics_listening", { timeoutMs: 5000 })).port);
  app = new Appliance();
  const caFile = join(app.dataDir, "switch-ca.pem");
  writeFileSync(caFile, relay.cert());
  app.writeConfig(`
region = "SE"
[http]
tls = false
# the approver app's enrolment links point at the relay
public_url = "${relay.url}"
[push]
subject = "mailto:ops@example.test"
allowed_hosts = ["127.0.0.1"]
[app]
requests_per_minute = 0
requests_per_hour = 0
reject_backoff_s = 0
[switch]
urls = ["${relay.url}"]
ca_file = "${caFile}"
`);
  expect(await app.cli(["switch", "join", relay.url, await relay.token("branch-app")])).toContain("joined");
  server = await app.serve();
  await eventually("connected to the relay", () => server.logs.find((l) => l.event === "switch.connected" && l.url === relay.url), { tries: 600, timeoutMs: 40_000 });
  // radclient sends from 127.0.0.1 (the hold-mode client); the challenge-mode legs come from 127.0.0.2.
  secrets.hold = await addLiveClient(app, server, "vpn-hold", "127.0.0.1", ["--approval-hold", "30"]);
  secrets.challenge = await addLiveClient(app, server, "vpn-challenge", "127.0.0.2", ["--approval-mode", "challenge", "--approval-hold", "60", "--approval-number-match", "true"]);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", `--ignore-certificate-errors-spki-list=${spkiHash(relay.cert())}`],
  });
}, 90_000);

afterAll(async () => {
  if (process.env.SWITCH_TEST_DEBUG) for (const l of server?.logs ?? []) if (String(l.event).startsWith("auth") || String(l.event).startsWith("radius")) console.log(JSON.stringify(l));
  await browser?.close();
  await app?.[Symbol.asyncDispose]();
  await relay?.home[Symbol.asyncDispose]();
});

describe("the approver app through the relay (Chromium)", () => {
  test("enrolled from the relay's public_url; a held RADIUS request arrives over the relayed event stream; Approve → Access-Accept", async () => {
    await app.cli(["user", "add", "sa-1", "--password-stdin", "--type", "touch"], { stdin: PASSWORD });
    const { context, page, problems } = await enrolInBrowser("sa-1");
    expect(new URL(page.url()).origin).toBe(relay.url);
    const devices = JSON.parse(await app.cli(["device", "list", "sa-1", "--json"])) as Array<{ name: string }>;
    expect(devices.map((d) => d.name)).toEqual(["sa-1's phone"]);
    // The app's service worker runs from the relay's origin.
    expect(await page.evaluate("navigator.serviceWorker.ready.then((r) => r.active?.scriptURL)")).toBe(`${relay.url}/app/sw.js`);
    // Its event stream is open through the relay.
    await page.waitForSelector("body[data-live=stream]");
    expect(await metric("portcullis_switch_event_streams_open")).toBeGreaterThanOrEqual(1);

    // radclient waits for the held answer (one try, no retransmission).
    const login = radclient(server.port, secrets.hold!, [`User-Name = sa-1`, `User-Password = ${quote(PASSWORD)}`], { timeoutS: 35 });
    const card = await page.waitForSelector("li.request:not([data-state=done])");
    // It came over the stream: the page is still live on it and has not fallen back to polling.
    expect(await page.getAttribute("body", "data-live")).toBe("stream");
    expect(await card.$eval('[data-field="service"]', (e) => e.textContent)).toBe("vpn-hold");
    expect(await card.$eval('[data-field="for"]', (e) => e.textContent)).toBe("sa-1");
    await (await card.$("button[data-decision=approve]"))!.click();
    expect((await login).code).toBe("Access-Accept");
    await page.waitForSelector("li.request[data-state=done]");
    expect(await page.textContent("li.request .result")).toContain("Approved");
    await server.waitForLog((l) => l.event === "approval.app_answered" && l.user === "sa-1" && l.state === "approved");
    expect(problems).toEqual([]);
    await context.close();
  });

  test("challenge mode with number matching: Access-Challenge, the number is picked in the page, the next leg is Access-Accept", async () => {
    await app.cli(["user", "add", "sa-2", "--password-stdin", "--type", "touch"], { stdin: PASSWORD });
    const { context, page, problems } = await enrolInBrowser("sa-2");
    await page.waitForSelector("body[data-live=stream]");
    const first = await challengeLeg("sa-2", PASSWORD);
    expect(first.code).toBe(Code.AccessChallenge);
    const n = /choose (\d+)/.exec(attributeValues(first.attributes, Attr.ReplyMessage).join(""))![1]!;
    const card = await page.waitForSelector("li.request:not([data-state=done])");
    expect(await page.getAttribute("body", "data-live")).toBe("stream");
    const picks = await card.$$eval("button[data-pick]", (bs) => bs.map((b) => b.getAttribute("data-pick")));
    expect(picks).toContain(n);
    await (await card.$(`button[data-pick="${n}"]`))!.click();
    await page.waitForSelector("li.request[data-state=done]");
    expect((await challengeLeg("sa-2", "", first.attributes.find(([t]) => t === Attr.State)![1])).code).toBe(Code.AccessAccept);
    expect(problems).toEqual([]);
    await context.close();
    // The phone left: the relayed stream ends with it.
    await eventually("the relayed streams to end", async () => ((await metric("portcullis_switch_event_streams_open")) === 0 ? true : undefined), { tries: 100, timeoutMs: 20_000, everyMs: 200 });
    expect(await metric("portcullis_switch_event_streams_total")).toBeGreaterThanOrEqual(2);
  });
});
