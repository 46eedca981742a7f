// Renders docs/configuration.md from the schema, so the reference cannot drift from the code.

import { CONFIG_FIELDS, CONFIG_SECTIONS, CONFIG_TABLE_ARRAYS, type ConfigField, type ConfigTableArray } from "./fields.ts";

const TYPE_NAMES: Record<ConfigField["kind"], string> = {
  string: "string",
  integer: "integer",
  boolean: "boolean",
  "string[]": "list of strings",
  enum: "one of",
  table: "table",
};

function tomlValue(x: unknown): string {
  if (x === undefined) return "";
  if (Array.isArray(x)) return `[${x.map(tomlValue).join(", ")}]`;
  if (typeof x === "object" && x !== null) {
    const entries = Object.entries(x);
    return entries.length === 0 ? "{}" : `{ ${entries.map(([k, val]) => `${k} = ${tomlValue(val)}`).join(", ")} }`;
  }
  return typeof x === "string" ? JSON.stringify(x) : String(x);
}

function row(f: ConfigField): string {
  const type = f.kind === "enum" ? f.must.replace(/^one of /, "") : TYPE_NAMES[f.kind];
  const def =
    f.path === "delivery.allowed_countries" ? "`[region]`" : f.path === "delivery.channels" ? '`["sms", <gateways>, "email"]`' : `\`${tomlValue(f.defaultValue)}\``;
  const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");
  return `| \`${f.key}\` | ${cell(type)} | ${cell(def)} | \`${f.env}\` | ${cell(f.description)} |`;
}

/** A row of an array-of-tables key: no environment column; a key without default is required. */
function tableRow(f: ConfigField): string {
  const type = f.kind === "enum" ? f.must.replace(/^one of /, "") : TYPE_NAMES[f.kind];
  const def = !f.optional ? "required" : f.defaultValue === undefined ? "(none)" : `\`${tomlValue(f.defaultValue)}\``;
  const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");
  return `| \`${f.key}\` | ${cell(type)} | ${cell(def)} | ${cell(f.description)} |`;
}

function tableArraySection(t: ConfigTableArray, level: string): string[] {
  const out = [
    "",
    `${level} [[${t.name}]]`,
    "",
    t.description,
    "",
    "| key | type | default | description |",
    "|---|---|---|---|",
    ...t.fields.map(tableRow),
  ];
  for (const c of t.children) out.push(...tableArraySection(c, `${level}#`));
  return out;
}

const LDAP_TEXT = [
  "",
  "Profiles come from the file only; the one environment variable is the bind password's,",
  "`PORTCULLIS_LDAP_<NAME>_BIND_PASSWORD` (NAME upper-cased, every character other than a letter or",
  "digit as `_`), which overrides `bind_password_file` and `bind_password`. A `PORTCULLIS_LDAP_*`",
  "variable that names no profile is an error. `bind_password_file` is read once at start-up, and a",
  "file readable by group or others is logged as a warning. Errors name the key as `ldap[corp].urls`",
  "(`ldap[0].urls` when the profile has no usable name) and the file, never the value.",
  "",
  "A RADIUS client uses every profile in this order, then local users, unless `client add",
  "--directories` names its own list (e.g. `corp,local`).",
  "",
  "**Security note.** Active Directory lets every user write their own `mobile`, `pager` and",
  "`ipPhone` by default. A user who knows only their password could then point the SMS at their own",
  "phone, or set their own authentication type. Read the phone and the type from attributes users",
  "cannot write (`extensionAttributeN`); a type read from the directory is never `password` unless",
  "`allow_type_password` is set, and a change of an LDAP user's phone number is audited.",
];

const LDAP_EXAMPLE = [
  "```toml",
  "[[ldap]]",
  'name = "corp"',
  'urls = ["ldaps://dc1.corp.example:636", "ldaps://dc2.corp.example:636"]',
  'ca_file = "/etc/portcullis/corp-ca.pem"',
  'bind_dn = "CN=svc-mfa,OU=Service,DC=corp,DC=example"',
  'bind_password_file = "/etc/portcullis/ldap.pass"',
  'base_dn = "DC=corp,DC=example"',
  'user_filter = "(&(objectClass=user)(sAMAccountName={username}))"',
  'phone_attribute = "extensionAttribute7"',
  'type_attribute = "extensionAttribute5"',
  'required_groups = ["CN=VPN Users,OU=Groups,DC=corp,DC=example"]',
  'default_type = "totp"',
  "timeout_ms = 3000",
  "",
  "[[ldap.reply]]",
  'group = "CN=VPN Admins,OU=Groups,DC=corp,DC=example"',
  'attributes = { "Class" = "admins", "Filter-Id" = "admin-acl" }',
  "",
  "[[ldap]]",
  'name = "lab"',
  'urls = ["ldap://ldap.lab.example"]',
  "start_tls = true",
  'bind_dn = "cn=portcullis,ou=services,dc=lab,dc=example"',
  "# bind password from $PORTCULLIS_LDAP_LAB_BIND_PASSWORD",
  'base_dn = "ou=people,dc=lab,dc=example"',
  'user_filter = "(&(objectClass=inetOrgPerson)(uid={username}))"',
  "```",
];

