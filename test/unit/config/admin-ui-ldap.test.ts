// `[admin_ui]` sign-in by directory group: off by default; the profile must exist and at least one
// role group must be set.

import { expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadConfig } from "../../../src/config/index.ts";

function load(toml: string) {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-adminui-"));
  const file = join(dir, "portcullis.toml");
  writeFileSync(file, toml);
  return loadConfig({ env: {}, configFile: file, cwd: dir });
}

const LDAP = '[[ldap]]\nname = "corp"\nurls = ["ldaps://dc.example"]\nbind_dn = "cn=svc"\nbind_password = "x"\nbase_dn = "dc=example"\nuser_filter = "(uid={username})"\n';

test("off by default; a profile with a role group", () => {
  expect(load("").config.admin_ui).toMatchObject({ ldap_profile: "", root_group: "", admin_group: "", operator_group: "" });
  expect(load(`${LDAP}[admin_ui]\nldap_profile = "corp"\nadmin_group = "cn=admins,dc=example"\n`).config.admin_ui).toMatchObject({ ldap_profile: "corp", admin_group: "cn=admins,dc=example" });
});

test.each([
  ['[admin_ui]\nldap_profile = "nope"\nadmin_group = "cn=g"\n', "admin_ui.ldap_profile names no [[ldap]] profile"],
  [`${LDAP}[admin_ui]\nldap_profile = "corp"\n`, "admin_ui.ldap_profile needs root_group, admin_group or operator_group"],
  ['[admin_ui]\nldap_profile = "bad name!"\n', "admin_ui.ldap_profile"],
])("refused: %p", (toml, message) => {
  let err: unknown;
  try {
    load(toml);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ConfigError);
  expect((err as Error).message).toContain(message);
});
