// The `[delivery]` rules across keys: `[[delivery.gateway]]` names, their password variables, and the channel names that `[delivery] channels` and `[[endpoint]] channels` may use.
//
// The schema (schema.ts) checks each key alone. Messages name the key as
// `delivery.gateway[backup].url` (`delivery.gateway[0].url` before a usable name is known) and its
// source, never a value: a gateway's URL, headers and password may hold credentials.

import type * as v from "valibot";
import { CONFIG_TABLE_ARRAYS } from "./fields.ts";
import { ConfigError } from "./errors.ts";
import { BUILTIN_CHANNELS, CHANNEL_NAME, type configSchema } from "./schema.ts";

type Parsed = v.InferOutput<typeof configSchema>;

const ENV_PREFIX = "PORTCULLIS_DELIVERY_GATEWAY_";

/**
 * The environment variable that overrides a gateway's basic-authentication password:
 * `PORTCULLIS_DELIVERY_GATEWAY_<NAME>_PASSWORD`, NAME upper-cased with every non-alphanumeric as `_`.
 */
export function gatewayPasswordEnv(name: string): string {
  return `${ENV_PREFIX}${name.toUpperCase().replace(/[^A-Z0-9]/g, "_")}_PASSWORD`;
}

/** True for an environment variable the generic PORTCULLIS_<SECTION>_<KEY> loop must leave to resolveDelivery. */
export function isGatewayEnv(name: string): boolean {
  return name.startsWith(ENV_PREFIX);
}

const fromWhere = (source: string | undefined) => (source ? ` (from ${source})` : "");

/** `delivery.gateway[backup]` when the raw entry has a usable name, else `delivery.gateway[0]`. */
function gatewayLabel(rawGateways: unknown, index: number): string {
  const entry = Array.isArray(rawGateways) ? (rawGateways[index] as Record<string, unknown> | undefined) : undefined;
  const name = entry && typeof entry === "object" ? entry.name : undefined;
  return typeof name === "string" && CHANNEL_NAME.test(name) ? `delivery.gateway[${name}]` : `delivery.gateway[${index}]`;
}

/** True when a schema issue lies inside `delivery.gateway` (describeGatewayIssue names it). */
export function isGatewayIssue(issue: v.BaseIssue<unknown>): boolean {
  return issue.path?.[0]?.key === "delivery" && issue.path?.[1]?.key === "gateway";
}

/**
 * The one-line message for a schema issue inside `delivery.gateway`, naming
 * `delivery.gateway[backup].key` and the source; never the value.
 */
export function describeGatewayIssue(issue: v.BaseIssue<unknown>, rawGateways: unknown, source: string | undefined): string {
  const path = (issue.path ?? []).map((p) => p.key);
  const from = fromWhere(source);
  const index = path[2];
  if (typeof index !== "number") return `config: delivery.gateway must be an array of tables ([[delivery.gateway]])${from}`;
  const label = gatewayLabel(rawGateways, index);
  if (path.length === 3) return `config: ${label} must be a table${from}`;
  const key = String(path[3]);
  if (issue.kind === "schema" && issue.expected === "never") return `config: ${label}.${key} is not a known option${from}`;
  const field = CONFIG_TABLE_ARRAYS.find((t) => t.name === "delivery.gateway")?.fields.find((f) => f.key === key);
  if (!field) return `config: ${label}.${key} is invalid${from}`;
  if (path.length === 4 && issue.received === "undefined") return `config: ${label}.${key} is required${from}`;
  return `config: ${label}.${key} must be ${field.must}${from}`;
}

export interface ResolveDeliveryOptions {
  env: Record<string, string | undefined>;
  /** Where each option came from (dotted path → file, variable or flag), for messages. */
  sources: ReadonlyMap<string, string>;
}

/**
 * Checks the parsed `[delivery]` and `[[endpoint]]` channel names against the declared channels,
 * applies each gateway's password variable, and returns `[delivery]` with `channels` always a list
 * (when omitted: "sms", the gateways in file order, "email").
 *
 * @throws ConfigError naming the key and its source (never a value) for a gateway name used twice
 *   (also after the variable-name mapping), a channel name in `[delivery] channels` or an
 *   endpoint's `channels` that names no channel, an endpoint channel left out of an explicit
 *   `[delivery] channels`, and a PORTCULLIS_DELIVERY_GATEWAY_* variable that names no gateway.
 */
export function resolveDelivery(parsed: Pick<Parsed, "delivery" | "endpoint"> & { switch?: { urls: string[] } }, { env, sources }: ResolveDeliveryOptions): Omit<Parsed["delivery"], "channels"> & { channels: string[] } {
  const d = parsed.delivery;
  const gwFrom = fromWhere(sources.get("delivery.gateway"));
  const seen = new Map<string, string>();
  const envNames = new Set<string>();
  const gateway = d.gateway.map((g) => {
    const label = `delivery.gateway[${g.name}]`;
    const envName = gatewayPasswordEnv(g.name);
    const clash = seen.get(g.name) ?? seen.get(envName);
    if (clash !== undefined) throw new ConfigError(`config: ${label}.name must be unique (it clashes with ${clash})${gwFrom}`);
    seen.set(g.name, label);
    seen.set(envName, label);
    envNames.add(envName);
    const fromEnv = env[envName];
    return fromEnv !== undefined && fromEnv !== "" ? { ...g, password: fromEnv } : g;
  });
  for (const name of Object.keys(env)) {
    if (isGatewayEnv(name) && env[name] !== undefined && !envNames.has(name)) {
      throw new ConfigError(`config: ${name} names no [[delivery.gateway]] (expected ${gatewayPasswordEnv("NAME")} for a configured NAME)`);
    }
  }

  const withSwitch = (parsed.switch?.urls.length ?? 0) > 0;
  const known = new Set<string>([...BUILTIN_CHANNELS, ...gateway.map((g) => g.name), ...(withSwitch ? ["switch"] : [])]);
  const chFrom = fromWhere(sources.get("delivery.channels"));
  (d.channels ?? []).forEach((name, i) => {
    if (!known.has(name)) throw new ConfigError(`config: delivery.channels[${i}] must be "sms", "email" or the name of a [[delivery.gateway]]${chFrom}`);
  });
  const channels = d.channels ?? [...(withSwitch ? ["switch"] : []), "sms", ...gateway.map((g) => g.name), "email"];
  const inUse = new Set(channels);
  const epFrom = fromWhere(sources.get("endpoint"));
  for (const e of parsed.endpoint) {
    e.channels.forEach((name, i) => {
      const key = `endpoint[${e.name}].channels[${i}]`;
      if (!known.has(name)) throw new ConfigError(`config: ${key} must be "sms", "email" or the name of a [[delivery.gateway]]${epFrom}`);
      if (!inUse.has(name)) throw new ConfigError(`config: ${key} must also be listed in delivery.channels${epFrom}`);
    });
  }
  return { ...d, gateway, channels };
}
