// Admin operations on Magic Link endpoint profiles: list, show, put (create or replace), update
// (change some keys of an existing profile), remove. Shared by /api/admin/v1/endpoints,
// `portcullis endpoint …` and the admin web UI; profiles usually come from `[[endpoint]]` in the file.
//
// Profiles declared in the file are rewritten to the store at every `serve` start (the file wins),
// so they cannot be changed or removed here: an edit would silently vanish at the next restart.
// "default" always exists; it can be edited (unless the file declares it), never removed.

import * as v from "valibot";
import { endpointProfiles, type Config } from "../config/index.ts";
import { CONFIG_TABLE_ARRAYS } from "../config/fields.ts";
import { endpointProfileSchema } from "../config/schema.ts";
import { DEFAULT_ENDPOINT, StoreError, type EndpointProfile } from "../store/types.ts";
import type { AdminContext } from "./context.ts";
import { AdminError, invalid } from "./errors.ts";

/** A profile as shown: the `[[endpoint]]` keys, plus whether the configuration file declares it. */
export interface EndpointView {
  name: string;
  declaredInConfig: boolean;
  sms_text: string;
  authentication_text: string;
  touch_accept_text: string;
  touch_reject_text: string;
  button_accept_text: string;
  button_reject_text: string;
  title_text: string;
  touch_timeout_s: number;
  allow_custom_sms_text: boolean;
  require_known_user: boolean;
  per_number_per_minute: number;
  per_number_per_hour: number;
  per_key_per_minute: number;
  overall_per_minute: number;
  channels: string[];
}

/** The flat `[[endpoint]]` view of a stored profile. */
export function describeEndpoint(p: EndpointProfile, declaredInConfig: boolean): EndpointView {
  return {
    name: p.name,
    declaredInConfig,
    ...p.texts,
    touch_timeout_s: p.touchTimeoutS,
    allow_custom_sms_text: p.allowCustomSmsText,
    require_known_user: p.requireKnownUser,
    per_number_per_minute: p.rateLimits.perNumberPerMinute,
    per_number_per_hour: p.rateLimits.perNumberPerHour,
    per_key_per_minute: p.rateLimits.perKeyPerMinute,
    overall_per_minute: p.rateLimits.overallPerMinute,
    channels: p.channels,
  };
}

const DECLARED = "declared by [[endpoint]] in the configuration file, which is rewritten to the store at every start: edit the file instead";

const declared = (config: Config, name: string) => config.endpoint.some((e) => e.name === name);

function noProfile(name: string): AdminError {
  return new AdminError("not_found", `no endpoint profile named ${name}`, { field: "name" });
}

/** Every profile, default first. */
export async function listEndpoints(ctx: Pick<AdminContext, "config" | "store">): Promise<EndpointView[]> {
  return (await ctx.store.endpoints.list()).map((p) => describeEndpoint(p, declared(ctx.config, p.name)));
}

/** One profile. Throws AdminError("not_found"). */
export async function showEndpoint(ctx: Pick<AdminContext, "config" | "store">, name: string): Promise<EndpointView> {
  const p = await ctx.store.endpoints.get(name);
  if (!p) throw noProfile(name);
  return describeEndpoint(p, declared(ctx.config, p.name));
}

/** An `[[endpoint]]` table without its name, as the configuration schema reads it. */
export type EndpointTable = Omit<Config["endpoint"][number], "name">;

/**
 * Creates or replaces profile `name` from `table` (unset keys take the defaults) and records
 * admin.endpoint_put. Throws AdminError: "conflict" for a profile the file declares, "invalid"
 * (field `channels[i]`) for a channel the appliance does not deliver through.
 */
export async function putEndpoint(ctx: AdminContext, name: string, table: EndpointTable): Promise<EndpointView> {
  if (declared(ctx.config, name)) throw new AdminError("conflict", `endpoint ${name} is ${DECLARED}`, { field: "name", expose: DECLARED });
  // Only channels the appliance delivers through ([delivery] channels); an unknown name would be skipped silently.
  const known = new Set(ctx.config.delivery.channels);
  const unknown = (table.channels ?? []).findIndex((channel: string) => !known.has(channel));
  if (unknown >= 0) throw invalid(`channels[${unknown}]`, "must be a channel listed in [delivery] channels");
  const [profile] = endpointProfiles({ endpoint: [{ ...table, name } as Config["endpoint"][number]] });
  await ctx.audit.change(
    () => ctx.store.endpoints.put(profile!),
    () => ({ type: "admin.endpoint_put", endpoint: name }),
  );
  return describeEndpoint((await ctx.store.endpoints.get(name)) ?? profile!, false);
}

