// SMS text rules: the link exactly once, bounded length, placeholders, unsafe characters, per-endpoint custom text.
import { describe, expect, test } from "bun:test";
import { buildSmsText, DEFAULT_SMS_TEMPLATE, endpointSmsText } from "../../../src/delivery/sms-text.ts";

const LINK = "https://mfa.example.com/ml/AbCdEfGhIjKlMnOpQrStUv";
const count = (s: string, sub: string) => s.split(sub).length - 1;

describe("buildSmsText", () => {
  test.each([
    ["undefined → default template", undefined, `Approve or reject the sign-in request: ${LINK}`],
    ["blank → default template", "   ", `Approve or reject the sign-in request: ${LINK}`],
    ["placeholder replaced", "Log in to Acme: {link}", `Log in to Acme: ${LINK}`],
    ["placeholder in the middle gets spaces", "Tap{link}to continue", `Tap ${LINK} to continue`],
    ["no placeholder → appended", "Log in to Acme", `Log in to Acme ${LINK}`],
    ["several placeholders → the first only", "{link} and again {link}", `${LINK} and again `],
    ["the link typed in the template is not repeated", `Go to ${LINK} now`, `Go to  now ${LINK}`],
    ["control characters and bidi overrides removed", "Pay\u202enow\u0007 {link}\r", `Paynow ${LINK}`],
    ["line feeds kept", "Acme\nApprove: {link}", `Acme\nApprove: ${LINK}`],
    ["only the placeholder", "{link}", LINK],
  ])("%s", (_, template, expected) => {
    const out = buildSmsText(template, LINK);
    expect(out).toBe(expected);
    expect(count(out, LINK)).toBe(1);
  });

  test.each([60, 80, 120, 300])("a long text is cut to %i characters around the intact link", (max) => {
    const long = "A".repeat(500) + " {link} " + "B".repeat(500);
    const out = buildSmsText(long, LINK, max);
    expect(out.length).toBeLessThanOrEqual(max);
    expect(count(out, LINK)).toBe(1);
  });

  test("the cut keeps the start of the text, marked with an ellipsis", () => {
    const out = buildSmsText("Please approve your sign-in to the Acme VPN from a new device: {link}", LINK, LINK.length + 20);
    expect(out).toBe(`Please approve you… ${LINK}`);
    expect(out.length).toBeLessThanOrEqual(LINK.length + 20);
  });

  test("a surrogate pair is never split", () => {
    const out = buildSmsText("😀".repeat(100) + "{link}", LINK, LINK.length + 10);
    expect(out.length).toBeLessThanOrEqual(LINK.length + 10);
    expect(out).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/);
    expect(count(out, LINK)).toBe(1);
  });

  test.each([
    ["a link longer than the limit", LINK, 20],
    ["an empty link", "", 300],
    ["a link with spaces", "https://x/ y", 300],
  ])("%s is a TypeError", (_, link, max) => {
    expect(() => buildSmsText(undefined, link, max)).toThrow(TypeError);
  });
});

describe("endpointSmsText", () => {
  test.each([
    ["custom allowed and given", true, "Acme: {link}", `Acme: ${LINK}`],
    ["custom allowed, not given → endpoint default", true, undefined, `Default ${LINK}`],
    ["custom disabled → endpoint default, the caller's text ignored", false, "Send money to … {link}", `Default ${LINK}`],
  ])("%s", (_, allowCustom, custom, expected) => {
    expect(endpointSmsText(custom, LINK, { allowCustom, defaultTemplate: "Default {link}" })).toBe(expected);
  });

  test("without an endpoint template the built-in default applies", () => {
    expect(endpointSmsText(undefined, LINK, { allowCustom: true })).toBe(DEFAULT_SMS_TEMPLATE.replace("{link}", LINK));
  });
});
