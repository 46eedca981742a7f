// `portcullis ldap test PROFILE [USER]`: per-URL reachability, TLS and service bind; then a user's DN, IDs, phone, type, status and groups.

import { authTypeNumber } from "../auth/types.ts";
import { openConnection, discard, loadCA, reason } from "../directory/ldap/connection.ts";
import { createLdapDirectory } from "../directory/ldap/index.ts";
import { DirectoryUnavailableError, type LdapProfile } from "../directory/types.ts";

export const LDAP_USAGE = ["portcullis ldap test PROFILE [USER]"];

/**
 * Runs the diagnostics for profile `name` and writes one line per finding to `out`. Never prints
 * the bind password or any other secret. Returns the exit code: 0 when every URL answered with TLS
 * as configured and the service bind worked (and USER, when given, was found); 1 when something
 * failed; 2 when the profile does not exist. Does not throw for network or directory failures.
 */
export async function ldapTest(profiles: LdapProfile[], name: string, user: string | undefined, out: (line: string) => void): Promise<number> {
  const profile = profiles.find((p) => p.name === name);
  if (!profile) {
    out(`no ldap profile named "${name}" (configured: ${profiles.map((p) => p.name).join(", ") || "none"})`);
    return 2;
  }
  let failed = false;
  let ca: string | undefined;
  try {
    ca = loadCA(profile);
  } catch (e) {
    out(`error: ${(e as Error).message}`);
    return 1;
  }
  out(`profile ${profile.name}: base ${profile.baseDN}, service ${profile.bindDN}, timeout ${profile.timeoutMs} ms, CA ${profile.caFile ?? "system roots"}`);

  for (const url of profile.urls) {
    out(`${url}:`);
    const ldaps = url.toLowerCase().startsWith("ldaps://");
    if (!ldaps && !profile.startTLS) out("  warning: plain LDAP without StartTLS; passwords cross the network in clear text");
    const started = performance.now();
    let conn;
    try {
      conn = await openConnection(profile, url, ca);
    } catch (e) {
      out(`  unreachable: ${reason(e)}`);
      failed = true;
      continue;
    }
    out(`  reachable (${Math.round(performance.now() - started)} ms)${ldaps ? ", LDAPS" : profile.startTLS ? ", StartTLS" : ""}`);
    const s = conn.tlsSocket;
    if (s) {
      const cipher = s.getCipher();
      out(`  TLS ${s.getProtocol() ?? "?"}, cipher ${cipher?.name ?? "?"}`);
      const cert = s.getPeerCertificate();
      if (cert && Object.keys(cert).length > 0) {
        out(`  certificate subject ${formatName(cert.subject)}, issuer ${formatName(cert.issuer)}`);
        if (cert.subjectaltname) out(`  certificate names ${cert.subjectaltname}`);
        out(`  certificate valid until ${new Date(cert.valid_to).toISOString()}`);
      }
    }
    try {
      await conn.client.bind(profile.bindDN, profile.bindPassword);
      out("  service bind: ok");
    } catch (e) {
      out(`  service bind: failed (${reason(e)})`);
      failed = true;
    } finally {
      await discard(conn.client);
    }
  }

  if (user === undefined) return failed ? 1 : 0;

  const dir = createLdapDirectory(profile);
  try {
    const u = await dir.findUser(user);
    if (!u) {
      out(`user ${user}: not found in profile ${profile.name}`);
      return 1;
    }
    out(`user ${user}:`);
    out(`  dn ${u.dn}`);
    out(`  id ${u.id}`);
    out(`  phone ${u.phone ?? "none"}${u.rawPhone !== null && u.rawPhone !== u.phone ? ` (directory value "${u.rawPhone}"${u.phone === null ? ", not a valid number" : ""})` : ""}`);
    out(`  email ${u.email ?? "none"}`);
    const type = u.type ?? profile.defaultType;
    out(`  type ${type} (${authTypeNumber(type)})${u.type === null ? " (profile default)" : ` (from ${profile.typeAttribute})`}`);
    if (profile.tokenAttribute) out(`  token serial ${u.tokenSerial ?? "none"}`);
    out(`  status ${u.status}`);
    const groups = [...new Set([...profile.requiredGroups, ...profile.reply.map((r) => r.group)])];
    if (groups.length > 0) {
      const member = await dir.memberOf(u, groups);
      for (const g of profile.requiredGroups) out(`  required group ${g}: ${member.has(g) ? "member" : "NOT a member"}`);
      for (const r of profile.reply) out(`  reply group ${r.group}: ${member.has(r.group) ? `member (${Object.keys(r.attributes).join(", ")})` : "not a member"}`);
      if (profile.requiredGroups.some((g) => !member.has(g))) {
        out("  the user would be refused: not in every required group");
        failed = true;
      }
    }
    if (u.status !== "ok") failed = true;
  } catch (e) {
    out(`user ${user}: ${e instanceof DirectoryUnavailableError ? e.message : reason(e)}`);
    failed = true;
  } finally {
    await dir.close();
  }
  return failed ? 1 : 0;
}

function formatName(n: unknown): string {
  if (!n || typeof n !== "object") return "?";
  return Object.entries(n as Record<string, string | string[]>)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join("+") : v}`)
    .join(", ");
}
