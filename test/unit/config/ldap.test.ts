// [[ldap]] profiles: validation errors that name ldap[NAME].key and the source but never a value,
// the bind password from env / file / config, warnings, and the mapping onto LdapProfile.
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, configWarnings, ldapPasswordEnv, ldapProfiles, loadConfig } from "../../../src/config/index.ts";

const NOFILE = "/nonexistent/portcullis.toml";
const SECRET = "Sup3r-Secret-Bind-Pa55";
let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-ldap-config-"));
  dirs.push(dir);
  return dir;
}

/** A minimal valid profile as TOML lines; `over` replaces or (with undefined) removes keys. */
function profile(over: Record<string, string | undefined> = {}): string {
  const keys: Record<string, string | undefined> = {
    name: '"corp"',
    urls: '["ldaps://dc1.corp.example:636", "ldaps://dc2.corp.example"]',
    bind_dn: '"CN=svc-mfa,OU=Service,DC=corp,DC=example"',
    bind_password: JSON.stringify(SECRET),
    base_dn: '"DC=corp,DC=example"',
    user_filter: '"(&(objectClass=user)(sAMAccountName={username}))"',
    ...over,
  };
  return ["[[ldap]]", ...Object.entries(keys).filter(([, v]) => v !== undefined).map(([k, v]) => `${k} = ${v}`)].join("\n") + "\n";
}

function load(toml: string, env: Record<string, string> = {}, dir = tempDir()) {
  const file = join(dir, "portcullis.toml");
  writeFileSync(file, toml);
  return { ...loadConfig({ configFile: file, env, systemFile: NOFILE, cwd: dir }), path: file };
}

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("a valid profile", () => {
  test("defaults, and the mapping onto LdapProfile", () => {
    const { config } = load(`region = "SE"\n` + profile());
    expect(config.ldap).toHaveLength(1);
    expect(ldapProfiles(config)).toEqual([
      {
        name: "corp",
        urls: ["ldaps://dc1.corp.example:636", "ldaps://dc2.corp.example"],
        startTLS: false,
        plaintext: false,
        bindDN: "CN=svc-mfa,OU=Service,DC=corp,DC=example",
        bindPassword: SECRET,
        baseDN: "DC=corp,DC=example",
        userFilter: "(&(objectClass=user)(sAMAccountName={username}))",
        phoneAttribute: "mobile",
        emailAttribute: "mail",
        allowTypePassword: false,
        requiredGroups: [],
        defaultType: "totp",
        timeoutMs: 3000,
        poolSize: 4,
        pipeline: 8,
        bindPoolSize: 32,
        reply: [],
        region: "SE",
      },
    ]);
    expect(configWarnings(config).filter((w) => w.includes("ldap"))).toEqual([]);
  });

  test("no [[ldap]] at all: no profiles", () => {
    expect(loadConfig({ env: {}, systemFile: NOFILE, cwd: tempDir() }).config.ldap).toEqual([]);
  });

  test("every key of the issue's example, two profiles in order, reply entries", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "ca.pem"), "-----BEGIN CERTIFICATE-----\n");
    const toml =
      profile({
        start_tls: "false",
        ca_file: '"ca.pem"',
        type_attribute: '"extensionAttribute5"',
        token_attribute: '"extensionAttribute6"',
        allow_type_password: "false",
        required_groups: '["CN=VPN Users,OU=Groups,DC=corp,DC=example"]',
        default_type: "11",
        timeout_ms: "2500",
        pool_size: "2",
        pipeline: "3",
        bind_pool_size: "16",
        phone_attribute: '"extensionAttribute7"',
        email_attribute: '"userPrincipalName"',
      }) +
      '[[ldap.reply]]\ngroup = "CN=VPN Admins,OU=Groups,DC=corp,DC=example"\nattributes = { "Class" = "admins", "Filter-Id" = "admin-acl", "Session-Timeout" = 3600, "Service-Type" = "Framed-User", "Cisco-AVPair" = "shell:priv-lvl=15" }\n' +
      profile({ name: '"lab"', urls: '["ldap://127.0.0.1:389"]', start_tls: "true", user_filter: '"(uid={username})"', default_type: '"Concatenated"' });
    const { config } = load(toml, {}, dir);
    const [corp, lab] = ldapProfiles(config);
    expect(corp).toMatchObject({ caFile: join(dir, "ca.pem"), typeAttribute: "extensionAttribute5", tokenAttribute: "extensionAttribute6", defaultType: "totp", timeoutMs: 2500, poolSize: 2, pipeline: 3, bindPoolSize: 16 });
    expect(corp!.requiredGroups).toEqual(["CN=VPN Users,OU=Groups,DC=corp,DC=example"]);
    expect(corp!.reply).toEqual([
      {
        group: "CN=VPN Admins,OU=Groups,DC=corp,DC=example",
        attributes: { Class: "admins", "Filter-Id": "admin-acl", "Session-Timeout": 3600, "Service-Type": "Framed-User", "Cisco-AVPair": "shell:priv-lvl=15" },
      },
    ]);
    expect(lab).toMatchObject({ name: "lab", startTLS: true, plaintext: false, defaultType: "concatenated", reply: [] });
  });

  test("default_type password is accepted with allow_type_password, and warned about", () => {
    const { config } = load(profile({ default_type: '"password"', allow_type_password: "true" }));
    expect(ldapProfiles(config)[0]!.defaultType).toBe("password");
    expect(configWarnings(config).some((w) => w.includes("ldap[corp].allow_type_password"))).toBe(true);
  });
});

