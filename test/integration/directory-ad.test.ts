// Live Active Directory facts against a real Samba AD DC (test/integration/helpers/samba-ad.ts), with raw ldapts.
//
// These pin what src/directory/ldap/ad.ts assumes about AD, so they fail if Samba behaves otherwise:
// bind sub-codes for each account state, the user password change on the service connection,
// nested groups by LDAP_MATCHING_RULE_IN_CHAIN, and the primary group in tokenGroups.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { Attribute, Change, Client } from "ldapts";
import {
  AD_BINARY_ATTRIBUTES,
  AD_USER_ATTRIBUTES,
  adAccountStatus,
  adChangeError,
  encodeUnicodePwd,
  formatGUID,
  parseADBindError,
  sidRID,
  sidToString,
} from "../../src/directory/ldap/ad.ts";
import { createLdapDirectory } from "../../src/directory/ldap/index.ts";
import type { Directory, LdapProfile } from "../../src/directory/types.ts";
import { sambaMissing, startSambaAD, type SambaAD } from "./helpers/samba-ad.ts";

const missing = sambaMissing();
if (missing && process.env.CI) {
  test("Samba AD DC is installed (required in CI)", () => {
    throw new Error(missing);
  });
}

/** LDAP_MATCHING_RULE_IN_CHAIN ([MS-ADTS] 3.1.1.3.4.4.3). */
const IN_CHAIN = "1.2.840.113556.1.4.1941";

