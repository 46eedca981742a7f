// The admin web UI's sign-in by directory group, in headless Chromium against the compiled server
// and a throwaway slapd (LDAPS, memberof overlay): a member of the admin group signs in with the
// directory password and a computed code of their TOTP token in Portcullis, and creates a user; a
// member of the operator group is refused a change (403); a user in no role group, and a replayed
// code, are refused with the generic text; a local account wins a name clash.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { randomBytes } from "node:crypto";
import type { Browser, Page } from "playwright-core";
import { decodeBase32, encodeBase32, generateTOTP } from "../../src/otp/index.ts";
import { Appliance, tomlString, type ServerProcess } from "./helpers/appliance.ts";
import { AdminAccounts, expectAccessible, launchChromium, screenshot, signIn } from "./helpers/admin-ui.ts";
import { BASE_DN, GROUPS, PEOPLE, SERVICE_DN, SERVICE_PASSWORD, runSlapdTests, startSlapd, type Slapd } from "./helpers/slapd.ts";

setDefaultTimeout(120_000);

const ADMINS = `cn=portcullis-admins,${GROUPS}`;
const OPERATORS = `cn=portcullis-operators,${GROUPS}`;
const ROOTS = `cn=portcullis-root,${GROUPS}`;
const PW = { ada: "ada-Passw0rd-1", olaf: "olaf-Passw0rd-1", nils: "nils-Passw0rd-1" } as const;

