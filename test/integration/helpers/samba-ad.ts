// Test fixture: a throwaway Samba AD DC on its own loopback address (LDAPS on 636), seeded with the users every AD test needs.
//
// Provisioning (samba-tool, ~5 s) and seeding (one python3-samba script, offline) happen once per
// machine into a template directory under /tmp keyed by TEMPLATE_VERSION and the Samba version;
// every start copies it (never shares it), writes its own smb.conf and TLS certificate (with an IP
// subjectAltName, so ldaps://127.0.0.N verifies against caFile), and runs `samba -i -M single`
// as a child process. startSambaAD() is memoised per test process.
//
// Samba facts this relies on (Samba 4.17, see the report in directory-ad.test.ts):
// - Samba binds only to addresses configured on an interface, so 127.0.0.N is added to `lo`
//   (`ip addr add`, root) when missing, and removed again on stop.
// - pwdLastSet accepts only 0 and -1 through LDAP and even through SamDB with relax/provision
//   controls; an old pwdLastSet (for error 532) is written into the partition with no ldb modules.
//   A PSO or maxPwdAge below one day means "never expires" to Samba, so a short max age cannot
//   produce 532 either.
// - extensionAttributeN is Exchange schema and absent from Samba; the type lives in
//   msDS-cloudExtensionAttribute5 (Windows 2012 schema, not writable by the user by default).

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { connect as tlsConnect } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "ldapts";

/** Bump when the seed below changes, so that a stale template is not reused. */
const TEMPLATE_VERSION = "3";
const REALM = "CORP.EXAMPLE";
const DOMAIN = "CORP";
const BASE_DN = "DC=corp,DC=example";
const ADMIN_PASSWORD = "Adm1n!Portcullis-2024";
const PYTHON = "/usr/bin/python3"; // the interpreter python3-samba is installed for (not a pyenv shim)
const START_TIMEOUT_MS = 60_000;
const PROVISION_TIMEOUT_MS = 120_000;

export interface SambaUser {
  /** sAMAccountName */
  username: string;
  dn: string;
  /** userPrincipalName, e.g. alice@corp.example */
  upn: string;
  password: string;
}

