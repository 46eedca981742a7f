// The approver app in headless Chromium against the real server process: the files under /app/
// (types, CSP, caching), enrolment from the link `device enrol` prints (a non-extractable key in
// IndexedDB, the fragment gone from the address, the device in `device list`), the service worker's
// notification on a push, requests arriving over the event stream and answered by tapping (a held
// RADIUS request, challenge mode with number matching and the code typed at the VPN, a waiting
// Magic Link call), a device removed by the administrator, and signing in to the self-service portal
// with an approval from the app (approved, rejected; a v1 client never sees it; axe-core on the page).
//
// PORTCULLIS_SCREENSHOTS=1 also writes the README's screenshots to docs/img/. http://127.0.0.1 is a secure
// context for Chromium, so WebCrypto and the service worker work without a certificate.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { Appliance, Attr, Code, UDPClient, addLiveClient, attributeValues, buildAccessRequest, eventually, identifier, type RawAttribute, type ServerProcess } from "./helpers/appliance.ts";
import { DeviceClient } from "./helpers/device-client.ts";

const CHROMIUM = "/usr/bin/chromium";

// Each test starts a browser profile, enrols and often waits for a login; on a loaded 2-core machine
// that takes well beyond the suite's default 30 s.
setDefaultTimeout(120_000);

/** A port free right now (the public URL must be known before serve starts). */
function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

let appliance: Appliance;
let server: ServerProcess;
let browser: Browser;
let base: string;
let mlKey: string;
const secrets: Record<string, string> = {};
const PASSWORD = "correct horse battery";
const CALLING_STATION_ID = 31;
const phones: Record<string, string> = {};
let nextPhone = 100;
const SCREENSHOTS = process.env.PORTCULLIS_SCREENSHOTS === "1" ? resolve(import.meta.dir, "../../docs/img") : null;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: these tests need headless Chromium (apt-get install -y chromium)`);
  appliance = new Appliance();
  const port = freePort();
  base = `http://127.0.0.1:${port}`;
  // No limits against fatigue here: each test has users of its own, and the limits have tests of their own.
  appliance.writeConfig(`region = "SE"
[http]
public_url = "${base}"
tls = false
[push]
subject = "mailto:ops@example.com"
allowed_hosts = ["127.0.0.1"]
timeout_ms = 3000
[app]
requests_per_minute = 0
requests_per_hour = 0
reject_backoff_s = 0
[self_service]
enabled = true
`);
  await appliance.cli(["user", "add", "alice"]);
  await appliance.cli(["user", "add", "bob"]);
  server = await appliance.serve({ httpListen: `127.0.0.1:${port}` });
  secrets.hold = await addLiveClient(appliance, server, "vpn-hold", "127.0.0.1", ["--approval-hold", "30"]);
  secrets.challenge = await addLiveClient(appliance, server, "vpn-challenge", "127.0.0.3", ["--approval-mode", "challenge", "--approval-hold", "60", "--approval-number-match", "true"]);
  mlKey = /pcl_[A-Za-z0-9_-]{43}/.exec(await appliance.cli(["apikey", "add", "web"]))![0];
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await appliance?.[Symbol.asyncDispose]();
});

/** `device enrol USER` → the printed link. */
async function enrolmentLink(user: string): Promise<string> {
  const out = await appliance.cli(["device", "enrol", user]);
  const link = /^(http:\/\/\S+\/app\/#enrol=[A-Za-z0-9_-]{22})$/m.exec(out)?.[1];
  if (!link) throw new Error("device enrol printed no link");
  return link;
}

async function devices(user: string): Promise<Array<{ id: string; name: string; push: string | null }>> {
  return JSON.parse(await appliance.cli(["device", "list", user, "--json"]));
}

/** Console lines of each page that report a blocked load or script (CSP, Trusted Types) or an uncaught error. */
const consoleProblems = new Map<Page, string[]>();
function watchConsole(page: Page): void {
  const list: string[] = [];
  consoleProblems.set(page, list);
  page.on("console", (m) => {
    if (m.type() === "error" || /Content Security Policy|Trusted Type/i.test(m.text())) list.push(m.text());
  });
  page.on("pageerror", (e) => list.push(`uncaught: ${e.message}`));
}

/** Opens the link in a fresh browser profile, names the device and taps Enrol; resolves when the list shows. */
async function enrolInBrowser(user: string, name: string, { notifications = false, viewport, screenshot }: { notifications?: boolean; viewport?: { width: number; height: number }; screenshot?: string } = {}): Promise<{ context: BrowserContext; page: Page; link: string }> {
  const context = await browser.newContext({ serviceWorkers: "allow", ...(viewport ? { viewport } : {}) });
  if (notifications) await context.grantPermissions(["notifications"], { origin: base });
  const page = await context.newPage();
  watchConsole(page);
  const link = await enrolmentLink(user);
  await page.goto(link);
  await page.waitForSelector("#view-enrol:not([hidden])");
  await page.fill("#device-name", name);
  if (SCREENSHOTS && screenshot) {
    mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: join(SCREENSHOTS, screenshot), fullPage: true });
  }
  await page.click("#enrol");
  await page.waitForSelector("#view-main:not([hidden])");
  return { context, page, link };
}

