// Admin API: Magic Link endpoint profiles (list, show, put, patch, remove). The body is an `[[endpoint]]`
// table of the configuration file (same keys, same rules, same defaults), without its name.
//
// Profiles declared in the file are rewritten to the store at every `serve` start (the file wins),
// so the API refuses to change or remove them (409): an edit would silently vanish at the next
// restart. "default" always exists; it can be edited (unless the file declares it), never removed.

import * as v from "valibot";
import { describeEndpoint as adminDescribeEndpoint, listEndpoints, putEndpoint, removeEndpoint, showEndpoint, updateEndpoint } from "../../admin/endpoints.ts";
import { endpointProfileSchema } from "../../config/schema.ts";
import type { EndpointProfile } from "../../store/types.ts";
import { adminContextOf } from "./audit.ts";
import type { AdminRouter } from "./route.ts";
import { nameParams } from "./schemas.ts";

const TAG = "endpoints";

/** PUT body: an `[[endpoint]]` table without `name` (unset keys take the defaults). */
const putBody = v.omit(endpointProfileSchema, ["name"]);

/** PATCH body: some keys of an `[[endpoint]]` table (the others are kept). */
const patchBody = v.partial(putBody);

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
  return adminDescribeEndpoint(p, declaredInConfig);
}

/** Registers /endpoints routes. */
export function endpointRoutes(r: AdminRouter): void {
  const { deps } = r;

  r.route({ method: "get", path: "/endpoints", summary: "List endpoint profiles (default first)", tag: TAG, minRole: "operator", responses: { 200: { description: "Profiles", schema: v.array(endpointView) } } }, async (c) =>
    c.json(await listEndpoints(deps)),
  );

  r.route(
    { method: "get", path: "/endpoints/:name", summary: "Show an endpoint profile", tag: TAG, minRole: "operator", params: nameParams, responses: { 200: { description: "The profile", schema: endpointView } }, errors: [404] },
    async (c, { params }) => c.json(await showEndpoint(deps, params.name)),
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
    async (c, { params, body }) => c.json(await putEndpoint(adminContextOf(deps, c), params.name, body)),
  );

  r.route(
    {
      method: "patch",
      path: "/endpoints/:name",
      summary: "Change some keys of a stored endpoint profile, keeping the others (not one declared in the configuration file)",
      tag: TAG,
      minRole: "admin",
      params: nameParams,
      body: patchBody,
      responses: { 200: { description: "The profile as stored", schema: endpointView } },
      errors: [404, 409],
    },
    async (c, { params, body }) => c.json((await updateEndpoint(adminContextOf(deps, c), params.name, body)).endpoint),
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
      await removeEndpoint(adminContextOf(deps, c), params.name);
      return c.body(null, 204);
    },
  );
}
