// Throwaway OpenLDAP slapd for integration tests: temp dir, self-signed CA, slapadd-seeded users and groups, ppolicy and memberof.
//
// Each instance listens on 127.0.0.1 (ldap:// and ldaps://, free high ports), logs at "stats"
// level to a captured buffer (so tests can see which DN bound on which connection and what each
// connection then did), and is killed by stop(). Every wait is bounded.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const slapdPath = Bun.which("slapd") ?? (Bun.file("/usr/sbin/slapd").size > 0 ? "/usr/sbin/slapd" : null);
export const slapaddPath = Bun.which("slapadd") ?? (Bun.file("/usr/sbin/slapadd").size > 0 ? "/usr/sbin/slapadd" : null);
export const opensslPath = Bun.which("openssl");
/** slapd tests run when slapd is installed, and always in CI (where its absence must fail). */
export const runSlapdTests = (slapdPath !== null && slapaddPath !== null && opensslPath !== null) || Boolean(process.env.CI);
if (!runSlapdTests) {
  console.warn("slapd/slapadd/openssl not found: skipping slapd integration tests (apt-get install slapd ldap-utils openssl)");
}

export const BASE_DN = "dc=example,dc=com";
export const SERVICE_DN = `cn=svc-mfa,ou=service,${BASE_DN}`;
export const SERVICE_PASSWORD = "svc-secret-Pw1";
export const ADMIN_DN = `cn=admin,${BASE_DN}`;
export const ADMIN_PASSWORD = "admin-secret-Pw1";
export const POLICY_DN = `cn=default,ou=policies,${BASE_DN}`;
export const PEOPLE = `ou=people,${BASE_DN}`;
export const GROUPS = `ou=groups,${BASE_DN}`;

/** Seeded users: uid → password. */
export const PASSWORDS = {
  alice: "alice-Passw0rd",
  bob: "bob-Passw0rd",
  carol: "carol-Old-Pw1", // expired under ppolicy (pwdChangedTime in 2000, pwdMaxAge one day)
  dave: "dave-Reset-Pw1", // pwdReset TRUE: must change
  erin: "erin-Passw0rd", // locked (pwdAccountLockedTime)
  åsa: "åsa-Passw0rd",
  frank: "frank-Passw0rd", // type "password", bad phone
  dup: "dup-Passw0rd", // two entries share uid=dup
} as const;

export interface Slapd {
  url: string; // ldap://127.0.0.1:PORT
  ldapsUrl: string; // ldaps://127.0.0.1:PORT
  /** The same LDAPS listener on 127.0.0.2, a name the certificate does not hold (hostname checks). */
  ldapsUrlWrongName: string;
  port: number;
  ldapsPort: number;
  caFile: string;
  dir: string;
  /** stats-level log lines so far. */
  log: string[];
  /** Connections as the log shows them: conn id → bound DN (last bind) and operations in order. */
  connections(): Map<string, { binds: string[]; ops: string[] }>;
  /** Waits (bounded) until a log line matches. */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Runs ldapmodify/ldapadd-style LDIF changes as the rootDN through ldapmodify. */
  modify(ldif: string): Promise<void>;
  stop(): Promise<void>;
}

