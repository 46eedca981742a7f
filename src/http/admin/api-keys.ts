// Admin API: API keys (list, add → the key shown once, remove, disable/enable), as `portcullis apikey …` does.
//
// Roles: an operator may list; an admin manages magiclink and operator keys; only a root key may
// add, remove, disable or enable keys with the admin or root role (so an admin cannot mint an
// equal or stronger key for itself).

import * as v from "valibot";
import { CLIError } from "../../cli/context.ts";
import { parseExpiry } from "../../cli/apikey.ts";
import { DEFAULT_ENDPOINT, StoreError, type ApiKey, type ApiKeyRole } from "../../store/types.ts";
import { generateApiKey } from "../api-keys.ts";
import { badRequest, fail, type AdminRouter } from "./route.ts";
import { apiKeyView, daySchema, iso, nameParams, nameSchema } from "./schemas.ts";

const TAG = "apikeys";
const ROLES = ["magiclink", "operator", "admin", "root"] as const satisfies readonly ApiKeyRole[];

const addBody = v.strictObject({
  name: nameSchema,
  role: v.optional(v.picklist(ROLES), "magiclink"),
  endpoint: v.optional(v.pipe(nameSchema, v.description("magiclink keys: the endpoint profile they may use (default: default)"))),
  expires: v.optional(daySchema),
});

const created = v.object({ key: v.pipe(v.string(), v.description("the API key, shown only in this answer")), apiKey: apiKeyView });

/** The API view of a key: never the key, never its hash. */
export function describeApiKey(k: ApiKey, now: number): v.InferOutput<typeof apiKeyView> {
  return {
    name: k.name,
    role: k.role,
    endpoint: k.role === "magiclink" ? (k.endpoint ?? DEFAULT_ENDPOINT) : null,
    prefix: k.prefix,
    status: k.disabled ? "disabled" : k.expiresAt !== null && k.expiresAt <= now ? "expired" : "active",
    expiresAt: iso(k.expiresAt),
    createdAt: iso(k.createdAt)!,
    lastUsedAt: iso(k.lastUsedAt),
  };
}

/** May `caller` manage a key of role `target`? Admin and root keys are root's alone. */
export function mayManage(caller: ApiKeyRole, target: ApiKeyRole): boolean {
  if (caller === "root") return true;
  return caller === "admin" && (target === "magiclink" || target === "operator");
}

/** Registers /apikeys routes. */
export function apiKeyRoutes(r: AdminRouter): void {
  const { deps } = r;
  const { store } = deps;

  r.route({ method: "get", path: "/apikeys", summary: "List API keys", tag: TAG, minRole: "operator", responses: { 200: { description: "Keys", schema: v.array(apiKeyView) } } }, async (c) => {
    const now = deps.now();
    return c.json((await store.apiKeys.list()).map((k) => describeApiKey(k, now)));
  });

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
      if (!mayManage(c.get("apiKey").role, body.role)) return fail(c, 403, "only a root key may manage admin and root keys");
      if (body.endpoint !== undefined && body.role !== "magiclink") return badRequest(c, "endpoint", "absent unless role is magiclink");
      let expiresAt: number | null = null;
      if (body.expires !== undefined) {
        try {
          expiresAt = parseExpiry(body.expires, deps.now());
        } catch (e) {
          if (e instanceof CLIError) return badRequest(c, "expires", "a calendar date YYYY-MM-DD, today or later");
          throw e;
        }
      }
      let endpoint: string | null = null;
      if (body.endpoint !== undefined && body.endpoint !== DEFAULT_ENDPOINT) {
        const declared = deps.config.endpoint.some((e) => e.name === body.endpoint);
        if (!declared && !(await store.endpoints.get(body.endpoint))) return fail(c, 404, "no such endpoint profile");
        endpoint = body.endpoint;
      }
      const generated = generateApiKey(deps.random);
      let key: ApiKey;
      try {
        key = await store.apiKeys.add({ name: body.name, role: body.role, endpoint, hash: generated.hash, prefix: generated.prefix, expiresAt });
      } catch (e) {
        if (e instanceof StoreError && e.code === "conflict") return fail(c, 409, "an API key with this name exists");
        throw e;
      }
      deps.audit({ type: "admin.apikey_added", apikey: key.name, role: key.role, by: c.get("apiKey").name });
      return c.json({ key: generated.key, apiKey: describeApiKey(key, deps.now()) }, 201);
    },
  );

  /** The target key when the caller may manage it; otherwise the error answer. */
  const target = async (c: Parameters<Parameters<typeof r.route>[1]>[0], name: string): Promise<ApiKey | Response> => {
    const key = await store.apiKeys.findByName(name);
    if (!key) return fail(c, 404);
    if (!mayManage(c.get("apiKey").role, key.role)) return fail(c, 403, "only a root key may manage admin and root keys");
    return key;
  };

  r.route(
    { method: "delete", path: "/apikeys/:name", summary: "Remove an API key", tag: TAG, minRole: "admin", params: nameParams, responses: { 204: { description: "Removed" } }, errors: [404] },
    async (c, { params }) => {
      const key = await target(c, params.name);
      if (key instanceof Response) return key;
      if (!(await store.apiKeys.remove(key.name))) return fail(c, 404);
      deps.audit({ type: "admin.apikey_removed", apikey: key.name, by: c.get("apiKey").name });
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
      async (c, { params }) => {
        const key = await target(c, params.name);
        if (key instanceof Response) return key;
        const disabled = action === "disable";
        if (!(await store.apiKeys.setDisabled(key.name, disabled))) return fail(c, 404);
        deps.audit({ type: "admin.apikey_state", apikey: key.name, disabled, by: c.get("apiKey").name });
        return c.json(describeApiKey({ ...key, disabled }, deps.now()));
      },
    );
  }
}