describe("errors name ldap[NAME].key and the file, never the value", () => {
  test.each([
    ["a missing key", { bind_dn: undefined }, "config: ldap[corp].bind_dn is required"],
    ["an unknown key", { bind_pasword: '"x"' }, "config: ldap[corp].bind_pasword is not a known option"],
    ["empty urls", { urls: "[]" }, "config: ldap[corp].urls must be a non-empty list of ldap:// or ldaps:// URLs"],
    ["an http URL", { urls: '["https://dc1"]' }, "config: ldap[corp].urls must be a non-empty list"],
    ["a URL with a DN", { urls: '["ldap://dc1/DC=corp"]' }, "config: ldap[corp].urls must be"],
    ["a filter without {username}", { user_filter: '"(uid=alice)"' }, "config: ldap[corp].user_filter must be a parenthesised LDAP filter containing {username}"],
    ["an unparenthesised filter", { user_filter: '"uid={username}"' }, "config: ldap[corp].user_filter must be"],
    ["two filters side by side", { user_filter: '"(uid={username})(cn=x)"' }, "config: ldap[corp].user_filter must be"],
    ["unbalanced parentheses", { user_filter: '"(&(uid={username})"' }, "config: ldap[corp].user_filter must be"],
    ["timeout below 100", { timeout_ms: "99" }, "config: ldap[corp].timeout_ms must be a number between 100 and 60000"],
    ["timeout above 60000", { timeout_ms: "60001" }, "config: ldap[corp].timeout_ms must be a number between 100 and 60000"],
    ["pool_size 0", { pool_size: "0" }, "config: ldap[corp].pool_size must be a number between 1 and 64"],
    ["pool_size 65", { pool_size: "65" }, "config: ldap[corp].pool_size must be a number between 1 and 64"],
    ["bind_pool_size 0", { bind_pool_size: "0" }, "config: ldap[corp].bind_pool_size must be a number between 1 and 64"],
    ["bind_pool_size 65", { bind_pool_size: "65" }, "config: ldap[corp].bind_pool_size must be a number between 1 and 64"],
    ["bind_pool_size 2.5", { bind_pool_size: "2.5" }, "config: ldap[corp].bind_pool_size must be a number between 1 and 64"],
    ["pipeline 0", { pipeline: "0" }, "config: ldap[corp].pipeline must be a number between 1 and 64"],
    ["an unknown type", { default_type: '"sms"' }, "config: ldap[corp].default_type must be an authentication type name or number 1-11"],
    ["type 12", { default_type: "12" }, "config: ldap[corp].default_type must be"],
    ["password without allow_type_password", { default_type: "1" }, "config: ldap[corp].default_type may be password (no second factor) only with allow_type_password = true"],
    ["the reserved name local", { name: '"local"' }, "config: ldap[local].name must be"],
    ["a name with a space", { name: '"my corp"' }, "config: ldap[0].name must be"],
    ["both password keys", { bind_password_file: '"/etc/passwd"' }, "config: ldap[corp] must set only one of bind_password and bind_password_file"],
    ["no password at all", { bind_password: undefined }, "config: ldap[corp] needs bind_password_file, bind_password or $PORTCULLIS_LDAP_CORP_BIND_PASSWORD"],
    ["an empty bind password", { bind_password: '""' }, "config: ldap[corp].bind_password must be a non-empty string"],
    ["an unreadable ca_file", { ca_file: '"/nonexistent/ca.pem"' }, "config: ldap[corp].ca_file cannot be read"],
    ["a bad attribute name", { phone_attribute: '"mobile phone"' }, "config: ldap[corp].phone_attribute must be an attribute name"],
    ["an unreadable bind_password_file", { bind_password: undefined, bind_password_file: '"/nonexistent/pass"' }, "config: ldap[corp].bind_password_file cannot be read (ENOENT)"],
  ] as const)("%s", (_label, over, message) => {
    const dir = tempDir();
    const file = join(dir, "portcullis.toml");
    const err = errorOf(() => load(profile(over as Record<string, string | undefined>), {}, dir));
    expect(err.message).toStartWith(message);
    expect(err.message).toContain(`(from ${file})`);
    expect(err.message).not.toContain(SECRET);
    expect(err.message).not.toContain("DC=corp");
    expect(err.message.split("\n")).toHaveLength(1);
  });

  test("a profile without a usable name is named by its index", () => {
    const err = errorOf(() => load(profile() + profile({ name: undefined, urls: "[]" })));
    expect(err.message).toStartWith("config: ldap[1].name is required");
  });

  test("duplicate names, also when they differ only in case or in the env mapping", () => {
    expect(errorOf(() => load(profile() + profile())).message).toStartWith("config: ldap[corp].name must be unique (it clashes with ldap[corp])");
    expect(errorOf(() => load(profile() + profile({ name: '"CORP"' }))).message).toStartWith("config: ldap[CORP].name must be unique");
    expect(errorOf(() => load(profile({ name: '"a-b"' }) + profile({ name: '"a.b"' }))).message).toStartWith("config: ldap[a.b].name must be unique");
  });

  test("ldap given as a table instead of an array of tables", () => {
    expect(errorOf(() => load('[ldap]\nname = "corp"\n')).message).toStartWith("config: ldap must be an array of tables ([[ldap]])");
  });

  test("a wrong value type in a table never echoes the value", () => {
    const err = errorOf(() => load(profile({ bind_password: "12345" })));
    expect(err.message).toStartWith("config: ldap[corp].bind_password must be a non-empty string");
    expect(err.message).not.toContain("12345");
  });
});

