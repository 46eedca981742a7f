// Destination numbers: E.164 validation with the region, the allow-list, and masking.
import { describe, expect, test } from "bun:test";
import { isAllowedDestination, maskEmail, maskNumber, parseDestination } from "../../../src/delivery/phone.ts";

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

test("masking keeps the country code and the last two digits, or the e-mail domain", () => {
  expect(maskNumber(parseDestination("+46701234567", "")!)).toBe("+46…67");
  expect(maskEmail("alice@example.com")).toBe("…@example.com");
});
