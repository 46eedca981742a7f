// Admin API: Magic Link endpoint profiles (list, show, put, remove). The body is an `[[endpoint]]`
// table of the configuration file (same keys, same rules, same defaults), without its name.
//
// Profiles declared in the file are rewritten to the store at every `serve` start (the file wins),
// so the API refuses to change or remove them (409): an edit would silently vanish at the next
// restart. "default" always exists; it can be edited (unless the file declares it), never removed.

import * as v from "valibot";
import { endpointProfiles } from "../../config/index.ts";
import { endpointProfileSchema } from "../../config/schema.ts";
import { DEFAULT_ENDPOINT, StoreError, type EndpointProfile } from "../../store/types.ts";
import { badRequest, fail, type AdminRouter } from "./route.ts";
import { nameParams } from "./schemas.ts";

const TAG = "endpoints";

/** PUT body: an `[[endpoint]]` table without `name` (unset keys take the defaults). */
const putBody = v.omit(endpointProfileSchema, ["name"]);

/** A profile as answered: the `[[endpoint]]` keys, plus whether the configuration file declares it. */
export const endpointView = v.object({
  name: v.string(),
  declaredInConfig: v.pipe(v.boolean(), v.description("declared by [[endpoint]] in the configuration file: read-only here")),
  sms_text: v.string(),
  authentication_text: v.string(),
  touch_accept_text: v.string(),
  touch_reject_text: v.string(),
  button_accept_text: v.string(),
  button_reject_text: v.string(),
  title_text: v.string(),
  touch_timeout_s: v.number(),
  allow_custom_sms_text: v.boolean(),
  require_known_user: v.boolean(),
  per_number_per_minute: v.number(),
  per_number_per_hour: v.number(),
  per_key_per_minute: v.number(),
  overall_per_minute: v.number(),
  channels: v.array(v.string()),
});

/** The flat `[[endpoint]]` view of a stored profile. */
export function describeEndpoint(p: EndpointProfile, declaredInConfig: boolean): v.InferOutput<typeof endpointView> {
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

/** Registers /endpoints routes. */
export function endpointRoutes(r: AdminRouter): void {
  const { deps } = r;
  const { store } = deps;
  const declared = (name: string) => deps.config.endpoint.some((e) => e.name === name);

  r.route({ method: "get", path: "/endpoints", summary: "List endpoint profiles (default first)", tag: TAG, minRole: "operator", responses: { 200: { description: "Profiles", schema: v.array(endpointView) } } }, async (c) =>
    c.json((await store.endpoints.list()).map((p) => describeEndpoint(p, declared(p.name)))),
  );

  r.route(
    { method: "get", path: "/endpoints/:name", summary: "Show an endpoint profile", tag: TAG, minRole: "operator", params: nameParams, responses: { 200: { description: "The profile", schema: endpointView } }, errors: [404] },
    async (c, { params }) => {
      const p = await store.endpoints.get(params.name);
      return p ? c.json(describeEndpoint(p, declared(p.name))) : fail(c, 404);
    },
  );

  r.route(
    {
      method: "put",
      path: "/endpoints/:name",
      summary: "Create or replace an endpoint profile (not one declared in the configuration file)",
      tag: TAG,
      minRole: "admin",
      params: nameParams,
      body: putBody,
      responses: { 200: { description: "The profile as stored", schema: endpointView } },
      errors: [409],
    },
    async (c, { params, body }) => {
      if (declared(params.name)) return fail(c, 409, DECLARED);
      // Only channels the appliance delivers through ([delivery] channels); an unknown name would be skipped silently.
      const known = new Set(deps.config.delivery.channels);
      const unknown = (body.channels ?? []).findIndex((name: string) => !known.has(name));
      if (unknown >= 0) return badRequest(c, `channels[${unknown}]`, "a channel listed in [delivery] channels");
      const [profile] = endpointProfiles({ endpoint: [{ ...body, name: params.name }] });
      await store.endpoints.put(profile!);
      deps.audit({ type: "admin.endpoint_put", endpoint: params.name, by: c.get("apiKey").name });
      const stored = (await store.endpoints.get(params.name)) ?? profile!;
      return c.json(describeEndpoint(stored, false));
    },
  );

  r.route(
    {
      method: "delete",
      path: "/endpoints/:name",
      summary: "Remove an endpoint profile (never default, nor one declared in the configuration file)",
      tag: TAG,
      minRole: "admin",
      params: nameParams,
      responses: { 204: { description: "Removed" } },
      errors: [404, 409],
    },
    async (c, { params }) => {
      if (params.name === DEFAULT_ENDPOINT) return fail(c, 409, "the default profile always exists");
      if (declared(params.name)) return fail(c, 409, DECLARED);
      let removed: boolean;
      try {
        removed = await store.endpoints.remove(params.name);
      } catch (e) {
        if (e instanceof StoreError && e.code === "conflict") return fail(c, 409, "the default profile always exists");
        throw e;
      }
      if (!removed) return fail(c, 404);
      deps.audit({ type: "admin.endpoint_removed", endpoint: params.name, by: c.get("apiKey").name });
      return c.body(null, 204);
    },
  );
}
