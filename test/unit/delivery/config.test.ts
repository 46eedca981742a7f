// The [delivery] configuration: defaults, sub-tables and their environment variables, errors that never echo a value, channels built from it.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadConfig } from "../../../src/config/index.ts";
import { channelsFromConfig, deliveryWarnings, limitsFromConfig } from "../../../src/delivery/from-config.ts";

const SECRET = "s3cret-Value-42";

function load(toml: string, env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-delivery-config-"));
  const file = join(dir, "portcullis.toml");
  writeFileSync(file, toml);
  return loadConfig({ configFile: file, env, dataDir: dir, systemFile: "/nonexistent" }).config;
}

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

test("defaults: SMS then e-mail, 5/minute and 30/hour per number, nothing configured", () => {
  const c = load("");
  expect(c.delivery.channels).toEqual(["sms", "email"]);
  expect(limitsFromConfig(c.delivery)).toEqual({ perNumberPerMinute: 5, perNumberPerHour: 30, perKeyPerMinute: 30, perKeyPerHour: 300, overallPerMinute: 120, overallPerHour: 1000 });
  expect(c.delivery.sms).toMatchObject({ url: "", method: "POST", content_type: "form", headers: {}, success_match: "", timeout_ms: 5000 });
  expect(c.delivery.smtp).toMatchObject({ host: "", port: 587, starttls: true, secure: false });
  expect(channelsFromConfig(c.delivery)).toEqual([]);
  expect(deliveryWarnings(c.delivery)).toEqual([]);
});

test("sub-table keys have PORTCULLIS_DELIVERY_SMS_* / _SMTP_* variables", () => {
  const c = load('[delivery.smtp]\nhost = "mail.example.com"\n', { PORTCULLIS_DELIVERY_SMTP_PASSWORD: SECRET, PORTCULLIS_DELIVERY_SMS_TIMEOUT_MS: "2500", PORTCULLIS_DELIVERY_CHANNELS: "email,sms" });
  expect([c.delivery.smtp.host, c.delivery.smtp.password, c.delivery.sms.timeout_ms, c.delivery.channels]).toEqual(["mail.example.com", SECRET, 2500, ["email", "sms"]]);
});

describe("errors name the key and never the value", () => {
  test.each([
    ["a header value with a line break", `[delivery.sms]\nheaders = { Authorization = "Basic ${SECRET}\\r\\nX: y" }`, "config: delivery.sms.headers must be a table of header names to single-line strings"],
    ["a header that is not a string", `[delivery.sms]\nheaders = { Authorization = 42 }`, "config: delivery.sms.headers must be a table of header names to single-line strings"],
    ["a URL with credentials that is not http(s)", `[delivery.sms]\nurl = "ftp://user:${SECRET}@gw.example"`, "config: delivery.sms.url must be empty or an http(s):// URL"],
    ["a password of the wrong type", `[delivery.smtp]\npassword = [\"${SECRET}\"]`, "config: delivery.smtp.password must be a string"],
    ["an unknown key holding a secret", `[delivery.sms]\napi_secret = "${SECRET}"`, "config: delivery.sms.api_secret is not a known option"],
    ["a bad success_match", `[delivery.sms]\nsuccess_match = "(${SECRET}"`, "config: delivery.sms.success_match must be empty or a valid regular expression"],
    ["a body without {message}", `[delivery.sms]\nbody = "to={to}&key=${SECRET}"`, "config: delivery.sms.body must be a string containing {to} (or {to_digits}) and {message}"],
    ["an allowed prefix that is not E.164", `[delivery]\nallowed_prefixes = ["0046"]`, 'config: delivery.allowed_prefixes must be a list of E.164 prefixes such as ["+4670", "+35840"]'],
    ["a repeated channel", `[delivery]\nchannels = ["sms", "sms"]`, 'config: delivery.channels must be a list without repeats of channel names ("sms", "email" or a [[delivery.gateway]] name)'],
    ["a subject with a line break", `[delivery]\nemail_subject = "Hi\\nBcc: x@example.com"`, "config: delivery.email_subject must be a non-empty string without line breaks, control or bidirectional formatting characters"],
    ["a subject with a right-to-left override", `[delivery]\nemail_subject = "${SECRET}\\u202Etxt.exe"`, "config: delivery.email_subject must be a non-empty string without line breaks, control or bidirectional formatting characters"],
    ["an SMS template with an isolate", `[delivery]\nsms_template = "${SECRET} \\u2067{link}\\u2069"`, "config: delivery.sms_template must be a non-empty string without control characters (other than tab and line breaks) or bidirectional formatting characters"],
  ])("%s", (_, toml, expected) => {
    const msg = errorOf(() => load(toml));
    expect(msg.replace(/ \(from .*\)$/, "")).toBe(expected);
    expect(msg).not.toContain(SECRET);
  });

  test("an unknown PORTCULLIS_DELIVERY_SMS_ variable is an error without its value", () => {
    const msg = errorOf(() => load("", { PORTCULLIS_DELIVERY_SMS_APIKEY: SECRET }));
    expect(msg).toBe("config: PORTCULLIS_DELIVERY_SMS_APIKEY is not a known option");
  });
});

