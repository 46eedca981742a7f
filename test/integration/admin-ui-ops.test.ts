// The admin web UI's account and operations pages in headless Chromium against the real server
// process: an account changing its own password (its other session ends, this one stays), a test
// login from a user's page, a token import with its progress page, and editing a Magic Link
// endpoint. axe-core on every new page.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Browser } from "playwright-core";
import { AdminAccounts, expectAccessible, launchChromium, screenshot, signIn } from "./helpers/admin-ui.ts";
import { Appliance, type ServerProcess } from "./helpers/appliance.ts";

const PASSWORD = "admin password 12345";

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
  await Promise.all([accounts.add("pw1", "operator", PASSWORD), accounts.add("root2", "root", PASSWORD)]);
  server = await appliance.serve();
  ui = `http://127.0.0.1:${server.adminPort}`;
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
