// The password-reset portal in headless Chromium against the compiled server: local users (argon2id;
// the new password then passes a RADIUS PAP login), an approver's reject, an unknown user (the same
// pages and the same generic failure as a known one), the per-username and per-number limits, and
// axe-core on every page at phone width. A loopback HTTP server plays the SMS gateway in its real
// wire format (form POST, JSON answer). The directory flows (slapd, Samba AD) are in
// password-reset-ldap.test.ts.
//
// PORTCULLIS_SCREENSHOTS=1 also writes the README's screenshots to docs/img/.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { Appliance, Code, UDPClient, addLiveClient, eventually, pap, type ServerProcess } from "./helpers/appliance.ts";
import { DeviceClient } from "./helpers/device-client.ts";
import { CHROMIUM, axeViolations, freePort, launchChromium, PHONE_VIEWPORT, resetFlow } from "./helpers/password-reset.ts";
import { SmsGateway, codeIn, linkIn } from "./helpers/sms-gateway.ts";

setDefaultTimeout(120_000);

const SCREENSHOTS = process.env.PORTCULLIS_SCREENSHOTS === "1" ? resolve(import.meta.dir, "../../docs/img") : null;
const OLD_PASSWORD = "old password 12345";

let app: Appliance;
let server: ServerProcess;
let gateway: SmsGateway;
let browser: Browser;
let base: string;
let radiusSecret: string;
let nextPhone = 100;
const phones: Record<string, string> = {};

async function user(name: string): Promise<string> {
  const phone = `+4670111${String(nextPhone++).padStart(4, "0")}`;
  phones[name] = phone;
  await app.cli(["user", "add", name, "--password-stdin", "--phone", phone, "--type", "password"], { stdin: `${OLD_PASSWORD}\n` });
  return phone;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: these tests need headless Chromium (apt-get install -y chromium)`);
  gateway = new SmsGateway();
  app = new Appliance();
  const port = freePort();
  base = `http://127.0.0.1:${port}`;
  app.writeConfig(`
region = "SE"
[http]
public_url = "${base}"
tls = false
[delivery]
per_number_per_minute = 3
per_number_per_hour = 30
${gateway.smsConfig()}

[[password_reset]]
name = "default"
approvers = ["helpdesk1", "helpdesk2"]
approver_role = "the IT helpdesk"
min_password_length = 12

[[password_reset]]
name = "tight"
approvers = ["helpdesk1"]
per_user_per_hour = 2
`);
  await user("helpdesk1");
  await user("helpdesk2");
  server = await app.serve({ httpListen: `127.0.0.1:${port}` });
  radiusSecret = await addLiveClient(app, server, "vpn", "127.0.0.1", ["--allow-password-only", "true"]);
  browser = await launchChromium();
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await gateway?.stop();
  await app?.[Symbol.asyncDispose]();
});

async function radiusLogin(name: string, password: string): Promise<number> {
  using udp = await UDPClient.open("127.0.0.1");
  return (await pap(udp, server.port, radiusSecret, name, password)).code;
}

