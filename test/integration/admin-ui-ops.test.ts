// The admin web UI's account and operations pages in headless Chromium against the real server
// process: an account changing its own password (its other session ends, this one stays), a test
// login from a user's page, a token import with its progress page, and editing a Magic Link
// endpoint. axe-core on every new page.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { decodeBase32, generateTOTP } from "../../src/otp/index.ts";
import { AdminAccounts, expectAccessible, launchChromium, screenshot, signIn } from "./helpers/admin-ui.ts";
import { addLiveClient, Appliance, type ServerProcess } from "./helpers/appliance.ts";

const PASSWORD = "admin password 12345";
/** erin's TOTP seed (imported with her). */
const ERIN_SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const erinCode = (offset = 0) => generateTOTP({ secret: decodeBase32(ERIN_SEED), algorithm: "SHA1", digits: 6, period: 30 }, { now: Date.now() + offset * 30_000 });

setDefaultTimeout(120_000);

let appliance: Appliance;
let server: ServerProcess;
let browser: Browser;
let ui: string;
let accounts: AdminAccounts;

beforeAll(async () => {
  appliance = new Appliance();
  // Three TOTP steps either side: a test signs in twice and then uses a third code without waiting for the clock.
  appliance.writeConfig(`region = "SE"
[http]
tls = false
[otp]
window = 3
`);
  accounts = new AdminAccounts(appliance);
  await Promise.all([accounts.add("pw1", "operator", PASSWORD), accounts.add("root2", "root", PASSWORD), accounts.add("op2", "operator", PASSWORD)]);
  const users = join(appliance.dataDir, "users.csv");
  writeFileSync(users, `username,password,type,phone,email,totp_secret,totp_algorithm,totp_digits,totp_period\nerin,erin password 1,totp,,,${ERIN_SEED},,,\n`);
  await appliance.cli(["user", "import", users]);
  server = await appliance.serve();
  ui = `http://127.0.0.1:${server.adminPort}`;
  await addLiveClient(appliance, server, "vpn", "127.0.0.1");
  browser = await launchChromium();
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await appliance?.[Symbol.asyncDispose]();
});

describe("admin web UI: own account", () => {
  test("an account changes its own password: rules first, the current password and a fresh code checked; its other session ends, this one stays", async () => {
    const a = await (await browser.newContext()).newPage();
    const b = await (await browser.newContext()).newPage();
    await signIn(a, ui, "pw1", PASSWORD, accounts.code("pw1", -2));
    await signIn(b, ui, "pw1", PASSWORD, accounts.code("pw1", -1));
    expect(new URL(b.url()).pathname).toBe("/ui/");

    await a.click("#whoami");
    expect(new URL(a.url()).pathname).toBe("/ui/account");
    await expectAccessible(a);
    const NEW = "a brand new passphrase";

    // The new password typed differently the second time: refused before any check.
    await a.fill("#f-current", PASSWORD);
    await a.fill("#f-code", accounts.code("pw1", 0));
    await a.fill("#f-password", NEW);
    await a.fill("#f-again", `${NEW}!`);
    await a.click("#change-password-submit");
    expect(await a.textContent("#f-again-error")).toContain("Again:");
    await expectAccessible(a);
    // Too short.
    await a.fill("#f-current", PASSWORD);
    await a.fill("#f-code", accounts.code("pw1", 0));
    await a.fill("#f-password", "short");
    await a.fill("#f-again", "short");
    await a.click("#change-password-submit");
    expect(await a.textContent("#f-password-error")).toContain("at least 12 characters");
    // A wrong current password: one generic refusal, audited.
    await a.fill("#f-current", "not my password 1");
    await a.fill("#f-code", accounts.code("pw1", 0));
    await a.fill("#f-password", NEW);
    await a.fill("#f-again", NEW);
    await a.click("#change-password-submit");
    expect(await a.textContent("#password-refused")).toContain("not right");
    // The code this session signed in with is refused too (a replay).
    await a.fill("#f-current", PASSWORD);
    await a.fill("#f-code", accounts.code("pw1", -2));
    await a.fill("#f-password", NEW);
    await a.fill("#f-again", NEW);
    await a.click("#change-password-submit");
    expect(await a.textContent("#password-refused")).toContain("not right");
    expect(server.logs.filter((l) => l.event === "ui.password_change_failed" && l.account === "pw1").map((l) => l.reason)).toEqual(["bad_password", "replayed_code"]);

    await a.fill("#f-current", PASSWORD);
    await a.fill("#f-code", accounts.code("pw1", 0));
    await a.fill("#f-password", NEW);
    await a.fill("#f-again", NEW);
    await a.click("#change-password-submit");
    expect(await a.textContent("#notice")).toContain("Password changed");
    await screenshot(a, "admin-ui-account.png");
    // This session goes on; the other one has ended.
    await a.goto(`${ui}/ui/users`);
    expect(new URL(a.url()).pathname).toBe("/ui/users");
    await b.goto(`${ui}/ui/users`);
    expect(new URL(b.url()).pathname).toBe("/ui/sign-in");
    expect(server.logs.some((l) => l.event === "admin.account_password_changed" && l.account === "pw1" && l.by === "ui:pw1")).toBe(true);
    // Nothing typed is logged.
    expect(JSON.stringify(server.logs)).not.toContain(NEW);
    expect(JSON.stringify(server.logs)).not.toContain("not my password");

    // The old password no longer signs in; the new one does.
    await signIn(b, ui, "pw1", PASSWORD, accounts.code("pw1", 1));
    expect(await b.textContent("#sign-in-error")).toContain("not right");
    await signIn(b, ui, "pw1", NEW, accounts.code("pw1", 1));
    expect(new URL(b.url()).pathname).toBe("/ui/");
    await a.context().close();
    await b.context().close();
  });
});

