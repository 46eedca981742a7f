// Client-table address matching: CIDR parsing, IPv4/IPv6, mapped addresses, longest prefix, one
// text per network, and how the clients' networks overlap (client list, the admin API).
import { describe, expect, test } from "bun:test";
import { canonicalCIDR, contains, formatNetwork, parseAddress, parseCIDR } from "../../../../src/util/cidr.ts";
import { ClientTable, clientOverlaps, type ClientOverlap } from "../../../../src/radius/server/client-table.ts";
import { DEFAULT_CLIENT_PHONE, type RadiusClient } from "../../../../src/store/types.ts";

describe("parseCIDR", () => {
  test.each([
    ["192.0.2.0/24", 4, 24],
    ["192.0.2.7", 4, 32],
    ["2001:db8::/32", 6, 32],
    ["::1", 6, 128],
    ["0.0.0.0/0", 4, 0],
  ])("%s", (text, family, prefix) => {
    expect(parseCIDR(text)).toMatchObject({ family, prefix });
  });
  test.each(["", "192.0.2.0/33", "2001:db8::/129", "host.example", "1.2.3.4/24/1", "192.0.2.0/x"])("rejects %p", (text) => {
    expect(parseCIDR(text)).toBeUndefined();
  });
});

describe("formatNetwork: one text per network", () => {
  test.each([
    ["10.0.0.1/24", "10.0.0.0/24"],
    ["10.0.0.0/24", "10.0.0.0/24"],
    ["192.0.2.7", "192.0.2.7/32"],
    ["0.0.0.0/0", "0.0.0.0/0"],
    // IPv4-mapped IPv6 is the IPv4 network it maps, since an IPv4-mapped source is read as IPv4
    ["::ffff:192.0.2.7", "192.0.2.7/32"],
    ["::FFFF:192.0.2.7/120", "192.0.2.0/24"],
    ["::ffff:c000:207/128", "192.0.2.7/32"],
    // RFC 5952 §4: lower case, no leading zeros, the longest zero run compressed (the first when tied), never a single zero group
    ["2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1/128"],
    ["2001:db8::1/128", "2001:db8::1/128"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1/128"],
    ["2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1/128"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1/128"],
    ["2001:db8::ffff/32", "2001:db8::/32"],
    ["::/0", "::/0"],
    ["::1", "::1/128"],
  ])("%s → %s", (text, expected) => {
    expect(formatNetwork(parseCIDR(text)!)).toBe(expected);
  });

  test("the stored text keeps the address and prefix as written", () => {
    expect([canonicalCIDR("192.0.2.7"), canonicalCIDR("10.0.0.1/24"), canonicalCIDR("::ffff:192.0.2.0/120")]).toEqual(["192.0.2.7/32", "10.0.0.1/24", "::ffff:192.0.2.0/120"]);
  });
});

describe("contains", () => {
  test.each([
    ["192.0.2.0/24", "192.0.2.255", true],
    ["192.0.2.0/24", "192.0.3.1", false],
    ["192.0.2.0/24", "::ffff:192.0.2.9", true],
    ["2001:db8::/32", "2001:db8:ffff::1", true],
    ["2001:db8::/32", "2001:db9::1", false],
    ["127.0.0.1", "127.0.0.1", true],
    ["127.0.0.1", "127.0.0.2", false],
    ["::1", "127.0.0.1", false],
    // a client written as IPv4-mapped IPv6 matches the IPv4 source it names (it matched nothing before)
    ["::ffff:192.0.2.7", "192.0.2.7", true],
    ["::ffff:192.0.2.7", "::ffff:192.0.2.7", true],
    ["::ffff:192.0.2.0/120", "192.0.2.200", true],
  ])("%s ∋ %s = %p", (net, addr, expected) => {
    expect(contains(parseCIDR(net)!, parseAddress(addr)!)).toBe(expected);
  });
});

const client = (name: string, address: string): RadiusClient => ({
  id: 1,
  name,
  address,
  secret: "s3cret-s3cret-s3cret",
  firstFactor: "password",
  otpMode: "challenge",
  requireMessageAuthenticator: true,
  allowPasswordOnly: false,
  directories: null,
  ...DEFAULT_CLIENT_PHONE,
  createdAt: 0,
});

test("longest prefix wins and unknown sources miss", () => {
  const table = new ClientTable([client("lan", "10.0.0.0/8"), client("fw", "10.1.2.3/32"), client("bad", "nonsense")]);
  expect(table.lookup("10.1.2.3")?.client.name).toBe("fw");
  expect(table.lookup("10.9.9.9")?.client.name).toBe("lan");
  expect(table.lookup("192.0.2.1")).toBeUndefined();
  expect(table.invalid).toEqual(["bad"]);
  expect(table.size).toBe(2);
});

test("a client table reports clients with exactly the network of one ahead of them", () => {
  const table = new ClientTable([client("a-lan", "10.0.0.1/24"), client("b-lan", "10.0.0.0/24"), client("c-fw", "::ffff:10.0.0.7")]);
  expect(table.duplicates).toEqual([{ client: "b-lan", network: "10.0.0.0/24", winner: "a-lan" }]);
  expect(table.lookup("10.0.0.9")?.client.name).toBe("a-lan");
  expect(table.lookup("10.0.0.7")?.client.name).toBe("c-fw");
});

describe("clientOverlaps", () => {
  const none = (network: string): ClientOverlap => ({ network, shadows: [], shadowedBy: [], duplicateOf: null, unreachable: false });
  test("nested networks: the narrower one shadows every wider one that contains it, names in match order", () => {
    const overlaps = clientOverlaps([client("lan", "10.0.0.0/8"), client("site", "10.1.0.0/16"), client("fw", "10.1.2.3"), client("other", "10.2.0.0/16"), client("v6", "2001:db8::/32"), client("solo", "192.0.2.1")]);
    expect(Object.fromEntries(overlaps)).toEqual({
      lan: { ...none("10.0.0.0/8"), shadowedBy: ["fw", "site", "other"] },
      site: { ...none("10.1.0.0/16"), shadows: ["lan"], shadowedBy: ["fw"] },
      fw: { ...none("10.1.2.3/32"), shadows: ["site", "lan"] },
      other: { ...none("10.2.0.0/16"), shadows: ["lan"] },
      v6: none("2001:db8::/32"),
      solo: none("192.0.2.1/32"),
    });
  });

  test("a network wholly covered by narrower clients is never matched; partly covered is fine", () => {
    const overlaps = clientOverlaps([client("all", "192.0.2.0/24"), client("low", "192.0.2.0/25"), client("high", "192.0.2.128/25"), client("wide", "198.51.100.0/24"), client("part", "198.51.100.0/25")]);
    expect(overlaps.get("all")).toEqual({ network: "192.0.2.0/24", shadows: [], shadowedBy: ["low", "high"], duplicateOf: null, unreachable: true });
    expect(overlaps.get("wide")!.unreachable).toBe(false);
    expect(overlaps.get("part")!.shadows).toEqual(["wide"]);
  });

  test("exact duplicates (stored before add refused them): the first by name is matched, the other never", () => {
    const overlaps = clientOverlaps([client("a", "10.0.0.1/24"), client("b", "10.0.0.0/24"), client("bad", "nonsense")]);
    expect(overlaps.get("a")).toEqual({ ...none("10.0.0.0/24"), shadows: ["b"] });
    expect(overlaps.get("b")).toEqual({ network: "10.0.0.0/24", shadows: [], shadowedBy: ["a"], duplicateOf: "a", unreachable: true });
    expect(overlaps.get("bad")).toEqual({ network: null, shadows: [], shadowedBy: [], duplicateOf: null, unreachable: true });
    // the table agrees on who wins
    expect(new ClientTable([client("a", "10.0.0.1/24"), client("b", "10.0.0.0/24")]).lookup("10.0.0.5")?.client.name).toBe("a");
  });
});