describe.skipIf(missing !== undefined)("Samba AD DC with raw ldapts", () => {
  let ad: SambaAD;
  let ca: string;
  let service: Client;
  const client = () => new Client({ url: ad.url, tlsOptions: { ca: [ca] }, timeout: 5000, connectTimeout: 5000 });

  /** Binds on a fresh connection; resolves the error (or "ok"). */
  async function bind(dn: string, password: string): Promise<{ code: number; message: string } | "ok"> {
    const c = client();
    try {
      await c.bind(dn, password);
      return "ok";
    } catch (err) {
      return { code: (err as { code?: number }).code ?? -1, message: (err as Error).message };
    } finally {
      await c.unbind().catch(() => undefined);
    }
  }

  /** The AD user change: one modify deleting the old unicodePwd and adding the new one ([MS-ADTS] 3.1.1.3.1.5). */
  async function userChange(conn: Client, dn: string, oldPassword: string, newPassword: string): Promise<unknown> {
    try {
      await conn.modify(dn, [
        new Change({ operation: "delete", modification: new Attribute({ type: "unicodePwd", values: [encodeUnicodePwd(oldPassword)] }) }),
        new Change({ operation: "add", modification: new Attribute({ type: "unicodePwd", values: [encodeUnicodePwd(newPassword)] }) }),
      ]);
      return "ok";
    } catch (err) {
      return err;
    }
  }

  async function read(dn: string, attributes: string[]) {
    const { searchEntries } = await service.search(dn, { scope: "base", filter: "(objectClass=*)", attributes, explicitBufferAttributes: AD_BINARY_ATTRIBUTES });
    expect(searchEntries).toHaveLength(1);
    return searchEntries[0]!;
  }

  beforeAll(async () => {
    ad = await startSambaAD();
    ca = readFileSync(ad.caFile, "utf8");
    service = client();
    await service.bind(ad.serviceDN, ad.servicePassword);
  }, 180_000);

  afterAll(async () => {
    await service?.unbind().catch(() => undefined);
    await ad?.stop();
  });

  test("the service account and alice bind over LDAPS with the CA file", async () => {
    expect(await bind(ad.users.alice.dn, ad.users.alice.password)).toBe("ok");
    expect(await bind(ad.users.alice.upn, ad.users.alice.password)).toBe("ok");
  });

  test.each([
    ["alice, wrong password", "alice", "wrong-password", "52e", "bad_credentials"],
    ["alice, empty password (no unauthenticated success on Samba)", "alice", "", "52e", "bad_credentials"],
    ["bob, disabled, right password", "bob", null, "533", "disabled"],
    ["bob, disabled, wrong password: status not revealed", "bob", "wrong-password", "52e", "bad_credentials"],
    ["carol, must change, right password", "carol", null, "773", "must_change"],
    ["dave, account expired, right password", "dave", null, "701", "account_expired"],
    ["dave, account expired, wrong password", "dave", "wrong-password", "52e", "bad_credentials"],
    ["erin, locked, right password", "erin", null, "775", "locked"],
    ["erin, locked, wrong password", "erin", "wrong-password", "775", "locked"],
    ["harry, password expired (pwdLastSet older than maxPwdAge)", "harry", null, "532", "password_expired"],
    ["ivan, logonHours all denied", "ivan", null, "530", "not_permitted_time"],
    ["judy, userWorkstations=NOWHERE", "judy", null, "531", "not_permitted_workstation"],
  ] as const)("bind: %s → data %s", async (_case, name, password, subcode, failure) => {
    const user = ad.users[name];
    const result = await bind(user.dn, password ?? user.password);
    expect(result).not.toBe("ok");
    const { code, message } = result as { code: number; message: string };
    expect(code).toBe(49);
    expect(message).toContain(`80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data ${subcode}, v1db1`);
    expect(parseADBindError(message)).toBe(failure);
  });

  test("bind: a DN that does not exist → 52e (Samba never says 525 to a simple bind)", async () => {
    const result = await bind(`CN=nobody,OU=People,${ad.baseDN}`, "whatever-password");
    expect(result).not.toBe("ok");
    expect((result as { message: string }).message).toContain("data 52e");
  });

  test("the service account reads every status attribute, and adAccountStatus maps each seeded user", async () => {
    const expected = {
      alice: "ok",
      bob: "disabled",
      carol: "must_change",
      chris: "must_change",
      dave: "account_expired",
      erin: "locked",
      frank: "ok",
      gina: "ok",
      harry: "password_expired",
      ivan: "ok",
      judy: "ok",
    } as const;
    const got: Record<string, string> = {};
    for (const name of Object.keys(expected) as Array<keyof typeof expected>) {
      got[name] = adAccountStatus(await read(ad.users[name].dn, AD_USER_ATTRIBUTES), Date.now());
    }
    expect(got).toEqual(expected);
  });

  test("alice: objectGUID as a UUID, objectSid, mobile in local format, the type attribute", async () => {
    const entry = await read(ad.users.alice.dn, [...AD_USER_ATTRIBUTES, "mobile", "msDS-cloudExtensionAttribute5", "mail"]);
    expect(formatGUID(entry.objectGUID as Buffer)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(sidToString(entry.objectSid as Buffer)).toMatch(/^S-1-5-21-\d+-\d+-\d+-\d+$/);
    expect(entry.mobile).toBe("070-123 45 67");
    expect(entry["msDS-cloudExtensionAttribute5"]).toBe("11");
    expect(entry.mail).toBe("alice@corp.example");
    // the same GUID through a search by sAMAccountName (what findUser does)
    const { searchEntries } = await service.search(ad.baseDN, { scope: "sub", filter: "(&(objectClass=user)(sAMAccountName=alice))", attributes: ["objectGUID"], explicitBufferAttributes: ["objectGUID"] });
    expect(searchEntries.map((e) => formatGUID(e.objectGUID as Buffer))).toEqual([formatGUID(entry.objectGUID as Buffer)]);
  });

  test("nested groups: base-scoped (memberOf:1.2.840.113556.1.4.1941:=<group>) on the user's DN", async () => {
    const member = async (name: keyof SambaAD["users"], group: string) =>
      (await service.search(ad.users[name].dn, { scope: "base", filter: `(memberOf:${IN_CHAIN}:=${group})`, attributes: ["dn"] })).searchEntries.length;
    expect(await member("alice", ad.groups.vpnAdmins)).toBe(1); // direct
    expect(await member("alice", ad.groups.vpnUsers)).toBe(1); // through VPN Admins
    expect(await member("bob", ad.groups.vpnUsers)).toBe(0);
    // the primary group is not a memberOf value, so the chain rule misses it: tokenGroups is needed
    expect(await member("frank", ad.groups.vpnUsers)).toBe(0);
  });

  test("tokenGroups on the user's DN holds the primary group's SID (and nested groups)", async () => {
    const group = await read(ad.groups.vpnUsers, ["objectSid"]);
    const vpnUsersSid = sidToString(group.objectSid as Buffer);
    const frank = await read(ad.users.frank.dn, ["tokenGroups", "primaryGroupID", "memberOf"]);
    const frankTokens = (frank.tokenGroups as Buffer[]).map(sidToString);
    expect(Number(frank.primaryGroupID)).toBe(sidRID(vpnUsersSid));
    expect(frankTokens).toContain(vpnUsersSid);
    expect([frank.memberOf].flat()).not.toContain(ad.groups.vpnUsers);
    const alice = await read(ad.users.alice.dn, ["tokenGroups"]);
    expect((alice.tokenGroups as Buffer[]).map(sidToString)).toContain(vpnUsersSid);
  });

  test("password change on the SERVICE connection for chris (773, cannot bind); then chris binds with the new password", async () => {
    const { dn, password } = ad.users.chris;
    const before = await bind(dn, password);
    expect(before === "ok" ? undefined : parseADBindError(before.message)).toBe("must_change");
    expect(await userChange(service, dn, password, "Chris!New-2025")).toBe("ok");
    expect(await bind(dn, "Chris!New-2025")).toBe("ok");
    // Fact: Samba still accepts the OLD password for a simple bind right after a user change
    // ("old password allowed period", default 60 minutes, as AD does for NTLM network logons).
    expect(await bind(dn, password)).toBe("ok");
  });

  test("password change on the service connection for harry (532); then harry binds", async () => {
    const { dn, password } = ad.users.harry;
    expect(await userChange(service, dn, password, "Harry!New-2025")).toBe("ok");
    expect(await bind(dn, "Harry!New-2025")).toBe("ok");
  });

  test("policy violations come back as constraintViolation 0000052D with a readable message (gina)", async () => {
    const { dn, password } = ad.users.gina;
    const same = await userChange(service, dn, password, password);
    expect(same).toBeInstanceOf(Error);
    expect((same as Error).message).toContain("0000052D: Constraint violation - check_password_restrictions: the password was already used (previous password)!");
    expect(adChangeError(same)).toEqual({ reason: "policy", message: "The new password was used before. Choose a password you have not used recently." });
    const short = await userChange(service, dn, password, "Ab1!");
    expect((short as Error).message).toContain("0000052D");
    expect(adChangeError(short)).toEqual({ reason: "policy", message: "The new password is too short." });
    const simple = await userChange(service, dn, password, "aaaaaaaaaaaa");
    expect(adChangeError(simple)).toMatchObject({ reason: "policy" });
    // history: change once, then back to the first password
    expect(await userChange(service, dn, password, "Gina!Second-2025")).toBe("ok");
    const back = await userChange(service, dn, "Gina!Second-2025", password);
    expect((back as Error).message).toContain("the password was already used (in history)!");
    expect(adChangeError(back)).toMatchObject({ reason: "policy" });
    expect(JSON.stringify(adChangeError(back))).not.toContain(password);
  });

  test("a wrong old password → constraintViolation 00000056 → bad_credentials", async () => {
    const err = await userChange(service, ad.users.frank.dn, "not-the-password", "Frank!New-2025");
    expect((err as { code?: number }).code).toBe(19);
    expect((err as Error).message).toContain("00000056: Constraint violation - check_password_restrictions: The old password specified doesn't match!");
    expect(adChangeError(err)).toMatchObject({ reason: "bad_credentials" });
  });

  test("the service account cannot reset (replace) a password: only the user change is granted", async () => {
    let err: unknown = "ok";
    try {
      await service.modify(ad.users.ivan.dn, [new Change({ operation: "replace", modification: new Attribute({ type: "unicodePwd", values: [encodeUnicodePwd("Ivan!Reset-2025")] }) })]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Error);
    expect(adChangeError(err)).toMatchObject({ reason: "not_permitted" });
  });
});

describe.skipIf(missing !== undefined)("LdapDirectory against Samba AD DC", () => {
  let ad: SambaAD;
  let dir: Directory;

  beforeAll(async () => {
    ad = await startSambaAD();
    const profile: LdapProfile = {
      name: "corp",
      urls: [ad.url],
      startTLS: false,
      caFile: ad.caFile,
      plaintext: false,
      bindDN: ad.serviceDN,
      bindPassword: ad.servicePassword,
      baseDN: ad.baseDN,
      userFilter: "(&(objectClass=user)(sAMAccountName={username}))",
      phoneAttribute: "mobile",
      emailAttribute: "mail",
      // extensionAttributeN is Exchange schema, absent from Samba: the Windows 2012 cloud attribute stands in
      typeAttribute: "msDS-cloudExtensionAttribute5",
      allowTypePassword: false,
      requiredGroups: [ad.groups.vpnUsers],
      defaultType: "totp",
      timeoutMs: 5000,
      reply: [],
      region: "SE",
    };
    dir = createLdapDirectory(profile);
  }, 180_000);

  afterAll(async () => {
    await dir?.close();
    await ad?.stop();
  });

  const find = async (name: string) => {
    const user = await dir.findUser(name);
    if (!user) throw new Error(`${name} not found`);
    return user;
  };

  test("findUser(alice): objectGUID as the stable ID, phone to E.164, type 11 → totp, status ok", async () => {
    const alice = await find("alice");
    expect(alice).toMatchObject({
      profile: "corp",
      dn: ad.users.alice.dn,
      phone: "+46701234567",
      rawPhone: "070-123 45 67",
      email: "alice@corp.example",
      type: "totp",
      status: "ok",
    });
    expect(alice.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect((await find("alice")).id).toBe(alice.id);
    expect(await dir.findUser("nobody")).toBeUndefined();
    expect(await dir.findUser("*")).toBeUndefined();
  });

  test.each([
    ["bob", "disabled"],
    ["carol", "must_change"],
    ["dave", "account_expired"],
    ["erin", "locked"],
    ["frank", "ok"],
  ] as const)("findUser(%s).status = %s", async (name, status) => {
    expect((await find(name)).status).toBe(status);
  });

  test.each([
    ["alice", "right", { ok: true }],
    ["alice", "wrong", { ok: false, reason: "bad_credentials" }],
    ["alice", "empty", { ok: false, reason: "bad_credentials" }],
    ["bob", "right", { ok: false, reason: "disabled" }],
    ["carol", "right", { ok: false, reason: "must_change" }],
    ["dave", "right", { ok: false, reason: "account_expired" }],
    ["erin", "right", { ok: false, reason: "locked" }],
    ["ivan", "right", { ok: false, reason: "not_permitted_time" }],
    ["judy", "right", { ok: false, reason: "not_permitted_workstation" }],
  ] as const)("verifyPassword(%s, %s password)", async (name, which, expected) => {
    const user = await find(name);
    const password = which === "right" ? ad.users[name].password : which === "wrong" ? "wrong-password" : "";
    const result = await dir.verifyPassword(user, password);
    expect(result).toMatchObject(expected);
    if (!result.ok) expect(result.detail).not.toContain(ad.users[name].password);
  });

  test("memberOf: nested (alice via VPN Admins) and the primary group (frank via tokenGroups)", async () => {
    const groups = [ad.groups.vpnUsers, ad.groups.vpnAdmins];
    const norm = (s: Set<string>) => [...s].map((g) => g.toLowerCase()).sort();
    expect(norm(await dir.memberOf(await find("alice"), groups))).toEqual(groups.map((g) => g.toLowerCase()).sort());
    expect(norm(await dir.memberOf(await find("frank"), groups))).toEqual([ad.groups.vpnUsers.toLowerCase()]);
    expect(norm(await dir.memberOf(await find("gina"), groups))).toEqual([]);
  });

  test("changePassword for carol (773) on the service connection, then carol binds with the new password", async () => {
    const carol = await find("carol");
    expect(await dir.changePassword(carol, ad.users.carol.password, "Carol!New-2025")).toEqual({ ok: true });
    expect(await dir.verifyPassword(await find("carol"), "Carol!New-2025")).toEqual({ ok: true });
    expect((await find("carol")).status).toBe("ok");
  });

  test("changePassword: policy violation gives a readable message; a wrong old password gives bad_credentials", async () => {
    const frank = await find("frank");
    const same = await dir.changePassword(frank, ad.users.frank.password, ad.users.frank.password);
    expect(same).toMatchObject({ ok: false, reason: "policy" });
    if (!same.ok && same.reason === "policy") {
      expect(same.message.length).toBeGreaterThan(10);
      expect(same.message).not.toContain(ad.users.frank.password);
    }
    expect(await dir.changePassword(frank, "not-the-password", "Frank!New-2025")).toMatchObject({ ok: false, reason: "bad_credentials" });
  });
});
