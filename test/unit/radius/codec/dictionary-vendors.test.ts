// The Fortinet and Palo Alto dictionaries and resolveReplyAttribute, the check the config validator uses.
import { describe, expect, test } from "bun:test";
import { attributeByName, resolveReplyAttribute, vendorByName } from "../../../../src/radius/codec/index.ts";

describe("embedded vendor dictionaries", () => {
  test("Fortinet (12356) and Palo Alto (25461) as FreeRADIUS defines them", () => {
    expect([vendorByName("Fortinet"), vendorByName("PaloAlto")]).toEqual([12356, 25461]);
    expect(attributeByName("Fortinet-Group-Name")).toEqual({ name: "Fortinet-Group-Name", type: 1, vendor: 12356, dataType: "string" });
    expect(attributeByName("Fortinet-Client-IP-Address")).toEqual({ name: "Fortinet-Client-IP-Address", type: 2, vendor: 12356, dataType: "ipaddr" });
    expect(attributeByName("PaloAlto-User-Group")).toEqual({ name: "PaloAlto-User-Group", type: 5, vendor: 25461, dataType: "string" });
  });
});

describe("resolveReplyAttribute", () => {
  const hex = (name: string, value: string | number) => {
    const r = resolveReplyAttribute(name, value);
    if (!r.ok) throw new Error(r.message);
    return [r.attribute.type, Buffer.from(r.attribute.value).toString("hex")];
  };

  test.each<[string, string | number, number, string]>([
    ["Class", "admins", 25, Buffer.from("admins").toString("hex")],
    ["Filter-Id", "admin-acl", 11, Buffer.from("admin-acl").toString("hex")],
    ["Session-Timeout", 3600, 27, "00000e10"],
    ["Framed-IP-Address", "10.0.0.7", 8, "0a000007"],
    ["Service-Type", "Framed-User", 6, "00000002"],
    // RFC 2865 §5.26: Vendor-Id (12356 = 0x3044) | Vendor-Type 1 | Vendor-Length 2+10 | "vpn-admins"
    ["Fortinet-Group-Name", "vpn-admins", 26, "00003044" + "01" + "0c" + Buffer.from("vpn-admins").toString("hex")],
    ["Fortinet-Client-IP-Address", "192.0.2.1", 26, "00003044" + "02" + "06" + "c0000201"],
    ["PaloAlto-Admin-Role", "superuser", 26, "00006375" + "01" + "0b" + Buffer.from("superuser").toString("hex")],
  ])("%s = %p", (name, value, type, valueHex) => {
    expect(hex(name, value)).toEqual([type, valueHex]);
  });

  test.each<[string, string, string | number, string]>([
    ["unknown name", "No-Such-Attribute", "x", "unknown_attribute"],
    ["encrypted (MPPE key)", "MS-MPPE-Send-Key", "0x00", "encrypted_attribute"],
    ["encrypted (User-Password)", "User-Password", "x", "encrypted_attribute"],
    ["set by Portcullis itself", "State", "0x00", "unsupported_type"],
    ["Message-Authenticator", "Message-Authenticator", "0x00", "unsupported_type"],
    ["unsupported data type", "Fortinet-WirelessController-Device-MAC", "00:11:22:33:44:55", "unsupported_type"],
    ["integer from text", "Session-Timeout", "an hour", "bad_value"],
    ["bad address", "Fortinet-Client-IP-Address", "192.0.2", "bad_value"],
    ["too long", "Fortinet-Group-Name", "x".repeat(248), "bad_value"],
  ])("%s: typed error %s", (_l, name, value, codeName) => {
    const r = resolveReplyAttribute(name, value);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.code).toBe(codeName as typeof r.code);
      if (typeof value === "string" && value.length > 3) expect(r.message).not.toContain(value);
    }
  });
});
