// LdapDirectory against a real, throwaway slapd: search, bind, ppolicy, RFC 3062, groups, TLS, failover.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, createServer } from "node:net";
import { ldapTest } from "../../src/cli/ldap.ts";
import { createLdapDirectory, type LdapDirectory } from "../../src/directory/ldap/index.ts";
import { DirectoryUnavailableError, type LdapProfile } from "../../src/directory/types.ts";
import { ADMIN_DN, BASE_DN, GROUPS, PASSWORDS, PEOPLE, runSlapdTests, SERVICE_DN, SERVICE_PASSWORD, startSlapd, type Slapd } from "./helpers/slapd.ts";

const d = runSlapdTests ? describe : describe.skip;

function profile(over: Partial<LdapProfile> = {}): LdapProfile {
  return {
    name: "corp",
    urls: [],
    startTLS: false,
    plaintext: true,
    bindDN: SERVICE_DN,
    bindPassword: SERVICE_PASSWORD,
    baseDN: BASE_DN,
    userFilter: "(&(objectClass=inetOrgPerson)(uid={username}))",
    phoneAttribute: "mobile",
    emailAttribute: "mail",
    typeAttribute: "employeeType",
    tokenAttribute: "employeeNumber",
    allowTypePassword: false,
    requiredGroups: [],
    defaultType: "totp",
    timeoutMs: 3000,
    reply: [],
    region: "SE",
    ...over,
  };
}

type Logged = { level: string; event: string; fields: Record<string, unknown> };

