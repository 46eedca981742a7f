// Unit tests for the AD specifics (src/directory/ldap/ad.ts), driven by the captured vectors in test/vectors/ad-*.json.
import { describe, expect, test } from "bun:test";
import { ConstraintViolationError, InsufficientAccessError, UnwillingToPerformError } from "ldapts";
import {
  AD_BINARY_ATTRIBUTES,
  AD_USER_ATTRIBUTES,
  adAccountStatus,
  adChangeError,
  domainSID,
  encodeUnicodePwd,
  filetimeToUnixMs,
  formatGUID,
  parseADBindError,
  sidRID,
  sidToString,
  unixMsToFiletime,
} from "../../../../src/directory/ldap/ad.ts";
import type { BindFailure } from "../../../../src/directory/types.ts";
import bindVectors from "../../../vectors/ad-bind-errors.json" with { type: "json" };
import changeVectors from "../../../vectors/ad-change-errors.json" with { type: "json" };

describe("parseADBindError", () => {
  test.each(bindVectors.entries.map((e) => [e.case, e.diagnosticMessage, e.expected] as const))("%s", (_case, message, expected) => {
    expect(parseADBindError(message)).toEqual((expected ?? undefined) as BindFailure | undefined);
  });
});

function ldapError(resultCode: number | null, message: string): Error {
  switch (resultCode) {
    case 19:
      return new ConstraintViolationError(message);
    case 50:
      return new InsufficientAccessError(message);
    case 53:
      return new UnwillingToPerformError(message);
    default:
      return new Error(message);
  }
}

describe("adChangeError", () => {
  test.each(changeVectors.entries.map((e) => [e.case, e.resultCode, e.message, e.expected] as const))("%s", (_case, code, message, expected) => {
    const got = adChangeError(ldapError(code, message));
    if (expected === null) {
      expect(got).toBeUndefined();
      return;
    }
    expect(got?.reason).toBe(expected.reason as "policy");
    if ("message" in expected) expect(got).toEqual({ reason: "policy", message: expected.message! });
    else expect(got && "detail" in got && got.detail.length > 0).toBe(true);
  });

  test("the result never contains the passwords the server might echo", () => {
    const got = adChangeError(new ConstraintViolationError("0000052D: Constraint violation - the password S3cret!New is too short"));
    expect(JSON.stringify(got)).not.toContain("S3cret!New");
  });

  test("non-errors and plain errors are not mapped", () => {
    expect(adChangeError("boom")).toBeUndefined();
    expect(adChangeError(undefined)).toBeUndefined();
    expect(adChangeError(new Error("socket hang up"))).toBeUndefined();
  });
});

describe("adAccountStatus", () => {
  const now = Date.UTC(2026, 0, 15);
  const past = unixMsToFiletime(now - 86_400_000);
  const future = unixMsToFiletime(now + 86_400_000);
  test.each([
    ["normal account", { userAccountControl: "512", accountExpires: "9223372036854775807", pwdLastSet: "134000000000000000", "msDS-User-Account-Control-Computed": "0", lockoutTime: [] }, "ok"],
    ["accountExpires 0 = never", { userAccountControl: "512", accountExpires: "0", pwdLastSet: "1" }, "ok"],
    ["accountExpires in the future", { userAccountControl: "512", accountExpires: future }, "ok"],
    ["accountExpires in the past (701)", { userAccountControl: "512", accountExpires: past }, "account_expired"],
    ["accountExpires exactly now", { accountExpires: unixMsToFiletime(now) }, "account_expired"],
    ["ACCOUNTDISABLE (533)", { userAccountControl: "514" }, "disabled"],
    ["disabled wins over everything", { userAccountControl: String(0x2 | 0x10 | 0x800000), accountExpires: past, pwdLastSet: "0" }, "disabled"],
    ["computed LOCKOUT (775) as Samba returns it", { userAccountControl: "512", "msDS-User-Account-Control-Computed": "16", lockoutTime: "134403376287596280" }, "locked"],
    ["lockoutTime left over after lockoutDuration: computed says not locked", { userAccountControl: "512", "msDS-User-Account-Control-Computed": "0", lockoutTime: "134403376287596280" }, "ok"],
    ["lockoutTime without the computed attribute: conservative", { userAccountControl: "512", lockoutTime: "134403376287596280" }, "locked"],
    ["lockoutTime 0", { userAccountControl: "512", lockoutTime: "0" }, "ok"],
    ["pwdLastSet 0 (773) wins over the computed PASSWORD_EXPIRED it implies", { userAccountControl: "512", pwdLastSet: "0", "msDS-User-Account-Control-Computed": "8388608" }, "must_change"],
    ["computed PASSWORD_EXPIRED (532) as Samba returns it", { userAccountControl: "512", pwdLastSet: "130000000000000000", "msDS-User-Account-Control-Computed": "8388608" }, "password_expired"],
    ["UAC PASSWORD_EXPIRED", { userAccountControl: String(0x200 | 0x800000) }, "password_expired"],
    ["values as arrays", { userAccountControl: ["514"] }, "disabled"],
    ["values as Buffers", { userAccountControl: Buffer.from("514") }, "disabled"],
    ["attribute names in another case", { useraccountcontrol: "514" }, "disabled"],
    ["signed 32-bit userAccountControl", { userAccountControl: String(-2147483648 | 0x202) }, "disabled"],
    ["garbage values count as absent", { userAccountControl: "x", accountExpires: "soon", pwdLastSet: "" }, "ok"],
    ["empty entry", {}, "ok"],
  ] as const)("%s", (_case, entry, expected) => {
    expect(adAccountStatus(entry as Record<string, unknown>, now)).toBe(expected);
  });
});

