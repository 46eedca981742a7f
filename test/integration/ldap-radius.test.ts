// End to end: the compiled binary with an [[ldap]] profile against a throwaway slapd, driven by real RADIUS packets.
//
// Covers issue 3 through the whole product (config file → serve → engine → LdapDirectory → slapd):
// password by LDAP bind + TOTP challenge, hybrid records linked by entryUUID, generic rejects, the
// empty password and filter-injection User-Names (no bind happens: checked in slapd's own log),
// nested group → reply attributes on the FINAL Access-Accept (Fortinet VSA decoded byte-wise and
// by radclient), required_groups, a code-only client (--first-factor none) with a ppolicy-locked
// account, failover to a second slapd (a replica with the same entryUUIDs) when the first is killed,
// two RADIUS workers (each with its own pools; a login's legs decided by different workers),
// and `portcullis ldap test`. Every wait is bounded; servers listen on 127.0.0.x only.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Appliance, Attr, Code, UDPClient, addLiveClient, buildAccessRequest, attributeValues as values, eventually, pap as papRequest, tomlString, vendorAttributes as vsas, type ServerProcess } from "./helpers/appliance.ts";
import { attr, quote, radclient, radclientPath } from "./helpers/radclient.ts";
import { BASE_DN, GROUPS, PASSWORDS, PEOPLE, SERVICE_DN, SERVICE_PASSWORD, runSlapdTests, slapdPath, startSlapd, type Slapd } from "./helpers/slapd.ts";
import { decodeBase32, encodeBase32, totp, type CheckedReply, type RawAttribute } from "../../scripts/bench/radius-wire.ts";

// slapd and radclient are both needed; in CI their absence fails (the tests below run and throw).
const run = runSlapdTests && (radclientPath !== null || Boolean(process.env.CI));
const itest = run ? test : test.skip;
if (!run) console.warn("ldap-radius: slapd or radclient missing, skipping (apt-get install slapd ldap-utils freeradius-utils)");

const PROMPT = "Enter your verification code";
const REJECT = "Authentication failed";
const FORTINET = 12356; // Fortinet's IANA enterprise number; Fortinet-Group-Name is its attribute 1
const VENDOR_SPECIFIC = 26;
const CLASS = 25;
const FILTER_ID = 11;

const newSeed = () => encodeBase32(randomBytes(20));
const codeOf = (seed: string) => totp(decodeBase32(seed), { now: Date.now() });

/** The profile under test: LDAPS with the fixture's CA, nested vpn-users required, reply attributes per group. */
function profileToml(name: string, urls: string[], caFile: string): string {
  return [
    'region = "SE"',
    "",
    "[[ldap]]",
    `name = ${tomlString(name)}`,
    `urls = [${urls.map(tomlString).join(", ")}]`,
    `ca_file = ${tomlString(caFile)}`,
    `bind_dn = ${tomlString(SERVICE_DN)}`,
    `bind_password = ${tomlString(SERVICE_PASSWORD)}`,
    `base_dn = ${tomlString(BASE_DN)}`,
    'user_filter = "(&(objectClass=inetOrgPerson)(uid={username}))"',
    'type_attribute = "employeeType"',
    `required_groups = [${tomlString(`cn=vpn-users,${GROUPS}`)}]`,
    "timeout_ms = 3000",
    "[[ldap.reply]]",
    `group = ${tomlString(`cn=vpn-users,${GROUPS}`)}`,
    'attributes = { "Class" = "vpn-users", "Filter-Id" = "users-acl", "Fortinet-Group-Name" = "fg-vpn-users" }',
    "[[ldap.reply]]",
    `group = ${tomlString(`cn=vpn-admins,${GROUPS}`)}`,
    'attributes = { "Filter-Id" = "admin-acl" }',
    "",
  ].join("\n");
}

