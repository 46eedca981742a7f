// Admin API: LDAP/AD profile diagnostics, as `portcullis ldap test PROFILE [USER]` does, answered as JSON.
// Never the bind password. Admin and root only: it binds with the service account.

import * as v from "valibot";
import { AUTH_TYPES } from "../../domain/auth-types.ts";
import { ldapProfiles } from "../../config/index.ts";
import { diagnoseProfile } from "../../admin/ldap.ts";
import { apiAudit } from "./audit.ts";
import type { AdminRouter } from "./route.ts";
import { nameParams } from "./schemas.ts";

const TAG = "ldap";

const testBody = v.strictObject({
  user: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(253), v.description("a login name to look up as the RADIUS path would"))),
});

const urlFinding = v.object({
  url: v.string(),
  transport: v.picklist(["ldaps", "starttls", "plain"]),
  reachable: v.boolean(),
  error: v.nullable(v.pipe(v.string(), v.description("why the URL was unreachable (error code or LDAP result)"))),
  connectMs: v.nullable(v.number()),
  tls: v.nullable(
    v.object({
      protocol: v.nullable(v.string()),
      cipher: v.nullable(v.string()),
      certificate: v.nullable(v.object({ subject: v.string(), issuer: v.string(), names: v.nullable(v.string()), validUntil: v.nullable(v.string()) })),
    }),
  ),
  serviceBind: v.nullable(v.object({ ok: v.boolean(), error: v.nullable(v.string()) })),
});

const userFinding = v.object({
  query: v.string(),
  found: v.boolean(),
  error: v.nullable(v.pipe(v.string(), v.description("the lookup failed: directory unavailable or search error"))),
  dn: v.nullable(v.string()),
  id: v.nullable(v.pipe(v.string(), v.description("objectGUID or entryUUID"))),
  phone: v.nullable(v.pipe(v.string(), v.description("E.164; null when absent or not a valid number"))),
  rawPhone: v.nullable(v.string()),
  email: v.nullable(v.string()),
  type: v.nullable(v.picklist(AUTH_TYPES)),
  typeNumber: v.nullable(v.number()),
  typeSource: v.nullable(v.picklist(["attribute", "profile_default"])),
  tokenSerial: v.optional(v.nullable(v.pipe(v.string(), v.description("present when the profile has token_attribute")))),
  status: v.nullable(v.string()),
  requiredGroups: v.array(v.object({ group: v.string(), member: v.boolean() })),
  replyGroups: v.array(v.object({ group: v.string(), member: v.boolean(), attributes: v.array(v.string()) })),
  refused: v.pipe(v.boolean(), v.description("not found, status not ok, or outside a required group")),
});

const diagnosis = v.object({
  profile: v.object({ name: v.string(), baseDN: v.string(), bindDN: v.string(), timeoutMs: v.number(), caFile: v.nullable(v.string()) }),
  ok: v.pipe(v.boolean(), v.description("every URL reachable with TLS as configured and the service bind worked; the user, when asked, found and let in")),
  error: v.nullable(v.pipe(v.string(), v.description("a configuration error that stopped the test (unreadable CA file)"))),
  urls: v.array(urlFinding),
  user: v.optional(userFinding),
});

/** Registers /ldap routes. */
export function ldapRoutes(r: AdminRouter): void {
  const { deps } = r;
  r.route(
    {
      method: "post",
      path: "/ldap/:name/test",
      summary: "Test an [[ldap]] profile: each URL's reachability, TLS and service bind; with `user`, the user's DN, ID, phone, type, status and groups",
      tag: TAG,
      minRole: "admin",
      params: nameParams,
      body: testBody,
      responses: { 200: { description: "The findings (200 even when a check failed: see `ok`)", schema: diagnosis } },
      errors: [404],
    },
    async (c, { params, body }) => {
      const { diagnosis } = await diagnoseProfile(ldapProfiles(deps.config), params.name, body.user, { audit: apiAudit(deps, c.get("apiKey")) });
      return c.json(diagnosis);
    },
  );
}
