// `portcullis ldap test PROFILE [USER]`: per-URL reachability, TLS and service bind; then a user's DN, IDs, phone, type, status and groups.

import { diagnoseProfile } from "../admin/ldap.ts";
import { AdminError } from "../admin/errors.ts";
import type { LdapProfile } from "../directory/types.ts";

export const LDAP_USAGE = ["portcullis ldap test PROFILE [USER]"];

/**
 * Runs the diagnostics for profile `name` (directory/ldap/diagnose.ts) and writes one line per
 * finding to `out`. Never prints the bind password or any other secret. Returns the exit code: 0
 * when every URL answered with TLS as configured and the service bind worked (and USER, when given,
 * was found); 1 when something failed; 2 when the profile does not exist. Does not throw for
 * network or directory failures.
 */
export async function ldapTest(profiles: LdapProfile[], name: string, user: string | undefined, out: (line: string) => void): Promise<number> {
  let found;
  try {
    found = await diagnoseProfile(profiles, name, user);
  } catch (e) {
    if (!(e instanceof AdminError)) throw e;
    out(e.message);
    return 2;
  }
  const { profile, diagnosis: d } = found;
  if (d.error !== null) {
    out(`error: ${d.error}`);
    return 1;
  }
  out(`profile ${profile.name}: base ${profile.baseDN}, service ${profile.bindDN}, timeout ${profile.timeoutMs} ms, CA ${profile.caFile ?? "system roots"}`);
  for (const f of d.urls) {
    out(`${f.url}:`);
    if (f.transport === "plain") out("  warning: plain LDAP without StartTLS; passwords cross the network in clear text");
    if (!f.reachable) {
      out(`  unreachable: ${f.error}`);
      continue;
    }
    out(`  reachable (${f.connectMs} ms)${f.transport === "ldaps" ? ", LDAPS" : f.transport === "starttls" ? ", StartTLS" : ""}`);
    if (f.tls) {
      out(`  TLS ${f.tls.protocol ?? "?"}, cipher ${f.tls.cipher ?? "?"}`);
      const cert = f.tls.certificate;
      if (cert) {
        out(`  certificate subject ${cert.subject}, issuer ${cert.issuer}`);
        if (cert.names) out(`  certificate names ${cert.names}`);
        out(`  certificate valid until ${cert.validUntil ?? "?"}`);
      }
    }
    out(f.serviceBind?.ok ? "  service bind: ok" : `  service bind: failed (${f.serviceBind?.error})`);
  }

  const u = d.user;
  if (u === undefined) return d.ok ? 0 : 1;
  if (!u.found) {
    out(u.error !== null ? `user ${user}: ${u.error}` : `user ${user}: not found in profile ${profile.name}`);
    return 1;
  }
  out(`user ${user}:`);
  out(`  dn ${u.dn}`);
  out(`  id ${u.id}`);
  out(`  phone ${u.phone ?? "none"}${u.rawPhone !== null && u.rawPhone !== u.phone ? ` (directory value "${u.rawPhone}"${u.phone === null ? ", not a valid number" : ""})` : ""}`);
  out(`  email ${u.email ?? "none"}`);
  out(`  type ${u.type} (${u.typeNumber})${u.typeSource === "profile_default" ? " (profile default)" : ` (from ${profile.typeAttribute})`}`);
  if (u.tokenSerial !== undefined) out(`  token serial ${u.tokenSerial ?? "none"}`);
  out(`  status ${u.status}`);
  if (u.error !== null) {
    out(`user ${user}: ${u.error}`);
    return 1;
  }
  for (const g of u.requiredGroups) out(`  required group ${g.group}: ${g.member ? "member" : "NOT a member"}`);
  for (const g of u.replyGroups) out(`  reply group ${g.group}: ${g.member ? `member (${g.attributes.join(", ")})` : "not a member"}`);
  if (u.requiredGroups.some((g) => !g.member)) out("  the user would be refused: not in every required group");
  return d.ok ? 0 : 1;
}
