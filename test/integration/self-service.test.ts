// The self-service portal in headless Chromium against the real server process: sign-in with the
// password and a computed TOTP code, the same text for a wrong code and an unknown user, an
// administrator's link (`user enrol-link`) used once, TOTP enrolment by decoding the QR code the page
// shows and confirming a computed code (after which radclient logs in with that token), removing a
// token and being refused the last one, and axe-core on every page (no serious or critical
// violation). Off by default is tested through app.request() (test/unit/selfservice).
//
// PORTCULLIS_SCREENSHOTS=1 also writes phone-width screenshots to docs/img/.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import jsQR from "jsqr";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { decodeBase32, encodeBase32, generateTOTP } from "../../src/otp/index.ts";
import { Appliance, addLiveClient, type ServerProcess } from "./helpers/appliance.ts";
import { quote, radclient, runRadclientTests } from "./helpers/radclient.ts";

const CHROMIUM = "/usr/bin/chromium";
const PHONE = { width: 390, height: 844 };
const PASSWORD = "correct horse battery";
const SCREENSHOTS = process.env.PORTCULLIS_SCREENSHOTS === "1" ? resolve(import.meta.dir, "../../docs/img") : null;
const AXE = readFileSync(resolve(import.meta.dir, "../../node_modules/axe-core/axe.min.js"), "utf8");
/** The one text of a failed sign-in (src/selfservice/routes.tsx SIGN_IN_FAILED). */
const FAILED = "Sign-in failed. Check your user name, password and code, and try again.";

setDefaultTimeout(120_000);

/** pngjs (qrcode's dependency) has no type declarations here: the one call used. */
type PNGReader = { PNG: { sync: { read(b: Buffer): { width: number; height: number; data: Buffer } } } };

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
let vpnSecret: string;
const seeds: Record<string, Uint8Array> = {};

const code = (seed: Uint8Array, now = Date.now()) => generateTOTP({ secret: seed, algorithm: "SHA1", digits: 6, period: 30 }, { now });

async function addUser(name: string, tokens: number): Promise<void> {
  await appliance.cli(["user", "add", name, "--password-stdin"], { stdin: PASSWORD });
  for (let i = 0; i < tokens; i++) {
    const seed = new Uint8Array(20).map((_, j) => (j * 7 + name.length * 13 + i * 31) & 0xff);
    if (i === 0) seeds[name] = seed;
    await appliance.cli(["token", "add", name, "--totp", "--secret", encodeBase32(seed)]);
  }
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: these tests need headless Chromium (apt-get install -y chromium)`);
  appliance = new Appliance();
  const port = freePort();
  base = `http://127.0.0.1:${port}`;
  appliance.writeConfig(`[http]
public_url = "${base}"
tls = false
[self_service]
enabled = true
`);
  await addUser("alice", 1);
  await addUser("bob", 0);
  await addUser("carol", 2);
  await addUser("dave", 0);
  server = await appliance.serve({ httpListen: `127.0.0.1:${port}` });
  vpnSecret = await addLiveClient(appliance, server, "vpn", "127.0.0.1", ["--otp-mode", "concat"]);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await appliance?.[Symbol.asyncDispose]();
});

/** A fresh browser profile at phone width; CSP is bypassed only so that axe-core can be injected. */
async function phone(): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: PHONE, bypassCSP: true });
  return { context, page: await context.newPage() };
}

