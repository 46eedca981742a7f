// Admin operations on API keys (Magic Link and admin API): list, add (the key is returned once; the
// store keeps only its SHA-256 and a short display prefix), remove, disable/enable. Shared by
// `portcullis apikey …` and /api/admin/v1/apikeys.
//
// Roles: only a root actor may add, remove, disable or enable keys with the admin or root role, so
// that an admin key cannot mint an equal or stronger key for itself. The CLI acts as root.

import { DEFAULT_ENDPOINT, StoreError, type ApiKey, type ApiKeyRole } from "../store/types.ts";
import { generateApiKey } from "./api-key-material.ts";
import type { AdminRole } from "./audit.ts";
import type { AdminContext } from "./context.ts";
import { AdminError, invalid } from "./errors.ts";
import { NAME, parseExpiry } from "./validate.ts";

export const API_KEY_ROLES = ["magiclink", "operator", "admin", "root"] as const satisfies readonly ApiKeyRole[];

/** A key as listed: never the key, never its hash. */
export interface ApiKeyView {
  name: string;
  role: ApiKeyRole;
  endpoint: string | null;
  prefix: string;
  status: "active" | "disabled" | "expired";
  expiresAt: string | null;
  createdAt: string;
  lastUsedAt: string | null;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function describeApiKey(k: ApiKey, now: number): ApiKeyView {
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

/** May an actor of role `caller` manage a key of role `target`? Admin and root keys are root's alone. */
export function mayManage(caller: AdminRole, target: ApiKeyRole): boolean {
  if (caller === "root") return true;
  return caller === "admin" && (target === "magiclink" || target === "operator");
}

function refuseUnlessManages(ctx: AdminContext, target: ApiKeyRole): void {
  if (!mayManage(ctx.audit.actor.role, target)) throw new AdminError("forbidden", "only a root key may manage admin and root keys", { expose: "only a root key may manage admin and root keys" });
}

/** Every key, and the raw records (for their expiry instants). */
export async function listApiKeys(ctx: Pick<AdminContext, "store" | "now">): Promise<{ keys: ApiKey[]; views: ApiKeyView[] }> {
  const keys = await ctx.store.apiKeys.list();
  const now = ctx.now();
  return { keys, views: keys.map((k) => describeApiKey(k, now)) };
}

export interface AddApiKeyInput {
  name: string;
  /** Default magiclink. */
  role?: string;
  /** magiclink keys: the endpoint profile they may use (default: default). */
  endpoint?: string;
  /** YYYY-MM-DD: the key works through that day (UTC). */
  expires?: string;
}

/**
 * Adds an API key and records admin.apikey_added. Returns the key (show it once) and its record.
 * Throws AdminError: "invalid" (field named), "forbidden" (an admin or root key by a non-root
 * actor), "not_found" (field `endpoint`), "conflict" when the name exists.
 */
export async function addApiKey(ctx: AdminContext, input: AddApiKeyInput): Promise<{ key: string; apiKey: ApiKey }> {
  const { name } = input;
  if (!NAME.test(name)) throw new AdminError("invalid", "apikey {name} must be 1-64 letters, digits, '.', '_' or '-'", { field: "name", expose: "1-64 letters, digits, '.', '_' or '-'" });
  const role = (input.role ?? "magiclink") as ApiKeyRole;
  if (!API_KEY_ROLES.includes(role)) throw invalid("role", `must be one of ${API_KEY_ROLES.join(", ")}`);
  refuseUnlessManages(ctx, role);
  if (input.endpoint !== undefined && role !== "magiclink") throw new AdminError("invalid", "{endpoint} applies to magiclink keys only", { field: "endpoint", expose: "absent unless role is magiclink" });
  const expiresAt = input.expires === undefined ? null : parseExpiry(input.expires, ctx.now());
  let endpoint: string | null = null;
  if (input.endpoint !== undefined && input.endpoint !== DEFAULT_ENDPOINT) {
    if (!NAME.test(input.endpoint)) throw invalid("endpoint", "must name an endpoint profile");
    const declared = ctx.config.endpoint.some((e) => e.name === input.endpoint);
    if (!declared && !(await ctx.store.endpoints.get(input.endpoint))) {
      throw new AdminError("not_found", `no endpoint profile named ${input.endpoint} (see [[endpoint]] in the configuration or the admin API)`, { field: "endpoint", expose: "no such endpoint profile" });
    }
    endpoint = input.endpoint;
  }
  const generated = generateApiKey(ctx.random);
  try {
    const apiKey = await ctx.audit.change(
      () => ctx.store.apiKeys.add({ name, role, endpoint, hash: generated.hash, prefix: generated.prefix, expiresAt }),
      (k) => ({ type: "admin.apikey_added", apikey: k.name, role: k.role }),
    );
    return { key: generated.key, apiKey };
  } catch (e) {
    if (e instanceof StoreError && e.code === "conflict") throw new AdminError("conflict", `API key ${name} already exists`, { field: "name", expose: "an API key with this name exists" });
    throw e;
  }
}

/** The key named `name` when the actor may manage it. Throws AdminError "not_found" or "forbidden". */
async function managedKey(ctx: AdminContext, name: string): Promise<ApiKey> {
  const key = await ctx.store.apiKeys.findByName(name);
  if (!key) throw new AdminError("not_found", `no API key named ${NAME.test(name) ? name : "so"}`, { field: "name" });
  refuseUnlessManages(ctx, key.role);
  return key;
}

/** Removes the key named `name` and records admin.apikey_removed. Throws like managedKey. */
export async function removeApiKey(ctx: AdminContext, name: string): Promise<void> {
  const key = await managedKey(ctx, name);
  const removed = await ctx.audit.change(
    () => ctx.store.apiKeys.remove(key.name),
    (ok) => (ok ? { type: "admin.apikey_removed", apikey: key.name } : null),
  );
  if (!removed) throw new AdminError("not_found", `no API key named ${key.name}`, { field: "name" });
}

/** Disables or enables the key named `name` and records admin.apikey_state. Returns it. Throws like managedKey. */
export async function setApiKeyDisabled(ctx: AdminContext, name: string, disabled: boolean): Promise<ApiKey> {
  const key = await managedKey(ctx, name);
  const found = await ctx.audit.change(
    () => ctx.store.apiKeys.setDisabled(key.name, disabled),
    (ok) => (ok ? { type: "admin.apikey_state", apikey: key.name, disabled } : null),
  );
  if (!found) throw new AdminError("not_found", `no API key named ${key.name}`, { field: "name" });
  return { ...key, disabled };
}
