// Builds the delivery channels, limits and allow-list from the validated [delivery] configuration (called by serve).

import { readFileSync } from "node:fs";
import type { Config } from "../config/schema.ts";
import { ConfigError } from "../config/errors.ts";
import type { RateLimitSettings } from "./dispatcher.ts";
import type { AllowList } from "./phone.ts";
import { createSMTPChannel } from "./smtp.ts";
import { createSmsHttpChannel } from "./sms-http.ts";
import type { Channel } from "./types.ts";

type DeliveryConfig = Config["delivery"];

/** Reads a secret file: one trailing newline is dropped. The error names the key, never the content. */
function readSecret(path: string, key: string, readFile: (p: string) => string): string {
  try {
    return readFile(path).replace(/\r?\n$/, "");
  } catch (err) {
    throw new ConfigError(`config: ${key} cannot be read (${(err as NodeJS.ErrnoException).code ?? "unreadable"})`);
  }
}

function password(inline: string, file: string, key: string, readFile: (p: string) => string): string {
  return inline !== "" ? inline : file !== "" ? readSecret(file, `${key}_file`, readFile) : "";
}

export interface ChannelsFromConfigOptions {
  /** Replaces readFileSync for password and CA files (tests). */
  readFile?: (path: string) => string;
  /** Passed to the SMS channels (tests). */
  fetch?: typeof fetch;
}

/** The keys of one HTTP SMS gateway: `[delivery.sms]` or one `[[delivery.gateway]]`. */
type SmsGatewayConfig = DeliveryConfig["sms"];

/**
 * One HTTP SMS gateway channel named `name`; `key` ("delivery.sms", "delivery.gateway[backup]")
 * names it in errors.
 */
function smsChannel(name: string, g: SmsGatewayConfig, key: string, readFile: (p: string) => string, fetchImpl: typeof fetch | undefined): Channel {
  const pass = password(g.password, g.password_file, `${key}.password`, readFile);
  let successMatch: RegExp | undefined;
  try {
    successMatch = g.success_match === "" ? undefined : new RegExp(g.success_match);
  } catch {
    throw new ConfigError(`config: ${key}.success_match must be empty or a valid regular expression`);
  }
  if (g.content_type === "json" && g.method === "POST") {
    const sample = g.body.replace(/\{(to|to_digits|message)\}/g, "x");
    try {
      JSON.parse(sample);
    } catch {
      throw new ConfigError(`config: ${key}.body must be JSON when content_type is "json" (write "{message}" inside quotes)`);
    }
  }
  return createSmsHttpChannel({
    name,
    url: g.url,
    method: g.method,
    contentType: g.content_type,
    body: g.body,
    headers: g.headers,
    basicAuth: g.user !== "" ? { user: g.user, password: pass } : undefined,
    successMatch,
    timeoutMs: g.timeout_ms,
    fetch: fetchImpl,
  });
}

/**
 * The configured channels in `[delivery] channels` order: "sms" (`[delivery.sms]`), "email"
 * (`[delivery.smtp]`) and each `[[delivery.gateway]]` by its name. A built-in channel without
 * configuration (empty `sms.url`, empty `smtp.host`) is left out, and so is a gateway that
 * `[delivery] channels` does not list.
 *
 * @throws ConfigError naming the key (never the value) when a password or CA file cannot be read,
 *   `smtp.from` is missing, a `success_match` is not a regular expression, or a JSON `body` is
 *   not JSON.
 */
export function channelsFromConfig(d: DeliveryConfig, { readFile = (p) => readFileSync(p, "utf8"), fetch }: ChannelsFromConfigOptions = {}): Channel[] {
  const out: Channel[] = [];
  for (const name of d.channels) {
    if (name === "sms") {
      if (d.sms.url !== "") out.push(smsChannel("sms", d.sms, "delivery.sms", readFile, fetch));
    } else if (name === "email") {
      if (d.smtp.host === "") continue;
      if (d.smtp.from === "") throw new ConfigError("config: delivery.smtp.from must be set when delivery.smtp.host is");
      const pass = password(d.smtp.password, d.smtp.password_file, "delivery.smtp.password", readFile);
      out.push(
        createSMTPChannel({
          name: "email",
          host: d.smtp.host,
          port: d.smtp.port,
          starttls: d.smtp.starttls,
          secure: d.smtp.secure,
          auth: d.smtp.user !== "" ? { user: d.smtp.user, password: pass } : undefined,
          from: d.smtp.from,
          ca: d.smtp.ca_file !== "" ? readSecret(d.smtp.ca_file, "delivery.smtp.ca_file", readFile) : undefined,
          timeoutMs: d.smtp.timeout_ms,
          subject: d.email_subject,
        }),
      );
    } else {
      // loadConfig has checked that every other name is a gateway's.
      const g = d.gateway.find((x) => x.name === name);
      if (g) out.push(smsChannel(g.name, g, `delivery.gateway[${g.name}]`, readFile, fetch));
    }
  }
  return out;
}

/** The configured limits in the dispatcher's shape. */
export function limitsFromConfig(d: DeliveryConfig): RateLimitSettings {
  return {
    perNumberPerMinute: d.per_number_per_minute,
    perNumberPerHour: d.per_number_per_hour,
    perKeyPerMinute: d.per_key_per_minute,
    perKeyPerHour: d.per_key_per_hour,
    overallPerMinute: d.overall_per_minute,
    overallPerHour: d.overall_per_hour,
  };
}

/** The SMS destination allow-list. */
export function allowListFromConfig(d: DeliveryConfig): AllowList {
  return { countries: d.allowed_countries, prefixes: d.allowed_prefixes };
}

/** Settings that weaken a delivery default, one sentence each, for serve to log at start-up. */
export function deliveryWarnings(d: DeliveryConfig): string[] {
  const w: string[] = [];
  if (d.sms.url.startsWith("http://")) w.push("delivery.sms.url is http://: messages and gateway credentials travel unencrypted");
  const listed = new Set(d.channels);
  for (const g of d.gateway) {
    const key = `delivery.gateway[${g.name}]`;
    if (g.url.startsWith("http://")) w.push(`${key}.url is http://: messages and gateway credentials travel unencrypted`);
    if (!listed.has(g.name)) w.push(`${key} is not listed in delivery.channels: no message goes through it`);
  }
  if (d.smtp.host !== "" && !d.smtp.secure && !d.smtp.starttls) {
    w.push("delivery.smtp.starttls is false: messages (and the SMTP password) may travel unencrypted");
  }
  for (const [key, value] of [
    ["per_number_per_hour", d.per_number_per_hour],
    ["per_key_per_hour", d.per_key_per_hour],
    ["overall_per_hour", d.overall_per_hour],
  ] as const) {
    if (value === 0) w.push(`delivery.${key} is 0: that SMS-pumping limit is off`);
  }
  if (d.allowed_countries.length === 0 && d.allowed_prefixes.length === 0 && (d.sms.url !== "" || d.gateway.length > 0)) {
    w.push("delivery.allowed_countries is empty (and no allowed_prefixes): every SMS is refused; set region or allowed_countries");
  }
  return w;
}
