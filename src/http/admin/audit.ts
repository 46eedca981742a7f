// The admin API's side of the audit port (admin/audit.ts): the actor is the calling API key (its
// name and role), and each change's admin.* event is emitted on the server's bus once it is made.

import type { Context } from "hono";
import type { AdminAudit } from "../../admin/audit.ts";
import type { AdminContext } from "../../admin/context.ts";
import type { ApiKey } from "../../store/types.ts";
import type { HttpDeps, HttpEnv } from "../types.ts";

/** The audit port of one admin API call made with `key`. */
export function apiAudit(deps: Pick<HttpDeps, "audit">, key: Pick<ApiKey, "name" | "role">): AdminAudit {
  // Admin routes accept operator keys and above only (route.ts); a magiclink key never gets here.
  const role = key.role === "magiclink" ? "operator" : key.role;
  const actor = { name: key.name, role } as const;
  return {
    actor,
    async change(change, describe) {
      const result = await change();
      const event = describe(result);
      if (event !== null) deps.audit({ ...event, by: actor.name } as Parameters<HttpDeps["audit"]>[0]);
      return result;
    },
    async note(event) {
      deps.audit({ ...event, by: actor.name } as Parameters<HttpDeps["audit"]>[0]);
    },
  };
}

/** The admin operations' context of one admin API call: the server's store and clock, audited as the calling key. */
export function adminContextOf(deps: HttpDeps, c: Context<HttpEnv>): AdminContext {
  return { config: deps.config, store: deps.store, audit: apiAudit(deps, c.get("apiKey")), now: deps.now, random: deps.random };
}
