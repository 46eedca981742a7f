// Admin API: API keys (list, add → the key shown once, remove, disable/enable), as `portcullis apikey …` does.
//
// Roles: an operator may list; an admin manages magiclink and operator keys; only a root key may
// add, remove, disable or enable keys with the admin or root role (so an admin cannot mint an
// equal or stronger key for itself).

import * as v from "valibot";
import { addApiKey, API_KEY_ROLES, describeApiKey as adminDescribeApiKey, listApiKeys, removeApiKey, setApiKeyDisabled } from "../../admin/api-keys.ts";
import type { ApiKey } from "../../store/types.ts";
import { adminContextOf } from "./audit.ts";
import type { AdminRouter } from "./route.ts";
import { apiKeyView, daySchema, nameParams, nameSchema } from "./schemas.ts";

const TAG = "apikeys";

const addBody = v.strictObject({
  name: nameSchema,
  role: v.optional(v.picklist(API_KEY_ROLES), "magiclink"),
  endpoint: v.optional(v.pipe(nameSchema, v.description("magiclink keys: the endpoint profile they may use (default: default)"))),
  expires: v.optional(daySchema),
});

const created = v.object({ key: v.pipe(v.string(), v.description("the API key, shown only in this answer")), apiKey: apiKeyView });

/** The API view of a key: never the key, never its hash. */
export function describeApiKey(k: ApiKey, now: number): v.InferOutput<typeof apiKeyView> {
  return adminDescribeApiKey(k, now);
}

/** Registers /apikeys routes. */
export function apiKeyRoutes(r: AdminRouter): void {
  const { deps } = r;

  r.route({ method: "get", path: "/apikeys", summary: "List API keys", tag: TAG, minRole: "operator", responses: { 200: { description: "Keys", schema: v.array(apiKeyView) } } }, async (c) =>
    c.json((await listApiKeys(deps)).views),
  );

  r.route(
    {
      method: "post",
      path: "/apikeys",
      summary: "Add an API key; the key is answered once (admin and root roles need a root key)",
      tag: TAG,
      minRole: "admin",
      body: addBody,
      responses: { 201: { description: "The key, shown only now", schema: created } },
      errors: [404, 409],
    },
    async (c, { body }) => {
      const { key, apiKey } = await addApiKey(adminContextOf(deps, c), body);
      return c.json({ key, apiKey: describeApiKey(apiKey, deps.now()) }, 201);
    },
  );

  r.route(
    { method: "delete", path: "/apikeys/:name", summary: "Remove an API key", tag: TAG, minRole: "admin", params: nameParams, responses: { 204: { description: "Removed" } }, errors: [404] },
    async (c, { params }) => {
      await removeApiKey(adminContextOf(deps, c), params.name);
      return c.body(null, 204);
    },
  );

  for (const action of ["disable", "enable"] as const) {
    r.route(
      {
        method: "post",
        path: `/apikeys/:name/${action}`,
        summary: `${action === "disable" ? "Disable" : "Enable"} an API key`,
        tag: TAG,
        minRole: "admin",
        params: nameParams,
        responses: { 200: { description: "The key", schema: apiKeyView } },
        errors: [404],
      },
      async (c, { params }) => c.json(describeApiKey(await setApiKeyDisabled(adminContextOf(deps, c), params.name, action === "disable"), deps.now())),
    );
  }
}