/** axe-core on the page: no violation of impact serious or critical. */
async function expectAccessible(page: Page, what: string): Promise<void> {
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    const r = await (globalThis as unknown as { axe: { run(): Promise<{ violations: Array<{ id: string; impact: string | null; nodes: unknown[] }> }> } }).axe.run();
    return r.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id} (${v.impact}, ${v.nodes.length} nodes)`);
  });
  expect({ what, violations }).toEqual({ what, violations: [] });
}

async function screenshot(page: Page, name: string): Promise<void> {
  if (!SCREENSHOTS) return;
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, name), fullPage: true });
}

async function signIn(page: Page, user: string, password: string, typed: string): Promise<void> {
  await page.goto(`${base}/self-service`);
  await page.fill("#username", user);
  await page.fill("#password", password);
  await page.fill("#code", typed);
  await page.click("#sign-in");
  await page.waitForLoadState();
}

/** `user enrol-link USER` → the printed link. */
async function enrolLink(user: string): Promise<string> {
  const out = await appliance.cli(["user", "enrol-link", user]);
  const link = /^(http:\/\/\S+\/self-service\/link\/[A-Za-z0-9_-]{22})$/m.exec(out)?.[1];
  if (!link) throw new Error("user enrol-link printed no link");
  return link;
}

describe("sign-in", () => {
  test("password and a computed TOTP code open the overview; sign-out ends it", async () => {
    const { context, page } = await phone();
    await page.goto(`${base}/self-service`);
    await expectAccessible(page, "sign-in page");
    await screenshot(page, "self-service-sign-in.png");
    await signIn(page, "alice", PASSWORD, code(seeds.alice!));
    expect(await page.textContent("#who")).toBe("alice");
    expect(await page.locator("#tokens li").count()).toBe(1);
    await expectAccessible(page, "overview");
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === "portcullis-ss")!;
    expect(session.httpOnly).toBe(true);
    expect(session.sameSite).toBe("Strict");
    await page.click("#sign-out");
    await page.waitForSelector("#sign-in");
    await context.close();
  });

  test("a wrong code and an unknown user show the same text", async () => {
    const { context, page } = await phone();
    await signIn(page, "alice", PASSWORD, "000000");
    const wrongCode = await page.textContent("#error");
    await expectAccessible(page, "failed sign-in");
    await screenshot(page, "self-service-failed.png");
    await signIn(page, "nobody-here", PASSWORD, code(seeds.alice!));
    expect(await page.textContent("#error")).toBe(wrongCode!);
    expect(wrongCode).toBe(FAILED);
    await context.close();
  });
});

describe("enrolment link and TOTP enrolment", () => {
  test("the link signs in once; a TOTP app enrolled from the QR code works for RADIUS", async () => {
    const link = await enrolLink("bob");
    const { context, page } = await phone();
    await page.goto(link);
    await expectAccessible(page, "link page");
    await page.click("#continue");
    await page.waitForSelector("#who");
    expect(await page.textContent("#no-tokens")).toBe("None yet.");
    await screenshot(page, "self-service-home-empty.png");

    // A second use, in another browser, is refused.
    const other = await phone();
    await other.page.goto(link);
    await other.page.click("#continue");
    await other.page.waitForSelector("#problem");
    expect(await other.page.textContent("#problem")).toContain("cannot be used");
    await expectAccessible(other.page, "refused link");
    await other.context.close();

    await page.click("#add-totp");
    await page.waitForSelector("#qr svg");
    await expectAccessible(page, "TOTP enrolment");
    await screenshot(page, "self-service-totp.png");
    // Decode the QR code as the page shows it.
    const { PNG } = (await import("pngjs" as string)) as PNGReader;
    const png = PNG.sync.read(await page.locator("#qr").screenshot());
    const decoded = jsQR(new Uint8ClampedArray(png.data), png.width, png.height);
    expect(decoded).not.toBeNull();
    const uri = new URL(decoded!.data);
    expect(uri.protocol).toBe("otpauth:");
    expect(decodeURIComponent(uri.pathname)).toContain("bob");
    const secret = uri.searchParams.get("secret")!;
    // The secret shown as text is the one in the QR code.
    expect((await page.textContent("#secret"))!.replace(/\s/g, "")).toBe(secret);
    const seed = decodeBase32(secret);

    // Not active before it is confirmed: RADIUS refuses a code of it.
    if (runRadclientTests) {
      const before = await radclient(server.port, vpnSecret, ["User-Name = bob", `User-Password = ${quote(PASSWORD + code(seed))}`]);
      expect(before.code).toBe("Access-Reject");
    }

    const now = Date.now();
    await page.fill("#code", code(seed, now));
    await page.click("#confirm");
    await page.waitForSelector("#notice");
    expect(await page.locator("#tokens li").count()).toBe(1);
    await expectAccessible(page, "overview after enrolment");
    await screenshot(page, "self-service-home.png");
    await context.close();

    // The confirming code is spent; the next step's code logs in over RADIUS.
    if (!runRadclientTests) return;
    const reply = await radclient(server.port, vpnSecret, ["User-Name = bob", `User-Password = ${quote(PASSWORD + code(seed, now + 30_000))}`]);
    expect(reply.code).toBe("Access-Accept");
  });

  test("the approver app's enrolment link is shown with its QR code", async () => {
    const link = await enrolLink("dave");
    const { context, page } = await phone();
    await page.goto(link);
    await page.click("#continue");
    await page.waitForSelector("#who");
    await page.click("#add-app");
    await page.waitForSelector("#app-link");
    expect(await page.getAttribute("#app-link", "href")).toMatch(new RegExp(`^${base}/app/#enrol=[A-Za-z0-9_-]{22}$`));
    await expectAccessible(page, "app enrolment");
    await screenshot(page, "self-service-app.png");
    await context.close();
  });
});

describe("removal", () => {
  test("one of two tokens is removed; the last one is refused with the administrator text", async () => {
    const { context, page } = await phone();
    await signIn(page, "carol", PASSWORD, code(seeds.carol!));
    expect(await page.locator("#tokens li").count()).toBe(2);
    // Remove the second token (not the one signed in with).
    await page.locator("#tokens li").nth(1).locator("button").click();
    await page.waitForSelector("#notice");
    expect(await page.locator("#tokens li").count()).toBe(1);
    await page.locator("#tokens li").nth(0).locator("button").click();
    await page.waitForSelector("#error");
    expect(await page.textContent("#error")).toContain("ask an administrator");
    expect(await page.locator("#tokens li").count()).toBe(1);
    await expectAccessible(page, "refused removal");
    await screenshot(page, "self-service-last-factor.png");
    await context.close();
    const listed = JSON.parse(await appliance.cli(["token", "list", "carol", "--json"])) as unknown[];
    expect(listed.length).toBe(1);
  });
});
