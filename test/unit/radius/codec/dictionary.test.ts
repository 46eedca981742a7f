// Embedded dictionaries: lookups by name and code, vendor attributes, encodeAttributeByName wire forms.
import { describe, expect, test } from "bun:test";
import {
  attributeByCode,
  attributeByName,
  dictionaryValue,
  encodeAttributeByName,
  vendorByName,
} from "../../../../src/radius/codec/index.ts";
import { hex } from "./helpers.ts";

describe("attributeByName / attributeByCode", () => {
  test.each([
    ["User-Name", { name: "User-Name", type: 1, dataType: "string" }],
    ["user-name", { name: "User-Name", type: 1, dataType: "string" }],
    ["User-Password", { name: "User-Password", type: 2, dataType: "string", encrypt: 1 }],
    ["Acct-Status-Type", { name: "Acct-Status-Type", type: 40, dataType: "integer" }],
    ["EAP-Message", { name: "EAP-Message", type: 79, dataType: "octets" }],
    ["Message-Authenticator", { name: "Message-Authenticator", type: 80, dataType: "octets" }],
    ["Framed-IPv6-Prefix", { name: "Framed-IPv6-Prefix", type: 97, dataType: "ipv6prefix" }],
    ["Error-Cause", { name: "Error-Cause", type: 101, dataType: "integer" }],
    ["MS-CHAP2-Success", { name: "MS-CHAP2-Success", type: 26, vendor: 311, dataType: "octets" }],
    ["Cisco-AVPair", { name: "Cisco-AVPair", type: 1, vendor: 9, dataType: "string" }],
    ["Juniper-Local-User-Name", { name: "Juniper-Local-User-Name", type: 1, vendor: 2636, dataType: "string" }],
  ])("%s", (name, expected) => {
    expect(attributeByName(name)).toEqual(expected);
  });

  test("unknown names give undefined", () => {
    expect(attributeByName("No-Such-Attribute")).toBeUndefined();
  });

  test.each([
    [1, undefined, "User-Name"],
    [24, undefined, "State"],
    [80, undefined, "Message-Authenticator"],
    [1, 9, "Cisco-AVPair"],
    [11, 311, "MS-CHAP-Challenge"],
    [1, 2636, "Juniper-Local-User-Name"],
  ])("code %d vendor %p is %s", (type, vendor, name) => {
    expect(attributeByCode(type, vendor)?.name).toBe(name);
  });

  test("vendors and VALUE names", () => {
    expect([vendorByName("Microsoft"), vendorByName("cisco"), vendorByName("Juniper")]).toEqual([311, 9, 2636]);
    expect(dictionaryValue("Service-Type", "Framed-User")).toBe(2);
    expect(dictionaryValue("Acct-Status-Type", "Stop")).toBe(2);
  });
});

describe("encodeAttributeByName", () => {
  test.each([
    ["User-Name", "nemo", 1, "6e656d6f"],
    ["Reply-Message", "héllo", 18, "68c3a96c6c6f"],
    ["NAS-Port", 3, 5, "00000003"],
    ["NAS-Port", "20", 5, "00000014"],
    ["Service-Type", "Framed-User", 6, "00000002"],
    ["Session-Timeout", 4294967295, 27, "ffffffff"],
    ["NAS-IP-Address", "192.168.1.16", 4, "c0a80110"],
    ["Event-Timestamp", 1700000000, 55, "6553f100"],
    ["State", "0x0102ff", 24, "0102ff"],
    ["Class", "abc", 25, "616263"],
    // Vendor-Specific (RFC 2865 §5.26): Vendor-Id | Vendor-Type | Vendor-Length | Value
    ["Cisco-AVPair", "shell:priv-lvl=15", 26, "00000009" + "01" + "13" + Buffer.from("shell:priv-lvl=15").toString("hex")],
    ["MS-CHAP-Error", "E=691", 26, "00000137" + "02" + "07" + "453d363931"],
    ["Juniper-Local-User-Name", "ops", 26, "00000a4c" + "01" + "05" + "6f7073"],
  ])("%s = %p", (name, value, type, valueHex) => {
    const a = encodeAttributeByName(name, value);
    expect({ type: a.type, value: Buffer.from(a.value).toString("hex") }).toEqual({ type, value: valueHex });
  });

  test.each([
    ["unknown name", "No-Such-Attribute", "x"],
    ["User-Password needs hiding", "User-Password", "secret"],
    ["Tunnel-Password-like encrypt flag (MS-MPPE-Send-Key)", "MS-MPPE-Send-Key", "0x00"],
    ["integer out of range", "NAS-Port", 4294967296],
    ["negative integer", "NAS-Port", -1],
    ["integer from an unknown VALUE name", "Service-Type", "No-Such-Service"],
    ["bad IPv4", "NAS-IP-Address", "192.168.1"],
    ["IPv4 octet over 255", "NAS-IP-Address", "192.168.1.256"],
    ["unsupported type (ipv6prefix)", "Framed-IPv6-Prefix", "2001:db8::/64"],
    ["text longer than 253 octets", "Reply-Message", "x".repeat(254)],
    ["vendor value longer than 247 octets", "Cisco-AVPair", "x".repeat(248)],
  ])("%s is a TypeError", (_n, name, value) => {
    expect(() => encodeAttributeByName(name, value)).toThrow(TypeError);
  });

  test("the error for a refused value names the attribute, not the value", () => {
    try {
      encodeAttributeByName("User-Password", "hunter2");
    } catch (err) {
      expect((err as Error).message).not.toContain("hunter2");
    }
  });

  test("253 octets of text fit", () => {
    expect(encodeAttributeByName("Reply-Message", "x".repeat(253)).value.length).toBe(253);
    expect(Array.from(encodeAttributeByName("State", "0x" + "ab".repeat(253)).value)).toEqual(Array.from(hex("ab".repeat(253))));
  });
});