describe("channelsFromConfig", () => {
  const sms = `[delivery.sms]\nurl = "https://api.46elks.com/a1/sms"\nuser = "u"\n`;
  const smtp = `[delivery.smtp]\nhost = "mail.example.com"\nfrom = "mfa@example.com"\nuser = "mfa"\n`;

  test("order follows [delivery] channels; unconfigured channels are left out", () => {
    expect(channelsFromConfig(load(sms + smtp).delivery).map((c) => c.name)).toEqual(["sms", "email"]);
    expect(channelsFromConfig(load('[delivery]\nchannels = ["email", "sms"]\n' + sms + smtp).delivery).map((c) => c.name)).toEqual(["email", "sms"]);
    expect(channelsFromConfig(load(smtp).delivery).map((c) => c.name)).toEqual(["email"]);
  });

  test.each([
    ["a missing password file", `${sms}password_file = "/nonexistent/${SECRET}"\n`, "config: delivery.sms.password_file cannot be read (ENOENT)"],
    ["a JSON body that is not JSON", `${sms}content_type = "json"\nbody = "{to} {message} ${SECRET}"\n`, 'config: delivery.sms.body must be JSON when content_type is "json" (write "{message}" inside quotes)'],
    ["SMTP without from", `[delivery.smtp]\nhost = "mail.example.com"\npassword = "${SECRET}"\n`, "config: delivery.smtp.from must be set when delivery.smtp.host is"],
  ])("%s is a ConfigError without the value", (_, toml, expected) => {
    const msg = errorOf(() => channelsFromConfig(load(toml).delivery));
    expect(msg).toBe(expected);
    expect(msg).not.toContain(SECRET);
  });

  test("password_file is read with one trailing newline dropped and sent as basic authentication", async () => {
    const dir = mkdtempSync(join(tmpdir(), "portcullis-delivery-pass-"));
    writeFileSync(join(dir, "p"), `${SECRET}\n`);
    const seen: string[] = [];
    const fakeFetch = (async (_url: string, init: RequestInit) => {
      seen.push(String((init.headers as Record<string, string>).Authorization));
      return new Response("{}", { status: 200 });
    }) as unknown as typeof fetch;
    const [ch] = channelsFromConfig(load(`${sms}password_file = "${join(dir, "p")}"\n`).delivery, { fetch: fakeFetch });
    expect(await ch!.send({ to: "+46701234567", text: "x" }, {})).toEqual({ ok: true });
    expect(seen).toEqual([`Basic ${Buffer.from(`u:${SECRET}`).toString("base64")}`]);
  });
});

test.each([
  ["plain-HTTP gateway", `[delivery.sms]\nurl = "http://gw.lan/sms"\n[delivery]\nallowed_countries = ["SE"]`, "delivery.sms.url is http://"],
  ["SMTP without TLS", `[delivery.smtp]\nhost = "mail"\nfrom = "a@b.se"\nstarttls = false`, "delivery.smtp.starttls is false"],
  ["a pumping limit off", `[delivery]\noverall_per_hour = 0`, "delivery.overall_per_hour is 0"],
  ["SMS configured but no destination allowed", `[delivery.sms]\nurl = "https://gw.example/sms"`, "delivery.allowed_countries is empty"],
])("warning: %s", (_, toml, expected) => {
  expect(deliveryWarnings(load(toml).delivery).join("\n")).toContain(expected);
});

test.each([
  ["json", "post", "json", "POST"],
  ["application/json", "GET", "json", "GET"],
  ["Application/X-WWW-Form-URLencoded", "Post", "form", "POST"],
  ["FORM", "get", "form", "GET"],
])("[delivery.sms] content_type %p and method %p are read as %p / %p", (contentType, method, want, wantMethod) => {
  const c = load(`[delivery.sms]\nurl = "https://sms.example.com/send"\ncontent_type = "${contentType}"\nmethod = "${method}"\n`);
  expect<string[]>([c.delivery.sms.content_type, c.delivery.sms.method]).toEqual([want, wantMethod]);
});

test("[delivery.sms] an unknown content_type is an error naming the key", () => {
  expect(errorOf(() => load('[delivery.sms]\ncontent_type = "text/xml"\n'))).toContain("delivery.sms.content_type");
});