/** Users added over LDAP (ppolicy hashes the clear-text password); all but olaf join staff ⊂ vpn-users. */
const EXTRA = { uma: "uma-Passw0rd-1", vera: "vera-Passw0rd-1", walt: "walt-Passw0rd-1", olaf: "olaf-Passw0rd-1" } as const;
function extraUsersLdif(): string {
  const add = (uid: string, password: string, phone: string) =>
    [`dn: uid=${uid},${PEOPLE}`, "changetype: add", "objectClass: inetOrgPerson", `uid: ${uid}`, `cn: ${uid} person`, `sn: ${uid}`, `userPassword: ${password}`, `mobile: ${phone}`, ""].join("\n");
  return [
    add("uma", EXTRA.uma, "+46703000001"),
    add("vera", EXTRA.vera, "+46703000002"),
    add("walt", EXTRA.walt, "+46703000003"),
    add("olaf", EXTRA.olaf, "+46703000004"),
    [`dn: cn=staff,${GROUPS}`, "changetype: modify", "add: member", ...["uma", "vera", "walt", "erin"].map((u) => `member: uid=${u},${PEOPLE}`), ""].join("\n"),
  ].join("\n");
}

/** One PAP Access-Request to the server under test (reply authenticators checked by the helper). */
const pap = (udp: UDPClient, server: ServerProcess, secret: string, user: string, password: string, state?: Uint8Array) => papRequest(udp, server.port, secret, user, password, { state });

/** Count of simple binds for a DN (case-insensitive) in slapd's log; slapd logs each BIND on two lines, counted once by conn/op. */
function bindsOf(slapd: { log: string[] }, dn: string): number {
  const needle = `BIND dn="${dn}"`.toLowerCase();
  const ops = new Set<string>();
  for (const l of slapd.log) {
    if (!l.toLowerCase().includes(needle)) continue;
    const m = /conn=(\d+) op=(\d+)/.exec(l);
    ops.add(m ? `${m[1]}/${m[2]}` : l);
  }
  return ops.size;
}

/** The last auth.failure log line for a user (the precise reason lives in the log, not the reply). */
function lastFailure(server: ServerProcess, user: string): Record<string, unknown> | undefined {
  return server.logs.findLast((l) => l.event === "auth.failure" && l.user === user);
}