/** The width and height a PNG's IHDR states. */
function pngSize(bytes: Uint8Array): [number, number] {
  expect([...bytes.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const v = new DataView(bytes.buffer, bytes.byteOffset);
  return [v.getUint32(16), v.getUint32(20)];
}

describe("the app's files", () => {
  test("page, scripts, stylesheet, manifest, worker and icons: types, CSP, ETag revalidation", async () => {
    const files: Array<[string, RegExp]> = [
      ["/app/", /^text\/html; charset=utf-8$/],
      ["/app/app.js", /^text\/javascript; charset=utf-8$/],
      ["/app/lib.js", /^text\/javascript; charset=utf-8$/],
      ["/app/sw.js", /^text\/javascript; charset=utf-8$/],
      ["/app/app.css", /^text\/css; charset=utf-8$/],
      ["/app/manifest.webmanifest", /^application\/manifest\+json$/],
      ["/app/icons/icon-192.png", /^image\/png$/],
    ];
    for (const [path, type] of files) {
      const r = await fetch(base + path);
      expect(`${path} ${r.status}`).toBe(`${path} 200`);
      expect(r.headers.get("content-type")).toMatch(type);
      expect(r.headers.get("x-content-type-options")).toBe("nosniff");
      expect(r.headers.get("cache-control")).toBe("no-cache");
      const csp = r.headers.get("content-security-policy") ?? "";
      expect(csp).toStartWith("default-src 'none'; script-src 'self';");
      expect(csp).toContain("connect-src 'self'");
      expect(csp).not.toContain("unsafe");
      const etag = r.headers.get("etag")!;
      expect(etag).toMatch(/^"[A-Za-z0-9_-]{22}"$/);
      await r.arrayBuffer();
      const again = await fetch(base + path, { headers: { "If-None-Match": etag } });
      expect(again.status).toBe(304);
    }
    // The page: no inline script or style, every script from /app/.
    const html = await (await fetch(`${base}/app/`)).text();
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.map((m) => /src="([^"]+)"/.exec(m[1]!)?.[1])).toEqual(["/app/lib.js", "/app/app.js"]);
    expect(scripts.every((m) => m[2] === "")).toBe(true);
    expect(html).not.toMatch(/<style|style="|\son[a-z]+=/);
    expect(html).toContain("iOS 16.4");
    // /app without the slash goes to /app/; the API's answers keep the listener's own policy.
    const bare = await fetch(`${base}/app`, { redirect: "manual" });
    expect(bare.status).toBe(301);
    expect(bare.headers.get("location")).toBe("/app/");
    const api = await fetch(`${base}/app/api/v1/requests`);
    expect(api.headers.get("content-security-policy")).toStartWith("default-src 'self'");
    expect((await fetch(`${base}/app/icons/nope.png`)).status).toBe(404);
  });

  test("manifest: standalone, scope /app/, 192 and 512 PNG icons in both purposes, each of its stated size", async () => {
    const m = (await (await fetch(`${base}/app/manifest.webmanifest`)).json()) as { display: string; scope: string; start_url: string; name: string; icons: Array<{ src: string; sizes: string; type: string; purpose: string }> };
    expect(m).toMatchObject({ display: "standalone", scope: "/app/", start_url: "/app/", name: "Portcullis approvals" });
    const has = (size: number, purpose: string) => m.icons.some((i) => i.sizes === `${size}x${size}` && i.purpose === purpose && i.type === "image/png");
    for (const size of [192, 512]) for (const purpose of ["any", "maskable"]) expect(`${size} ${purpose} ${has(size, purpose)}`).toBe(`${size} ${purpose} true`);
    for (const icon of [...m.icons, { src: "/app/icons/apple-touch-icon.png", sizes: "180x180" }]) {
      const bytes = new Uint8Array(await (await fetch(base + icon.src)).arrayBuffer());
      const [w, h] = pngSize(bytes);
      expect(`${w}x${h}`).toBe(icon.sizes);
    }
  });
});

describe("enrolment in Chromium", () => {
  test("from the link: the device is listed, the fragment is gone, the key is non-extractable, the worker controls /app/", async () => {
    const { context, page } = await enrolInBrowser("alice", "Alice's laptop", { viewport: { width: 390, height: 760 }, screenshot: "app-enrol.png" });
    expect(new URL(page.url()).hash).toBe("");
    expect(new URL(page.url()).pathname).toBe("/app/");
    expect(await page.textContent("#device-label")).toBe("Alice's laptop");
    const listed = await devices("alice");
    expect(listed).toEqual([expect.objectContaining({ name: "Alice's laptop", push: null })]);

    // Browser code as text: the tests are type-checked without the DOM library.
    const key = await page.evaluate(`(async () => {
      const device = await PortcullisLib.getDevice();
      if (!device) return null;
      let exported = "exported";
      try {
        await crypto.subtle.exportKey("jwk", device.privateKey);
      } catch (e) {
        exported = e.name;
      }
      const k = device.privateKey;
      return { id: device.id, type: k.type, extractable: k.extractable, algorithm: k.algorithm, usages: k.usages, exported };
    })()`);
    expect(key).toEqual({ id: listed[0]!.id, type: "private", extractable: false, algorithm: { name: "ECDSA", namedCurve: "P-256" }, usages: ["sign"], exported: "InvalidAccessError" });

    // The service worker registers (scope /app/) and, after a reload, controls the page.
    const scope = await page.evaluate("navigator.serviceWorker.ready.then((r) => r.scope)");
    expect(scope).toBe(`${base}/app/`);
    await page.reload();
    await page.waitForSelector("#view-main:not([hidden])");
    expect(await page.evaluate("navigator.serviceWorker.controller?.scriptURL")).toBe(`${base}/app/sw.js`);
    // Chromium reads the manifest without errors, finds the app installable, and decodes the icon.
    const cdp = await context.newCDPSession(page);
    const manifest = (await cdp.send("Page.getAppManifest")) as { url: string; errors: unknown[] };
    expect(manifest.url).toBe(`${base}/app/manifest.webmanifest`);
    expect(manifest.errors).toEqual([]);
    const installable = (await cdp.send("Page.getInstallabilityErrors")) as { installabilityErrors: Array<{ errorId: string }> };
    // Playwright's contexts are incognito profiles, where Chromium installs nothing: the one error left.
    expect(installable.installabilityErrors.map((e) => e.errorId)).toEqual(["in-incognito"]);
    expect(await page.evaluate("document.querySelector('header img').naturalWidth")).toBe(192);
    expect(consoleProblems.get(page)).toEqual([]);
    await context.close();
  });

  test("a used link is refused with a clear message; no device is made", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const link = await enrolmentLink("bob");
    const code = new URL(link).hash.slice("#enrol=".length);
    const used = await fetch(`${base}/app/api/v1/devices`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ enrolment: code, name: "x", public_key: await publicJwk() }),
    });
    expect(used.status).toBe(201);
    const before = (await devices("bob")).length;
    await page.goto(link);
    await page.waitForSelector("#view-enrol:not([hidden])");
    await page.click("#enrol");
    await eventually("the refusal", async () => ((await page.textContent("#status")) ?? "").includes("no longer valid") || undefined);
    expect(await page.isVisible("#enrol-code")).toBe(true);
    expect((await devices("bob")).length).toBe(before);
    await context.close();
  });

  test("without a link: the page asks for one; a pasted link enrols", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${base}/app/`);
    await page.waitForSelector("#view-enrol:not([hidden])");
    expect(await page.isVisible("#no-code")).toBe(true);
    await page.fill("#enrol-code", await enrolmentLink("bob"));
    await page.fill("#device-name", "Bob's tablet");
    await page.click("#enrol");
    await page.waitForSelector("#view-main:not([hidden])");
    expect((await devices("bob")).map((d) => d.name)).toContain("Bob's tablet");
    await context.close();
  });

  test("a push shows a notification, whatever the page is doing", async () => {
    const { context, page } = await enrolInBrowser("alice", "Alice's phone", { notifications: true });
    const registration = await page.evaluate("navigator.serviceWorker.ready.then((r) => r.active?.scriptURL)");
    expect(registration).toBe(`${base}/app/sw.js`);
    const cdp = await context.newCDPSession(page);
    const regs: Array<{ registrationId: string; scopeURL: string }> = [];
    cdp.on("ServiceWorker.workerRegistrationUpdated", (e: { registrations: Array<{ registrationId: string; scopeURL: string }> }) => regs.push(...e.registrations));
    await cdp.send("ServiceWorker.enable");
    const reg = await eventually("the worker's registration over CDP", () => regs.find((r) => r.scopeURL === `${base}/app/`));
    const deliver = () => cdp.send("ServiceWorker.deliverPushMessage", { origin: base, registrationId: reg.registrationId, data: JSON.stringify({ v: 1, id: "abc" }) });
    await deliver();
    // A loaded machine may start the worker slowly: the push is delivered again every 20 probes
    // (the same tag replaces the notification, so one shows however often it arrives).
    let probes = 0;
    const shown = await eventually(
      "a notification",
      async () => {
        if (++probes % 20 === 0) await deliver();
        const list = await page.evaluate<Array<{ title: string; body: string; tag: string }>>("navigator.serviceWorker.ready.then((r) => r.getNotifications()).then((l) => l.map((n) => ({ title: n.title, body: n.body, tag: n.tag })))");
        return list.length > 0 ? list : undefined;
      },
      { tries: 300, timeoutMs: 60_000, everyMs: 100 },
    );
    expect(shown).toEqual([{ title: "Sign-in request", body: expect.stringContaining("Open Portcullis"), tag: "request-abc" }]);
    await context.close();
  });
  test("a removed device is told so, and can forget its key", async () => {
    const { context, page } = await enrolInBrowser("bob", "Bob's old phone");
    const id = (await devices("bob")).find((d) => d.name === "Bob's old phone")!.id;
    await appliance.cli(["device", "remove", id]);
    await page.reload();
    await page.waitForSelector("#view-removed:not([hidden])");
    expect(await page.textContent("#removed-title")).toBe("This device was removed");
    await page.click("#forget");
    await page.waitForSelector("#view-enrol:not([hidden])");
    expect(await page.evaluate("PortcullisLib.getDevice()")).toBeNull();
    await context.close();
  });
});

/** A touch user with a phone number (for Magic Link) and a password (for RADIUS). */
async function touchUser(name: string): Promise<void> {
  phones[name] = `+4670125${String(nextPhone++).padStart(4, "0")}`;
  await appliance.cli(["user", "add", name, "--password-stdin", "--type", "touch", "--phone", phones[name]!], { stdin: PASSWORD });
}

/** Enrols `name` in a fresh profile (a phone-sized window) and waits until the event stream is open. */
async function appFor(name: string): Promise<{ context: BrowserContext; page: Page }> {
  await touchUser(name);
  const r = await enrolInBrowser(name, `${name}'s phone`, { viewport: { width: 390, height: 760 } });
  await r.page.waitForSelector("body[data-live=stream]");
  return r;
}

