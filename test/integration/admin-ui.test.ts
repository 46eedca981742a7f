// The admin web UI in headless Chromium against the real server process: accounts made with
// `portcullis admin add`, sign-in with a computed TOTP code (a wrong or replayed code refused),
// creating a user and enrolling a token from the browser, a test authentication through the RADIUS
// listener, a CSV token import, a test SMS to a loopback gateway, unlocking a user locked out over RADIUS,
// an operator refused a create, a form without the CSRF token refused, the idle timeout, axe-core
// on every page and a phone-width page; and two server processes on one store sharing the stored
// audit log (the audit page, the dashboard's counts and GET /api/admin/v1/audit).
//
// PORTCULLIS_SCREENSHOTS=1 also writes the README's screenshots to docs/img/.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { decodeBase32, generateTOTP } from "../../src/otp/index.ts";
import { Appliance, Code, UDPClient, addLiveClient, eventually, pap, type ServerProcess } from "./helpers/appliance.ts";
import { SmsGateway } from "./helpers/sms-gateway.ts";

const CHROMIUM = "/usr/bin/chromium";
const AXE = readFileSync(resolve(import.meta.dir, "../../node_modules/axe-core/axe.min.js"), "utf8");
const SCREENSHOTS = process.env.PORTCULLIS_SCREENSHOTS === "1" ? resolve(import.meta.dir, "../../docs/img") : null;
const ADMIN_PASSWORD = "admin password 12345";

setDefaultTimeout(120_000);

let appliance: Appliance;
let server: ServerProcess;
let browser: Browser;
let ui: string;
let radiusSecret: string;
const gateway = new SmsGateway();
const secrets: Record<string, Uint8Array> = {};

/** `admin add NAME --role ROLE --password-stdin` → the TOTP secret from the printed otpauth URI. */
async function addAdmin(name: string, role: string): Promise<void> {
  const out = await appliance.cli(["admin", "add", name, "--role", role, "--password-stdin"], { stdin: `${ADMIN_PASSWORD}\n` });
  const secret = /^otpauth:\/\/totp\/[^?]+\?secret=([A-Z2-7]+)/m.exec(out)?.[1];
  if (!secret) throw new Error("admin add printed no otpauth URI");
  secrets[name] = decodeBase32(secret);
}

/** The account's code `offset` steps from now (a sign-in consumes its step: the next one needs a later code). */
function code(name: string, offset = 0): string {
  return generateTOTP({ secret: secrets[name]!, algorithm: "SHA1", digits: 6, period: 30 }, { now: Date.now() + offset * 30_000 });
}

async function newPage(context?: BrowserContext): Promise<Page> {
  const ctx = context ?? (await browser.newContext());
  return ctx.newPage();
}

async function signIn(page: Page, base: string, name: string, totp: string, password = ADMIN_PASSWORD): Promise<void> {
  await page.goto(`${base}/ui/`);
  await page.waitForSelector("#sign-in");
  await page.fill("#f-name", name);
  await page.fill("#f-password", password);
  await page.fill("#f-code", totp);
  await page.click("#sign-in");
  await page.waitForLoadState("domcontentloaded");
}

/** axe-core on the current page: no violation of impact serious or critical. */
async function expectAccessible(page: Page): Promise<void> {
  // page.evaluate runs outside the page's CSP (no inline script is allowed there).
  await page.evaluate(AXE);
  const { passes, violations } = (await page.evaluate(async () => {
    const r = await (globalThis as unknown as { axe: { run(): Promise<{ passes: unknown[]; violations: Array<{ id: string; impact: string; nodes: Array<{ target: string[] }> }> }> } }).axe.run();
    return { passes: r.passes.length, violations: r.violations.map((v) => ({ id: v.id, impact: v.impact, targets: v.nodes.map((n) => n.target.join(" ")).slice(0, 3) })) };
  })) as { passes: number; violations: Array<{ id: string; impact: string; targets: string[] }> };
  // axe ran its rules on this page.
  expect(passes).toBeGreaterThan(5);
  const bad = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  expect({ url: page.url(), bad }).toEqual({ url: page.url(), bad: [] });
}

async function screenshot(page: Page, file: string): Promise<void> {
  if (!SCREENSHOTS) return;
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, file), fullPage: true });
}

