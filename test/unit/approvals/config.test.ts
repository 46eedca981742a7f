// `[delivery] sms_code_*`: the defaults (six digits, five minutes, three wrong codes), the options they
// give SmsCodes, and a template refused at load for a bidirectional or control character, for lacking
// {code}, or for its length, naming the key and never quoting it.

import { describe, expect, test } from "bun:test";
import { smsCodeSettings } from "../../../src/approvals/sms-codes.ts";
import { ConfigError, loadConfig } from "../../../src/config/index.ts";
import type { Config } from "../../../src/config/index.ts";

const NOFILE = "/nonexistent/portcullis.toml";
const load = (env: Record<string, string>): Config => loadConfig({ env, systemFile: NOFILE }).config;

function refusal(env: Record<string, string>): string {
  try {
    load(env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error("expected a ConfigError");
}

describe("[delivery] sms_code_*", () => {
  test("defaults: six digits, five minutes, three wrong codes, a template with {code}", () => {
    expect(smsCodeSettings(load({}).delivery)).toEqual({
      template: "Your sign-in code is {code}. Do not share it with anyone.",
      format: { alphabet: "numeric", length: 6 },
      lifetimeMs: 300_000,
      maxFailures: 3,
    });
  });

  test("set from the environment like every scalar key", () => {
    const d = load({ PORTCULLIS_DELIVERY_SMS_CODE_LENGTH: "8", PORTCULLIS_DELIVERY_SMS_CODE_ALPHABET: "alphanumeric", PORTCULLIS_DELIVERY_SMS_CODE_TEMPLATE: "{client}: {code}" }).delivery;
    expect(smsCodeSettings(d)).toMatchObject({ template: "{client}: {code}", format: { alphabet: "alphanumeric", length: 8 } });
  });

  test.each([
    ["a right-to-left override", "Code\u202e {code}"],
    ["a control character", "Code\u0007 {code}"],
    ["no {code}", "Your code is ready"],
    ["more than 250 characters", `${"x".repeat(250)}{code}`],
  ])("a template with %s is refused, naming the key and not the value", (_what, template) => {
    const message = refusal({ PORTCULLIS_DELIVERY_SMS_CODE_TEMPLATE: template });
    expect(message).toStartWith("config: delivery.sms_code_template must be a non-empty string without control characters");
    expect(message).toContain("holding {code}");
    expect(message).not.toContain("Your code");
    expect(message).not.toMatch(/[\u0000-\u001f\u202e]/);
  });

  test.each([
    ["PORTCULLIS_DELIVERY_SMS_CODE_LENGTH", "3", "delivery.sms_code_length must be a number between 4 and 12"],
    ["PORTCULLIS_DELIVERY_SMS_CODE_LENGTH", "13", "delivery.sms_code_length must be a number between 4 and 12"],
    ["PORTCULLIS_DELIVERY_SMS_CODE_ALPHABET", "hex", 'delivery.sms_code_alphabet must be one of "numeric", "alphabetic", "alphanumeric"'],
    ["PORTCULLIS_DELIVERY_SMS_CODE_MAX_FAILURES", "0", "delivery.sms_code_max_failures must be a number between 1 and 10"],
  ])("%s=%s is refused", (key, value, message) => {
    expect(refusal({ [key]: value })).toStartWith(`config: ${message}`);
  });
});
