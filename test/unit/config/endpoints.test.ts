// `[[endpoint]]` profiles: parsed over the defaults, refused when duplicated or out of range.

import { expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, endpointProfiles, loadConfig } from "../../../src/config/index.ts";
import { defaultEndpointProfile } from "../../../src/store/types.ts";

function load(toml: string) {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-endpoint-"));
  const file = join(dir, "portcullis.toml");
  writeFileSync(file, toml);
  return loadConfig({ env: {}, configFile: file, cwd: dir });
}

test("no [[endpoint]]: none declared (default still exists in the store)", () => {
  expect(endpointProfiles(load("").config)).toEqual([]);
});

test("a declared profile is the defaults with its keys applied", () => {
  const { config } = load(`
[[endpoint]]
name = "vpn"
title_text = "ACME VPN"
touch_timeout_s = 60
allow_custom_sms_text = false
require_known_user = true
per_key_per_minute = 0
channels = ["sms", "email"]

[[endpoint]]
name = "default"
sms_text = "Sign in: {link}"
`);
  const base = defaultEndpointProfile("vpn");
  expect(endpointProfiles(config)).toEqual([
    {
      ...base,
      texts: { ...base.texts, title_text: "ACME VPN" },
      touchTimeoutS: 60,
      allowCustomSmsText: false,
      requireKnownUser: true,
      rateLimits: { ...base.rateLimits, perKeyPerMinute: 0 },
      channels: ["sms", "email"],
    },
    { ...defaultEndpointProfile(), texts: { ...defaultEndpointProfile().texts, sms_text: "Sign in: {link}" } },
  ]);
});

test("custom SMS text is off unless a profile turns it on", () => {
  expect(defaultEndpointProfile().allowCustomSmsText).toBe(false);
  const { config } = load('[[endpoint]]\nname = "a"\n[[endpoint]]\nname = "b"\nallow_custom_sms_text = true\n');
  expect(endpointProfiles(config).map((p) => p.allowCustomSmsText)).toEqual([false, true]);
});

// A text that reaches the approval page or the SMS may not hold bidirectional formatting or control
// characters; the message names the key and never quotes the value (it would carry them along).
test.each([
  ["title_text", "\\u202E"],
  ["authentication_text", "\\u2066"],
  ["touch_accept_text", "\\u200F"],
  ["touch_reject_text", "\\u061C"],
  ["button_accept_text", "\\u202A"],
  ["button_reject_text", "\\u0007"],
  ["sms_text", "\\u2069"],
])("%s holding %s is refused, naming the key", (key, escaped) => {
  let err: unknown;
  try {
    load(`[[endpoint]]\nname = "vpn"\n${key} = "Secret-wording ${escaped}{link}"\n`);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ConfigError);
  const message = (err as Error).message;
  expect(message).toStartWith(`config: endpoint[vpn].${key} must be a non-empty string without control characters (other than tab and line breaks) or bidirectional formatting characters (from `);
  expect(message).not.toContain("Secret-wording");
  expect(message).not.toMatch(/[\u0000-\u001f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/);
});

test.each([
  ['[[endpoint]]\nname = "a"\n[[endpoint]]\nname = "a"\n', "endpoint[a] is declared twice"],
  ['[[endpoint]]\nname = "a"\ntouch_timeout_s = 301\n', "touch_timeout_s"],
  ['[[endpoint]]\nname = "a"\nper_number_per_minute = 10\nper_number_per_hour = 5\n', "per_number_per_hour must be at least per_number_per_minute"],
  ['[[endpoint]]\nname = "bad name"\n', "endpoint"],
  ['[[endpoint]]\nname = "a"\nsurprise = 1\n', "surprise"],
])("refused: %p", (toml, message) => {
  let err: unknown;
  try {
    load(toml);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ConfigError);
  expect((err as Error).message).toContain(message);
});