d("LdapDirectory against slapd", () => {
  let slapd: Slapd;
  let dir: LdapDirectory;
  const logged: Logged[] = [];
  const log = (level: string, event: string, fields: Record<string, unknown>) => logged.push({ level, event, fields });

  beforeAll(async () => {
    slapd = await startSlapd();
    dir = createLdapDirectory(profile({ urls: [slapd.url] }), { log });
  });
  afterAll(async () => {
    await dir?.close();
    await slapd?.stop();
  });

  test("findUser reads DN, entryUUID, E.164 phone, email, type and token serial", async () => {
    const u = await dir.findUser("alice");
    expect(u).toBeDefined();
    expect(u!.dn).toBe(`uid=alice,${PEOPLE}`);
    expect(u!.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect({ ...u!, id: "x" }).toEqual({
      profile: "corp",
      id: "x",
      dn: `uid=alice,${PEOPLE}`,
      username: "alice",
      phone: "+46701234567",
      rawPhone: "070-123 45 67",
      email: "alice@example.com",
      type: "totp",
      tokenSerial: "TOK-0001",
      status: "ok",
    });
  });

  test("the stable ID survives a second lookup", async () => {
    expect((await dir.findUser("alice"))!.id).toBe((await dir.findUser("alice"))!.id);
  });

  test("an unknown user is undefined (the engine may try the next profile)", async () => {
    expect(await dir.findUser("nobody")).toBeUndefined();
  });

  test("a non-ASCII login name is found", async () => {
    const u = await dir.findUser("åsa");
    expect(u?.dn).toBe(`uid=åsa,${PEOPLE}`);
    expect(u?.type).toBe("totp");
    expect(await dir.verifyPassword(u!, PASSWORDS.åsa)).toEqual({ ok: true });
  });

  test.each(["*", "*)(uid=*", "alice)(|(uid=*", "a*", "*)(objectClass=*", "alice\0", "\\2a", "al*ce"])("filter injection %j finds nothing", async (name) => {
    expect(await dir.findUser(name)).toBeUndefined();
  });

  test("two entries matching the filter refuse the login (not the next profile)", async () => {
    await expect(dir.findUser("dup")).rejects.toBeInstanceOf(DirectoryUnavailableError);
    expect(logged.some((l) => l.event === "ldap.ambiguous_user" && !JSON.stringify(l).includes("dup"))).toBe(true);
  });

  test("type: `password` from the directory is refused unless allowed, with a warning", async () => {
    const frank = await dir.findUser("frank");
    expect(frank!.type).toBeNull();
    expect(frank!.phone).toBeNull(); // "not a phone"
    expect(frank!.rawPhone).toBe("not a phone");
    expect(logged.some((l) => l.event === "ldap.type_password_refused")).toBe(true);
    const bob = await dir.findUser("bob");
    expect(bob!.type).toBeNull();
    expect(bob!.phone).toBe("+46812345678");
    const allowing = createLdapDirectory(profile({ urls: [slapd.url], allowTypePassword: true }));
    try {
      expect((await allowing.findUser("bob"))!.type).toBe("password");
      expect((await allowing.findUser("frank"))!.type).toBe("password");
    } finally {
      await allowing.close();
    }
  });

  test("bind with the right password succeeds, a wrong one is bad_credentials", async () => {
    const u = (await dir.findUser("alice"))!;
    expect(await dir.verifyPassword(u, PASSWORDS.alice)).toEqual({ ok: true });
    expect(await dir.verifyPassword(u, "wrong-password")).toMatchObject({ ok: false, reason: "bad_credentials" });
  });

  test("an empty password is refused with no traffic at all", async () => {
    const u = (await dir.findUser("alice"))!;
    const before = slapd.log.length;
    const opened = dir.userConnections.opened;
    expect(await dir.verifyPassword(u, "")).toEqual({ ok: false, reason: "bad_credentials", detail: expect.any(String) });
    await Bun.sleep(100); // let any stray log line arrive
    expect(dir.userConnections.opened).toBe(opened);
    expect(slapd.log.slice(before).filter((l) => /ACCEPT|BIND/.test(l))).toEqual([]);
  });

  test("a connection bound as a user is never used for anything else; user binds reuse their own pool", async () => {
    const ours = () => [...slapd.connections().values()].filter((c) => c.binds.length > 0 && !c.binds.includes(ADMIN_DN));
    const userBinds = () => ours().reduce((n, c) => n + c.binds.filter((b) => b !== SERVICE_DN).length, 0);
    const bindsBefore = userBinds();
    const leasesBefore = dir.userConnections.leases;
    const u = (await dir.findUser("alice"))!;
    await dir.verifyPassword(u, PASSWORDS.alice);
    await dir.verifyPassword(u, "wrong-password");
    const bob = (await dir.findUser("bob"))!;
    await dir.verifyPassword(bob, PASSWORDS.bob);
    await dir.dummyBind("whatever");
    await dir.memberOf(u, [`cn=staff,${GROUPS}`]);
    await dir.verifyPassword(u, PASSWORDS.alice);
    await slapd.waitForLog(new RegExp(`BIND dn="${u.dn}"`)); // the log is asynchronous
    for (let i = 0; i < 50 && userBinds() < bindsBefore + 5; i++) await Bun.sleep(20);
    const conns = ours();
    const userConns = conns.filter((c) => c.binds.some((b) => b !== SERVICE_DN));
    const serviceConns = conns.filter((c) => c.binds.includes(SERVICE_DN));
    expect(userConns.length).toBeGreaterThanOrEqual(1);
    expect(serviceConns.length).toBeGreaterThanOrEqual(1);
    // Service connections never carry a user BIND; user-bind connections never carry anything but BINDs.
    for (const c of serviceConns) expect(c.binds.every((b) => b === SERVICE_DN)).toBe(true);
    for (const c of userConns) expect(c.ops.filter((o) => o !== "BIND" && o !== "UNBIND")).toEqual([]);
    // Rebinding, not reconnecting: the 5 user binds (the dummy one included) ran on pooled connections.
    expect(userBinds() - bindsBefore).toBe(5);
    expect(dir.userConnections.opened).toBeLessThan(dir.userConnections.leases);
    expect(userConns.some((c) => c.binds.length > 1)).toBe(true);
    expect(serviceConns.some((c) => c.ops.filter((o) => o === "SRCH").length > 1)).toBe(true);
    expect(dir.userConnections.leases - leasesBefore).toBe(5);
  });

  test("the user-bind pool is bounded: concurrent logins wait for a connection instead of opening more", async () => {
    const small = createLdapDirectory(profile({ urls: [slapd.url] }), { bindPoolSize: 2 });
    try {
      const alice = (await small.findUser("alice"))!;
      const results = await Promise.all(Array.from({ length: 24 }, (_, i) => small.verifyPassword(alice, i % 3 === 0 ? "wrong-password" : PASSWORDS.alice)));
      expect(results.map((r) => r.ok)).toEqual(Array.from({ length: 24 }, (_, i) => i % 3 !== 0));
      const stats = small.userConnections;
      expect(stats.opened).toBeLessThanOrEqual(2);
      expect(stats.leases).toBe(24);
      expect(stats.busy).toBe(0);
      expect(stats.idle).toBe(stats.opened);
    } finally {
      await small.close();
    }
  });

  test("a user-bind connection the server side closed is replaced, and the login still works", async () => {
    // A TCP relay in front of slapd lets the test cut sessions as an idle timeout or a restart would.
    const relayed = new Set<import("node:net").Socket>();
    const relay = createServer((down) => {
      const up = connect(slapd.port, "127.0.0.1");
      relayed.add(down);
      down.pipe(up).pipe(down);
      const end = () => {
        down.destroy();
        up.destroy();
        relayed.delete(down);
      };
      down.on("error", end).on("close", end);
      up.on("error", end).on("close", end);
    });
    await new Promise<void>((r) => relay.listen(0, "127.0.0.1", r));
    const port = (relay.address() as { port: number }).port;
    const one = createLdapDirectory(profile({ urls: [`ldap://127.0.0.1:${port}`] }), { bindPoolSize: 1, poolSize: 1 });
    try {
      const alice = (await one.findUser("alice"))!;
      expect(await one.verifyPassword(alice, PASSWORDS.alice)).toEqual({ ok: true });
      expect(await one.verifyPassword(alice, PASSWORDS.alice)).toEqual({ ok: true });
      expect(one.userConnections).toMatchObject({ opened: 1, discarded: 0 });
      for (const sock of relayed) sock.destroy();
      for (let i = 0; i < 50 && relayed.size > 0; i++) await Bun.sleep(20);
      expect(await one.verifyPassword(alice, PASSWORDS.alice)).toEqual({ ok: true });
      expect(await one.verifyPassword(alice, "wrong-password")).toMatchObject({ ok: false, reason: "bad_credentials" });
      expect(one.userConnections).toMatchObject({ opened: 2, discarded: 1 });
      expect((await one.findUser("bob"))?.username).toBe("bob");
    } finally {
      await one.close();
      for (const sock of relayed) sock.destroy();
      relay.close();
    }
  });

  test("the search pool is bounded and reused under concurrent logins; the service pool is not opened for them", async () => {
    const small = createLdapDirectory(profile({ urls: [slapd.url] }), { poolSize: 2 });
    try {
      const names = Array.from({ length: 30 }, (_, i) => ["alice", "bob", "åsa", "nobody"][i % 4]!);
      const found = await Promise.all(names.map((n) => small.findUser(n)));
      expect(found.map((u) => u?.username ?? null)).toEqual(names.map((n) => (n === "nobody" ? null : n)));
      expect(small.poolStats().opened).toBe(0);
      const stats = small.searchConnections;
      expect(stats.opened).toBeGreaterThanOrEqual(1);
      expect(stats.opened).toBeLessThanOrEqual(2);
      expect(stats.busy).toBe(0);
      expect(stats.idle).toBe(stats.opened);
    } finally {
      await small.close();
    }
  });

  test("dummyBind costs a bind and never succeeds", async () => {
    await dir.dummyBind("whatever");
    const line = await slapd.waitForLog(/BIND dn="cn=portcullis-nonexistent-/);
    expect(line).toContain(BASE_DN);
    const conn = /conn=(\d+) (op=\d+)/.exec(line)!;
    // invalidCredentials (49): the bind failed, and no account exists to lock.
    await slapd.waitForLog(new RegExp(`conn=${conn[1]} ${conn[2]} RESULT tag=97 err=49 `));
  });

  test("account status from ppolicy attributes: locked, must change, expired", async () => {
    expect((await dir.findUser("erin"))!.status).toBe("locked");
    expect((await dir.findUser("dave"))!.status).toBe("must_change");
    expect(await dir.verifyPassword((await dir.findUser("erin"))!, PASSWORDS.erin)).toMatchObject({ ok: false, reason: "locked" });
  });

  test("ppolicy: expired password is detected at bind and changed with RFC 3062, then the new one binds", async () => {
    const carol = (await dir.findUser("carol"))!;
    expect(await dir.verifyPassword(carol, PASSWORDS.carol)).toMatchObject({ ok: false, reason: "password_expired" });
    expect(await dir.changePassword(carol, "not-the-old-one", "Carol-New-Passw0rd")).toMatchObject({ ok: false, reason: "bad_credentials" });
    expect(await dir.changePassword(carol, PASSWORDS.carol, "Carol-New-Passw0rd")).toEqual({ ok: true });
    expect(await dir.verifyPassword(carol, "Carol-New-Passw0rd")).toEqual({ ok: true });
    expect(await dir.verifyPassword(carol, PASSWORDS.carol)).toMatchObject({ ok: false, reason: "bad_credentials" });
  });

  test("ppolicy: must-change (pwdReset) is reported at bind and cleared by the change", async () => {
    const dave = (await dir.findUser("dave"))!;
    expect(await dir.verifyPassword(dave, PASSWORDS.dave)).toMatchObject({ ok: false, reason: "must_change" });
    expect(await dir.changePassword(dave, PASSWORDS.dave, "Dave-New-Passw0rd")).toEqual({ ok: true });
    expect(await dir.verifyPassword(dave, "Dave-New-Passw0rd")).toEqual({ ok: true });
  });

  test("ppolicy violations come back as readable messages, with no password in them", async () => {
    const bob = (await dir.findUser("bob"))!;
    const short = await dir.changePassword(bob, PASSWORDS.bob, "Sh0rt");
    expect(short).toEqual({ ok: false, reason: "policy", message: expect.stringMatching(/too short/i) });
    expect(JSON.stringify(short)).not.toContain("Sh0rt");
    expect(await dir.changePassword(bob, PASSWORDS.bob, "Bob-Second-Passw0rd")).toEqual({ ok: true });
    const reused = await dir.changePassword(bob, "Bob-Second-Passw0rd", PASSWORDS.bob);
    expect(reused).toEqual({ ok: false, reason: "policy", message: expect.stringMatching(/used before/i) });
  });

  test("nested groups through memberOf, cycles and depth bounded", async () => {
    const alice = (await dir.findUser("alice"))!;
    const groups = [`cn=vpn-users,${GROUPS}`, `CN=VPN-Admins,OU=Groups,DC=Example,DC=Com`, `cn=cycle-a,${GROUPS}`];
    expect(await dir.memberOf(alice, groups)).toEqual(new Set([groups[0]!, groups[1]!]));
    const bob = (await dir.findUser("bob"))!;
    expect(await dir.memberOf(bob, [`cn=cycle-b,${GROUPS}`, `cn=vpn-users,${GROUPS}`, `cn=deep-5,${GROUPS}`, `cn=deep-11,${GROUPS}`])).toEqual(
      new Set([`cn=cycle-b,${GROUPS}`, `cn=deep-5,${GROUPS}`]),
    );
  });

  test("injection-looking group DNs in the configured list are plain values", async () => {
    const alice = (await dir.findUser("alice"))!;
    expect(await dir.memberOf(alice, [`cn=*,${GROUPS}`, "*"])).toEqual(new Set());
  });

  test("StartTLS and LDAPS with the fixture's CA", async () => {
    for (const p of [profile({ urls: [slapd.url], startTLS: true, caFile: slapd.caFile, plaintext: false }), profile({ urls: [slapd.ldapsUrl], caFile: slapd.caFile, plaintext: false })]) {
      const tlsDir = createLdapDirectory(p);
      try {
        const u = (await tlsDir.findUser("alice"))!;
        expect(u.dn).toBe(`uid=alice,${PEOPLE}`);
        expect(await tlsDir.verifyPassword(u, PASSWORDS.alice)).toEqual({ ok: true });
      } finally {
        await tlsDir.close();
      }
    }
  });

  test("LDAPS with a certificate the CA does not sign is unavailable, not a plaintext fallback", async () => {
    const untrusted = createLdapDirectory(profile({ urls: [slapd.ldapsUrl], plaintext: false })); // system roots
    try {
      await expect(untrusted.findUser("alice")).rejects.toBeInstanceOf(DirectoryUnavailableError);
    } finally {
      await untrusted.close();
    }
  });

  test("LDAPS to an address the certificate does not name fails hostname verification", async () => {
    const wrongName = createLdapDirectory(profile({ urls: [slapd.ldapsUrlWrongName], caFile: slapd.caFile, plaintext: false }));
    const rightName = createLdapDirectory(profile({ urls: [slapd.ldapsUrl], caFile: slapd.caFile, plaintext: false }));
    try {
      expect((await rightName.findUser("alice"))?.dn).toBe(`uid=alice,${PEOPLE}`);
      const err = await wrongName.findUser("alice").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DirectoryUnavailableError);
      expect((err as Error).message).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID|altname|hostname/i);
    } finally {
      await wrongName.close();
      await rightName.close();
    }
  });

  test("a profile nobody answers is DirectoryUnavailableError, and the message holds no secret", async () => {
    const down = createLdapDirectory(profile({ urls: ["ldap://127.0.0.1:1", "ldap://127.0.0.1:2"], timeoutMs: 1000 }));
    try {
      const err = await down.findUser("alice").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DirectoryUnavailableError);
      expect((err as Error).message).not.toContain(SERVICE_PASSWORD);
      expect((err as DirectoryUnavailableError).code).toBe("directory_unavailable");
      const u = (await dir.findUser("alice"))!;
      await expect(down.verifyPassword(u, PASSWORDS.alice)).rejects.toBeInstanceOf(DirectoryUnavailableError);
    } finally {
      await down.close();
    }
  });

  test("ldap test: each URL's reachability, TLS details and service bind; the user's DN, phone, type, status, groups; no password", async () => {
    const p = profile({
      urls: [slapd.ldapsUrl, slapd.url, "ldap://127.0.0.1:1"],
      startTLS: true,
      caFile: slapd.caFile,
      plaintext: false,
      requiredGroups: [`cn=vpn-users,${GROUPS}`],
      reply: [{ group: `cn=vpn-admins,${GROUPS}`, attributes: { "Filter-Id": "admin-acl" } }],
    });
    const lines: string[] = [];
    const code = await ldapTest([p], "corp", "alice", (l) => lines.push(l));
    const text = lines.join("\n");
    expect(code).toBe(1); // the closed port
    expect(text).toContain(`${slapd.ldapsUrl}:\n  reachable`);
    expect(text).toMatch(/TLS TLSv1\.[23], cipher \S+/);
    expect(text).toContain("certificate subject CN=localhost");
    expect(text).toMatch(/certificate valid until \d{4}-/);
    expect(text.match(/service bind: ok/g)).toHaveLength(2);
    expect(text).toContain("ldap://127.0.0.1:1:\n  unreachable: ECONNREFUSED");
    expect(text).toContain(`dn uid=alice,${PEOPLE}`);
    expect(text).toContain("phone +46701234567");
    expect(text).toContain("type totp (11) (from employeeType)");
    expect(text).toContain("status ok");
    expect(text).toContain(`required group cn=vpn-users,${GROUPS}: member`);
    expect(text).toContain(`reply group cn=vpn-admins,${GROUPS}: member (Filter-Id)`);
    expect(text).not.toContain(SERVICE_PASSWORD);

    const ok: string[] = [];
    expect(await ldapTest([profile({ urls: [slapd.url] })], "corp", undefined, (l) => ok.push(l))).toBe(0);
    expect(ok.join("\n")).toContain("warning: plain LDAP");
    expect(await ldapTest([p], "nope", undefined, () => {})).toBe(2);
    const missing: string[] = [];
    expect(await ldapTest([profile({ urls: [slapd.url] })], "corp", "nobody", (l) => missing.push(l))).toBe(1);
    expect(missing.at(-1)).toBe("user nobody: not found in profile corp");
  });

  test("a server that accepts connections but never answers times out as DirectoryUnavailableError", async () => {
    const sockets = new Set<import("node:net").Socket>();
    const silent = createServer((sock) => sockets.add(sock)); // reads nothing, answers nothing
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const port = (silent.address() as { port: number }).port;
    const stuck = createLdapDirectory(profile({ urls: [`ldap://127.0.0.1:${port}`], timeoutMs: 300 }));
    try {
      await expect(stuck.findUser("alice")).rejects.toBeInstanceOf(DirectoryUnavailableError);
      const u = (await dir.findUser("alice"))!;
      await expect(stuck.verifyPassword(u, PASSWORDS.alice)).rejects.toBeInstanceOf(DirectoryUnavailableError);
    } finally {
      await stuck.close();
      for (const sock of sockets) sock.destroy();
      silent.close();
    }
  });

  test("a wrong service password is unavailable (not 'user not found')", async () => {
    const bad = createLdapDirectory(profile({ urls: [slapd.url], bindPassword: "not-the-service-password" }));
    try {
      const err = await bad.findUser("alice").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DirectoryUnavailableError);
      expect((err as Error).message).not.toContain("not-the-service-password");
    } finally {
      await bad.close();
    }
  });
});

