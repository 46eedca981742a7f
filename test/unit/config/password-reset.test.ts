// `[[password_reset]]` portals: defaults, and the cross-checks (name twice, unknown directory, no
// approvers, groups without a directory) with messages naming the portal and never a value.

import { expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadConfig } from "../../../src/config/index.ts";

function load(toml: string) {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-reset-"));
  const file = join(dir, "portcullis.toml");
  writeFileSync(file, toml);
  return loadConfig({ env: {}, configFile: file, cwd: dir });
}

const LDAP = '[[ldap]]\nname = "corp"\nurls = ["ldaps://dc.example"]\nbind_dn = "cn=svc"\nbind_password = "x"\nbase_dn = "dc=example"\nuser_filter = "(uid={username})"\n';

test("none by default; a portal takes the defaults", () => {
  expect(load("").config.password_reset).toEqual([]);
  const [p] = load('[[password_reset]]\nname = "default"\napprovers = ["helpdesk1"]\n').config.password_reset;
  expect(p).toEqual({
    name: "default",
    directory: "local",
    approvers: ["helpdesk1"],
    approver_groups: [],
    approver_role: "your helpdesk",
    approval_timeout_s: 600,
    session_ttl_s: 1800,
    min_password_length: 12,
    per_user_per_hour: 5,
    per_address_per_hour: 20,
    overall_per_hour: 200,
  });
});

test("a portal on an [[ldap]] profile with approver groups", () => {
  const [p] = load(`${LDAP}[[password_reset]]\nname = "corp"\ndirectory = "corp"\napprover_groups = ["cn=helpdesk,dc=example"]\n`).config.password_reset;
  expect(p).toMatchObject({ directory: "corp", approver_groups: ["cn=helpdesk,dc=example"] });
});

test.each([
  ['[[password_reset]]\nname = "a"\napprovers = ["h"]\n[[password_reset]]\nname = "a"\napprovers = ["h"]\n', "password_reset[a] is declared twice"],
  ['[[password_reset]]\nname = "a"\ndirectory = "nope"\napprovers = ["h"]\n', "password_reset[a].directory names no [[ldap]] profile"],
  ['[[password_reset]]\nname = "a"\n', "password_reset[a] needs approvers or approver_groups"],
  ['[[password_reset]]\nname = "a"\napprover_groups = ["cn=g"]\n', "password_reset[a].approver_groups needs an [[ldap]] directory"],
  ['[[password_reset]]\nname = "a"\napprovers = ["h"]\nsurprise = 1\n', "password_reset[a].surprise is not a known option"],
  ['[[password_reset]]\nname = "a"\napprovers = ["h"]\napproval_timeout_s = 5\n', "password_reset[a].approval_timeout_s must be a number between 60 and 3600"],
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