describe("[[ldap.reply]]", () => {
  const reply = (attrs: string, group = '"CN=G,DC=corp"') => `[[ldap.reply]]\ngroup = ${group}\nattributes = { ${attrs} }\n`;

  test.each([
    ['"No-Such-Attribute" = "x"', "config: ldap[corp].reply[0].attributes.No-Such-Attribute is not an attribute of the embedded RADIUS dictionaries"],
    ['"Message-Authenticator" = "x"', "config: ldap[corp].reply[0].attributes.Message-Authenticator is set by the server"],
    ['"State" = "x"', "config: ldap[corp].reply[0].attributes.State is set by the server"],
    ['"User-Password" = "x"', "config: ldap[corp].reply[0].attributes.User-Password is set by the server"],
    ['"Session-Timeout" = "forever"', "config: ldap[corp].reply[0].attributes.Session-Timeout has a value that attribute cannot carry (type integer)"],
    ['"Session-Timeout" = 1.5', "config: ldap[corp].reply[0].attributes must be a table of RADIUS attribute names to strings or integers"],
    ['"Class" = true', "config: ldap[corp].reply[0].attributes must be a table"],
  ])("%s", (attrs, message) => {
    const err = errorOf(() => load(profile() + reply(attrs)));
    expect(err.message).toStartWith(message);
    expect(err.message).not.toContain("forever");
  });

  test("the second entry is named by its index; a missing group is named", () => {
    const err = errorOf(() => load(profile() + reply('"Class" = "a"') + '[[ldap.reply]]\nattributes = { "Class" = "b" }\n'));
    expect(err.message).toStartWith("config: ldap[corp].reply[1].group is required");
    expect(errorOf(() => load(profile() + reply('"Class" = "a"') + '[[ldap.reply]]\ngroup = "g"\nattributes = {}\nattrs = {}\n')).message).toStartWith(
      "config: ldap[corp].reply[1].attrs is not a known option",
    );
  });

  test("vendor attributes from any embedded dictionary are accepted by name, case-insensitively", () => {
    const { config } = load(profile() + reply('"cisco-avpair" = "shell:priv-lvl=15", "MS-Primary-DNS-Server" = "192.0.2.53", "Juniper-Local-User-Name" = "admin"'));
    expect(Object.keys(config.ldap[0]!.reply[0]!.attributes)).toEqual(["cisco-avpair", "MS-Primary-DNS-Server", "Juniper-Local-User-Name"]);
  });
});

