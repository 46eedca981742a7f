// Test helpers for the admin API: the admin app over a real SQLite store, and API keys of each role.

import { buildAdminApp } from "../../../../src/http/app.ts";
import { generateApiKey } from "../../../../src/http/api-keys.ts";
import type { HttpDeps } from "../../../../src/http/types.ts";
import type { ApiKeyRole } from "../../../../src/store/types.ts";
import type { Config } from "../../../../src/config/index.ts";
import { countingRandom, testDeps } from "../helpers.ts";

export const NOW = 1_700_000_000_000;

export type Keys = Record<ApiKeyRole | "disabled" | "expired", string>;

/** The admin app with one key per role (plus a disabled and an expired admin key). */
export async function adminFixture(patch: Partial<HttpDeps> & { configPatch?: (c: Config) => void } = {}) {
  const t = await testDeps({ now: () => NOW, ...patch });
  const random = countingRandom();
  const keys = {} as Keys;
  for (const [name, role, extra] of [
    ["magiclink", "magiclink", {}],
    ["operator", "operator", {}],
    ["admin", "admin", {}],
    ["root", "root", {}],
    ["disabled", "admin", { disabled: true }],
    ["expired", "admin", { expiresAt: NOW - 1 }],
  ] as const) {
    // Distinct keys: skip ahead in the counting source for each one.
    random(7 * name.length);
    const g = generateApiKey(random);
    await t.store.apiKeys.add({ name: `k-${name}`, role, endpoint: null, hash: g.hash, prefix: g.prefix, expiresAt: null, ...extra });
    keys[name] = g.key;
  }
  const app = buildAdminApp(t.deps);
  /** Calls the admin API with `key` (header api-key). */
  const call = (method: string, path: string, { key, body, bearer = false }: { key?: string; body?: unknown; bearer?: boolean } = {}) => {
    const headers: Record<string, string> = {};
    if (key !== undefined) headers[bearer ? "authorization" : "api-key"] = bearer ? `Bearer ${key}` : key;
    if (body !== undefined) headers["content-type"] = "application/json";
    return app.request(`/api/admin/v1${path}`, { method, headers, body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body) }, { remoteAddress: "127.0.0.1" });
  };
  return { ...t, app, keys, call };
}
