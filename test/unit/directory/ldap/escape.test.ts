// RFC 4515 filter escaping, RFC 4514 DN escaping and user filter templates, with injection User-Names.
import { describe, expect, test } from "bun:test";
import { FilterParser, EqualityFilter, AndFilter } from "ldapts";
import { escapeDNValue, escapeFilterValue, normalizeDN, userFilter } from "../../../../src/directory/ldap/escape.ts";

describe("escapeFilterValue (RFC 4515 §3)", () => {
  test.each([
    ["alice", "alice"],
    ["*", "\\2a"],
    ["*)(uid=*", "\\2a\\29\\28uid=\\2a"],
    ["admin)(|(uid=*", "admin\\29\\28|\\28uid=\\2a"],
    ["a\0b", "a\\00b"],
    ["back\\slash", "back\\5cslash"],
    ["tab\there", "tab\\09here"],
    ["del\x7f", "del\\7f"],
    ["åsa.öberg", "åsa.öberg"],
    ["\ud800x", "\ufffdx"],
  ])("%j → %j", (input, expected) => {
    expect(escapeFilterValue(input)).toBe(expected);
  });
});

describe("userFilter", () => {
  const template = "(&(objectClass=inetOrgPerson)(uid={username}))";
  test.each(["*", "*)(uid=*", "admin)(|(uid=*", "a\0b", "x\\", "åsa", "))((", "*)(|(objectClass=*"])(
    "%j stays one equality assertion on uid",
    (name) => {
      const parsed = FilterParser.parseString(userFilter(template, name));
      expect(parsed).toBeInstanceOf(AndFilter);
      const filters = (parsed as AndFilter).filters;
      expect(filters).toHaveLength(2);
      const uid = filters[1] as EqualityFilter;
      expect(uid).toBeInstanceOf(EqualityFilter);
      expect(uid.attribute).toBe("uid");
      expect(uid.value).toBe(name);
    },
  );

  test("every {username} is replaced", () => {
    expect(userFilter("(|(uid={username})(mail={username}))", "a*")).toBe("(|(uid=a\\2a)(mail=a\\2a))");
  });

  test("a template without {username} is a configuration error", () => {
    expect(() => userFilter("(uid=alice)", "bob")).toThrow(TypeError);
  });
});

describe("escapeDNValue (RFC 4514 §2.4)", () => {
  test.each([
    ["Smith, John", "Smith\\, John"],
    ["a+b=c", "a\\+b\\=c"],
    ['q"<>;', 'q\\"\\<\\>\\;'],
    ["#hash", "\\#hash"],
    [" lead and trail ", "\\ lead and trail\\ "],
    ["back\\slash", "back\\\\slash"],
    ["nul\0", "nul\\00"],
    ["mid#dle", "mid#dle"],
  ])("%j → %j", (input, expected) => {
    expect(escapeDNValue(input)).toBe(expected);
  });
});

describe("normalizeDN", () => {
  test.each([
    ["CN=VPN Users,OU=Groups,DC=corp,DC=example", "cn=vpn users,ou=groups,dc=corp,dc=example"],
    ["cn=VPN Users, ou=Groups , dc=corp,dc=example", "cn=vpn users,ou=groups,dc=corp,dc=example"],
    ["cn=a\\2cb,dc=x", "cn=a\\,b,dc=x"],
    ["cn=a\\,b,dc=x", "cn=a\\,b,dc=x"],
  ])("%j → %j", (input, expected) => {
    expect(normalizeDN(input)).toBe(expected);
  });

  test("an escaped comma does not split an RDN", () => {
    expect(normalizeDN("cn=Smith\\, John,dc=x")).not.toBe(normalizeDN("cn=Smith,cn=John,dc=x"));
  });
});