describe("the bind password", () => {
  test("env name: upper-cased, non-alphanumerics as _", () => {
    expect(ldapPasswordEnv("corp")).toBe("PORTCULLIS_LDAP_CORP_BIND_PASSWORD");
    expect(ldapPasswordEnv("ad-eu.west_2")).toBe("PORTCULLIS_LDAP_AD_EU_WEST_2_BIND_PASSWORD");
  });

  test("from the environment: overrides the config and the file, and satisfies the requirement alone", () => {
    const fromEnv = load(profile(), { PORTCULLIS_LDAP_CORP_BIND_PASSWORD: "from-env" }).config.ldap[0]!;
    expect([fromEnv.bind_password, fromEnv.bind_password_source]).toEqual(["from-env", "env"]);
    const onlyEnv = load(profile({ bind_password: undefined }), { PORTCULLIS_LDAP_CORP_BIND_PASSWORD: "from-env" }).config.ldap[0]!;
    expect(onlyEnv.bind_password).toBe("from-env");
    const overFile = load(profile({ bind_password: undefined, bind_password_file: '"/nonexistent/pass"' }), { PORTCULLIS_LDAP_CORP_BIND_PASSWORD: "from-env" }).config.ldap[0]!;
    expect(overFile.bind_password).toBe("from-env");
  });

  test("an empty env password is refused (it would be an unauthenticated bind)", () => {
    expect(errorOf(() => load(profile(), { PORTCULLIS_LDAP_CORP_BIND_PASSWORD: "" })).message).toBe("config: PORTCULLIS_LDAP_CORP_BIND_PASSWORD must not be empty");
  });

  test("a PORTCULLIS_LDAP_ variable for no configured profile is an error (a typo must not go unnoticed)", () => {
    const err = errorOf(() => load(profile(), { PORTCULLIS_LDAP_CROP_BIND_PASSWORD: SECRET }));
    expect(err.message).toStartWith("config: PORTCULLIS_LDAP_CROP_BIND_PASSWORD names no [[ldap]] profile");
    expect(err.message).not.toContain(SECRET);
  });

  test("from a file, read at load with one trailing newline dropped; relative to the working directory", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "ldap.pass"), `${SECRET}\n`, { mode: 0o600 });
    chmodSync(join(dir, "ldap.pass"), 0o600);
    const { config } = load(profile({ bind_password: undefined, bind_password_file: '"ldap.pass"' }), {}, dir);
    expect(config.ldap[0]).toMatchObject({ bind_password: SECRET, bind_password_source: "file", bind_password_file: join(dir, "ldap.pass"), bind_password_file_mode: 0o600 });
    expect(configWarnings(config).filter((w) => w.includes("ldap"))).toEqual([]);
  });

  test("a group- or world-readable file loads but warns, without the password", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "ldap.pass"), SECRET);
    chmodSync(join(dir, "ldap.pass"), 0o644);
    const { config } = load(profile({ bind_password: undefined, bind_password_file: '"ldap.pass"' }), {}, dir);
    const warnings = configWarnings(config).filter((w) => w.includes("ldap"));
    expect(warnings).toEqual(["ldap[corp].bind_password_file is readable by group or others (mode 0644); chmod 600 it"]);
  });

  test("an empty file is refused", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "ldap.pass"), "\n");
    const err = errorOf(() => load(profile({ bind_password: undefined, bind_password_file: '"ldap.pass"' }), {}, dir));
    expect(err.message).toStartWith("config: ldap[corp].bind_password_file is empty");
  });

  test("no error or warning ever holds the password", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "ldap.pass"), SECRET);
    chmodSync(join(dir, "ldap.pass"), 0o666);
    const { config } = load(profile({ bind_password: undefined, bind_password_file: '"ldap.pass"', urls: '["ldap://dc1"]', allow_type_password: "true" }), {}, dir);
    for (const w of configWarnings(config)) expect(w).not.toContain(SECRET);
  });
});

describe("plain LDAP", () => {
  test("ldap:// without start_tls is accepted, flagged plaintext, and warned about", () => {
    const { config } = load(profile({ urls: '["ldaps://dc1", "ldap://dc2:389"]' }));
    expect(ldapProfiles(config)[0]!.plaintext).toBe(true);
    expect(configWarnings(config)).toContain("ldap[corp] uses plain ldap:// without start_tls (ldap://dc2:389): passwords cross the network unencrypted");
  });

  test("ldap:// with start_tls is not plaintext and not warned about", () => {
    const { config } = load(profile({ urls: '["ldap://dc1"]', start_tls: "true" }));
    expect(ldapProfiles(config)[0]!.plaintext).toBe(false);
    expect(configWarnings(config).filter((w) => w.includes("ldap"))).toEqual([]);
  });
});
