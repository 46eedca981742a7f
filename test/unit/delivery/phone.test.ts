// Destination numbers: E.164 validation with the region, the allow-list, and masking.
import { describe, expect, test } from "bun:test";
import { normalizePhone } from "../../../src/cli/validate.ts";
import { destinationRefusal, isAllowedDestination, maskEmail, maskNumber, numberType, parseDestination } from "../../../src/delivery/phone.ts";

describe("parseDestination", () => {
  test.each([
    ["+46701234567", "", { e164: "+46701234567", country: "SE", callingCode: "46" }],
    ["070-123 45 67", "SE", { e164: "+46701234567", country: "SE", callingCode: "46" }],
    ["+1 212 555 0100", "SE", { e164: "+12125550100", country: "US", callingCode: "1" }],
    ["0401234567", "FI", { e164: "+358401234567", country: "FI", callingCode: "358" }],
  ])("%s in region %p", (input, region, expected) => {
    expect(parseDestination(input, region)).toEqual(expected);
  });

  test.each([
    ["local format without a region", "0701234567", ""],
    ["too short", "+4670", ""],
    ["letters", "+46CALLME", ""],
    ["empty", "", "SE"],
    ["garbage", "'; DROP TABLE users; --", "SE"],
    ["over-long", "+4670123456701234567012345670123456", "SE"],
    ["not a number plan", "+999123456789", ""],
  ])("%s is refused", (_, input, region) => {
    expect(parseDestination(input, region)).toBeUndefined();
  });
});

describe("isAllowedDestination", () => {
  const se = parseDestination("+46701234567", "")!;
  const fi = parseDestination("+358401234567", "")!;
  const fiLandline = parseDestination("+35891234567", "")!;
  test.each([
    ["listed country", se, { countries: ["SE"], prefixes: [] }, true],
    ["unlisted country", fi, { countries: ["SE"], prefixes: [] }, false],
    ["empty list refuses all", se, { countries: [], prefixes: [] }, false],
    ["prefix adds a range", fi, { countries: ["SE"], prefixes: ["+35840"] }, true],
    ["prefix is only that range", fiLandline, { countries: ["SE"], prefixes: ["+35840"] }, false],
  ])("%s", (_, d, allow, expected) => {
    expect(isAllowedDestination(d, allow)).toBe(expected);
  });
});

// The classification comes from libphonenumber-js's full metadata; these rows pin what it says for
// the ranges that matter (Swedish premium-rate 0900/0939/099x, Stockholm 08, mobiles 070-076), so
// that a metadata update that changes them is noticed.
describe("numberType (libphonenumber-js full metadata)", () => {
  test.each([
    ["+46900123456", "PREMIUM_RATE"],
    ["+46939123456", "PREMIUM_RATE"],
    ["+469911234", "PREMIUM_RATE"],
    ["+469912345678", "PREMIUM_RATE"],
    ["+46991123456", undefined], // valid by length, in no known range
    ["+4681234567", "FIXED_LINE"],
    ["+46812345678", "FIXED_LINE"],
    ["+46311234567", "FIXED_LINE"],
    ["+46200123456", "TOLL_FREE"],
    ["+46771123456", "SHARED_COST"],
    ["+46701234567", "MOBILE"],
    ["+46731234567", "MOBILE"],
    ["+46761234567", "MOBILE"],
    ["+358401234567", "MOBILE"],
    ["+35891234567", "FIXED_LINE"],
    ["+447400123456", "MOBILE"],
    ["+442079460000", "FIXED_LINE"],
    ["+12025550123", "FIXED_LINE_OR_MOBILE"],
    ["+19005550123", "PREMIUM_RATE"],
    ["+18005550123", "TOLL_FREE"],
  ])("%s → %p", (e164, type) => {
    const d = parseDestination(e164, "");
    expect(d).toBeDefined();
    expect(numberType(d!)).toBe(type as ReturnType<typeof numberType>);
  });
});

describe("destinationRefusal: a listed country's mobiles, or a listed prefix", () => {
  const SE = { countries: ["SE"], prefixes: [] };
  test.each([
    ["a Swedish mobile", "+46701234567", SE, undefined],
    ["premium rate 0900", "+46900123456", SE, "number_type_not_allowed"],
    ["premium rate 0939", "+46939123456", SE, "number_type_not_allowed"],
    ["premium rate 099x", "+469911234", SE, "number_type_not_allowed"],
    ["099x outside every known range (type unknown)", "+46991123456", SE, "number_type_not_allowed"],
    ["a Stockholm landline", "+4681234567", SE, "number_type_not_allowed"],
    ["toll free", "+46200123456", SE, "number_type_not_allowed"],
    ["shared cost", "+46771123456", SE, "number_type_not_allowed"],
    ["a Stockholm landline with +468 listed", "+4681234567", { countries: ["SE"], prefixes: ["+468"] }, undefined],
    ["+468 lets Stockholm through, not Gothenburg", "+46311234567", { countries: ["SE"], prefixes: ["+468"] }, "number_type_not_allowed"],
    ["an unknown-type range listed explicitly", "+46991123456", { countries: [], prefixes: ["+46991"] }, undefined],
    ["a listed prefix needs no listed country", "+4681234567", { countries: [], prefixes: ["+468"] }, undefined],
    ["a US number (fixed line or mobile: the plan cannot tell)", "+12025550123", { countries: ["US"], prefixes: [] }, undefined],
    ["a US premium-rate 900 number", "+19005550123", { countries: ["US"], prefixes: [] }, "number_type_not_allowed"],
    ["an unlisted country is refused before its type is looked at", "+358401234567", SE, "country_not_allowed"],
  ])("%s", (_, e164, allow, reason) => {
    const d = parseDestination(e164, "")!;
    const r = destinationRefusal(d, allow);
    expect(r?.reason).toBe(reason as "country_not_allowed" | "number_type_not_allowed" | undefined);
    expect(isAllowedDestination(d, allow)).toBe(reason === undefined);
    // The detail goes to logs: never the number.
    if (r) expect(r.detail).not.toContain(d.e164.slice(3));
  });

  test("the detail names the type, and the way to allow it", () => {
    expect(destinationRefusal(parseDestination("+46900123456", "")!, SE)?.detail).toBe("destination is a premium-rate number, not a mobile (list its prefix in allowed_prefixes to allow it)");
    expect(destinationRefusal(parseDestination("+46991123456", "")!, SE)?.detail).toBe("destination is of unknown type, not a mobile (list its prefix in allowed_prefixes to allow it)");
  });
});

// A user's phone (user add --phone, import, the admin API, an LDAP attribute) is stored when it is a
// valid number, whatever its type: the type rule is a delivery policy, applied when sending, so that
// changing allowed_prefixes needs no re-import and a landline user can still use a TOTP token.
test.each(["08-123 456 78", "0900-123 456", "070-123 45 67"])("%s is storable, and read alike by the send path", (input) => {
  const stored = normalizePhone(input, "SE");
  expect(stored).toBeDefined();
  expect(parseDestination(input, "SE")?.e164).toBe(stored!);
});

test("masking keeps the country code and the last two digits, or the e-mail domain", () => {
  expect(maskNumber(parseDestination("+46701234567", "")!)).toBe("+46…67");
  expect(maskEmail("alice@example.com")).toBe("…@example.com");
});
