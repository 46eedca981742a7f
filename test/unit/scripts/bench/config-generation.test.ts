// The benchmark's generated configurations: FreeRADIUS (rlm_totp, rlm_ldap) parses them with `freeradius -C`,
// and the Portcullis [[ldap]] profile loads as password-only users.

import { describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeFreeRADIUSConfig, writeFreeRADIUSLdapConfig } from "../../../../scripts/bench/freeradius.ts";
import { benchUsersLdif, portcullisLdapToml } from "../../../../scripts/bench/bench-ldap.ts";
import { ldapProfiles, loadConfig } from "../../../../src/config/index.ts";

const freeradius = Bun.which("freeradius") ?? (existsSync("/usr/sbin/freeradius") ? "/usr/sbin/freeradius" : null);
/** CI installs freeradius (the integration tests use it), so its absence there is a failure. */
const runFreeRADIUS = freeradius !== null || Boolean(process.env.CI);
/**
 * rlm_ldap (Debian freeradius-ldap) is a benchmark-only peer that CI does not install: its config
 * check runs where the package is present.
 */
const hasRlmLdap = freeradius !== null && existsSync("/usr/lib/freeradius/rlm_ldap.so");

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "portcullis-benchcfg-"));
}

/** `freeradius -C`: parse the configuration and instantiate its modules, then exit. */
function checkConfig(dir: string): { code: number; log: string } {
  if (!freeradius) throw new Error("freeradius not installed (apt-get install freeradius)");
  const p = Bun.spawnSync([freeradius, "-C", "-d", dir], { stdout: "pipe", stderr: "pipe", timeout: 30_000 });
  const log = existsSync(join(dir, "log/radius.log")) ? readFileSync(join(dir, "log/radius.log"), "utf8") : "";
  return { code: p.exitCode ?? -1, log: log + p.stderr.toString() };
}

const ldapOptions = (dir: string) => ({
  dir,
  port: 41812,
  secret: "bench-secret-0123456789",
  ldapUrl: "ldap://127.0.0.1:9", // nothing listens: -C must not need the server
  bindDN: "cn=svc-mfa,ou=service,dc=example,dc=com",
  bindPassword: "svc-secret-Pw1",
  baseDN: "dc=example,dc=com",
});

describe("FreeRADIUS configuration for the benchmark", () => {
  test.skipIf(!runFreeRADIUS)("the rlm_totp configuration passes freeradius -C", () => {
    const dir = tempDir();
    try {
      writeFreeRADIUSConfig({ dir, port: 41812, secret: "bench-secret-0123456789", users: [{ username: "u1", base32Secret: "JBSWY3DPEHPK3PXP" }] });
      const r = checkConfig(dir);
      expect({ code: r.code, errors: r.log.split("\n").filter((l) => / Error: /.test(l)) }).toEqual({ code: 0, errors: [] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test.skipIf(!hasRlmLdap)("the rlm_ldap configuration passes freeradius -C (needs freeradius-ldap)", () => {
    const dir = tempDir();
    try {
      writeFreeRADIUSLdapConfig(ldapOptions(dir));
      const r = checkConfig(dir);
      expect({ code: r.code, errors: r.log.split("\n").filter((l) => / Error: |Ignoring/.test(l)) }).toEqual({ code: 0, errors: [] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the rlm_ldap configuration binds as the user, requires Message-Authenticator and states its pool", () => {
    const dir = tempDir();
    try {
      writeFreeRADIUSLdapConfig({ ...ldapOptions(dir), poolStart: 4, poolMax: 16, maxServers: 16 });
      const conf = readFileSync(join(dir, "radiusd.conf"), "utf8");
      expect(conf).toContain("require_message_authenticator = yes");
      expect(conf).toContain("&Auth-Type := LDAP");
      expect(conf).toMatch(/Auth-Type LDAP \{\s*ldap\s*\}/);
      expect(conf).toMatch(/pool \{\s*start = 4\s*min = 4\s*max = 16\s*spare = 12/);
      expect(conf).toContain("server = '127.0.0.1'\n\t\tport = 9\n");
      expect(conf).toContain("(&(objectClass=inetOrgPerson)(uid=%{%{Stripped-User-Name}:-%{User-Name}}))");
      expect(conf).toContain("start_tls = no");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test.each([
    ["a URL that is not ldap://HOST:PORT", { ldapUrl: "ldaps://127.0.0.1:636" }],
    ["a quote in the bind password", { bindPassword: "it's" }],
    ["a newline in the bind DN", { bindDN: "cn=a\nb" }],
  ])("refuses %s with a TypeError", (_name, override) => {
    const dir = tempDir();
    try {
      expect(() => writeFreeRADIUSLdapConfig({ ...ldapOptions(dir), ...override })).toThrow(TypeError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("Portcullis configuration for the LDAP benchmark", () => {
  test("the [[ldap]] profile loads as password-only users on plain LDAP", () => {
    const dir = tempDir();
    try {
      const passwordFile = join(dir, "ldap.pass");
      writeFileSync(passwordFile, "svc-secret-Pw1\n", { mode: 0o600 });
      const file = join(dir, "portcullis.toml");
      writeFileSync(file, portcullisLdapToml({ url: "ldap://127.0.0.1:3890", passwordFile }));
      const [profile] = ldapProfiles(loadConfig({ configFile: file, env: {}, systemFile: join(dir, "none.toml"), cwd: dir }).config);
      expect(profile).toMatchObject({
        name: "bench",
        urls: ["ldap://127.0.0.1:3890"],
        plaintext: true,
        bindPassword: "svc-secret-Pw1",
        allowTypePassword: true,
        defaultType: "password",
        userFilter: "(&(objectClass=inetOrgPerson)(uid={username}))",
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("bench users become inetOrgPerson entries with salted SHA-1 passwords", () => {
    const ldif = benchUsersLdif([
      { username: "ldapbench000000", password: "pw-0" },
      { username: "ldapbench000001", password: "pw-1" },
    ]);
    const entries = ldif.split("\n\n");
    expect(entries).toHaveLength(2);
    expect(entries[0]).toStartWith("dn: uid=ldapbench000000,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: ldapbench000000\n");
    const hash = /userPassword: \{SSHA\}(\S+)/.exec(entries[1]!)?.[1];
    const raw = Buffer.from(hash ?? "", "base64");
    expect(raw.length).toBe(28); // 20-byte SHA-1 + 8-byte salt
    const digest = new Bun.CryptoHasher("sha1").update("pw-1").update(raw.subarray(20)).digest();
    expect(Buffer.from(digest).equals(raw.subarray(0, 20))).toBe(true);
    expect(ldif).not.toContain("pw-1");
  });
});
