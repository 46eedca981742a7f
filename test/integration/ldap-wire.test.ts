// The login codec (src/directory/ldap/wire.ts) against a real slapd, over plain LDAP, StartTLS and
// LDAPS: its search returns what ldapts's search returns on the same connection, and its bind
// reports slapd's result codes and password policy control.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { PasswordPolicyError, SizeLimitExceededError } from "ldapts";
import { discard, loadCA, openConnection } from "../../src/directory/ldap/connection.ts";
import { userFilter } from "../../src/directory/ldap/escape.ts";
import { WireChannel } from "../../src/directory/ldap/wire.ts";
import type { LdapProfile } from "../../src/directory/types.ts";
import { BASE_DN, PASSWORDS, PEOPLE, runSlapdTests, SERVICE_DN, SERVICE_PASSWORD, startSlapd, type Slapd } from "./helpers/slapd.ts";

const d = runSlapdTests ? describe : describe.skip;

d("the login codec against slapd", () => {
  let slapd: Slapd;
  beforeAll(async () => {
    slapd = await startSlapd();
  });
  afterAll(async () => {
    await slapd?.stop();
  });

  const profile = (over: Partial<LdapProfile>): LdapProfile =>
    ({ name: "corp", urls: [slapd.url], startTLS: false, plaintext: true, timeoutMs: 3000, bindDN: SERVICE_DN, bindPassword: SERVICE_PASSWORD, baseDN: BASE_DN, ...over }) as LdapProfile;
  const transports = () => [
    { name: "ldap://", p: profile({}), url: slapd.url },
    { name: "StartTLS", p: profile({ startTLS: true, plaintext: false, caFile: slapd.caFile }), url: slapd.url },
    { name: "ldaps://", p: profile({ plaintext: false, caFile: slapd.caFile, urls: [slapd.ldapsUrl] }), url: slapd.ldapsUrl },
  ];
  const attributes = ["entryUUID", "pwdAccountLockedTime", "pwdReset", "pwdChangedTime", "pwdPolicySubentry", "mobile", "mail", "employeeType", "employeeNumber", "objectGUID"];

  test("search: the same entries as ldapts, on each transport; more matches than the size limit is ldapts's SizeLimitExceededError", async () => {
    for (const { name, p, url } of transports()) {
      const c = await openConnection(p, url, loadCA(p));
      try {
        await c.client.bind(SERVICE_DN, SERVICE_PASSWORD);
        const wire = WireChannel.attach(c.client, 3000);
        for (const user of ["alice", "åsa", "erin", "nobody", "a*"]) {
          const filter = userFilter("(&(objectClass=inetOrgPerson)(uid={username}))", user);
          const options = { scope: "sub" as const, filter, sizeLimit: 2, attributes, explicitBufferAttributes: ["objectGUID"] };
          const [viaWire, viaLdapts] = await Promise.all([wire.search(BASE_DN, options), c.client.search(BASE_DN, options).then((r) => r.searchEntries)]);
          expect({ name, user, entries: viaWire }).toEqual({ name, user, entries: viaLdapts });
        }
        expect(await wire.search(BASE_DN, { scope: "sub", filter: "(uid=alice)", attributes: ["mail"] })).toEqual([{ dn: `uid=alice,${PEOPLE}`, mail: "alice@example.com" }]);
        const dup = await wire.search(BASE_DN, { scope: "sub", filter: "(uid=dup)", sizeLimit: 1, attributes: ["uid"] }).catch((e: unknown) => e);
        expect(dup).toBeInstanceOf(SizeLimitExceededError);
        // ldapts still works on the connection the codec shares.
        expect((await c.client.search(BASE_DN, { filter: "(uid=bob)", attributes: ["uid"] })).searchEntries).toHaveLength(1);
      } finally {
        await discard(c.client);
      }
    }
  });

  test("bind: success, invalidCredentials (49) and slapd's password policy control, on each transport", async () => {
    for (const { name, p, url } of transports()) {
      const c = await openConnection(p, url, loadCA(p));
      try {
        const wire = WireChannel.attach(c.client, 3000);
        const dn = (u: string) => `uid=${u},${PEOPLE}`;
        const ok = await wire.bind(dn("alice"), PASSWORDS.alice, { ppolicy: true });
        // slapd answers the request control with an empty one when there is nothing to report
        expect({ name, code: ok.code, ppolicy: ok.ppolicy }).toEqual({ name, code: 0, ppolicy: {} });
        expect((await wire.bind(dn("alice"), "wrong-Passw0rd", { ppolicy: true })).code).toBe(49);
        expect((await wire.bind(dn("åsa"), PASSWORDS.åsa)).code).toBe(0);
        const locked = await wire.bind(dn("erin"), PASSWORDS.erin, { ppolicy: true });
        expect({ code: locked.code, error: locked.ppolicy?.error }).toEqual({ code: 49, error: PasswordPolicyError.AccountLocked });
        const reset = await wire.bind(dn("dave"), PASSWORDS.dave, { ppolicy: true });
        expect({ code: reset.code, error: reset.ppolicy?.error }).toEqual({ code: 0, error: PasswordPolicyError.ChangeAfterReset });
        await expect(wire.bind(dn("alice"), "")).rejects.toThrow(/unauthenticated/);
      } finally {
        await discard(c.client);
      }
    }
  });
});