export interface SambaAD {
  /** ldaps://127.0.0.N:636 */
  url: string;
  /** ldap://127.0.0.N:389 (Samba refuses simple binds here: "ldap server require strong auth" stays at its default) */
  ldapUrl: string;
  address: string;
  /** PEM CA that signed the LDAPS certificate (subjectAltName IP:127.0.0.N). */
  caFile: string;
  baseDN: string;
  realm: string;
  adminDN: string;
  adminPassword: string;
  /** CN=svc-mfa,OU=Service,…: an ordinary user, no admin rights. */
  serviceDN: string;
  servicePassword: string;
  /**
   * alice: mobile "070-123 45 67", msDS-cloudExtensionAttribute5 "11", member of VPN Admins ⊂ VPN Users (nested);
   * bob: disabled (533); carol, chris: must change at next logon (773); dave: account expired (701);
   * erin: locked by wrong binds (775); frank: primary group VPN Users; gina: history/complexity policy;
   * harry: password expired (532); ivan: logonHours all denied (530); judy: userWorkstations (531).
   */
  users: Record<"alice" | "bob" | "carol" | "chris" | "dave" | "erin" | "frank" | "gina" | "harry" | "ivan" | "judy", SambaUser>;
  groups: { vpnUsers: string; vpnAdmins: string; domainUsers: string };
  /** The domain's lockout threshold (wrong binds before 775). */
  lockoutThreshold: number;
  /** Samba's stdout/stderr so far (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

/** Why Samba AD cannot run here, or undefined when it can. */
export function sambaMissing(): string | undefined {
  for (const tool of ["samba", "samba-tool", "openssl", "ip"]) {
    if (!Bun.which(tool, { PATH: `${process.env.PATH ?? ""}:/usr/sbin:/sbin` })) {
      return `${tool} not found: install the Debian packages samba-ad-dc samba-ad-provision openssl iproute2 (see .ci/run)`;
    }
  }
  if (!existsSync(PYTHON)) return `${PYTHON} not found (python3-samba comes with samba-ad-dc)`;
  if (process.getuid?.() !== 0) return "Samba AD DC fixture needs root (samba, ip addr add)";
  return undefined;
}

let started: Promise<SambaAD> | undefined;

/** Starts (once per process) a seeded Samba AD DC. Throws with Samba's output when it does not come up in time. */
export function startSambaAD(opts: { address?: string } = {}): Promise<SambaAD> {
  started ??= launch(opts).catch((err) => {
    started = undefined;
    throw err;
  });
  return started;
}

const users = {
  alice: "Alice!Pass-2024",
  bob: "Bob!Pass-2024",
  carol: "Carol!Pass-2024",
  chris: "Chris!Pass-2024",
  dave: "Dave!Pass-2024",
  erin: "Erin!Pass-2024",
  frank: "Frank!Pass-2024",
  gina: "Gina!Pass-2024",
  harry: "Harry!Pass-2024",
  ivan: "Ivan!Pass-2024",
  judy: "Judy!Pass-2024",
} as const;
const SERVICE_PASSWORD = "Svc!Mfa-Pass-2024";
const LOCKOUT_THRESHOLD = 3;

/** Offline seed with python3-samba (one process instead of ~25 samba-tool runs). argv: smb.conf, JSON of passwords. */
const SEED_PY = String.raw`
import sys, json, os, ldb
from samba.samdb import SamDB
from samba.auth import system_session
from samba.param import LoadParm
from samba.dcerpc import security
from samba.ndr import ndr_unpack
lp = LoadParm(); lp.load(sys.argv[1])
pw = json.loads(sys.argv[2])
db = SamDB(url=lp.private_path("sam.ldb"), session_info=system_session(), lp=lp)
base = str(db.domain_dn())
def mod(dn, **attrs):
    m = ldb.Message(); m.dn = ldb.Dn(db, dn)
    for k, v in attrs.items():
        m[k.replace("_", "-")] = ldb.MessageElement(v, ldb.FLAG_MOD_REPLACE, k.replace("_", "-"))
    db.modify(m)
mod(base, minPwdAge="0", pwdHistoryLength="5", lockoutThreshold=pw["__lockout"])
for ou in ("Service", "People", "Groups"):
    db.create_ou("OU=%s,%s" % (ou, base))
db.newuser("svc-mfa", pw["__service"], userou="OU=Service", useusernameascn=True)
for name, p in pw.items():
    if name.startswith("__"): continue
    db.newuser(name, p, userou="OU=People", useusernameascn=True, force_password_change_at_next_login_req=name in ("carol", "chris"))
db.newgroup("VPN Users", groupou="OU=Groups")
db.newgroup("VPN Admins", groupou="OU=Groups")
db.add_remove_group_members("VPN Users", ["VPN Admins", "frank"], add_members_operation=True)
db.add_remove_group_members("VPN Admins", ["alice"], add_members_operation=True)
people = "OU=People," + base
mod("CN=alice," + people, mobile="070-123 45 67", msDS_cloudExtensionAttribute5="11", mail="alice@corp.example")
db.disable_account("(sAMAccountName=bob)")
mod("CN=dave," + people, accountExpires="130000000000000000")
mod("CN=ivan," + people, logonHours=bytes(21))
mod("CN=judy," + people, userWorkstations="NOWHERE")
res = db.search("CN=VPN Users,OU=Groups," + base, scope=ldb.SCOPE_BASE, attrs=["objectSid"])
rid = str(ndr_unpack(security.dom_sid, res[0]["objectSid"][0])).split("-")[-1]
mod("CN=frank," + people, primaryGroupID=rid)
del db
# 532: Samba refuses any pwdLastSet but 0/-1, so write an old one (2012) into the partition without modules.
part = os.path.join(lp.private_path("sam.ldb.d"), base.upper() + ".ldb")
raw = ldb.Ldb(); raw.connect(part, flags=0, options=["modules:"])
m = ldb.Message(); m.dn = ldb.Dn(raw, "CN=harry," + people)
m["pwdLastSet"] = ldb.MessageElement("130000000000000000", ldb.FLAG_MOD_REPLACE, "pwdLastSet")
raw.modify(m)
print("seeded")
`;

function run(cmd: string[], timeoutMs: number, what: string): string {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: "utf8", timeout: timeoutMs });
  if (r.status !== 0) {
    throw new Error(`${what} failed (exit ${r.status ?? r.signal}): ${(r.stderr || r.stdout || String(r.error ?? "")).slice(-2000)}`);
  }
  return r.stdout;
}

function sambaVersion(): string {
  return run(["samba", "-V"], 10_000, "samba -V").trim().replace(/[^\w.-]+/g, "_");
}