/** Sends one Access-Request from `address`; resolves with its reply (a held one when the answer comes). */
async function radius(client: string, address: string, name: string, password: string, { state, station }: { state?: Uint8Array; station?: string } = {}) {
  const enc = new TextEncoder();
  const attributes: RawAttribute[] = [
    [Attr.UserName, enc.encode(name)],
    [Attr.UserPassword, enc.encode(password)],
  ];
  if (state) attributes.push([Attr.State, state]);
  if (station) attributes.push([CALLING_STATION_ID, enc.encode(station)]);
  const udp = await UDPClient.open(address);
  try {
    return await udp.exchange(buildAccessRequest({ identifier: identifier(), secret: secrets[client]!, attributes }), server.port, secrets[client]!, { timeoutMs: 40_000 });
  } finally {
    udp[Symbol.dispose]();
  }
}

const replyMessage = (r: { attributes: RawAttribute[] }) => attributeValues(r.attributes, Attr.ReplyMessage).join("");
const stateOf = (r: { attributes: RawAttribute[] }) => r.attributes.find(([t]) => t === Attr.State)![1];

/** The card of the one request waiting on the page. */
async function pendingCard(page: Page) {
  return page.waitForSelector("li.request:not([data-state=done])");
}

const field = (card: Awaited<ReturnType<typeof pendingCard>>, name: string) => card.$eval(`[data-field="${name}"]`, (e) => e.textContent);

