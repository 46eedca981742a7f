// Pure helpers of LdapDirectory: RFC 3062 request encoding, GeneralizedTime, E.164, and the empty-password rule.
import { describe, expect, test } from "bun:test";
import { createLdapDirectory } from "../../../../src/directory/ldap/index.ts";
import { directoryText, parseGeneralizedTime, passwordModifyRequest, passwordResetRequest, sambaPolicyText, toE164 } from "../../../../src/directory/ldap/directory.ts";
import type { DirectoryUser, LdapProfile } from "../../../../src/directory/types.ts";

describe("passwordModifyRequest (RFC 3062 §2)", () => {
  test("SEQUENCE { [0] userIdentity, [1] oldPasswd, [2] newPasswd }", () => {
    expect(passwordModifyRequest("uid=a", "old", "new1").toString("hex")).toBe(
      "30" + "12" + "80" + "05" + Buffer.from("uid=a").toString("hex") + "81" + "03" + Buffer.from("old").toString("hex") + "82" + "04" + Buffer.from("new1").toString("hex"),
    );
  });
  test("UTF-8 passwords are encoded as octets", () => {
    const b = passwordModifyRequest("u", "ö", "€");
    expect(b.subarray(-5).toString("hex")).toBe("8203e282ac");
  });
});

describe("passwordResetRequest (RFC 3062 §2, an administrator's reset)", () => {
  test("SEQUENCE { [0] userIdentity, [2] newPasswd }: no oldPasswd", () => {
    expect(passwordResetRequest("uid=a", "new1").toString("hex")).toBe("30" + "0d" + "80" + "05" + Buffer.from("uid=a").toString("hex") + "82" + "04" + Buffer.from("new1").toString("hex"));
  });
});

describe("directory policy texts shown to the user", () => {
  test("Samba's reason after check_password_restrictions, without the trailing code", () => {
    expect(sambaPolicyText("0000052D: Constraint violation - check_password_restrictions: the password is too short. It should be equal or longer than 7 characters! Code: 0x13")).toBe(
      "the password is too short. It should be equal or longer than 7 characters!",
    );
    expect(sambaPolicyText("00000005: SecErr: DSID-03152857, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0")).toBeUndefined();
  });
  test("slapd's diagnostic kept when it is one short printable line; Windows' error codes and long or odd text are not", () => {
    expect(directoryText("Password fails quality checking policy")).toBe("Password fails quality checking policy");
    expect(directoryText("0000052D: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM), data 0")).toBeUndefined();
    expect(directoryText("x".repeat(201))).toBeUndefined();
    expect(directoryText("bad\u0007text")).toBeUndefined();
    expect(directoryText("")).toBeUndefined();
  });
});

describe("parseGeneralizedTime (RFC 4517 §3.3.13)", () => {
  test.each([
    ["20000101000000Z", Date.UTC(2000, 0, 1)],
    ["20261128110647.484934Z", Date.UTC(2026, 10, 28, 11, 6, 47)],
    ["2026112811Z", Date.UTC(2026, 10, 28, 11)],
    ["garbage", undefined],
    ["20261128110647+0100", undefined],
  ])("%j", (s, ms) => {
    expect(parseGeneralizedTime(s)).toBe(ms);
  });
});

describe("toE164", () => {
  test.each([
    ["070-123 45 67", "SE", "+46701234567"],
    ["+46 8 123 456 78", "SE", "+46812345678"],
    ["+46 8 123 456 78", "", "+46812345678"],
    ["070-123 45 67", "", null], // local format needs a region
    ["not a phone", "SE", null],
    ["12", "SE", null],
  ])("%j in %j → %j", (raw, region, expected) => {
    expect(toE164(raw, region)).toBe(expected);
  });
});

describe("no traffic for an empty password", () => {
  // A profile pointing at a port nobody listens on: any network attempt would throw DirectoryUnavailableError.
  const profile: LdapProfile = {
    name: "p", urls: ["ldap://127.0.0.1:1"], startTLS: false, plaintext: true, bindDN: "cn=svc", bindPassword: "x", baseDN: "dc=x",
    userFilter: "(uid={username})", phoneAttribute: "mobile", emailAttribute: "mail", allowTypePassword: false, requiredGroups: [],
    defaultType: "totp", timeoutMs: 500, reply: [], region: "",
  };
  const user: DirectoryUser = { profile: "p", id: "x", dn: "uid=a,dc=x", username: "a", phone: null, rawPhone: null, email: null, type: null, tokenSerial: null, status: "ok" };

  test("verifyPassword('') resolves bad_credentials without connecting", async () => {
    const dir = createLdapDirectory(profile);
    expect(await dir.verifyPassword(user, "")).toMatchObject({ ok: false, reason: "bad_credentials" });
    expect(dir.userConnections.opened).toBe(0);
    await dir.close();
  });

  test("dummyBind('') and changePassword with an empty password do not connect either", async () => {
    const dir = createLdapDirectory(profile);
    await dir.dummyBind("");
    expect(await dir.changePassword(user, "", "New-Passw0rd")).toMatchObject({ ok: false, reason: "bad_credentials" });
    expect(await dir.changePassword(user, "Old-Passw0rd", "")).toMatchObject({ ok: false, reason: "policy" });
    expect(dir.userConnections.opened).toBe(0);
    expect(dir.poolStats().opened).toBe(0);
    await dir.close();
  });
});
