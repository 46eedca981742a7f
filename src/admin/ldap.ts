// Admin operation: diagnose an [[ldap]] profile (`portcullis ldap test`, POST /api/admin/v1/ldap/{name}/test):
// each URL's reachability, TLS and service bind, and with a user their DN, IDs, phone, type, status
// and groups. Never the bind password.

import { diagnoseLdap } from "../directory/ldap/diagnose.ts";
import type { LdapProfile } from "../directory/types.ts";
import type { AdminAudit } from "./audit.ts";
import { AdminError } from "./errors.ts";

/**
 * Runs the diagnostics of the profile named `name` among `profiles` (for `user` when given) and
 * records admin.ldap_tested through `audit` when one is given (the CLI's `ldap test` runs without
 * the store, so unaudited). Does not throw for network or directory failures (they are findings).
 * Throws AdminError("not_found") for an unknown profile.
 */
export async function diagnoseProfile(
  profiles: readonly LdapProfile[],
  name: string,
  user: string | undefined,
  { audit }: { audit?: AdminAudit } = {},
): Promise<{ profile: LdapProfile; diagnosis: Awaited<ReturnType<typeof diagnoseLdap>> }> {
  const profile = findProfile(profiles, name);
  const diagnosis = await diagnoseLdap(profile, user);
  await audit?.note({ type: "admin.ldap_tested", profile: profile.name, ok: diagnosis.ok });
  return { profile, diagnosis };
}

/** The profile named `name` among `profiles`. Throws AdminError("not_found") naming the configured ones. */
export function findProfile(profiles: readonly LdapProfile[], name: string): LdapProfile {
  const profile = profiles.find((p) => p.name === name);
  if (!profile) {
    throw new AdminError("not_found", `no ldap profile named "${name}" (configured: ${profiles.map((p) => p.name).join(", ") || "none"})`, { field: "name", expose: "no such ldap profile" });
  }
  return profile;
}