describe("password reset, local users", () => {
  test("full reset: code by SMS, approval by an SMS link, new password twice; the new password logs in, the old one no longer", async () => {
    const phone = await user("alice");
    expect(await radiusLogin("alice", OLD_PASSWORD)).toBe(Code.AccessAccept);
    const context = await browser.newContext({ viewport: PHONE_VIEWPORT });
    const page = await context.newPage();
    const shot = async (name: string) => {
      if (!SCREENSHOTS) return;
      mkdirSync(SCREENSHOTS, { recursive: true });
      await page.screenshot({ path: join(SCREENSHOTS, name), fullPage: true });
    };
    const violations: string[] = [];
    const flow = resetFlow(page, `${base}/password-reset/default`);

    await flow.open();
    expect(await page.textContent("h1")).toBe("Reset your password");
    expect(await page.textContent("main")).toContain("the IT helpdesk");
    violations.push(...(await axeViolations(page)));
    await shot("password-reset-start.png");
    const from = gateway.messages.length;
    await flow.username("alice");
    expect(await page.textContent("h1")).toBe("Enter the code");
    violations.push(...(await axeViolations(page)));
    const sms = await gateway.waitFor(phone, from);
    const code = codeIn(sms)!;
    expect(code).toMatch(/^\d{6}$/);

    // A wrong code first: the page says so and keeps the form.
    await flow.code(code === "000000" ? "111111" : "000000");
    expect(await page.textContent("#message")).toContain("not right");
    violations.push(...(await axeViolations(page)));
    await flow.code(code);
    expect(await page.textContent("h1")).toBe("Waiting for approval");
    expect(await page.textContent("#waiting")).toContain("the IT helpdesk");
    expect(await page.textContent("main")).not.toContain("helpdesk1");
    violations.push(...(await axeViolations(page)));
    await shot("password-reset-waiting.png");

    // Both approvers got a link; one approves on the approval page.
    const link1 = linkIn(await gateway.waitFor(phones.helpdesk1!, from))!;
    const link2 = linkIn(await gateway.waitFor(phones.helpdesk2!, from))!;
    expect(link1).not.toBe(link2);
    const approver = await context.newPage();
    await approver.goto(link1);
    expect(await approver.textContent("#question")).toContain("alice");
    expect(await approver.textContent("main")).toContain("Reject unless you know that this person asked");
    violations.push(...(await axeViolations(approver)));
    if (SCREENSHOTS) await approver.screenshot({ path: join(SCREENSHOTS, "password-reset-approver.png"), fullPage: true });
    await approver.click("#approve");
    await approver.waitForSelector("#result");

    // The waiting page's script notices and moves on by itself.
    await page.waitForSelector("#set-password", { timeout: 20_000 });
    violations.push(...(await axeViolations(page)));
    await shot("password-reset-password.png");
    // The other approver's link is no longer valid.
    await approver.goto(link2);
    expect(await approver.locator("#invalid").count()).toBe(1);

    await flow.password("short", "short");
    expect(await page.textContent("#message")).toContain("at least 12 characters");
    await flow.password("a brand new password 1", "a different one 2");
    expect(await page.textContent("#message")).toContain("not the same");
    await flow.password("a brand new password 1", "a brand new password 1");
    expect(await page.textContent("#done")).toContain("changed");
    violations.push(...(await axeViolations(page)));
    await shot("password-reset-done.png");
    expect(violations).toEqual([]);

    expect(await radiusLogin("alice", "a brand new password 1")).toBe(Code.AccessAccept);
    expect(await radiusLogin("alice", OLD_PASSWORD)).toBe(Code.AccessReject);
    const events = server.logs.filter((l) => String(l.event).startsWith("password_reset.") && (l.user === "alice" || l.portal === "default")).map((l) => l.event);
    for (const e of ["password_reset.started", "password_reset.code_sent", "password_reset.code_failed", "password_reset.approval_requested", "password_reset.approved", "password_reset.changed"]) expect(events).toContain(e);
    await context.close();
  });

  test("an approver's reject ends the reset with the generic page; the password stays", async () => {
    const phone = await user("bob");
    const context = await browser.newContext({ viewport: PHONE_VIEWPORT });
    const page = await context.newPage();
    const flow = resetFlow(page, `${base}/password-reset/default`);
    await flow.open();
    const from = gateway.messages.length;
    await flow.username("bob");
    await flow.code(codeIn(await gateway.waitFor(phone, from))!);
    const link = linkIn(await gateway.waitFor(phones.helpdesk2!, from))!;
    const approver = await context.newPage();
    await approver.goto(link);
    await approver.click("#reject");
    await approver.waitForSelector("#result");
    await page.waitForSelector("#failed", { timeout: 20_000 });
    const text = await page.textContent("#generic");
    expect(text).toContain("could not be reset");
    expect(await axeViolations(page)).toEqual([]);
    await server.waitForLog((l) => l.event === "password_reset.rejected" && l.user === "bob" && l.by === "helpdesk2");
    expect(await radiusLogin("bob", OLD_PASSWORD)).toBe(Code.AccessAccept);
    await context.close();
  });

  test("an unknown user gets the same pages and the same failure as a known one, and no SMS is sent", async () => {
    const phone = await user("carol");
    const texts: Record<string, string[]> = {};
    for (const name of ["carol", "nobody-here"]) {
      const context = await browser.newContext({ viewport: PHONE_VIEWPORT });
      const page = await context.newPage();
      const flow = resetFlow(page, `${base}/password-reset/default`);
      await flow.open();
      const from = gateway.messages.length;
      await flow.username(name);
      const seen = [await page.innerText("main")];
      for (let i = 0; i < 2; i++) {
        await flow.code("999999");
        seen.push(await page.innerText("main"));
      }
      await flow.code("999999");
      await page.waitForSelector("#failed");
      seen.push(await page.innerText("main"));
      texts[name] = seen;
      if (name === "carol") expect((await gateway.waitFor(phone, from)).length).toBeGreaterThan(0);
      await context.close();
    }
    expect(texts["nobody-here"]).toEqual(texts.carol!);
    await server.waitForLog((l) => l.event === "password_reset.failed" && l.reason === "code" && l.user !== "carol");
    expect(server.logs.some((l) => l.event === "password_reset.started" && l.user === "nobody-here")).toBe(false);
  });

  test("limits: per username (the portal's per_user_per_hour) and per phone number (the delivery's per-number limit), with the same generic page", async () => {
    const phone = await user("dave");
    const page = await browser.newPage();
    const tight = resetFlow(page, `${base}/password-reset/tight`);
    for (let i = 0; i < 2; i++) {
      await tight.open();
      await tight.username("dave");
      expect(await page.textContent("h1")).toBe("Enter the code");
      await tight.restart();
    }
    await tight.open();
    await tight.username("dave");
    expect(await page.textContent("#generic")).toContain("could not be reset");
    await server.waitForLog((l) => l.event === "password_reset.limited" && l.limit === "user" && l.portal === "tight");

    // The default portal allows 5 an hour; the number takes 3 in any minute ([delivery] per_number_per_minute).
    const erin = await user("erin");
    const flow = resetFlow(page, `${base}/password-reset/default`);
    const from = gateway.messages.length;
    for (let i = 0; i < 4; i++) {
      await flow.open();
      await flow.username("erin");
      expect(await page.textContent("h1")).toBe("Enter the code");
      await flow.restart();
    }
    await server.waitForLog((l) => l.event === "password_reset.code_not_sent" && l.user === "erin" && l.reason === "rate_limited");
    expect(gateway.to(erin, from).length).toBe(3);
    expect(gateway.to(phone, 0).length).toBe(2);
    await page.close();
  });

  test("a user with an approver-app device gets the code in the app (no SMS), and a wrong app code three times ends the reset", async () => {
    const phone = await user("frank");
    const out = await app.cli(["device", "enrol", "frank"]);
    const device = await DeviceClient.create();
    const enrolled = await fetch(`${base}/app/api/v1/devices`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ enrolment: /#enrol=([A-Za-z0-9_-]{22})/.exec(out)![1]!, public_key: device.publicJwk, name: "frank's phone" }),
    });
    expect(enrolled.status).toBe(201);
    device.id = ((await enrolled.json()) as { device: string }).device;
    const requests = async () => {
      const r = await fetch(await device.request(base, "GET", "/app/api/v1/requests"));
      return ((await r.json()) as { requests: Array<{ id: string; kind: string; service: string; code?: string }> }).requests;
    };

    const context = await browser.newContext({ viewport: PHONE_VIEWPORT });
    const page = await context.newPage();
    const flow = resetFlow(page, `${base}/password-reset/default`);
    await flow.open();
    const from = gateway.messages.length;
    await flow.username("frank");
    const request = await eventually("the code in the app", async () => (await requests()).find((q) => q.kind === "password-reset" && q.code));
    expect(request.code).toMatch(/^\d{6}$/);
    await flow.code(request.code!);
    expect(await page.textContent("h1")).toBe("Waiting for approval");
    expect(gateway.to(phone, from).length).toBe(0);
    await linkIn(await gateway.waitFor(phones.helpdesk1!, from));
    await context.close();

    // Another reset: three wrong codes end it; the app's request is withdrawn.
    const page2 = await browser.newPage();
    const flow2 = resetFlow(page2, `${base}/password-reset/default`);
    await flow2.open();
    await flow2.username("frank");
    const second = await eventually("the second code in the app", async () => (await requests()).find((q) => q.kind === "password-reset" && q.code && q.id !== request.id));
    const wrong = second.code === "000000" ? "111111" : "000000";
    await flow2.code(wrong);
    await flow2.code(wrong);
    await flow2.code(wrong);
    expect(await page2.locator("#failed").count()).toBe(1);
    await eventually("the request withdrawn", async () => ((await requests()).some((q) => q.id === second.id) ? undefined : true));
    await page2.close();
  });

  test("CSRF: a POST without the page's token changes nothing; an unknown portal is 404", async () => {
    const r = await fetch(`${base}/password-reset/default`, { method: "POST", body: new URLSearchParams({ username: "alice" }), redirect: "manual" });
    expect(r.status).toBe(303);
    expect(server.logs.filter((l) => l.event === "password_reset.started" && l.source === "127.0.0.1" && l.user === "alice").length).toBe(1);
    expect((await fetch(`${base}/password-reset/nope`)).status).toBe(404);
    const page = await fetch(`${base}/password-reset/default`);
    expect(page.headers.get("set-cookie")).toMatch(/HttpOnly/i);
    expect(page.headers.get("set-cookie")).toMatch(/SameSite=Strict/i);
    expect(page.headers.get("content-security-policy")).toContain("default-src 'self'");
  });
});
