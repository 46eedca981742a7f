// Client-table address matching: CIDR parsing, IPv4/IPv6, mapped addresses, longest prefix.
import { describe, expect, test } from "bun:test";
import { contains, parseAddress, parseCIDR } from "../../../../src/util/cidr.ts";
import { ClientTable } from "../../../../src/radius/server/client-table.ts";
import type { RadiusClient } from "../../../../src/store/types.ts";

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