describe("admin web UI: test a login from a user's page", () => {
  test("a wrong password is rejected, the right one challenged, the code accepted; counted, audited as admin.user_tested, never logging the password or code", async () => {
    const page = await (await browser.newContext()).newPage();
    await signIn(page, ui, "root2", PASSWORD, accounts.code("root2"));
    await page.goto(`${ui}/ui/users/erin`);
    expect(await page.$$eval("#f-client option", (o) => o.map((x) => (x as unknown as { value: string }).value))).toEqual(["vpn"]);

    await page.fill("#f-secret", "wrong password 9");
    await page.click("#login-test-submit");
    expect(await page.textContent("#login-test-result")).toContain("Access-Reject");
    expect(JSON.parse(await appliance.cli(["user", "show", "erin", "--json"])).lockout.password.failures).toBe(1);

    await page.fill("#f-secret", "erin password 1");
    await page.click("#login-test-submit");
    expect(await page.textContent("#login-test-result")).toContain("Access-Challenge");
    await expectAccessible(page);
    const code = erinCode();
    await page.fill("#f-secret", code);
    await page.click("#login-test-submit");
    expect(await page.textContent("#login-test-result")).toContain("Access-Accept");
    await expectAccessible(page);
    await screenshot(page, "admin-ui-user-test.png");

    const tested = server.logs.filter((l) => l.event === "admin.user_tested").map((l) => [l.user, l.client, l.outcome, l.by]);
    expect(tested).toEqual([
      ["erin", "vpn", "reject", "ui:root2"],
      ["erin", "vpn", "challenge", "ui:root2"],
      ["erin", "vpn", "accept", "ui:root2"],
    ]);
    // The engine logged real logins.
    expect(server.logs.some((l) => l.event === "auth.success" && l.user === "erin")).toBe(true);
    const all = JSON.stringify(server.logs);
    expect(all).not.toContain("erin password 1");
    expect(all).not.toContain("wrong password 9");
    expect(all).not.toContain(`"${code}"`);
    await page.context().close();
  });

  test("an operator sees no test form and a test posted anyway is refused", async () => {
    const page = await (await browser.newContext()).newPage();
    await signIn(page, ui, "op2", PASSWORD, accounts.code("op2"));
    await page.goto(`${ui}/ui/users/erin`);
    expect(await page.$("#login-test-submit")).toBeNull();
    const csrf = (await page.getAttribute("header form input[name=csrf]", "value"))!;
    const r = await page.request.post(`${ui}/ui/users/erin/test`, { form: { csrf, client: "vpn", secret: "erin password 1" }, maxRedirects: 0 });
    expect(r.status()).toBe(403);
    expect(server.logs.filter((l) => l.event === "admin.user_tested")).toHaveLength(3);
    await page.context().close();
  });
});