export interface SlapdOptions {
  /** Load the memberof overlay (groups are then added over LDAP so it fills memberOf). Default true. */
  memberOf?: boolean;
  /** More entries for slapadd, after the seeded ones (e.g. the benchmark's users; see {@link ssha}). */
  extraLdif?: string;
  /**
   * slapd's `-d` debug level (default "stats": one line per operation, which `connections()` and
   * `waitForLog` read). "sync" logs little beyond start-up, for load tests; `log` then holds no operations.
   */
  debug?: string;
}

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function run(cmd: string[], input?: string): string {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { input, encoding: "utf8", timeout: 20_000 });
  if (r.status !== 0) throw new Error(`${cmd[0]} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** An RFC 2307-style {SSHA} userPassword value (SHA-1 over password + 8-byte salt, then the salt). */
export function ssha(password: string): string {
  const salt = crypto.getRandomValues(new Uint8Array(8));
  const h = new Bun.CryptoHasher("sha1").update(new TextEncoder().encode(password)).update(salt).digest();
  return "{SSHA}" + Buffer.concat([Buffer.from(h), Buffer.from(salt)]).toString("base64");
}

function b64(s: string): string {
  return Buffer.from(s, "utf8").toString("base64");
}

/** Entries loaded with slapadd (overlays do not run there). */
function baseLdif(): string {
  const person = (uid: string, extra: string[], dn = `uid=${uid},${PEOPLE}`) =>
    [
      /[^\x20-\x7e]/.test(dn) ? `dn:: ${b64(dn)}` : `dn: ${dn}`,
      "objectClass: inetOrgPerson",
      /[^\x20-\x7e]/.test(uid) ? `uid:: ${b64(uid)}` : `uid: ${uid}`,
      `cn: ${uid.replace(/[^\x20-\x7e]/g, "a")} person`,
      `sn: ${uid.replace(/[^\x20-\x7e]/g, "a")}`,
      `userPassword: ${ssha(PASSWORDS[uid as keyof typeof PASSWORDS])}`,
      ...extra,
      "",
    ].join("\n");
  return [
    `dn: ${BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n`,
    `dn: ou=people,${BASE_DN}\nobjectClass: organizationalUnit\nou: people\n`,
    `dn: ou=people2,${BASE_DN}\nobjectClass: organizationalUnit\nou: people2\n`,
    `dn: ou=groups,${BASE_DN}\nobjectClass: organizationalUnit\nou: groups\n`,
    `dn: ou=service,${BASE_DN}\nobjectClass: organizationalUnit\nou: service\n`,
    `dn: ou=policies,${BASE_DN}\nobjectClass: organizationalUnit\nou: policies\n`,
    [
      `dn: ${SERVICE_DN}`,
      "objectClass: organizationalRole",
      "objectClass: simpleSecurityObject",
      "cn: svc-mfa",
      `userPassword: ${ssha(SERVICE_PASSWORD)}`,
      "",
    ].join("\n"),
    [
      `dn: ${POLICY_DN}`,
      "objectClass: pwdPolicy",
      "objectClass: device",
      "cn: default",
      "pwdAttribute: userPassword",
      "pwdMaxAge: 86400",
      "pwdMinLength: 10",
      "pwdInHistory: 3",
      "pwdCheckQuality: 2",
      "pwdMustChange: TRUE",
      "pwdAllowUserChange: TRUE",
      "pwdGraceAuthNLimit: 0",
      "pwdLockout: TRUE",
      "pwdMaxFailure: 50",
      "",
    ].join("\n"),
    person("alice", ["mobile: 070-123 45 67", "mail: alice@example.com", "employeeType: 11", "employeeNumber: TOK-0001"]),
    person("bob", ["mobile: +46 8 123 456 78", "employeeType: 1"]),
    person("carol", ["mobile: +46701111111", "pwdChangedTime: 20000101000000Z"]),
    person("dave", ["pwdReset: TRUE"]),
    person("erin", ["pwdAccountLockedTime: 000001010000Z"]),
    person("åsa", ["mobile: +46702222222", "employeeType: totp"]),
    person("frank", ["mobile: not a phone", "employeeType: password"]),
    person("dup", []),
    person("dup", [], `uid=dup,ou=people2,${BASE_DN}`),
  ].join("\n");
}

/** Groups (added over LDAP so the memberof overlay fills memberOf). vpn-users ⊃ staff ⊃ alice; a cycle a ⇄ b. */
function groupLdif(): string {
  const group = (cn: string, members: string[]) =>
    [`dn: cn=${cn},${GROUPS}`, "objectClass: groupOfNames", `cn: ${cn}`, ...members.map((m) => `member: ${m}`), ""].join("\n");
  const u = (uid: string) => `uid=${uid},${PEOPLE}`;
  const g = (cn: string) => `cn=${cn},${GROUPS}`;
  return [
    group("staff", [u("alice"), u("carol")]),
    group("vpn-users", [g("staff"), u("dave")]),
    group("vpn-admins", [u("alice")]),
    group("cycle-a", [u("bob")]),
    group("cycle-b", [g("cycle-a")]),
    `dn: ${g("cycle-a")}\nchangetype: modify\nadd: member\nmember: ${g("cycle-b")}\n`,
    group("deep-0", [u("bob")]),
    ...Array.from({ length: 11 }, (_, i) => group(`deep-${i + 1}`, [g(`deep-${i}`)])),
  ]
    .map((e) => (e.includes("changetype:") ? e : e.replace(/\n/, "\nchangetype: add\n")))
    .join("\n");
}

/**
 * Starts a fresh slapd. Throws with a clear message when slapd, slapadd or openssl is missing
 * (callers decide with runSlapdTests whether that fails the test or skips it).
 */
export async function startSlapd(options: SlapdOptions = {}): Promise<Slapd> {
  const memberOf = options.memberOf ?? true;
  const debug = options.debug ?? "stats";
  if (!slapdPath || !slapaddPath) throw new Error("slapd/slapadd not installed (apt-get install slapd ldap-utils)");
  if (!opensslPath) throw new Error("openssl not installed (apt-get install openssl)");
  const dir = mkdtempSync(join(tmpdir(), "portcullis-slapd-"));
  const db = join(dir, "db");
  run(["mkdir", "-p", db]);

  // A CA and a server certificate for 127.0.0.1 / localhost.
  const caKey = join(dir, "ca.key"), caFile = join(dir, "ca.pem"), key = join(dir, "server.key"), csr = join(dir, "server.csr"), cert = join(dir, "server.pem");
  run([opensslPath, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", caKey, "-out", caFile, "-days", "2", "-subj", "/CN=Portcullis Test CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  run([opensslPath, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=localhost"]);
  writeFileSync(join(dir, "ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n");
  run([opensslPath, "x509", "-req", "-in", csr, "-CA", caFile, "-CAkey", caKey, "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", join(dir, "ext.cnf")]);

  const conf = join(dir, "slapd.conf");
  writeFileSync(
    conf,
    [
      "include /etc/ldap/schema/core.schema",
      "include /etc/ldap/schema/cosine.schema",
      "include /etc/ldap/schema/inetorgperson.schema",
      "include /etc/ldap/schema/nis.schema",
      `pidfile ${join(dir, "slapd.pid")}`,
      "modulepath /usr/lib/ldap",
      "moduleload back_mdb",
      "moduleload ppolicy",
      ...(memberOf ? ["moduleload memberof"] : []),
      `TLSCACertificateFile ${caFile}`,
      `TLSCertificateFile ${cert}`,
      `TLSCertificateKeyFile ${key}`,
      "sizelimit 500",
      "database mdb",
      `suffix "${BASE_DN}"`,
      `rootdn "${ADMIN_DN}"`,
      `rootpw ${ADMIN_PASSWORD}`,
      `directory ${db}`,
      "maxsize 67108864",
      "index objectClass eq",
      "index uid eq",
      "overlay ppolicy",
      `ppolicy_default "${POLICY_DN}"`,
      "ppolicy_hash_cleartext",
      "ppolicy_use_lockout",
      ...(memberOf ? ["overlay memberof", "memberof-group-oc groupOfNames", "memberof-member-ad member", "memberof-memberof-ad memberOf", "memberof-refint TRUE"] : []),
      // The user may change their own password; the service account reads everything (ppolicy
      // operational attributes included) and may change userPassword with the old one (RFC 3062).
      "access to attrs=userPassword",
      `  by dn.exact="${SERVICE_DN}" write`,
      "  by self write",
      "  by anonymous auth",
      "  by * none",
      "access to *",
      `  by dn.exact="${SERVICE_DN}" read`,
      "  by self read",
      "  by * none",
      "",
    ].join("\n"),
  );
  run([slapaddPath, "-f", conf, "-q"], options.extraLdif ? `${baseLdif()}\n${options.extraLdif}` : baseLdif());

  const port = await freePort();
  const ldapsPort = await freePort();
  const url = `ldap://127.0.0.1:${port}`;
  const ldapsUrl = `ldaps://127.0.0.1:${ldapsPort}`;
  const ldapsUrlWrongName = `ldaps://127.0.0.2:${ldapsPort}`;
  const log: string[] = [];
  const proc: ChildProcess = spawn(slapdPath, ["-f", conf, "-h", `${url}/ ${ldapsUrl}/ ${ldapsUrlWrongName}/`, "-d", debug], { stdio: ["ignore", "ignore", "pipe"] });
  let exited = false;
  proc.once("exit", () => (exited = true));
  let buf = "";
  proc.stderr!.setEncoding("utf8");
  proc.stderr!.on("data", (d: string) => {
    buf += d;
    const lines = buf.split("\n");
    buf = lines.pop()!;
    log.push(...lines);
  });

  const waitForLog = async (re: RegExp, timeoutMs = 10_000): Promise<string> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = log.find((l) => re.test(l));
      if (hit) return hit;
      if (exited) throw new Error(`slapd exited:\n${log.slice(-20).join("\n")}`);
      if (Date.now() > deadline) throw new Error(`slapd: no log line matching ${re} within ${timeoutMs} ms:\n${log.slice(-20).join("\n")}`);
      await Bun.sleep(20);
    }
  };

  const stop = async () => {
    if (!exited) {
      proc.kill("SIGKILL");
      const deadline = Date.now() + 5000;
      while (!exited && Date.now() < deadline) await Bun.sleep(10);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const modify = async (ldif: string) => {
    const ldapmodify = Bun.which("ldapmodify");
    if (!ldapmodify) throw new Error("ldapmodify not installed (apt-get install ldap-utils)");
    const p = Bun.spawn([ldapmodify, "-x", "-H", url, "-D", ADMIN_DN, "-w", ADMIN_PASSWORD], { stdin: new TextEncoder().encode(ldif), stdout: "pipe", stderr: "pipe" });
    const t = setTimeout(() => p.kill("SIGKILL"), 10_000);
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    clearTimeout(t);
    if (code !== 0) throw new Error(`ldapmodify failed (${code}): ${out}${err}`);
  };

  try {
    await waitForLog(/slapd starting/);
    await modify(groupLdif());
  } catch (e) {
    await stop();
    throw e;
  }

  const connections = () => {
    const map = new Map<string, { binds: string[]; ops: string[] }>();
    const seen = new Set<string>();
    for (const l of log) {
      // slapd logs some operations on two lines (BIND: method=, then mech=): count each op once.
      // A rebind on a bound connection starts with "BIND anonymous mech=implicit" (the old identity
      // dropped), then the "BIND dn=" line: take the DN from whichever line of the op has one.
      const m = /conn=(\d+) (op=\d+) (BIND|SRCH|MOD|EXT|ADD|DEL|CMP|UNBIND)\b(.*)$/.exec(l);
      if (!m) continue;
      const key = `${m[1]} ${m[2]}`;
      const c = map.get(m[1]!) ?? { binds: [], ops: [] };
      map.set(m[1]!, c);
      if (!seen.has(key)) {
        seen.add(key);
        c.ops.push(m[3]!);
      }
      const dn = m[3] === "BIND" ? /dn="([^"]*)"/.exec(m[4]!)?.[1] : undefined;
      if (dn !== undefined && !seen.has(`${key} dn`)) {
        seen.add(`${key} dn`);
        c.binds.push(dn);
      }
    }
    return map;
  };

  return { url, ldapsUrl, ldapsUrlWrongName, port, ldapsPort, caFile, dir, log, connections, waitForLog, modify, stop };
}