d("LdapDirectory without the memberof overlay, and failover", () => {
  let a: Slapd;
  let b: Slapd;
  beforeAll(async () => {
    [a, b] = await Promise.all([startSlapd({ memberOf: false }), startSlapd({ memberOf: false })]);
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
  });

  test("nested groups by walking member downward (no memberOf attribute)", async () => {
    const dir = createLdapDirectory(profile({ urls: [a.url] }));
    try {
      const alice = (await dir.findUser("alice"))!;
      expect(await dir.memberOf(alice, [`cn=vpn-users,${GROUPS}`, `cn=cycle-a,${GROUPS}`])).toEqual(new Set([`cn=vpn-users,${GROUPS}`]));
      const bob = (await dir.findUser("bob"))!;
      expect(await dir.memberOf(bob, [`cn=cycle-b,${GROUPS}`, `cn=deep-7,${GROUPS}`, `cn=deep-11,${GROUPS}`])).toEqual(new Set([`cn=cycle-b,${GROUPS}`, `cn=deep-7,${GROUPS}`]));
    } finally {
      await dir.close();
    }
  });

  test("failover: a closed port first, then the first server stops mid-run and the second answers", async () => {
    const logged: string[] = [];
    const dir = createLdapDirectory(profile({ urls: ["ldap://127.0.0.1:1", a.url, b.url], timeoutMs: 2000 }), { log: (_l, event, f) => logged.push(`${event} ${String(f.url)}`) });
    try {
      const u1 = (await dir.findUser("alice"))!;
      expect(await dir.verifyPassword(u1, PASSWORDS.alice)).toEqual({ ok: true });
      await a.waitForLog(/BIND dn="uid=alice,/); // slapd's log reaches the test asynchronously
      const ours = (s: Slapd) => [...s.connections().values()].filter((c) => c.binds.some((dn) => dn !== ADMIN_DN)).length;
      expect(ours(a)).toBeGreaterThan(0);
      expect(ours(b)).toBe(0);
      await a.stop();
      const u2 = (await dir.findUser("alice"))!;
      expect(u2.dn).toBe(u1.dn);
      expect(await dir.verifyPassword(u2, PASSWORDS.alice)).toEqual({ ok: true });
      await b.waitForLog(/BIND dn="uid=alice,/);
      expect([...b.connections().values()].some((c) => c.binds.includes(SERVICE_DN))).toBe(true);
      expect([...b.connections().values()].some((c) => c.binds.includes(u2.dn))).toBe(true);
      expect(logged.some((l) => l.startsWith("ldap.url_failed ldap://127.0.0.1:1"))).toBe(true);
    } finally {
      await dir.close();
    }
  });
});