describe("requests in the app (Chromium)", () => {
  test("a held RADIUS request arrives over the event stream with service, source and user; Approve → Access-Accept", async () => {
    const { context, page } = await appFor("carl");
    expect(await page.isVisible("#empty")).toBe(true);
    const login = radius("hold", "127.0.0.1", "carl", PASSWORD, { station: "203.0.113.7" });
    const card = await pendingCard(page);
    // It came over the stream: the page was live on the stream and has not polled.
    expect(await page.getAttribute("body", "data-live")).toBe("stream");
    expect(await card.getAttribute("data-kind")).toBe("radius");
    expect(await field(card, "service")).toBe("vpn-hold");
    expect(await field(card, "from")).toBe("203.0.113.7");
    expect(await field(card, "for")).toBe("carl");
    expect(await field(card, "expires")).toMatch(/^0:[0-3]\d$/);
    expect(await page.isVisible("#empty")).toBe(false);
    expect(await card.$$("button[data-decision=approve]")).toHaveLength(1);
    if (SCREENSHOTS) {
      mkdirSync(SCREENSHOTS, { recursive: true });
      await page.screenshot({ path: join(SCREENSHOTS, "app-request.png"), fullPage: true });
    }
    await (await card.$("button[data-decision=approve]"))!.click();
    expect((await login).code).toBe(Code.AccessAccept);
    await page.waitForSelector("li.request[data-state=done]");
    expect(await page.textContent("li.request .result")).toContain("Approved");
    expect(await page.textContent("#status")).toContain("Approved");
    await server.waitForLog((l) => l.event === "approval.app_answered" && l.user === "carl" && l.state === "approved");
    // The CSP allowed everything the app did: nothing was blocked, nothing threw.
    expect(consoleProblems.get(page)).toEqual([]);
    await context.close();
  });

  test("Reject → Access-Reject", async () => {
    const { context, page } = await appFor("dora");
    const login = radius("hold", "127.0.0.1", "dora", PASSWORD);
    const card = await pendingCard(page);
    await (await card.$("button[data-decision=reject]"))!.click();
    expect((await login).code).toBe(Code.AccessReject);
    // The login may end before the page has read the answer's response.
    await page.waitForSelector("li.request[data-state=done]");
    expect(await page.textContent("li.request .result")).toContain("Rejected");
    await server.waitForLog((l) => l.event === "approval.app_answered" && l.user === "dora" && l.state === "rejected");
    await context.close();
  });

  test('"This wasn\'t me" asks once more, then rejects and is audited as approval.reported', async () => {
    const { context, page } = await appFor("emil");
    const login = radius("hold", "127.0.0.1", "emil", PASSWORD, { station: "198.51.100.9" });
    const card = await pendingCard(page);
    await (await card.$("button[data-decision=ask-report]"))!.click();
    // Cancel keeps the request; asking again and confirming reports it.
    await (await card.$("button.secondary:text('Cancel')"))!.click();
    expect(await (await card.$("button[data-decision=report]"))!.isVisible()).toBe(false);
    await (await card.$("button[data-decision=ask-report]"))!.click();
    await (await card.$("button[data-decision=report]"))!.click();
    expect((await login).code).toBe(Code.AccessReject);
    await page.waitForSelector("li.request[data-state=done]");
    expect(await page.textContent("li.request .result")).toContain("Reported");
    const reported = await server.waitForLog((l) => l.event === "approval.reported" && l.user === "emil");
    expect(reported).toMatchObject({ source: "198.51.100.9", client: "vpn-hold" });
    await context.close();
  });

  test("challenge mode: the three numbers include the prompt's; picking it approves the next leg; the code shown is accepted at the VPN", async () => {
    const { context, page } = await appFor("fay");
    const first = await radius("challenge", "127.0.0.3", "fay", PASSWORD);
    expect(first.code).toBe(Code.AccessChallenge);
    const n = /choose (\d+)/.exec(replyMessage(first))![1]!;
    let card = await pendingCard(page);
    const picks = await card.$$eval("button[data-pick]", (bs) => bs.map((b) => b.getAttribute("data-pick")));
    expect(picks).toHaveLength(3);
    expect(picks).toContain(n);
    // No plain Approve beside the numbers.
    expect(await card.$$("button.approve")).toHaveLength(0);
    expect(await field(card, "code")).toMatch(/^\d{6}$/);
    if (SCREENSHOTS) await page.screenshot({ path: join(SCREENSHOTS, "app-number-match.png"), fullPage: true });
    await (await card.$(`button[data-pick="${n}"]`))!.click();
    await page.waitForSelector("li.request[data-state=done]");
    expect((await radius("challenge", "127.0.0.3", "fay", "", { state: stateOf(first) })).code).toBe(Code.AccessAccept);

    // The code shown in the app, typed at the VPN instead of a tap: accepted, and the card says the request ended.
    await page.evaluate("document.querySelectorAll('li.request').forEach((e) => e.remove())");
    const second = await radius("challenge", "127.0.0.3", "fay", PASSWORD);
    card = await pendingCard(page);
    const code = (await field(card, "code"))!;
    expect((await radius("challenge", "127.0.0.3", "fay", code, { state: stateOf(second) })).code).toBe(Code.AccessAccept);
    await page.waitForSelector("li.request[data-state=done]");
    expect(await page.textContent("li.request[data-state=done] .result")).toContain("ended");
    await context.close();
  });

  test("a wrong number rejects: the next leg is Access-Reject and the app says why", async () => {
    const { context, page } = await appFor("gus");
    const first = await radius("challenge", "127.0.0.3", "gus", PASSWORD);
    const n = /choose (\d+)/.exec(replyMessage(first))![1]!;
    const card = await pendingCard(page);
    const wrong = (await card.$$eval("button[data-pick]", (bs) => bs.map((b) => b.getAttribute("data-pick")))).find((p) => p !== n)!;
    await (await card.$(`button[data-pick="${wrong}"]`))!.click();
    await page.waitForSelector("li.request[data-state=done]");
    expect(await page.textContent("li.request .result")).toContain("not the number");
    expect((await radius("challenge", "127.0.0.3", "gus", "", { state: stateOf(first) })).code).toBe(Code.AccessReject);
    await context.close();
  });

  test("without the event stream the app polls the list: a request still shows up and can be approved; offline is shown", async () => {
    await touchUser("ivan");
    const context = await browser.newContext({ serviceWorkers: "block" });
    // A proxy that cannot pass server-sent events, as seen from the page: the stream fails at once.
    await context.route("**/app/api/v2/events", (route) => route.abort("connectionreset"));
    const page = await context.newPage();
    await page.goto(await enrolmentLink("ivan"));
    await page.fill("#device-name", "ivan's phone");
    await page.click("#enrol");
    await page.waitForSelector("body[data-live=poll]");
    const login = radius("hold", "127.0.0.1", "ivan", PASSWORD);
    const card = await pendingCard(page);
    expect(await page.getAttribute("body", "data-live")).toBe("poll");
    await (await card.$("button[data-decision=approve]"))!.click();
    expect((await login).code).toBe(Code.AccessAccept);

    await context.setOffline(true);
    await page.waitForSelector("#offline:not([hidden])");
    await context.setOffline(false);
    await page.waitForSelector("#offline", { state: "hidden" });
    await context.close();
  });

  test("a phone whose clock is 10 minutes fast still signs within the window and shows the time left", async () => {
    await touchUser("jack");
    const context = await browser.newContext();
    // The page's clock only (Date); timers run as usual.
    await context.clock.setSystemTime(Date.now() + 10 * 60_000);
    const page = await context.newPage();
    watchConsole(page);
    await page.goto(await enrolmentLink("jack"));
    await page.fill("#device-name", "jack's phone");
    await page.click("#enrol");
    await page.waitForSelector("body[data-live=stream]");
    const login = radius("hold", "127.0.0.1", "jack", PASSWORD);
    const card = await pendingCard(page);
    expect(await field(card, "expires")).toMatch(/^0:[0-3]\d$/);
    await (await card.$("button[data-decision=approve]"))!.click();
    expect((await login).code).toBe(Code.AccessAccept);
    await context.close();
  });

  test("a waiting Magic Link call ends TOUCH_ACCEPTED when the app approves, TOUCH_REJECTED when it rejects", async () => {
    const { context, page } = await appFor("hana");
    const call = () => fetch(`${base}/api/sfwa/auth?msisdn=${encodeURIComponent(phones.hana!)}`, { headers: { "api-key": mlKey } }).then((r) => r.text());
    const accepted = call();
    let card = await pendingCard(page);
    expect(await card.getAttribute("data-kind")).toBe("magic-link");
    expect(await card.$eval("h3", (e) => e.textContent)).toContain("Web sign-in");
    await (await card.$("button[data-decision=approve]"))!.click();
    expect(await accepted).toBe('{"code":"TOUCH_ACCEPTED"}');
    await page.evaluate("document.querySelectorAll('li.request').forEach((e) => e.remove())");
    const rejected = call();
    card = await pendingCard(page);
    await (await card.$("button[data-decision=reject]"))!.click();
    expect(await rejected).toBe('{"code":"TOUCH_REJECTED"}');
    await context.close();
  });
});

