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
  }, 180_000);
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
  }, 180_000);

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
  }, 180_000);
});

describe("admin web UI: token import with progress", () => {
  test("a large CSV runs as a job: the page shows N of M, then the result and warnings; one import per account at a time; the page works without script", async () => {
    const COUNT = 40_000;
    const rows = Array.from({ length: COUNT }, (_, i) => `BULK${String(i).padStart(6, "0")},${ERIN_SEED},${i === 0 ? "erin" : i === 1 ? "ghost" : ""}`);
    const big = Buffer.from(`serial,secret_base32,user\n${rows.join("\n")}\n`);
    const context = await browser.newContext();
    const page = await context.newPage();
    await signIn(page, ui, "root2", PASSWORD, accounts.code("root2", 1));
    const csrf = (await page.getAttribute("header form input[name=csrf]", "value"))!;

    // The upload answers at once with the job's page.
    const started = await context.request.post(`${ui}/ui/tokens/import`, { multipart: { csrf, format: "csv", file: { name: "bulk.csv", mimeType: "text/csv", buffer: big } }, maxRedirects: 0 });
    expect(started.status()).toBe(303);
    const job = started.headers().location!;
    expect(job).toMatch(/^\/ui\/tokens\/import\/[A-Za-z0-9_-]{43}$/);
    // While it runs: the page reloads itself without script (meta refresh inside noscript) and loads the polling script; the status says N of M.
    const running = await (await context.request.get(`${ui}${job}`)).text();
    expect(running).toContain('<noscript><meta http-equiv="refresh" content="2"/></noscript>');
    expect(running).toContain('<script src="/ui/assets/import-progress.js" defer="">');
    expect(running).toMatch(/id="import-count">(Reading and checking the file…|\d+ of 40000 imported)</);
    // A second import of the same account is refused while the first runs.
    const second = await context.request.post(`${ui}/ui/tokens/import`, { multipart: { csrf, format: "csv", file: { name: "more.csv", mimeType: "text/csv", buffer: Buffer.from("serial,secret_base32,user\nONEMORE,JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP,\n") } }, maxRedirects: 0 });
    expect(second.status()).toBe(400);
    expect(await second.text()).toContain("An import of yours is still running");

    // The status, polled as the script does: N of M moving forward, then done.
    const samples: Array<{ state: string; phase: string; done: number; total: number }> = [];
    for (let i = 0; i < 1200; i++) {
      const s = (await (await context.request.get(`${ui}${job}/status`)).json()) as { state: string; phase: string; done: number; total: number };
      samples.push(s);
      if (s.state !== "running") break;
      await Bun.sleep(50);
    }
    expect(samples.at(-1)!.state).toBe("done");
    const writing = samples.filter((s) => s.state === "running" && s.phase === "writing");
    expect(writing.some((s) => s.done > 0 && s.done < COUNT)).toBe(true);
    for (const [a, b] of writing.slice(1).map((s, i) => [writing[i]!, s])) expect(b!.done).toBeGreaterThanOrEqual(a!.done);
    for (const s of writing) expect(s.total).toBe(COUNT);
    expect(await (await context.request.get(`${ui}/ui/tokens/import/${"x".repeat(43)}/status`)).json()).toEqual({ state: "gone" });

    // The progress page in the browser, with its script: it ends on the result and its warnings.
    await page.goto(`${ui}${job}`);
    expect(await page.textContent("#imported")).toContain(`Imported ${COUNT} tokens; 1 assigned`);
    expect(await page.textContent("#import-warnings")).toContain("1 tokens name a user that does not exist");
    await expectAccessible(page);
    await screenshot(page, "admin-ui-import.png");
    expect(server.logs.some((l) => l.event === "admin.tokens_imported" && l.count === COUNT && l.by === "ui:root2")).toBe(true);
    // Without a session: the sign-in page, not the job.
    expect((await (await browser.newContext()).request.get(`${ui}${job}/status`, { maxRedirects: 0 })).status()).toBe(303);
    await context.close();
  }, 180_000);

  test("the progress page while running passes axe, and the script updates it and reloads to the result", async () => {
    const rows = Array.from({ length: 40_000 }, (_, i) => `MORE${String(i).padStart(6, "0")},${ERIN_SEED},`);
    const context = await browser.newContext();
    const page = await context.newPage();
    await signIn(page, ui, "root2", PASSWORD, accounts.code("root2", 2));
    await page.goto(`${ui}/ui/tokens`);
    await page.selectOption("#f-format", "csv");
    await page.setInputFiles("#f-file", { name: "more.csv", mimeType: "text/csv", buffer: Buffer.from(`serial,secret_base32,user\n${rows.join("\n")}\n`) });
    // Hold the script back until axe has looked at the page as the server rendered it.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    await page.route("**/ui/assets/import-progress.js", async (route) => {
      await held;
      await route.continue();
    });
    await page.click("#import-submit");
    await page.waitForSelector("#import-progress, #imported");
    if (await page.$("#import-progress")) {
      await expectAccessible(page);
      await screenshot(page, "admin-ui-import-progress.png");
    }
    release();
    expect(await page.textContent("#imported", { timeout: 60_000 })).toContain("Imported 40000 tokens");
    await context.close();
  }, 180_000);
});