describe.skipIf(!run)("slapd profile through the compiled binary", () => {
  let slapd: Slapd;
  let app: Appliance;
  let server: ServerProcess;
  let secret: string; // challenge client, 127.0.0.1
  let codeOnlySecret: string; // --first-factor none client, 127.0.0.2
  const seeds: Record<string, string> = {};

  beforeAll(async () => {
    if (!slapdPath) throw new Error("slapd not installed: apt-get install slapd ldap-utils (required in CI)");
    if (!radclientPath) throw new Error("radclient not installed: apt-get install freeradius-utils (required in CI)");
    slapd = await startSlapd();
    await slapd.modify(extraUsersLdif());
    app = new Appliance();
    app.writeConfig(profileToml("corp", [slapd.ldapsUrl], slapd.caFile));
    // Hybrid records hold the TOTP tokens of directory users (the directory checks the password).
    for (const name of ["uma", "vera", "walt", "erin", "carol"]) {
      await app.cli(["user", "add", name, "--directory", "corp"]);
      seeds[name] = newSeed();
      await app.cli(["token", "add", name, "--totp", "--secret", seeds[name]!]);
    }
    seeds["carol-b"] = newSeed(); // a second token: the login after the change fits the same TOTP step
    await app.cli(["token", "add", "carol", "--totp", "--secret", seeds["carol-b"]!]);
    server = await app.serve();
    secret = await addLiveClient(app, server, "vpn", "127.0.0.1");
    codeOnlySecret = await addLiveClient(app, server, "fw", "127.0.0.2", ["--first-factor", "none"]);
  }, 120_000);

  afterAll(async () => {
    await app?.[Symbol.asyncDispose]();
    await slapd?.stop();
  });

  itest("LDAP password → Access-Challenge, TOTP code → Access-Accept; the hybrid record is then linked by entryUUID", async () => {
    const before = await app.cli(["user", "show", "uma", "--json"]);
    expect(JSON.parse(before)).toMatchObject({ username: "uma", directory: "corp", externalId: null, password: "none" });

    const first = await radclient(server.port, secret, ["User-Name = uma", `User-Password = ${quote(EXTRA.uma)}`]);
    expect(first.code).toBe("Access-Challenge");
    expect(attr(first, "Reply-Message")).toBe(PROMPT);
    // RFC 2865 §4.4: the challenge carries no Class / Filter-Id; they wait for the final accept.
    expect(attr(first, "Class")).toBeUndefined();
    expect(attr(first, "Filter-Id")).toBeUndefined();
    const state = attr(first, "State")!;
    expect(state).toMatch(/^0x[0-9a-f]{32,}$/);
    const second = await radclient(server.port, secret, ["User-Name = uma", `User-Password = ${quote(codeOf(seeds.uma!))}`, `State = ${state}`]);
    expect(second.code).toBe("Access-Accept");
    // Nested: uma ∈ staff ⊂ vpn-users. radclient decodes the Fortinet VSA with FreeRADIUS's own dictionary.
    expect(attr(second, "Filter-Id")).toBe("users-acl");
    expect(attr(second, "Fortinet-Group-Name")).toBe("fg-vpn-users");
    expect(attr(second, "Class")).toBe("0x" + Buffer.from("vpn-users").toString("hex")); // Class is octets: radclient prints hex
    expect(second.attributes.filter(([n]) => n === "Filter-Id").map(([, v]) => v)).toEqual(["users-acl"]); // not in vpn-admins

    // The slapd entry's entryUUID is now the record's stable ID.
    const shown = JSON.parse(await app.cli(["user", "show", "uma", "--json"])) as { externalId: string | null };
    expect(shown.externalId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const diag = await app.run(["ldap", "test", "corp", "uma"]);
    expect(diag.stdout).toContain(`id ${shown.externalId}`);
    expect(await app.cli(["user", "show", "uma"])).toContain(`linked ID: ${shown.externalId}`);
  });

  itest("reply attributes arrive byte-exact on the final Access-Accept (raw packets, Fortinet VSA decoded by hand)", async () => {
    using udp = await UDPClient.open();
    const first = await pap(udp, server, secret, "vera", EXTRA.vera);
    expect(first.code).toBe(Code.AccessChallenge);
    expect(first.attributes.map(([t]) => t).filter((t) => t === CLASS || t === FILTER_ID || t === VENDOR_SPECIFIC)).toEqual([]);
    const state = first.attributes.find(([t]) => t === Attr.State)![1];
    const second = await pap(udp, server, secret, "vera", codeOf(seeds.vera!), state);
    expect(second.code).toBe(Code.AccessAccept);
    expect(second.messageAuthenticatorFirst).toBe(true);
    expect(values(second.attributes, CLASS)).toEqual(["vpn-users"]);
    expect(values(second.attributes, FILTER_ID)).toEqual(["users-acl"]);
    expect(vsas(second.attributes)).toEqual([{ vendor: FORTINET, type: 1, value: "fg-vpn-users" }]);
  });

  itest("wrong LDAP password → Access-Reject with the generic text", async () => {
    const r = await radclient(server.port, secret, ["User-Name = alice", `User-Password = ${quote("not-" + PASSWORDS.alice)}`]);
    expect(r.code).toBe("Access-Reject");
    expect(attr(r, "Reply-Message")).toBe(REJECT);
    expect(lastFailure(server, "alice")?.reason).toBe("bad_password");
  });

  itest("an empty password is rejected without any bind (slapd's log shows none); a later bind proves the log is read", async () => {
    const aliceDN = `uid=alice,${PEOPLE}`;
    const before = bindsOf(slapd, aliceDN);
    using udp = await UDPClient.open();
    const r = await pap(udp, server, secret, "alice", "");
    expect(r.code).toBe(Code.AccessReject);
    expect(values(r.attributes, Attr.ReplyMessage)).toEqual([REJECT]);
    // Sentinel: a wrong password does bind; once its BIND line is in the log, the empty one's would be too.
    const sentinel = await pap(udp, server, secret, "alice", "sentinel-wrong-password");
    expect(sentinel.code).toBe(Code.AccessReject);
    await eventually("the sentinel bind in slapd's log", () => (bindsOf(slapd, aliceDN) > before ? true : undefined), { timeoutMs: 5000 });
    expect(bindsOf(slapd, aliceDN)).toBe(before + 1);
  });

  itest.each([
    ["a wildcard", "al*"],
    ["a filter break-out", "x)(uid=alice"],
    ["an OR break-out", "*)(|(uid=alice)"],
  ])("filter injection (%s) in User-Name → Access-Reject, escaped per RFC 4515 in the search, no bind", async (_what, name) => {
    const aliceDN = `uid=alice,${PEOPLE}`;
    const binds = bindsOf(slapd, aliceDN);
    const searches = slapd.log.length;
    const r = await radclient(server.port, secret, [`User-Name = ${quote(name)}`, `User-Password = ${quote(PASSWORDS.alice)}`]);
    expect(r.code).toBe("Access-Reject");
    expect(attr(r, "Reply-Message")).toBe(REJECT);
    // The search slapd received holds the name as one escaped value (\2a for '*', \28 \29 for parentheses).
    const escaped = name.replace(/[*()\\]/g, (c) => "\\" + c.charCodeAt(0).toString(16).padStart(2, "0"));
    const srch = await eventually("the search in slapd's log", () => {
      const lines = slapd.log.slice(searches).filter((l) => /SRCH .*filter=/.test(l)).map((l) => l.toLowerCase());
      return lines.some((l) => l.includes(`(uid=${escaped})`)) ? lines : undefined;
    }, { timeoutMs: 5000 });
    for (const l of srch) expect(l).not.toContain(`(uid=${name.toLowerCase()})`);
    expect(bindsOf(slapd, aliceDN)).toBe(binds);
  });

  itest("a directory user outside required_groups → Access-Reject (not_in_group), after a proven password", async () => {
    const r = await radclient(server.port, secret, ["User-Name = olaf", `User-Password = ${quote(EXTRA.olaf)}`]);
    expect(r.code).toBe("Access-Reject");
    expect(lastFailure(server, "olaf")?.reason).toBe("not_in_group");
  });

  itest("--first-factor none client: the TOTP code alone → Access-Accept with the group's reply attributes", async () => {
    using udp = await UDPClient.open("127.0.0.2");
    const r = await pap(udp, server, codeOnlySecret, "walt", codeOf(seeds.walt!));
    expect(r.code).toBe(Code.AccessAccept);
    expect(values(r.attributes, CLASS)).toEqual(["vpn-users"]);
    expect(vsas(r.attributes)).toEqual([{ vendor: FORTINET, type: 1, value: "fg-vpn-users" }]);
  });

  itest("--first-factor none client: a ppolicy-locked account (pwdAccountLockedTime) is refused although the code is right", async () => {
    using udp = await UDPClient.open("127.0.0.2");
    const r = await pap(udp, server, codeOnlySecret, "erin", codeOf(seeds.erin!));
    expect(r.code).toBe(Code.AccessReject);
    expect(values(r.attributes, Attr.ReplyMessage)).toEqual([REJECT]); // nothing proven on a code-only client: generic
    expect(lastFailure(server, "erin")?.reason).toBe("account_locked");
    // And with her right password on the challenge client: refused too (slapd's ppolicy at the bind).
    const p = await radclient(server.port, secret, ["User-Name = erin", `User-Password = ${quote(PASSWORDS.erin)}`]);
    expect(p.code).toBe("Access-Reject");
    expect(lastFailure(server, "erin")?.reason).toBe("account_locked");
  });

  itest("ppolicy-expired password (carol): changed over RADIUS PAP with RFC 3062 after the code; then the new password binds", async () => {
    using udp = await UDPClient.open();
    const text = (r: CheckedReply) => values(r.attributes, Attr.ReplyMessage).join("");
    const state = (r: CheckedReply) => r.attributes.find(([t]) => t === Attr.State)?.[1];
    const first = await pap(udp, server, secret, "carol", PASSWORDS.carol);
    expect(first.code).toBe(Code.AccessChallenge);
    expect(text(first)).toBe("Your password has expired. Enter a new password.");
    const newPassword = "carol-New-Passw0rd-9";
    const again = await pap(udp, server, secret, "carol", newPassword, state(first));
    expect(text(again)).toBe("Enter the new password again.");
    const code = await pap(udp, server, secret, "carol", newPassword, state(again));
    expect(text(code)).toBe(PROMPT);
    const done = await pap(udp, server, secret, "carol", codeOf(seeds.carol!), state(code));
    expect(done.code).toBe(Code.AccessAccept);
    expect(values(done.attributes, FILTER_ID)).toEqual(["users-acl"]);
    // slapd received an RFC 3062 Password Modify extended operation.
    await slapd.waitForLog(/EXT oid=1\.3\.6\.1\.4\.1\.4203\.1\.11\.1/, 5000);
    const fresh = await pap(udp, server, secret, "carol", newPassword);
    expect(fresh.code).toBe(Code.AccessChallenge);
    expect(text(fresh)).toBe(PROMPT);
    expect((await pap(udp, server, secret, "carol", codeOf(seeds["carol-b"]!), state(fresh))).code).toBe(Code.AccessAccept);
    const old = await pap(udp, server, secret, "carol", PASSWORDS.carol);
    expect(old.code).toBe(Code.AccessReject);
    expect(JSON.stringify(server.logs)).not.toContain(newPassword);
  });

  itest("portcullis ldap test corp alice: exit 0, DN, E.164 phone, groups; never the bind password", async () => {
    const r = await app.run(["ldap", "test", "corp", "alice"]);
    const all = r.stdout + r.stderr;
    expect(r.code).toBe(0);
    expect(all).toContain(`dn uid=alice,${PEOPLE}`);
    expect(all).toContain('phone +46701234567 (directory value "070-123 45 67")');
    expect(all).toContain("service bind: ok");
    expect(all).toMatch(/TLS TLSv1\.[23]/);
    expect(all).toContain(`required group cn=vpn-users,${GROUPS}: member`);
    expect(all).toContain(`reply group cn=vpn-admins,${GROUPS}: member`);
    expect(all).toContain("type totp (11) (from employeeType)");
    expect(all).not.toContain(SERVICE_PASSWORD);
    expect(all).not.toContain(PASSWORDS.alice);
    const unknown = await app.run(["ldap", "test", "nope"]);
    expect(unknown.code).toBe(2);
  });
});

// ── failover ─────────────────────────────────────────────────────────────────────────────────

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

/**
 * A second slapd holding a copy of the first one's data (slapcat → slapadd keeps entryUUID, as real
 * replicas do), with the same certificate, on its own LDAPS port. Returns its URL, its log and a stop.
 */
async function startReplica(primary: Slapd): Promise<{ url: string; caFile: string; log: string[]; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-slapd-replica-"));
  for (const f of ["ca.pem", "server.pem", "server.key"]) copyFileSync(join(primary.dir, f), join(dir, f));
  const conf = readFileSync(join(primary.dir, "slapd.conf"), "utf8").replaceAll(primary.dir, dir);
  writeFileSync(join(dir, "slapd.conf"), conf);
  spawnSync("mkdir", ["-p", join(dir, "db")]);
  const slapcat = Bun.which("slapcat") ?? "/usr/sbin/slapcat";
  const slapadd = Bun.which("slapadd") ?? "/usr/sbin/slapadd";
  const dump = spawnSync(slapcat, ["-f", join(primary.dir, "slapd.conf")], { encoding: "utf8", timeout: 20_000 });
  if (dump.status !== 0) throw new Error(`slapcat failed: ${dump.stderr}`);
  const load = spawnSync(slapadd, ["-f", join(dir, "slapd.conf"), "-q"], { input: dump.stdout, encoding: "utf8", timeout: 20_000 });
  if (load.status !== 0) throw new Error(`slapadd (replica) failed: ${load.stderr}`);
  const port = await freePort();
  const url = `ldaps://127.0.0.1:${port}`;
  const log: string[] = [];
  const proc: ChildProcess = spawn(slapdPath!, ["-f", join(dir, "slapd.conf"), "-h", `${url}/`, "-d", "stats"], { stdio: ["ignore", "ignore", "pipe"] });
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
  const stop = async () => {
    if (!exited) proc.kill("SIGKILL");
    const until = Date.now() + 5000;
    while (!exited && Date.now() < until) await Bun.sleep(10);
    rmSync(dir, { recursive: true, force: true });
  };
  await eventually("the replica slapd to start", () => (log.some((l) => /slapd starting/.test(l)) ? true : exited ? false : undefined), { timeoutMs: 10_000, tries: 1000, everyMs: 20 })
    .then((ok) => {
      if (!ok) throw new Error(`replica slapd exited:\n${log.slice(-20).join("\n")}`);
    })
    .catch(async (e) => {
      await stop();
      throw e;
    });
  return { url, caFile: join(dir, "ca.pem"), log, stop };
}

describe.skipIf(!run)("failover across a profile's urls through the compiled binary", () => {
  let primary: Slapd;
  let replica: Awaited<ReturnType<typeof startReplica>>;
  let app: Appliance;
  let server: ServerProcess;
  let secret: string;
  const seedA = newSeed();
  const seedB = newSeed();

  beforeAll(async () => {
    if (!slapdPath) throw new Error("slapd not installed: apt-get install slapd ldap-utils (required in CI)");
    primary = await startSlapd();
    replica = await startReplica(primary);
    app = new Appliance();
    app.writeConfig(profileToml("corp", [primary.ldapsUrl, replica.url], replica.caFile)); // the same CA; this copy outlives the primary
    await app.cli(["user", "add", "alice", "--directory", "corp"]);
    // Two tokens: each login consumes a step of its own token, so both logins fit one TOTP step.
    await app.cli(["token", "add", "alice", "--totp", "--secret", seedA]);
    await app.cli(["token", "add", "alice", "--totp", "--secret", seedB]);
    server = await app.serve();
    secret = await addLiveClient(app, server, "vpn", "127.0.0.1");
  }, 120_000);

  afterAll(async () => {
    await app?.[Symbol.asyncDispose]();
    await replica?.stop();
    await primary?.stop();
  });

  async function login(seed: string): Promise<void> {
    const first = await radclient(server.port, secret, ["User-Name = alice", `User-Password = ${quote(PASSWORDS.alice)}`]);
    expect(first.code).toBe("Access-Challenge");
    const second = await radclient(server.port, secret, ["User-Name = alice", `User-Password = ${quote(codeOf(seed))}`, `State = ${attr(first, "State")}`]);
    expect(second.code).toBe("Access-Accept");
    expect(attr(second, "Filter-Id")).toBe("users-acl");
  }

  itest("first URL serves; after it is killed mid-run the next login succeeds through the second", async () => {
    const aliceDN = `uid=alice,${PEOPLE}`;
    await login(seedA);
    // slapd's log reaches us after the RADIUS reply: wait for the line rather than race it.
    await eventually("alice's bind on the primary", () => (bindsOf(primary, aliceDN) === 1 ? true : undefined), { timeoutMs: 5000 });
    expect(bindsOf({ log: replica.log }, aliceDN)).toBe(0);

    await primary.stop(); // SIGKILL: pooled connections die with it
    await login(seedB);
    await eventually("alice's bind on the replica", () => (bindsOf({ log: replica.log }, aliceDN) === 1 ? true : undefined), { timeoutMs: 5000 });
    // The binary saw the first URL fail (it now rests) and did not fall back to any other source.
    expect(server.logs.some((l) => (l.event === "ldap.url_failed" || l.event === "ldap.operation_failed") && String(l.url) === primary.ldapsUrl)).toBe(true);
    const show = JSON.parse(await app.cli(["user", "show", "alice", "--json"])) as { externalId: string | null; tokens: unknown[] };
    expect(show.externalId).not.toBeNull(); // the same entryUUID on both servers: still one record
    expect(show.tokens).toHaveLength(2);
  });
});

// `[radius] workers = 2` (the default on a 2-core host): every worker opens its own pools to the
// profile; a login's legs may be decided by different workers (the challenge lives in the store).
// The RADIUS Identifier picks the worker (Identifier modulo the number of workers), and every log
// line of a worker carries `"worker":N`.
describe.skipIf(!run)("two RADIUS workers with a slapd profile", () => {
  let slapd: Slapd;
  let app: Appliance;
  let server: ServerProcess;
  let secret: string;
  const seeds: Record<string, string> = {};

  beforeAll(async () => {
    if (!slapdPath) throw new Error("slapd not installed: apt-get install slapd ldap-utils (required in CI)");
    slapd = await startSlapd();
    await slapd.modify(extraUsersLdif());
    app = new Appliance({ PORTCULLIS_RADIUS_WORKERS: "2" });
    app.writeConfig(profileToml("corp", [slapd.ldapsUrl], slapd.caFile));
    for (const name of ["uma", "vera"]) {
      await app.cli(["user", "add", name, "--directory", "corp"]);
      seeds[name] = newSeed();
      await app.cli(["token", "add", name, "--totp", "--secret", seeds[name]!]);
    }
    secret = `it-${randomBytes(12).toString("hex")}`;
    await app.cli(["client", "add", "vpn", "--address", "127.0.0.1/32", "--secret", secret]);
    server = await app.serve();
    await eventually("both workers listening", () => (server.logs.filter((l) => l.event === "radius.listening").length >= 2 ? true : undefined), { tries: 200, timeoutMs: 30_000 });
  }, 120_000);

  afterAll(async () => {
    await app?.[Symbol.asyncDispose]();
    await slapd?.stop();
  });

  /** A PAP Access-Request with a chosen Identifier (its parity picks the worker). */
  async function papWith(udp: UDPClient, id: number, user: string, password: string, state?: Uint8Array) {
    const attributes: RawAttribute[] = [[Attr.UserName, new TextEncoder().encode(user)], [Attr.UserPassword, new TextEncoder().encode(password)]];
    if (state) attributes.push([Attr.State, state]);
    return await udp.exchange(buildAccessRequest({ identifier: id, secret, attributes }), server.port, secret);
  }

  itest("each worker checks LDAP passwords; the code leg is accepted by the other worker", async () => {
    const listening = server.logs.filter((l) => l.event === "radius.listening");
    expect(new Set(listening.map((l) => l.worker))).toEqual(new Set([1, 2]));
    using udp = await UDPClient.open();
    // uma: password on one worker, code on the other; vera: the other way round.
    for (const [user, passwordId, codeId] of [["uma", 10, 11], ["vera", 21, 20]] as const) {
      const first = await papWith(udp, passwordId, user, EXTRA[user]);
      expect(first.code).toBe(Code.AccessChallenge);
      const state = first.attributes.find(([t]) => t === Attr.State)![1];
      const second = await papWith(udp, codeId, user, codeOf(seeds[user]!), state);
      expect(second.code).toBe(Code.AccessAccept);
      expect(values(second.attributes, FILTER_ID)).toEqual(["users-acl"]);
    }
    const challenged = await eventually("both auth.challenge lines", () => {
      const lines = server.logs.filter((l) => l.event === "auth.challenge" && (l.user === "uma" || l.user === "vera"));
      return lines.length >= 2 ? lines : undefined;
    });
    const accepted = await eventually("both auth.success lines", () => {
      const lines = server.logs.filter((l) => l.event === "auth.success" && (l.user === "uma" || l.user === "vera"));
      return lines.length >= 2 ? lines : undefined;
    });
    // The two password legs were decided by different workers, and each code leg by the worker that did not ask for it.
    expect(new Set(challenged.map((l) => l.worker))).toEqual(new Set([1, 2]));
    for (const user of ["uma", "vera"]) {
      expect(accepted.find((l) => l.user === user)!.worker).not.toBe(challenged.find((l) => l.user === user)!.worker);
    }
  });

  itest("a wrong LDAP password is rejected by either worker", async () => {
    using udp = await UDPClient.open();
    for (const id of [30, 31]) {
      const r = await papWith(udp, id, "alice", "not-" + PASSWORDS.alice);
      expect(r.code).toBe(Code.AccessReject);
    }
    const failures = await eventually("two auth.failure lines", () => {
      const lines = server.logs.filter((l) => l.event === "auth.failure" && l.user === "alice");
      return lines.length >= 2 ? lines : undefined;
    });
    expect(failures.every((l) => l.reason === "bad_password")).toBe(true);
    expect(new Set(failures.map((l) => l.worker))).toEqual(new Set([1, 2]));
  });
});