/** Removes profile `name` and records admin.endpoint_removed. Throws AdminError: "conflict" (default, or declared in the file), "not_found". */
export async function removeEndpoint(ctx: AdminContext, name: string): Promise<void> {
  const always = () => new AdminError("conflict", "the default profile always exists", { field: "name", expose: "the default profile always exists" });
  if (name === DEFAULT_ENDPOINT) throw always();
  if (declared(ctx.config, name)) throw new AdminError("conflict", `endpoint ${name} is ${DECLARED}`, { field: "name", expose: DECLARED });
  let removed: boolean;
  try {
    removed = await ctx.audit.change(
      () => ctx.store.endpoints.remove(name),
      (ok) => (ok ? { type: "admin.endpoint_removed", endpoint: name } : null),
    );
  } catch (e) {
    if (e instanceof StoreError && e.code === "conflict") throw always();
    throw e;
  }
  if (!removed) throw noProfile(name);
}

/** The keys of a profile that update may change: every `[[endpoint]]` key but its name. */
const TABLE = v.omit(endpointProfileSchema, ["name"]);
export const ENDPOINT_KEYS = Object.keys(TABLE.entries) as Array<keyof EndpointTable>;

/**
 * Changes the keys of `patch` in the existing profile `name`, keeping the others; the result is
 * checked by the `[[endpoint]]` rules as a whole. Records admin.endpoint_updated with the names of
 * the keys whose value changed (nothing is written or recorded when none did). Throws AdminError:
 * "conflict" for a profile the file declares, "not_found", "invalid" (field: the key, never
 * echoing its value; `channels[i]` for a channel the appliance does not deliver through).
 */
export async function updateEndpoint(ctx: AdminContext, name: string, patch: Record<string, unknown>): Promise<{ endpoint: EndpointView; fields: string[] }> {
  if (declared(ctx.config, name)) throw new AdminError("conflict", `endpoint ${name} is ${DECLARED}`, { field: "name", expose: DECLARED });
  const current = await ctx.store.endpoints.get(name);
  if (!current) throw noProfile(name);
  const { name: _name, declaredInConfig: _declared, ...table } = describeEndpoint(current, false);
  const parsed = v.safeParse(TABLE, { ...table, ...patch });
  if (!parsed.success) {
    const key = String(parsed.issues[0].path?.[0]?.key ?? "");
    const field = CONFIG_TABLE_ARRAYS.find((t) => t.name === "endpoint")?.fields.find((f) => f.key === key);
    if (!field || key === "name") throw invalid(key || "endpoint", "must be a key of [[endpoint]] other than name");
    throw invalid(key, `must be ${field.must}`);
  }
  const next = parsed.output;
  const known = new Set(ctx.config.delivery.channels);
  const unknown = next.channels.findIndex((channel: string) => !known.has(channel));
  if (unknown >= 0) throw invalid(`channels[${unknown}]`, "must be a channel listed in [delivery] channels");
  const before = table as Record<string, unknown>;
  const fields = ENDPOINT_KEYS.filter((k) => JSON.stringify(before[k]) !== JSON.stringify((next as Record<string, unknown>)[k]));
  if (fields.length === 0) return { endpoint: describeEndpoint(current, false), fields };
  const [profile] = endpointProfiles({ endpoint: [{ ...next, name } as Config["endpoint"][number]] });
  await ctx.audit.change(
    () => ctx.store.endpoints.put(profile!),
    () => ({ type: "admin.endpoint_updated", endpoint: name, fields }),
  );
  return { endpoint: describeEndpoint((await ctx.store.endpoints.get(name)) ?? profile!, false), fields };
}

/** An `[[endpoint]]` table with every key at its default (a new profile before it is edited). */
export function defaultEndpointTable(): EndpointTable {
  return v.parse(TABLE, {});
}