/** A fresh P-256 public JWK (for enrolling through the API). */
async function publicJwk(): Promise<Record<string, string>> {
  const keys = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"])) as CryptoKeyPair;
  const { kty, crv, x, y } = (await crypto.subtle.exportKey("jwk", keys.publicKey)) as Record<string, string>;
  return { kty: kty!, crv: crv!, x: x!, y: y! };
}

const AXE = readFileSync(resolve(import.meta.dir, "../../node_modules/axe-core/axe.min.js"), "utf8");
/** The one text of a failed self-service sign-in (src/selfservice/routes.tsx SIGN_IN_FAILED). */
const SIGN_IN_FAILED = "Sign-in failed. Check your user name, password and code, and try again.";

/** axe-core on the page: no violation of impact serious or critical. */
async function expectAccessible(page: Page, what: string): Promise<void> {
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    const r = await (globalThis as unknown as { axe: { run(): Promise<{ violations: Array<{ id: string; impact: string | null; nodes: unknown[] }> }> } }).axe.run();
    return r.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id} (${v.impact}, ${v.nodes.length} nodes)`);
  });
  expect({ what, violations }).toEqual({ what, violations: [] });
}

/**
 * The self-service portal in a second browser (the user's computer; CSP bypassed only so that axe-core
 * can be injected), signed in with the password and an empty code: resolves on the waiting page, with
 * the document URLs the tab loaded so far (a reload loop would add more).
 */
async function portalSignIn(name: string): Promise<{ context: BrowserContext; page: Page; documents: string[]; polls: () => number; missing: string[] }> {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, bypassCSP: true });
  const page = await context.newPage();
  watchConsole(page);
  const documents: string[] = [];
  let polls = 0;
  const missing: string[] = [];
  page.on("response", (r) => {
    if (r.status() === 404) missing.push(new URL(r.url()).pathname);
  });
  page.on("request", (r) => {
    if (r.resourceType() === "document") documents.push(`${r.method()} ${new URL(r.url()).pathname}`);
    else if (new URL(r.url()).pathname === "/self-service/sign-in/status") polls++;
  });
  await page.goto(`${base}/self-service`);
  await page.fill("#username", name);
  await page.fill("#password", PASSWORD);
  await page.click("#sign-in");
  await page.waitForSelector("#waiting");
  return { context, page, documents, polls: () => polls, missing };
}

describe("self-service sign-in with the app (Chromium)", () => {
  test("the portal waits without reloading; the app shows a self-service sign-in; picking the number signs in", async () => {
    const app = await appFor("sven");
    const portal = await portalSignIn("sven");
    await expectAccessible(portal.page, "self-service waiting page");
    const number = Number(await portal.page.textContent("#match"));
    if (SCREENSHOTS) await portal.page.screenshot({ path: join(SCREENSHOTS, "self-service-app-wait.png"), fullPage: true });
    const card = await pendingCard(app.page);
    expect(await card.getAttribute("data-kind")).toBe("self-service");
    expect(await card.$eval("h3", (e) => e.textContent)).toBe("Self-service sign-in");
    expect(await field(card, "service")).toBe("self-service");
    expect(await field(card, "from")).toBe("127.0.0.1");
    expect(await field(card, "for")).toBe("sven");
    const picks = await card.$$eval("button[data-decision=approve]", (bs) => bs.map((b) => Number(b.getAttribute("data-pick"))));
    expect(picks).toHaveLength(3);
    expect(picks).toContain(number);
    if (SCREENSHOTS) await app.page.screenshot({ path: join(SCREENSHOTS, "app-self-service.png"), fullPage: true });
    // The page has polled (read only) and not reloaded.
    await eventually("the waiting page to poll", () => (portal.polls() > 0 ? true : undefined), { tries: 100, timeoutMs: 30_000, everyMs: 200 });
    await (await card.$(`button[data-pick="${number}"]`))!.click();
    // The page moves on by itself: its script submits Continue once the app answered.
    await portal.page.waitForSelector("#who", { timeout: 60_000 });
    expect(await portal.page.textContent("#who")).toBe("sven");
    expect(portal.documents).toEqual(["GET /self-service", "POST /self-service/sign-in", "GET /self-service", "POST /self-service/sign-in/continue", "GET /self-service"]);
    expect((await portal.context.cookies()).some((c) => c.name === "portcullis-ss-wait")).toBe(false);
    await server.waitForLog((l) => l.event === "selfservice.signed_in" && l.user === "sven" && l.method === "app");
    await server.waitForLog((l) => l.event === "auth.success" && l.channel === "self-service" && l.user === "sven");
    // Nothing the page asked for was missing, blocked or threw. (Chromium's own request for
    // /favicon.ico, which the portal does not serve, is logged as a 404 but is not a page request.)
    expect(portal.missing).toEqual([]);
    expect(consoleProblems.get(portal.page)!.filter((m) => !/^Failed to load resource: the server responded with a status of 404/.test(m))).toEqual([]);
    expect(consoleProblems.get(app.page)).toEqual([]);
    await portal.context.close();
    await app.context.close();
  });

  test("Reject in the app: the portal shows the one generic text, and no session starts", async () => {
    const app = await appFor("sara");
    const portal = await portalSignIn("sara");
    const card = await pendingCard(app.page);
    expect(await card.getAttribute("data-kind")).toBe("self-service");
    await (await card.$("button[data-decision=reject]"))!.click();
    await portal.page.waitForSelector("#error", { timeout: 60_000 });
    expect(await portal.page.textContent("#error")).toBe(SIGN_IN_FAILED);
    expect((await portal.context.cookies()).map((c) => c.name)).not.toContain("portcullis-ss");
    await expectAccessible(portal.page, "sign-in page after a rejection");
    await server.waitForLog((l) => l.event === "auth.failure" && l.channel === "self-service" && l.user === "sara" && l.reason === "approval_rejected");
    await portal.context.close();
    await app.context.close();
  });

  test("a v1 client never sees it (list, stream, answer); the same device over v2 does and approves it", async () => {
    await touchUser("vera");
    const code = /#enrol=([A-Za-z0-9_-]{22})/.exec(await enrolmentLink("vera"))![1]!;
    const device = await DeviceClient.create();
    const enrolled = await fetch(`${base}/app/api/v1/devices`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ enrolment: code, public_key: device.publicJwk, name: "scripted" }) });
    expect(enrolled.status).toBe(201);
    device.id = ((await enrolled.json()) as { device: string }).device;
    const list = async (v: 1 | 2) => ((await (await fetch(await device.request(base, "GET", `/app/api/v${v}/requests`))).json()) as { requests: Array<{ id: string; kind: string }> }).requests;
    const stream = async (v: 1 | 2) => (await fetch(await device.request(base, "GET", `/app/api/v${v}/events`))).body!.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    const v1 = await stream(1);
    const v2 = await stream(2);
    const dec = new TextDecoder();
    /** Reads a stream until `until` holds for what arrived (bounded in reads). */
    const read = async (r: ReadableStreamDefaultReader<Uint8Array>, until: (text: string) => boolean) => {
      let text = "";
      for (let i = 0; i < 200 && !until(text); i++) {
        const { value, done } = await r.read();
        if (done) break;
        text += dec.decode(value);
      }
      return text;
    };

    const portal = await portalSignIn("vera");
    const ss = await eventually("the self-service request over v2", async () => (await list(2)).find((r) => r.kind === "self-service"));
    expect(await list(1)).toEqual([]);
    const seen2 = await read(v2, (t) => t.includes(ss.id));
    expect(seen2).toContain('"kind":"self-service"');
    // A RADIUS request after it reaches both streams; v1's shows it and never the self-service one.
    const login = radius("hold", "127.0.0.1", "vera", PASSWORD);
    const held = await eventually("the RADIUS request over v1", async () => (await list(1))[0]);
    const seen1 = await read(v1, (t) => t.includes(held.id));
    expect(seen1).not.toContain(ss.id);
    expect(seen1).not.toContain("self-service");
    // v1 cannot answer it: unknown, as a request that does not exist.
    const v1Answer = await fetch(await device.request(base, "POST", `/app/api/v1/requests/${ss.id}`, { decision: "approve" }));
    expect(v1Answer.status).toBe(404);
    expect(await v1Answer.json()).toMatchObject({ reason: "unknown_request" });
    expect(await portal.page.isVisible("#waiting")).toBe(true);
    // v2 answers it; the portal signs in.
    const choices = ((await list(2)).find((r) => r.id === ss.id) as unknown as { choices: number[] }).choices;
    const number = Number(await portal.page.textContent("#match"));
    expect(choices).toContain(number);
    expect((await fetch(await device.request(base, "POST", `/app/api/v2/requests/${ss.id}`, { decision: "approve", pick: number }))).status).toBe(200);
    await portal.page.waitForSelector("#who", { timeout: 60_000 });
    // Its end is `gone` on v2 only.
    expect(await read(v2, (t) => t.includes(`"id":"${ss.id}"}`) && t.includes("event: gone"))).toContain("event: gone");
    expect((await fetch(await device.request(base, "POST", `/app/api/v1/requests/${held.id}`, { decision: "approve" }))).status).toBe(200);
    expect((await login).code).toBe(Code.AccessAccept);
    expect(await read(v1, (t) => t.includes(`{"id":"${held.id}"}`))).not.toContain(ss.id);
    await v1.cancel();
    await v2.cancel();
    await portal.context.close();
  });
});
