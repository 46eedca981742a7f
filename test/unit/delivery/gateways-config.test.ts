// [[delivery.gateway]]: further HTTP SMS gateways as named channels — order, names, password variables, warnings, and errors that never echo a value.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadConfig } from "../../../src/config/index.ts";
import { channelsFromConfig, deliveryWarnings } from "../../../src/delivery/from-config.ts";

const SECRET = "gw-s3cret-Value-77";

function load(toml: string, env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-gateways-config-"));
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

const gw = (name: string, extra = "") => `[[delivery.gateway]]\nname = "${name}"\nurl = "https://${name}.example.net/sms"\n${extra}`;
const SMS = `[delivery.sms]\nurl = "https://primary.example.net/sms"\n`;
const SMTP = `[delivery.smtp]\nhost = "mail.example.com"\nfrom = "mfa@example.com"\n`;

describe("channel order", () => {
  test.each([
    ["no [delivery] channels: sms, the gateways in file order, email", SMS + SMTP + gw("elks") + gw("vonage"), ["sms", "elks", "vonage", "email"]],
    ["explicit order", `[delivery]\nchannels = ["vonage", "sms", "email", "elks"]\n` + SMS + SMTP + gw("elks") + gw("vonage"), ["vonage", "sms", "email", "elks"]],
    ["a gateway left out of an explicit list is not used", `[delivery]\nchannels = ["elks", "sms"]\n` + SMS + gw("elks") + gw("vonage"), ["elks", "sms"]],
    ["gateways alone, without [delivery.sms]", gw("elks") + gw("vonage"), ["elks", "vonage"]],
  ])("%s", (_, toml, names) => {
    const channels = channelsFromConfig(load(toml).delivery);
    expect(channels.map((c) => c.name)).toEqual(names);
    expect(channels.map((c) => c.kind)).toEqual(names.map((n) => (n === "email" ? "email" : "sms")));
  });

  test("the derived default list is what the config holds", () => {
    expect(load(gw("elks")).delivery.channels).toEqual(["sms", "elks", "email"]);
    expect(load("").delivery.channels).toEqual(["sms", "email"]);
    expect(load(gw("elks"), { PORTCULLIS_DELIVERY_CHANNELS: "elks,email" }).delivery.channels).toEqual(["elks", "email"]);
  });

  test("[[endpoint]] channels may name a gateway", () => {
    const c = load(SMS + gw("elks") + `[[endpoint]]\nname = "vpn"\nchannels = ["elks", "sms"]\n`);
    expect(c.endpoint[0]!.channels).toEqual(["elks", "sms"]);
  });
});

describe("errors name the key and never the value", () => {
  test.each([
    ["a name used twice", gw("elks") + gw("elks"), "config: delivery.gateway[elks].name must be unique (it clashes with delivery.gateway[elks])"],
    ["two names with one password variable", gw("a-b") + gw("a_b"), "config: delivery.gateway[a_b].name must be unique (it clashes with delivery.gateway[a-b])"],
    ['the reserved name "sms"', gw("sms"), 'config: delivery.gateway[sms].name must be a name of 1-32 lower-case letters, digits, \'_\' or \'-\' starting with a letter, other than "sms", "email" and "switch"'],
    ['the reserved name "email"', gw("email"), 'config: delivery.gateway[email].name must be a name of 1-32 lower-case letters, digits, \'_\' or \'-\' starting with a letter, other than "sms", "email" and "switch"'],
    ["a name that is a secret", gw(`Key ${SECRET}`), 'config: delivery.gateway[0].name must be a name of 1-32 lower-case letters, digits, \'_\' or \'-\' starting with a letter, other than "sms", "email" and "switch"'],
    ['the reserved name "switch"', gw("switch"), 'config: delivery.gateway[switch].name must be a name of 1-32 lower-case letters, digits, \'_\' or \'-\' starting with a letter, other than "sms", "email" and "switch"'],
    ["no name", `[[delivery.gateway]]\nurl = "https://x.example/sms"\n`, "config: delivery.gateway[0].name is required"],
    ["no url", `[[delivery.gateway]]\nname = "elks"\n`, "config: delivery.gateway[elks].url is required"],
    ["an empty url", `[[delivery.gateway]]\nname = "elks"\nurl = ""\n`, "config: delivery.gateway[elks].url must be an http(s):// URL"],
    ["a url that is not http(s), holding a secret", `[[delivery.gateway]]\nname = "elks"\nurl = "ftp://u:${SECRET}@x"\n`, "config: delivery.gateway[elks].url must be an http(s):// URL"],
    ["an unknown key holding a secret", gw("elks", `api_secret = "${SECRET}"\n`), "config: delivery.gateway[elks].api_secret is not a known option"],
    ["a header value with a line break", gw("elks", `headers = { Authorization = "Bearer ${SECRET}\\r\\nX: y" }\n`), "config: delivery.gateway[elks].headers must be a table of header names to single-line strings"],
    ["a bad success_match", gw("elks", `success_match = "(${SECRET}"\n`), "config: delivery.gateway[elks].success_match must be empty or a valid regular expression"],
    ["a body without {message}", gw("elks", `body = "to={to}&key=${SECRET}"\n`), "config: delivery.gateway[elks].body must be a string containing {to} (or {to_digits}) and {message}"],
    ["a password of the wrong type", gw("elks", `password = ["${SECRET}"]\n`), "config: delivery.gateway[elks].password must be a string"],
    ["a gateway that is not a table array", `[delivery]\ngateway = "${SECRET}"\n`, "config: delivery.gateway must be an array of tables ([[delivery.gateway]])"],
    ["[delivery] channels holding a non-name", `[delivery]\nchannels = ["sms", "Bearer ${SECRET}"]\n`, "config: delivery.channels must be a list without repeats of channel names (\"sms\", \"email\" or a [[delivery.gateway]] name)"],
    ["[delivery] channels naming an undeclared gateway", `[delivery]\nchannels = ["sms", "x${SECRET.toLowerCase()}"]\n`, 'config: delivery.channels[1] must be "sms", "email" or the name of a [[delivery.gateway]]'],
    ["an endpoint naming an undeclared gateway", `[[endpoint]]\nname = "vpn"\nchannels = ["sms", "elks"]\n`, 'config: endpoint[vpn].channels[1] must be "sms", "email" or the name of a [[delivery.gateway]]'],
    ["an endpoint naming a channel [delivery] channels leaves out", `[delivery]\nchannels = ["sms"]\n` + gw("elks") + `[[endpoint]]\nname = "vpn"\nchannels = ["elks"]\n`, "config: endpoint[vpn].channels[0] must also be listed in delivery.channels"],
  ])("%s", (_, toml, expected) => {
    const msg = errorOf(() => load(toml));
    expect(msg.replace(/ \(from .*\)$/, "")).toBe(expected);
    expect(msg).not.toContain(SECRET);
    expect(msg.toLowerCase()).not.toContain(SECRET.toLowerCase());
  });

  test("a PORTCULLIS_DELIVERY_GATEWAY_ variable naming no gateway is an error without its value", () => {
    const msg = errorOf(() => load(gw("elks"), { PORTCULLIS_DELIVERY_GATEWAY_VONAGE_PASSWORD: SECRET }));
    expect(msg).toBe("config: PORTCULLIS_DELIVERY_GATEWAY_VONAGE_PASSWORD names no [[delivery.gateway]] (expected PORTCULLIS_DELIVERY_GATEWAY_NAME_PASSWORD for a configured NAME)");
  });

  test.each([
    ["a missing password file", gw("elks", `user = "u"\npassword_file = "/nonexistent/${SECRET}"\n`), "config: delivery.gateway[elks].password_file cannot be read (ENOENT)"],
    ["a JSON body that is not JSON", gw("elks", `content_type = "json"\nbody = "{to} {message} ${SECRET}"\n`), 'config: delivery.gateway[elks].body must be JSON when content_type is "json" (write "{message}" inside quotes)'],
  ])("channelsFromConfig: %s is a ConfigError without the value", (_, toml, expected) => {
    const msg = errorOf(() => channelsFromConfig(load(toml).delivery));
    expect(msg).toBe(expected);
    expect(msg).not.toContain(SECRET);
  });
});

describe("passwords", () => {
  /** The Authorization header each channel sends, through a fetch that records it. */
  async function authorizations(toml: string, env: Record<string, string>, readFile?: (p: string) => string): Promise<Record<string, string>> {
    const seen: Record<string, string> = {};
    const channels = channelsFromConfig(load(toml, env).delivery, {
      readFile,
      fetch: (async (url: string, init: RequestInit) => {
        seen[new URL(url).hostname] = String((init.headers as Record<string, string>).Authorization);
        return new Response("{}", { status: 200 });
      }) as unknown as typeof fetch,
    });
    for (const c of channels) expect(await c.send({ to: "+46701234567", text: "x" }, {})).toEqual({ ok: true });
    return seen;
  }
  const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;

  test("each gateway has its own: inline, file, and PORTCULLIS_DELIVERY_GATEWAY_<NAME>_PASSWORD over both", async () => {
    const toml = gw("elks", `user = "e"\npassword = "inline-pass"\n`) + gw("vonage-eu", `user = "v"\npassword_file = "/etc/vonage.pass"\n`) + gw("tw", `user = "t"\npassword = "overridden"\n`);
    const seen = await authorizations(toml, { PORTCULLIS_DELIVERY_GATEWAY_TW_PASSWORD: SECRET }, (p) => (p === "/etc/vonage.pass" ? "file-pass\n" : ""));
    expect(seen).toEqual({
      "elks.example.net": basic("e", "inline-pass"),
      "vonage-eu.example.net": basic("v", "file-pass"),
      "tw.example.net": basic("t", SECRET),
    });
  });

  test("the variable name maps every non-alphanumeric to _", async () => {
    const seen = await authorizations(gw("vonage-eu", `user = "v"\n`), { PORTCULLIS_DELIVERY_GATEWAY_VONAGE_EU_PASSWORD: SECRET });
    expect(seen).toEqual({ "vonage-eu.example.net": basic("v", SECRET) });
  });
});

test.each([
  ["a plain-HTTP gateway", `[[delivery.gateway]]\nname = "lan"\nurl = "http://gw.lan/sms"\n[delivery]\nallowed_countries = ["SE"]`, ["delivery.gateway[lan].url is http://: messages and gateway credentials travel unencrypted"]],
  ["a gateway not in an explicit channels list", `[delivery]\nchannels = ["sms"]\nallowed_countries = ["SE"]\n` + gw("elks"), ["delivery.gateway[elks] is not listed in delivery.channels: no message goes through it"]],
  ["a gateway but no destination allowed", gw("elks"), ["delivery.allowed_countries is empty (and no allowed_prefixes): every SMS is refused; set region or allowed_countries"]],
  ["an https gateway, listed, with a region", `region = "SE"\n` + gw("elks"), []],
])("warning: %s", (_, toml, expected) => {
  expect(deliveryWarnings(load(toml).delivery)).toEqual(expected);
});