describe("encodings", () => {
  test("encodeUnicodePwd is UTF-16LE of the quoted password ([MS-ADTS] 3.1.1.3.1.5.1)", () => {
    expect(encodeUnicodePwd("Ab1!")).toEqual(Buffer.from([0x22, 0, 0x41, 0, 0x62, 0, 0x31, 0, 0x21, 0, 0x22, 0]));
    expect(encodeUnicodePwd("å").toString("utf16le")).toBe('"å"');
  });

  test("formatGUID: mixed-endian display form, checked against a Samba objectGUID", () => {
    // objectGUID of CN=VPN Users as ldapsearch printed it (base64); python uuid.UUID(bytes_le=…) gives the same string.
    expect(formatGUID(Buffer.from("8jVonyPtx0Gy1NYZmtfNnQ==", "base64"))).toBe("9f6835f2-ed23-41c7-b2d4-d6199ad7cd9d");
    expect(() => formatGUID(Buffer.alloc(15))).toThrow(RangeError);
  });

  test("sidToString, sidRID and domainSID ([MS-DTYP] 2.4.2.2)", () => {
    const sid = sidToString(Buffer.from("AQUAAAAAAAUVAAAAqlWNC04TbkMuGnzQWQQAAA==", "base64"));
    expect(sid).toBe("S-1-5-21-193811882-1131287374-3497794094-1113");
    expect(sidRID(sid)).toBe(1113);
    expect(domainSID("S-1-5-21-193811882-1131287374-3497794094-1108", 513)).toBe("S-1-5-21-193811882-1131287374-3497794094-513");
    expect(sidToString(Buffer.from([1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x21, 2, 0, 0]))).toBe("S-1-5-32-545");
    expect(() => sidToString(Buffer.from([1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0]))).toThrow(RangeError);
    expect(() => sidToString(Buffer.alloc(3))).toThrow(RangeError);
  });

  test("FILETIME conversions ([MS-DTYP] 2.3.3)", () => {
    expect(filetimeToUnixMs("116444736000000000")).toBe(0);
    expect(unixMsToFiletime(0)).toBe("116444736000000000");
    expect(filetimeToUnixMs(unixMsToFiletime(1_700_000_000_123))).toBe(1_700_000_000_123);
    expect(new Date(filetimeToUnixMs("130000000000000000")).toISOString()).toBe("2012-12-14T23:06:40.000Z");
    expect(() => filetimeToUnixMs("never")).toThrow(RangeError);
  });

  test("attribute lists name what findUser needs", () => {
    for (const a of ["objectGUID", "objectSid", "userAccountControl", "accountExpires", "pwdLastSet", "lockoutTime", "msDS-User-Account-Control-Computed", "primaryGroupID"]) {
      expect(AD_USER_ATTRIBUTES).toContain(a);
    }
    expect(AD_BINARY_ATTRIBUTES).toEqual(["objectGUID", "objectSid", "tokenGroups"]);
  });
});