/** The CSRF token of the signed-in page (every page's sign-out form carries it). */
async function csrfOf(page: Page): Promise<string> {
  return (await page.getAttribute("header form input[name=csrf]", "value"))!;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: these tests need headless Chromium`);
  appliance = new Appliance();
  appliance.writeConfig(`region = "SE"
[http]
tls = false
${gateway.smsConfig()}
`);
  await Promise.all([addAdmin("root1", "root"), addAdmin("op1", "operator"), addAdmin("idle1", "admin")]);
  await appliance.cli(["user", "add", "dave", "--password-stdin"], { stdin: "dave password\n" });
  server = await appliance.serve();
  ui = `http://127.0.0.1:${server.adminPort}`;
  radiusSecret = await addLiveClient(appliance, server, "vpn", "127.0.0.1");
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"] });
}, 90_000);

afterAll(async () => {
  await gateway.stop();
  await browser?.close();
  await appliance?.[Symbol.asyncDispose]();
});

describe("admin web UI", () => {
  test("admin list shows the accounts made from the shell, never a secret", async () => {
    const list = JSON.parse(await appliance.cli(["admin", "list", "--json"])) as Array<Record<string, unknown>>;
    expect(list.map((a) => [a.name, a.role])).toEqual([
      ["idle1", "admin"],
      ["op1", "operator"],
      ["root1", "root"],
    ]);
    expect(JSON.stringify(list)).not.toContain("argon2");
    const bad = await appliance.run(["admin", "add", "x", "--role", "king", "--password-stdin"], { stdin: ADMIN_PASSWORD });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--role must be root, admin or operator");
  });

  test("sign-in: a wrong code and a wrong password are refused alike; a computed code signs in; the same code again is a replay", async () => {
    const page = await newPage();
    await signIn(page, ui, "root1", code("root1", 5));
    expect(await page.textContent("#sign-in-error")).toContain("not right");
    await signIn(page, ui, "root1", code("root1"), "wrong password 123");
    expect(await page.textContent("#sign-in-error")).toContain("not right");
    await signIn(page, ui, "nobody", code("root1"));
    expect(await page.textContent("#sign-in-error")).toContain("not right");
    await expectAccessible(page);
    await screenshot(page, "admin-ui-sign-in.png");

    const used = code("root1");
    await signIn(page, ui, "root1", used);
    expect(new URL(page.url()).pathname).toBe("/ui/");
    expect(await page.textContent("#whoami")).toContain("root1 (root)");
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === "portcullis-ui")!;
    expect(session).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/ui" });

    const other = await newPage();
    await signIn(other, ui, "root1", used);
    expect(await other.textContent("#sign-in-error")).toContain("not right");
    await other.context().close();

    const failed = server.logs.filter((l) => l.event === "ui.sign_in_failed").map((l) => l.reason);
    expect(failed).toEqual(expect.arrayContaining(["bad_code", "bad_password", "unknown_account", "replayed_code"]));
    expect(server.logs.some((l) => l.event === "ui.signed_in" && l.account === "root1")).toBe(true);
    // The unknown name is logged only as a hash.
    expect(JSON.stringify(server.logs)).not.toContain('"nobody"');
    await page.context().close();
  });

  test("root: every page passes axe; create a user, enrol a token (QR shown), test authentication, import tokens, send a test SMS, unlock a user locked out over RADIUS; audited as ui:root1", async () => {
    const page = await newPage();
    await signIn(page, ui, "root1", code("root1", 1));
    expect(new URL(page.url()).pathname).toBe("/ui/");
    await expectAccessible(page);
    await screenshot(page, "admin-ui-dashboard.png");

    // Create a user: a bad phone is shown next to its field, then a good one.
    await page.goto(`${ui}/ui/users`);
    await page.fill("#f-username", "carol");
    await page.fill("#f-password", "carol password");
    await page.fill("#f-phone", "not a phone");
    await page.click("#add-user-submit");
    expect(await page.textContent("#f-phone-error")).toContain("Phone:");
    expect(await page.getAttribute("#f-phone", "aria-invalid")).toBe("true");
    await expectAccessible(page);
    await page.fill("#f-phone", "+46701234567");
    await page.fill("#f-password", "carol password");
    await page.click("#add-user-submit");
    expect(new URL(page.url()).pathname).toBe("/ui/users/carol");
    expect(await page.textContent("#notice")).toContain("User added");
    expect(JSON.parse(await appliance.cli(["user", "show", "carol", "--json"])).phone).toBe("+46701234567");
    await expectAccessible(page);

    // Enrol a token: the QR code and the otpauth URI, whose secret makes codes the server accepts.
    await page.goto(`${ui}/ui/tokens?user=carol`);
    await page.click("#enrol-submit");
    await page.waitForSelector("#qr svg");
    const uri = (await page.textContent("#otpauth-uri"))!;
    expect(uri).toMatch(/^otpauth:\/\/totp\/Portcullis:carol\?secret=[A-Z2-7]{32}/);
    await expectAccessible(page);
    await screenshot(page, "admin-ui-token.png");
    const secret = decodeBase32(/secret=([A-Z2-7]+)/.exec(uri)![1]!);
    const tokens = JSON.parse(await appliance.cli(["token", "list", "carol", "--json"])) as unknown[];
    expect(tokens).toHaveLength(1);
    {
      using udp = await UDPClient.open("127.0.0.1");
      const totp = generateTOTP({ secret, algorithm: "SHA1", digits: 6, period: 30 }, { now: Date.now() });
      // concat is not this client's mode: password first, then the code in the challenge.
      const first = await pap(udp, server.port, radiusSecret, "carol", "carol password");
      expect(first.code).toBe(Code.AccessChallenge);
      const state = first.attributes.find(([t]) => t === 24)![1];
      const second = await pap(udp, server.port, radiusSecret, "carol", totp, { state });
      expect(second.code).toBe(Code.AccessAccept);
    }

    // Test authentication from the clients page: a real Access-Request through the listener; the
    // challenge's second leg takes the next code (the one above was used).
    await page.goto(`${ui}/ui/clients`);
    await page.click("a[href='/ui/clients/vpn/test']");
    await page.fill("#f-user", "carol");
    await page.fill("#f-password", "carol password");
    await page.click("#test-submit");
    expect(await page.textContent("#test-result")).toContain("Access-Challenge");
    await expectAccessible(page);
    await page.fill("#f-password", generateTOTP({ secret, algorithm: "SHA1", digits: 6, period: 30 }, { now: Date.now() + 30_000 }));
    await page.click("#test-submit");
    expect(await page.textContent("#test-result")).toContain("Access-Accept");
    expect(server.logs.some((l) => l.event === "admin.client_tested" && l.client === "vpn" && l.outcome === "accept" && l.by === "ui:root1")).toBe(true);

    // Edit the client's phone settings: an out-of-range hold is shown next to its field, then saved.
    await page.goto(`${ui}/ui/clients/vpn`);
    await page.fill("#f-approvalHoldS", "500");
    await page.click("#phone-submit");
    expect(await page.textContent("#f-approvalHoldS-error")).toContain("Approval hold:");
    await expectAccessible(page);
    await page.fill("#f-approvalHoldS", "60");
    await page.click("#phone-submit");
    expect(await page.textContent("#notice")).toContain("saved");
    expect((JSON.parse(await appliance.cli(["client", "list", "--json"])) as Array<{ name: string; approvalHoldS: number }>).find((x) => x.name === "vpn")!.approvalHoldS).toBe(60);

    // Import tokens from a CSV file: one assigned to dave, one unassigned.
    await page.goto(`${ui}/ui/tokens`);
    await page.selectOption("#f-format", "csv");
    await page.setInputFiles("#f-file", { name: "tokens.csv", mimeType: "text/csv", buffer: Buffer.from("serial,secret_base32,user\nHW0001,JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP,dave\nHW0002,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,\n") });
    await page.click("#import-submit");
    expect(await page.textContent("#imported")).toContain("Imported 2 tokens; 1 assigned");
    expect((JSON.parse(await appliance.cli(["token", "list", "dave", "--json"])) as Array<{ serial: string }>).map((t) => t.serial)).toEqual(["HW0001"]);

    // A test message through the configured SMS gateway.
    await page.goto(`${ui}/ui/delivery`);
    await page.fill("#f-msisdn", "+46701234567");
    await page.click("#send-test");
    expect(await page.textContent("#delivery-result")).toContain("Sent through sms");
    expect(gateway.messages.map((m) => m.to)).toEqual(["+46701234567"]);
    expect(gateway.messages[0]!.message).toContain("Portcullis test message");

    // Lock dave out with wrong passwords over RADIUS, then unlock from the user page.
    {
      using udp = await UDPClient.open("127.0.0.1");
      for (let i = 0; i < 6; i++) expect((await pap(udp, server.port, radiusSecret, "dave", "wrong")).code).toBe(Code.AccessReject);
    }
    expect(JSON.parse(await appliance.cli(["user", "show", "dave", "--json"])).lockout.password.failures).toBeGreaterThan(0);
    await page.goto(`${ui}/ui/users/dave`);
    await page.click("#unlock");
    expect(await page.textContent("#notice")).toContain("Lockout counters cleared");
    expect(JSON.parse(await appliance.cli(["user", "show", "dave", "--json"])).lockout.password.failures).toBe(0);

    // The other pages: axe on each.
    for (const path of ["/ui/clients", "/ui/endpoints", "/ui/delivery", "/ui/audit", "/ui/ldap"]) {
      await page.goto(`${ui}${path}`);
      expect(await page.title()).toContain("Portcullis admin");
      await expectAccessible(page);
    }
    // The audit log (read from the store) shows the UI's changes with the actor.
    const audit = await eventually("carol's admin events in the stored audit log", async () => {
      await page.goto(`${ui}/ui/audit?event=admin.&user=carol`);
      const text = (await page.textContent("#audit"))!;
      return text.includes("admin.token_enrolled") ? text : undefined;
    });
    expect(audit).toContain("admin.user_added");
    expect(audit).toContain("ui:root1");
    expect(audit).not.toContain("admin.user_unlocked");
    await expectAccessible(page);
    await screenshot(page, "admin-ui-audit.png");
    // The dashboard counts the logins above (carol accepted, dave rejected) from the store's per-minute counters.
    await eventually("the dashboard's counts", async () => {
      await page.goto(`${ui}/ui/`);
      return /[1-9]\d* accepted, [1-9]\d* rejected/.test((await page.textContent("#auth-total"))!) ? true : undefined;
    });
    expect(await page.textContent("#switch")).toContain("not configured");
    expect(server.logs.some((l) => l.event === "admin.user_unlocked" && l.user === "dave" && l.by === "ui:root1")).toBe(true);

    // A form without the CSRF token is refused before anything is done.
    const forged = await page.request.post(`${ui}/ui/users`, { form: { username: "mallory" }, maxRedirects: 0 });
    expect(forged.status()).toBe(403);
    expect(await forged.text()).toContain("csrf-refused");
    const wrong = await page.request.post(`${ui}/ui/users`, { form: { username: "mallory", csrf: "x".repeat(43) }, maxRedirects: 0 });
    expect(wrong.status()).toBe(403);
    expect((await appliance.run(["user", "show", "mallory"])).code).not.toBe(0);
    expect(server.logs.some((l) => l.event === "ui.refused" && l.reason === "csrf" && l.account === "root1")).toBe(true);

    // Phone width: the users page fits without horizontal scrolling.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${ui}/ui/users`);
    const overflow = await page.evaluate(() => {
      const root = (globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number } } }).document.documentElement;
      return root.scrollWidth - root.clientWidth;
    });
    expect(overflow).toBeLessThanOrEqual(0);
    await expectAccessible(page);
    await screenshot(page, "admin-ui-phone.png");

    // Sign out: the session is gone.
    await page.click("#sign-out");
    expect(await page.textContent("#ended")).toContain("signed out");
    await page.goto(`${ui}/ui/users`);
    expect(new URL(page.url()).pathname).toBe("/ui/sign-in");
    await page.context().close();
  });

  test("operator: reads and unlocks, but no create form, and a create posted anyway is refused (403)", async () => {
    const page = await newPage();
    await signIn(page, ui, "op1", code("op1"));
    expect(await page.textContent("#whoami")).toContain("op1 (operator)");
    await page.goto(`${ui}/ui/users`);
    expect(await page.$("#add-user")).toBeNull();
    expect(await page.$("a[href='/ui/delivery']")).toBeNull();
    const csrf = await csrfOf(page);
    const create = await page.request.post(`${ui}/ui/users`, { form: { csrf, username: "eve" }, maxRedirects: 0 });
    expect(create.status()).toBe(403);
    expect(await create.text()).toContain("may not do this");
    expect((await appliance.run(["user", "show", "eve"])).code).not.toBe(0);
    const delivery = await page.request.get(`${ui}/ui/delivery`, { maxRedirects: 0 });
    expect(delivery.status()).toBe(403);
    // Unlock is an operator's.
    await page.goto(`${ui}/ui/users/dave`);
    expect(await page.$("#remove-user")).toBeNull();
    await page.click("#unlock");
    expect(await page.textContent("#notice")).toMatch(/Lockout counters cleared|no failures/);
    await page.goto(`${ui}/ui/delivery`);
    await expectAccessible(page);
    expect(server.logs.some((l) => l.event === "ui.refused" && l.reason === "role" && l.account === "op1")).toBe(true);
    await page.context().close();
  });

  test("two processes on one store: logins rejected by the second appear in the first's audit page and GET /audit; an operator key unlocks through the API", async () => {
    const other = await appliance.serve();
    try {
      await appliance.cli(["user", "add", "frank", "--password-stdin"], { stdin: "frank password\n" });
      const key = /pcl_[A-Za-z0-9_-]{43}/.exec(await appliance.cli(["apikey", "add", "ops-reader", "--role", "operator"]))![0];
      {
        using udp = await UDPClient.open("127.0.0.1");
        for (let i = 0; i < 2; i++) expect((await pap(udp, other.port, radiusSecret, "frank", "wrong")).code).toBe(Code.AccessReject);
      }
      const page = await newPage();
      await signIn(page, ui, "op1", code("op1", 1));
      const rows = await eventually("frank's failures in the first server's audit page", async () => {
        await page.goto(`${ui}/ui/audit?event=auth.failure&user=frank`);
        const n = await page.$$eval("#audit tbody tr", (trs) => trs.length);
        return n === 2 ? n : undefined;
      });
      expect(rows).toBe(2);
      const table = (await page.textContent("#audit"))!;
      expect(table).toContain("bad_password");
      // The Process column names the second server, which emitted them.
      expect(table).toContain(`:${other.proc.pid}`);
      expect(table).not.toContain(`:${server.proc.pid}`);
      await expectAccessible(page);
      // A bad filter is shown next to its field.
      await page.goto(`${ui}/ui/audit?from=yesterday`);
      expect(await page.textContent("#f-from-error")).toContain("From");

      // The admin API of the first server: the same events, paged; an operator key unlocks frank.
      const api = (path: string, init: RequestInit = {}) => fetch(`${ui}/api/admin/v1${path}`, { ...init, headers: { "api-key": key } });
      const first = (await (await api("/audit?event=auth.failure&user=frank&limit=1")).json()) as { events: Array<{ node: string; outcome: string }>; next: string };
      expect(first.events[0]).toMatchObject({ outcome: "reject", node: expect.stringContaining(`:${other.proc.pid}`) });
      const second = (await (await api(`/audit?event=auth.failure&user=frank&limit=1&before=${first.next}`)).json()) as { events: unknown[]; next: string | null };
      expect(second.events).toHaveLength(1);
      expect(second.next).toBeNull();
      const unlock = await api("/users/frank/unlock", { method: "POST" });
      expect(unlock.status).toBe(200);
      expect(await unlock.json()).toEqual({ cleared: true });
      // …and the unlock, made through the first server, is in the second server's log.
      const unlocked = await eventually("the unlock in the second server's GET /audit", async () => {
        const r = (await (await fetch(`http://127.0.0.1:${other.adminPort}/api/admin/v1/audit?event=admin.user_unlocked&user=frank`, { headers: { "api-key": key } })).json()) as { events: Array<{ actor: string; node: string }> };
        return r.events[0];
      });
      expect(unlocked).toMatchObject({ actor: "ops-reader", node: expect.stringContaining(`:${server.proc.pid}`) });
      await page.context().close();
    } finally {
      await other.stop();
    }
  });

  test("a session idle longer than [admin_ui] idle_timeout_s ends", async () => {
    // A second server on the same store with a 2-second idle timeout (the first keeps the default).
    const short = await appliance.serve({ env: { PORTCULLIS_ADMIN_UI_IDLE_TIMEOUT_S: "2" } });
    const base = `http://127.0.0.1:${short.adminPort}`;
    const page = await newPage();
    await signIn(page, base, "idle1", code("idle1"));
    expect(new URL(page.url()).pathname).toBe("/ui/");
    await Bun.sleep(3_000);
    await page.goto(`${base}/ui/users`);
    expect(new URL(page.url()).pathname).toBe("/ui/sign-in");
    expect(await page.textContent("#ended")).toContain("without activity");
    await eventually("ui.session_ended idle", () => short.logs.find((l) => l.event === "ui.session_ended" && l.reason === "idle"));
    await page.context().close();
    await short.stop();
  });
});