/** Provisioned + seeded domain, built once per machine; concurrent builders race on rename, the loser discards its copy. */
function template(): string {
  const dir = join(tmpdir(), `portcullis-samba-template-v${TEMPLATE_VERSION}-${sambaVersion()}`);
  if (existsSync(join(dir, "ready"))) return dir;
  const build = mkdtempSync(join(tmpdir(), "portcullis-samba-build-"));
  try {
    run(
      [
        "samba-tool", "domain", "provision", "--use-rfc2307", `--realm=${REALM}`, `--domain=${DOMAIN}`,
        "--server-role=dc", "--dns-backend=NONE", "--host-name=portcullisdc", `--adminpass=${ADMIN_PASSWORD}`,
        `--targetdir=${build}`, "--option=interfaces=127.0.0.1", "--option=bind interfaces only=yes",
      ],
      PROVISION_TIMEOUT_MS,
      "samba-tool domain provision",
    );
    const passwords = { ...users, __service: SERVICE_PASSWORD, __lockout: String(LOCKOUT_THRESHOLD) };
    run([PYTHON, "-c", SEED_PY, join(build, "etc", "smb.conf"), JSON.stringify(passwords)], PROVISION_TIMEOUT_MS, "seeding the AD template");
    writeFileSync(join(build, "ready"), "");
    try {
      renameSync(build, dir);
    } catch {
      if (!existsSync(join(dir, "ready"))) throw new Error(`cannot install the Samba template at ${dir}`);
      rmSync(build, { recursive: true, force: true });
    }
  } catch (err) {
    rmSync(build, { recursive: true, force: true });
    throw err;
  }
  return dir;
}

/** An address 127.0.0.N (N ≥ 2) where nothing answers on 389/636. */
async function freeAddress(): Promise<string> {
  for (let n = 2 + (process.pid % 40); n < 2 + (process.pid % 40) + 200; n++) {
    const address = `127.0.0.${(n % 250) + 2}`;
    if (!(await listening(address, 636)) && !(await listening(address, 389))) return address;
  }
  throw new Error("no free 127.0.0.N address for Samba");
}

function listening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = Bun.connect({
      hostname: host,
      port,
      socket: {
        open(s) {
          s.end();
          resolve(true);
        },
        data() {},
        error() {
          resolve(false);
        },
        connectError() {
          resolve(false);
        },
      },
    });
    socket.catch(() => resolve(false));
    setTimeout(() => resolve(false), 2000);
  });
}

function tlsReady(host: string, ca: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tlsConnect({ host, port: 636, ca, servername: undefined, timeout: 2000 }, () => {
      s.end();
      resolve(s.authorized);
    });
    s.on("error", () => resolve(false));
    s.on("timeout", () => {
      s.destroy();
      resolve(false);
    });
  });
}