describe("admin web UI: Magic Link endpoints", () => {
  test("add a profile, edit it (a bad value named next to its field), the CLI's endpoint set on the same operation, remove; an operator may not edit", async () => {
    const page = await (await browser.newContext()).newPage();
    await signIn(page, ui, "root2", PASSWORD, accounts.code("root2", 3));
    await page.goto(`${ui}/ui/endpoints`);
    await page.fill("#f-endpointName", "shop");
    await page.click("#add-endpoint-submit");
    expect(new URL(page.url()).pathname).toBe("/ui/endpoints/shop");
    expect(await page.textContent("#notice")).toContain("added");
    expect(await page.inputValue("#f-touch_timeout_s")).toBe("90");
    await expectAccessible(page);

    await page.fill("#f-title_text", "Shop sign-in");
    await page.fill("#f-touch_timeout_s", "5");
    await page.click("#save-endpoint");
    expect(await page.textContent("#f-touch_timeout_s-error")).toContain("between 15 and 300");
    expect(await page.getAttribute("#f-touch_timeout_s", "aria-invalid")).toBe("true");
    // What was typed is kept in the form.
    expect(await page.inputValue("#f-title_text")).toBe("Shop sign-in");
    await expectAccessible(page);
    await page.fill("#f-touch_timeout_s", "60");
    await page.selectOption("#f-require_known_user", "true");
    await page.click("#save-endpoint");
    expect(await page.textContent("#notice")).toContain("saved");
    await screenshot(page, "admin-ui-endpoint.png");
    const listed = (JSON.parse(await appliance.cli(["endpoint", "list", "--json"])) as Array<Record<string, unknown>>).find((e) => e.name === "shop")!;
    expect(listed).toMatchObject({ title_text: "Shop sign-in", touch_timeout_s: 60, require_known_user: true, per_number_per_hour: 30 });
    expect(server.logs.filter((l) => l.event === "admin.endpoint_updated").map((l) => [l.endpoint, l.fields, l.by])).toEqual([["shop", ["title_text", "touch_timeout_s", "require_known_user"], "ui:root2"]]);

    // The CLI changes one key through the same operation; the page shows it.
    expect(await appliance.cli(["endpoint", "set", "shop", "--per-number-per-hour", "20"])).toContain("changed per_number_per_hour");
    const bad = await appliance.run(["endpoint", "set", "shop", "--touch-timeout-s", "5"]);
    expect([bad.code, bad.stderr.trim()]).toEqual([2, "portcullis: --touch-timeout-s must be a number between 15 and 300"]);
    await page.goto(`${ui}/ui/endpoints/shop`);
    expect(await page.inputValue("#f-per_number_per_hour")).toBe("20");
    expect(await page.inputValue("#f-title_text")).toBe("Shop sign-in");

    // An operator reads the list but may not open the editor.
    const op = await (await browser.newContext()).newPage();
    await signIn(op, ui, "op2", PASSWORD, accounts.code("op2", 1));
    await op.goto(`${ui}/ui/endpoints`);
    expect(await op.$("a[href='/ui/endpoints/shop']")).toBeNull();
    expect((await op.request.get(`${ui}/ui/endpoints/shop`, { maxRedirects: 0 })).status()).toBe(403);
    await op.context().close();

    await page.click("#remove-endpoint");
    expect(await page.textContent("#notice")).toContain("Endpoint removed");
    expect((JSON.parse(await appliance.cli(["endpoint", "list", "--json"])) as Array<{ name: string }>).map((e) => e.name)).toEqual(["default"]);
    await page.context().close();
  }, 180_000);
});
