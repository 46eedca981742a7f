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
  /** Passed to the SMS channel (tests). */
  fetch?: typeof fetch;
}

/**
 * The configured channels in `[delivery] channels` order; a channel without configuration (empty
 * `sms.url`, empty `smtp.host`) is left out.
 *
 * @throws ConfigError naming the key (never the value) when a password or CA file cannot be read,
 *   `smtp.from` is missing, or `sms.success_match` is not a regular expression.
 */
export function channelsFromConfig(d: DeliveryConfig, { readFile = (p) => readFileSync(p, "utf8"), fetch }: ChannelsFromConfigOptions = {}): Channel[] {
  const out: Channel[] = [];
  for (const kind of d.channels) {
    if (kind === "sms" && d.sms.url !== "") {
      const pass = password(d.sms.password, d.sms.password_file, "delivery.sms.password", readFile);
      let successMatch: RegExp | undefined;
      try {
        successMatch = d.sms.success_match === "" ? undefined : new RegExp(d.sms.success_match);
      } catch {
        throw new ConfigError("config: delivery.sms.success_match must be empty or a valid regular expression");
      }
      if (d.sms.content_type === "json" && d.sms.method === "POST") {
        const sample = d.sms.body.replace(/\{(to|to_digits|message)\}/g, "x");
        try {
          JSON.parse(sample);
        } catch {
          throw new ConfigError('config: delivery.sms.body must be JSON when content_type is "json" (write "{message}" inside quotes)');
        }
      }
      out.push(
        createSmsHttpChannel({
          name: "sms",
          url: d.sms.url,
          method: d.sms.method,
          contentType: d.sms.content_type,
          body: d.sms.body,
          headers: d.sms.headers,
          basicAuth: d.sms.user !== "" ? { user: d.sms.user, password: pass } : undefined,
          successMatch,
          timeoutMs: d.sms.timeout_ms,
          fetch,
        }),
      );
    }
    if (kind === "email" && d.smtp.host !== "") {
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
  if (d.allowed_countries.length === 0 && d.allowed_prefixes.length === 0 && d.sms.url !== "") {
    w.push("delivery.allowed_countries is empty (and no allowed_prefixes): every SMS is refused; set region or allowed_countries");
  }
  return w;
}
