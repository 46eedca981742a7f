// The committed configuration reference must match the schema (regenerate with `bun scripts/gen-config-docs.ts`).
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CONFIG_FIELDS, CONFIG_TABLE_ARRAYS, renderConfigReference } from "../../../src/config/index.ts";

test("docs/configuration.md is up to date (run: bun scripts/gen-config-docs.ts)", () => {
  const committed = readFileSync(join(import.meta.dirname, "../../../docs/configuration.md"), "utf8");
  expect(committed).toBe(renderConfigReference());
});

test("every option has a description and an environment variable", () => {
  for (const f of CONFIG_FIELDS) {
    expect(f.description.length).toBeGreaterThan(10);
    expect(f.env).toMatch(/^PORTCULLIS_[A-Z_]+$/);
  }
});

test("the [[ldap]] and [[ldap.reply]] keys are documented, required ones marked", () => {
  const doc = renderConfigReference();
  const ldap = CONFIG_TABLE_ARRAYS.find((t) => t.name === "ldap")!;
  expect(ldap.fields.map((f) => f.key)).toEqual([
    "name", "urls", "start_tls", "ca_file", "bind_dn", "bind_password_file", "bind_password", "base_dn", "user_filter",
    "phone_attribute", "email_attribute", "type_attribute", "token_attribute", "allow_type_password", "required_groups", "default_type", "timeout_ms", "pool_size", "pipeline", "bind_pool_size",
  ]);
  expect(ldap.children.map((c) => [c.name, c.fields.map((f) => f.key)])).toEqual([["ldap.reply", ["group", "attributes"]]]);
  expect(doc).toContain("## [[ldap]]");
  expect(doc).toContain("### [[ldap.reply]]");
  for (const f of [...ldap.fields, ...ldap.children[0]!.fields]) expect(doc).toContain(`| \`${f.key}\` |`);
  expect(doc).toContain("| `bind_dn` | string | required |");
  expect(doc).toContain("| `ca_file` | string | (none) |");
  expect(doc).toContain("PORTCULLIS_LDAP_<NAME>_BIND_PASSWORD");
});
