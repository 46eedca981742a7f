// `[[endpoint]]` profiles from the config file, as the store's EndpointProfile records, and the
// messages for schema issues inside them.

import type * as v from "valibot";
import { defaultEndpointProfile, type EndpointProfile } from "../store/types.ts";
import { CONFIG_TABLE_ARRAYS } from "./fields.ts";
import { PROFILE_NAME, type Config } from "./schema.ts";

/**
 * The one-line message for a schema issue inside `[[endpoint]]`, naming `endpoint[vpn].key` (or
 * `endpoint[0].key` before a usable name is known) and the source; never the value: a text may be
 * what an attacker wrote, and a message quoting it would carry the very characters refused.
 */
export function describeEndpointIssue(issue: v.BaseIssue<unknown>, rawEndpoints: unknown, source: string | undefined, table: "endpoint" | "password_reset" = "endpoint"): string {
  const path = (issue.path ?? []).map((p) => p.key);
  const from = source ? ` (from ${source})` : "";
  const index = path[1];
  if (typeof index !== "number") return `config: ${table} must be an array of tables ([[${table}]])${from}`;
  const entry = Array.isArray(rawEndpoints) ? (rawEndpoints[index] as Record<string, unknown> | undefined) : undefined;
  const name = entry && typeof entry === "object" ? entry.name : undefined;
  const label = typeof name === "string" && PROFILE_NAME.test(name) ? `${table}[${name}]` : `${table}[${index}]`;
  if (path.length === 2) return `config: ${label} must be a table${from}`;
  const key = String(path[2]);
  if (issue.kind === "schema" && issue.expected === "never") return `config: ${label}.${key} is not a known option${from}`;
  const field = CONFIG_TABLE_ARRAYS.find((t) => t.name === table)?.fields.find((f) => f.key === key);
  if (!field) return `config: ${label}.${key} is invalid${from}`;
  if (path.length === 3 && issue.received === "undefined") return `config: ${label}.${key} is required${from}`;
  return `config: ${label}.${key} must be ${field.must}${from}`;
}

/** Each declared profile over the built-in defaults, in file order. */
export function endpointProfiles(config: Pick<Config, "endpoint">): EndpointProfile[] {
  return config.endpoint.map((e) => {
    const base = defaultEndpointProfile(e.name);
    return {
      name: e.name,
      texts: {
        sms_text: e.sms_text ?? base.texts.sms_text,
        authentication_text: e.authentication_text ?? base.texts.authentication_text,
        touch_accept_text: e.touch_accept_text ?? base.texts.touch_accept_text,
        touch_reject_text: e.touch_reject_text ?? base.texts.touch_reject_text,
        button_accept_text: e.button_accept_text ?? base.texts.button_accept_text,
        button_reject_text: e.button_reject_text ?? base.texts.button_reject_text,
        title_text: e.title_text ?? base.texts.title_text,
      },
      touchTimeoutS: e.touch_timeout_s,
      allowCustomSmsText: e.allow_custom_sms_text,
      requireKnownUser: e.require_known_user,
      rateLimits: {
        perNumberPerMinute: e.per_number_per_minute,
        perNumberPerHour: e.per_number_per_hour,
        perKeyPerMinute: e.per_key_per_minute,
        overallPerMinute: e.overall_per_minute,
      },
      channels: e.channels,
    };
  });
}