describe.skipIf(!runSlapdTests)("admin web UI: sign-in by LDAP group", () => {
  let slapd: Slapd;
  let app: Appliance;
  let server: ServerProcess;
  let browser: Browser;
  let ui: string;
  const seeds: Record<string, Uint8Array> = {};
  const code = (name: string, offset = 0) => generateTOTP({ secret: seeds[name]!, algorithm: "SHA1", digits: 6, period: 30 }, { now: Date.now() + offset * 30_000 });

  beforeAll(async () => {
    slapd = await startSlapd();
    const person = (uid: string) => `dn: uid=${uid},${PEOPLE}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: ${uid}\ncn: ${uid} person\nsn: ${uid}\nuserPassword: ${PW[uid as keyof typeof PW]}\n`;
    await slapd.modify(
      [
        person("ada"),
        person("olaf"),
        person("nils"),
        `dn: ${ADMINS}\nchangetype: add\nobjectClass: groupOfNames\ncn: portcullis-admins\nmember: uid=ada,${PEOPLE}\n`,
        `dn: ${OPERATORS}\nchangetype: add\nobjectClass: groupOfNames\ncn: portcullis-operators\nmember: uid=olaf,${PEOPLE}\nmember: uid=ada,${PEOPLE}\n`,
        `dn: ${ROOTS}\nchangetype: add\nobjectClass: groupOfNames\ncn: portcullis-root\nmember: cn=nobody,${BASE_DN}\n`,
      ].join("\n"),
    );
    app = new Appliance();
    app.writeConfig(`region = "SE"
[http]
tls = false

[[ldap]]
name = "corp"
urls = [${tomlString(slapd.ldapsUrl)}]
ca_file = ${tomlString(slapd.caFile)}
bind_dn = ${tomlString(SERVICE_DN)}
bind_password = ${tomlString(SERVICE_PASSWORD)}
base_dn = ${tomlString(BASE_DN)}
user_filter = "(&(objectClass=inetOrgPerson)(uid={username}))"
timeout_ms = 3000

[admin_ui]
ldap_profile = "corp"
root_group = ${tomlString(ROOTS)}
admin_group = ${tomlString(ADMINS)}
operator_group = ${tomlString(OPERATORS)}
`);
    // The hybrid records that hold the directory users' TOTP tokens (as for RADIUS logins).
    for (const name of ["ada", "olaf", "nils"]) {
      await app.cli(["user", "add", name, "--directory", "corp"]);
      const seed = encodeBase32(randomBytes(20));
      seeds[name] = decodeBase32(seed);
      await app.cli(["token", "add", name, "--totp", "--secret", seed]);
    }
    server = await app.serve();
    ui = `http://127.0.0.1:${server.adminPort}`;
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await app?.[Symbol.asyncDispose]();
    await slapd?.stop();
  });

  async function page(): Promise<Page> {
    return (await browser.newContext()).newPage();
  }

  test("an admin-group member signs in with the directory password and a code, and creates a user; the code again is refused", async () => {
    const p = await page();
    const used = code("ada");
    await signIn(p, ui, "ada", PW.ada, used);
    expect(new URL(p.url()).pathname).toBe("/ui/");
    // Also in the operator group: the highest role wins.
    expect(await p.textContent("#whoami")).toContain("ldap:corp:ada (admin)");
    await p.goto(`${ui}/ui/users`);
    await p.fill("#f-username", "grace");
    await p.fill("#f-password", "grace password");
    await p.click("#add-user-submit");
    expect(new URL(p.url()).pathname).toBe("/ui/users/grace");
    expect(JSON.parse(await app.cli(["user", "show", "grace", "--json"])).username).toBe("grace");
    // The own-account page says the password is the directory's, and offers no change.
    await p.goto(`${ui}/ui/account`);
    expect(await p.textContent("#directory-password")).toContain("directory");
    expect(await p.$("#change-password-submit")).toBeNull();
    await expectAccessible(p);
    await screenshot(p, "admin-ui-directory-account.png");

    const again = await page();
    await signIn(again, ui, "ada", PW.ada, used);
    expect(await again.textContent("#sign-in-error")).toContain("not right");
    await again.context().close();
    await p.context().close();

    expect(server.logs.some((l) => l.event === "ui.signed_in" && l.account === "ldap:corp:ada" && l.role === "admin" && l.source === "ldap")).toBe(true);
    expect(server.logs.some((l) => l.event === "admin.user_added" && l.by === "ui:ldap:corp:ada")).toBe(true);
    expect(server.logs.some((l) => l.event === "ui.sign_in_failed" && l.reason === "replayed_code")).toBe(true);
  });

  test("an operator-group member signs in and is refused a change", async () => {
    const p = await page();
    await signIn(p, ui, "olaf", PW.olaf, code("olaf"));
    expect(await p.textContent("#whoami")).toContain("(operator)");
    await p.goto(`${ui}/ui/users`);
    expect(await p.$("#add-user")).toBeNull();
    const csrf = (await p.getAttribute("header form input[name=csrf]", "value"))!;
    const create = await p.request.post(`${ui}/ui/users`, { form: { csrf, username: "eve" }, maxRedirects: 0 });
    expect(create.status()).toBe(403);
    expect((await app.run(["user", "show", "eve"])).code).not.toBe(0);
    await p.context().close();
  });

  test("refused alike: a user in no role group, a wrong directory password, an unknown name", async () => {
    const p = await page();
    await signIn(p, ui, "nils", PW.nils, code("nils"));
    expect(await p.textContent("#sign-in-error")).toContain("not right");
    const generic = await p.textContent("#sign-in-error");
    await signIn(p, ui, "olaf", "wrong-Passw0rd-1", code("olaf", 1));
    expect(await p.textContent("#sign-in-error")).toBe(generic);
    await signIn(p, ui, "nobody", PW.nils, code("nils", 1));
    expect(await p.textContent("#sign-in-error")).toBe(generic);
    expect(new URL(p.url()).pathname).toBe("/ui/sign-in");
    await p.context().close();
    const reasons = server.logs.filter((l) => l.event === "ui.sign_in_failed").map((l) => l.reason);
    expect(reasons).toEqual(expect.arrayContaining(["no_role", "bad_password", "unknown_account"]));
    // No directory name appears in the failure log lines, only hashes.
    expect(JSON.stringify(server.logs.filter((l) => l.event === "ui.sign_in_failed"))).not.toContain('"nils"');
  });

  test("a local account wins a name clash: the directory password does not sign it in", async () => {
    const accounts = new AdminAccounts(app);
    await accounts.add("olaf", "root", "local olaf password 1");
    const p = await page();
    await signIn(p, ui, "olaf", PW.olaf, code("olaf", 1));
    expect(await p.textContent("#sign-in-error")).toContain("not right");
    await signIn(p, ui, "olaf", "local olaf password 1", accounts.code("olaf"));
    expect(await p.textContent("#whoami")).toContain("olaf (root)");
    await p.context().close();
  });
});