function makeCertificate(dir: string, address: string): void {
  const sh = (args: string[]) => run(["openssl", ...args], 30_000, `openssl ${args[0]}`);
  sh(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(dir, "ca.key"), "-out", join(dir, "ca.pem"), "-days", "30", "-subj", "/CN=Portcullis test AD CA"]);
  sh(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "req.csr"), "-subj", `/CN=${address}`]);
  writeFileSync(join(dir, "ext.cnf"), `subjectAltName=IP:${address},DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
  sh(["x509", "-req", "-in", join(dir, "req.csr"), "-CA", join(dir, "ca.pem"), "-CAkey", join(dir, "ca.key"), "-CAcreateserial", "-out", join(dir, "cert.pem"), "-days", "30", "-extfile", join(dir, "ext.cnf")]);
}

function hasAddress(address: string): boolean {
  const r = spawnSync("ip", ["-o", "-4", "addr", "show", "dev", "lo"], { encoding: "utf8", timeout: 5000 });
  return new RegExp(`inet ${address.replace(/\./g, "\\.")}/`).test(r.stdout ?? "");
}

async function launch(opts: { address?: string }): Promise<SambaAD> {
  const missing = sambaMissing();
  if (missing) throw new Error(missing);
  const tpl = template();
  const address = opts.address ?? (await freeAddress());
  const dir = mkdtempSync(join(tmpdir(), "portcullis-samba-"));
  cpSync(tpl, dir, { recursive: true });
  const tlsDir = join(dir, "tls");
  mkdirSync(tlsDir, { recursive: true });
  makeCertificate(tlsDir, address);

  let addedAddress = false;
  if (!hasAddress(address)) {
    run(["ip", "addr", "add", `${address}/32`, "dev", "lo"], 5000, `ip addr add ${address}`);
    addedAddress = true;
  }

  const conf = join(dir, "etc", "smb.conf");
  writeFileSync(
    conf,
    [
      "[global]",
      "\tnetbios name = PORTCULLISDC",
      `\trealm = ${REALM}`,
      `\tworkgroup = ${DOMAIN}`,
      "\tserver role = active directory domain controller",
      "\tserver services = ldap",
      `\tinterfaces = ${address}`,
      "\tbind interfaces only = yes",
      `\tprivate dir = ${join(dir, "private")}`,
      `\tstate directory = ${join(dir, "state")}`,
      `\tlock directory = ${dir}`,
      // Its own pid file: the default /run/samba/samba.pid would make two instances on one host collide.
      `\tpid directory = ${dir}`,
      `\tcache directory = ${join(dir, "cache")}`,
      `\tbinddns dir = ${join(dir, "bind-dns")}`,
      `\tlog file = ${join(dir, "log.%m")}`,
      "\tidmap_ldb:use rfc2307 = yes",
      "\ttls enabled = yes",
      `\ttls keyfile = ${join(tlsDir, "key.pem")}`,
      `\ttls certfile = ${join(tlsDir, "cert.pem")}`,
      `\ttls cafile = ${join(tlsDir, "ca.pem")}`,
      "",
    ].join("\n"),
  );

  let output = "";
  const child: ChildProcess = spawn("samba", ["-i", "-M", "single", "-s", conf, "-d", "1"], { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout?.on("data", (b: Buffer) => (output = (output + b.toString()).slice(-20_000)));
  child.stderr?.on("data", (b: Buffer) => (output = (output + b.toString()).slice(-20_000)));
  let exited = false;
  child.on("exit", () => (exited = true));

  const cleanupSync = () => {
    if (!exited) child.kill("SIGKILL");
    if (addedAddress) spawnSync("ip", ["addr", "del", `${address}/32`, "dev", "lo"], { timeout: 5000 });
    addedAddress = false;
    rmSync(dir, { recursive: true, force: true });
  };
  process.on("exit", cleanupSync);

  const ca = readFileSync(join(tlsDir, "ca.pem"), "utf8");
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await tlsReady(address, ca))) {
    if (exited || Date.now() > deadline) {
      cleanupSync();
      process.off("exit", cleanupSync);
      throw new Error(`Samba AD did not answer LDAPS on ${address}:636 within ${START_TIMEOUT_MS} ms${exited ? " (it exited)" : ""}:\n${output.slice(-3000)}`);
    }
    await Bun.sleep(200);
  }

  const people = `OU=People,${BASE_DN}`;
  const seeded = Object.fromEntries(
    Object.entries(users).map(([name, password]) => [name, { username: name, dn: `CN=${name},${people}`, upn: `${name}@corp.example`, password }]),
  ) as SambaAD["users"];
  const url = `ldaps://${address}:636`;

  // erin: locked by real wrong binds (lockoutTime is set by Samba, lockoutDuration 30 min).
  for (let i = 0; i < LOCKOUT_THRESHOLD; i++) {
    const c = new Client({ url, tlsOptions: { ca: [ca] }, timeout: 5000, connectTimeout: 5000 });
    await c.bind(seeded.erin.dn, `wrong-${i}`).catch(() => undefined);
    await c.unbind().catch(() => undefined);
  }

  let stopped = false;
  return {
    url,
    ldapUrl: `ldap://${address}:389`,
    address,
    caFile: join(tlsDir, "ca.pem"),
    baseDN: BASE_DN,
    realm: REALM,
    adminDN: `CN=Administrator,CN=Users,${BASE_DN}`,
    adminPassword: ADMIN_PASSWORD,
    serviceDN: `CN=svc-mfa,OU=Service,${BASE_DN}`,
    servicePassword: SERVICE_PASSWORD,
    users: seeded,
    groups: {
      vpnUsers: `CN=VPN Users,OU=Groups,${BASE_DN}`,
      vpnAdmins: `CN=VPN Admins,OU=Groups,${BASE_DN}`,
      domainUsers: `CN=Domain Users,CN=Users,${BASE_DN}`,
    },
    lockoutThreshold: LOCKOUT_THRESHOLD,
    log: () => output,
    async stop() {
      if (stopped) return;
      stopped = true;
      started = undefined;
      if (!exited) {
        child.kill("SIGTERM");
        const until = Date.now() + 10_000;
        while (!exited && Date.now() < until) await Bun.sleep(50);
      }
      cleanupSync();
      process.off("exit", cleanupSync);
    },
  };
}