const ENDPOINT_EXAMPLE = [
  "```toml",
  "[[endpoint]]",
  'name = "vpn"',
  'title_text = "ACME VPN sign-in"',
  "touch_timeout_s = 60",
  "require_known_user = true",
  "```",
];

const GATEWAY_TEXT = [
  "",
  "Gateways come from the file only; the one environment variable is the password's,",
  "`PORTCULLIS_DELIVERY_GATEWAY_<NAME>_PASSWORD` (NAME upper-cased, every character other than a",
  "letter or digit as `_`), which overrides `password` and `password_file`. A",
  "`PORTCULLIS_DELIVERY_GATEWAY_*` variable that names no gateway is an error, and so is a name used",
  "twice (also when two names map to one variable). Errors name the key as",
  "`delivery.gateway[backup].url` (`delivery.gateway[0].url` when the entry has no usable name) and",
  "the file, never the value. `[delivery] channels` and every `[[endpoint]] channels` may name only",
  '"sms", "email" and gateway names; an endpoint may name only channels that `[delivery] channels`',
  "lists. A gateway left out of an explicit `[delivery] channels` is unused and logged as a warning.",
];

const GATEWAY_EXAMPLE = [
  "```toml",
  "[delivery]",
  'channels = ["sms", "elks", "email"]   # Twilio first, then 46elks, then e-mail',
  "",
  "[delivery.sms]",
  'url = "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json"',
  'body = "To={to}&From=%2B15017122661&Body={message}"',
  'user = "AC0123456789abcdef0123456789abcdef"',
  'password_file = "/etc/portcullis/twilio.token"',
  "",
  "[[delivery.gateway]]",
  'name = "elks"',
  'url = "https://api.46elks.com/a1/sms"',
  'body = "from=Acme&to={to}&message={message}"',
  'user = "u0123456789abcdef0123456789abcdef"',
  "# password from $PORTCULLIS_DELIVERY_GATEWAY_ELKS_PASSWORD",
  "```",
];

/** The configuration reference as Markdown (deterministic: the committed file must equal it). */
export function renderConfigReference(): string {
  const out: string[] = [
    "# Configuration reference",
    "",
    "<!-- Generated by `bun scripts/gen-config-docs.ts` from src/config/schema.ts. Do not edit by hand. -->",
    "",
    "Portcullis reads one TOML file, then `PORTCULLIS_*` environment variables, then command-line flags;",
    "each later source overrides the earlier. Every option has a default, and with no file at all the",
    "defaults start a working offline appliance (RADIUS + TOTP, SQLite in `./data`).",
    "",
    "- **File:** `--config FILE`, else `$PORTCULLIS_CONFIG`, else the first that exists of",
    "  `DATA_DIR/portcullis.toml` and `/etc/portcullis/portcullis.toml`.",
    "- **Data directory:** `--data-dir DIR`, else `$PORTCULLIS_DATA_DIR`, else `data_dir` in the file, else `./data`.",
    "  Relative paths are resolved against the working directory; `store.path` and `keys.key_file`",
    "  against the data directory.",
    "- **Environment:** `PORTCULLIS_<SECTION>_<KEY>` overrides a key of a section and `PORTCULLIS_<KEY>` a",
    "  top-level key. Numbers and booleans (`true`/`false`) are converted; lists are comma-separated",
    "  (`PORTCULLIS_RADIUS_LISTEN=192.0.2.10:1812,[2001:db8::10]:1812`).",
    "- **Validation:** everything is validated once at start-up. An unknown key is an error, so that a typo",
    "  never silently leaves a default in place. Error messages name the option and where it came from",
    "  but never repeat its value, which may be a secret.",
    "- **Warnings:** settings that weaken a security default are logged as warnings when `serve` starts.",
    "",
    "## Top-level keys",
    "",
    "| key | type | default | environment | description |",
    "|---|---|---|---|---|",
    ...CONFIG_FIELDS.filter((f) => !f.section).map(row),
  ];
  for (const s of CONFIG_SECTIONS) {
    out.push("", `## [${s.name}]`, "", s.description, "", "| key | type | default | environment | description |", "|---|---|---|---|---|");
    out.push(...CONFIG_FIELDS.filter((f) => f.section === s.name).map(row));
  }
  for (const t of CONFIG_TABLE_ARRAYS) {
    out.push(...tableArraySection(t, "##"));
    if (t.name === "ldap") out.push(...LDAP_TEXT, "", "### Example", "", ...LDAP_EXAMPLE);
    if (t.name === "endpoint") out.push("", "### Example", "", ...ENDPOINT_EXAMPLE);
    if (t.name === "delivery.gateway") out.push(...GATEWAY_TEXT, "", "### Example", "", ...GATEWAY_EXAMPLE);
  }
  out.push(
    "",
    "## Example",
    "",
    "```toml",
    'data_dir = "/var/lib/portcullis"',
    'region = "SE"',
    "",
    "[radius]",
    'listen = ["192.0.2.10:1812", "[2001:db8::10]:1812"]',
    "challenge_ttl_s = 120",
    "",
    "[lockout]",
    "password_identity_cap = 4   # below the directory's own lockout threshold",
    "```",
    "",
  );
  return out.join("\n");
}
