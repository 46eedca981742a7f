// LDAP profile diagnostics as data: per-URL reachability, TLS and service bind, then one user's DN, IDs,
// phone, type, status and groups. `portcullis ldap test` prints it; the admin API answers it as JSON.

import { authTypeNumber, type AuthType } from "../../domain/auth-types.ts";
import { DirectoryUnavailableError, type AccountStatus, type LdapProfile } from "../types.ts";
import { discard, loadCA, openConnection, reason } from "./connection.ts";
import { createLdapDirectory } from "./index.ts";

/** What one URL of the profile did. Never holds the bind password. */
export interface UrlFinding {
  url: string;
  /** How the connection is secured: LDAPS, StartTLS or not at all. */
  transport: "ldaps" | "starttls" | "plain";
  reachable: boolean;
  /** Secret-free reason when unreachable (node error code or LDAP result). */
  error: string | null;
  /** Connect (and TLS handshake) time in ms; null when unreachable. */
  connectMs: number | null;
  tls: { protocol: string | null; cipher: string | null; certificate: { subject: string; issuer: string; names: string | null; validUntil: string | null } | null } | null;
  /** The service account bind on this URL; null when the URL was unreachable. */
  serviceBind: { ok: boolean; error: string | null } | null;
}

/** What the directory says about one user. */
export interface UserFinding {
  query: string;
  found: boolean;
  /** The lookup failed (directory unavailable, search error): a secret-free reason. */
  error: string | null;
  dn: string | null;
  id: string | null;
  /** E.164, or null when absent or not a valid number. */
  phone: string | null;
  /** The directory's raw phone value. */
  rawPhone: string | null;
  email: string | null;
  type: AuthType | null;
  typeNumber: number | null;
  /** Where the type comes from: the profile's type attribute or its default_type. */
  typeSource: "attribute" | "profile_default" | null;
  /** Present only when the profile has a token attribute. */
  tokenSerial?: string | null;
  status: AccountStatus | null;
  requiredGroups: { group: string; member: boolean }[];
  replyGroups: { group: string; member: boolean; attributes: string[] }[];
  /** True when the user would be refused: not found, status not ok, or outside a required group. */
  refused: boolean;
}

/** The whole diagnosis of one profile. */
export interface LdapDiagnosis {
  profile: { name: string; baseDN: string; bindDN: string; timeoutMs: number; caFile: string | null };
  /** Every URL answered with TLS as configured, the service bind worked, and the user (when asked) was found and would be let in. */
  ok: boolean;
  /** A configuration error that stopped the test before any connection (an unreadable CA file). */
  error: string | null;
  urls: UrlFinding[];
  user?: UserFinding;
}

/**
 * Tests `profile`: each URL in turn (each step bounded by the profile's timeout_ms), then `user`
 * when given. `clock` measures connect times (ms). Never throws for network, TLS or directory
 * failures: they are findings. Never reports the bind password.
 */
export async function diagnoseLdap(profile: LdapProfile, user: string | undefined, { clock = () => performance.now() }: { clock?: () => number } = {}): Promise<LdapDiagnosis> {
  const out: LdapDiagnosis = {
    profile: { name: profile.name, baseDN: profile.baseDN, bindDN: profile.bindDN, timeoutMs: profile.timeoutMs, caFile: profile.caFile ?? null },
    ok: true,
    error: null,
    urls: [],
  };
  let ca: string | undefined;
  try {
    ca = loadCA(profile);
  } catch (e) {
    return { ...out, ok: false, error: (e as Error).message };
  }

  for (const url of profile.urls) {
    const ldaps = url.toLowerCase().startsWith("ldaps://");
    const finding: UrlFinding = { url, transport: ldaps ? "ldaps" : profile.startTLS ? "starttls" : "plain", reachable: false, error: null, connectMs: null, tls: null, serviceBind: null };
    out.urls.push(finding);
    const started = clock();
    let conn;
    try {
      conn = await openConnection(profile, url, ca);
    } catch (e) {
      finding.error = reason(e);
      out.ok = false;
      continue;
    }
    finding.reachable = true;
    finding.connectMs = Math.round(clock() - started);
    const s = conn.tlsSocket;
    if (s) {
      const cert = s.getPeerCertificate();
      const hasCert = cert && Object.keys(cert).length > 0;
      finding.tls = {
        protocol: s.getProtocol() ?? null,
        cipher: s.getCipher()?.name ?? null,
        certificate: hasCert
          ? { subject: formatName(cert.subject), issuer: formatName(cert.issuer), names: cert.subjectaltname ?? null, validUntil: cert.valid_to ? new Date(cert.valid_to).toISOString() : null }
          : null,
      };
    }
    try {
      await conn.client.bind(profile.bindDN, profile.bindPassword);
      finding.serviceBind = { ok: true, error: null };
    } catch (e) {
      finding.serviceBind = { ok: false, error: reason(e) };
      out.ok = false;
    } finally {
      await discard(conn.client);
    }
  }

  if (user === undefined) return out;
  const u: UserFinding = { query: user, found: false, error: null, dn: null, id: null, phone: null, rawPhone: null, email: null, type: null, typeNumber: null, typeSource: null, status: null, requiredGroups: [], replyGroups: [], refused: true };
  if (profile.tokenAttribute) u.tokenSerial = null;
  out.user = u;
  const dir = createLdapDirectory(profile);
  try {
    const found = await dir.findUser(user);
    if (found) {
      u.found = true;
      u.dn = found.dn;
      u.id = found.id;
      u.phone = found.phone;
      u.rawPhone = found.rawPhone;
      u.email = found.email;
      u.type = found.type ?? profile.defaultType;
      u.typeNumber = authTypeNumber(u.type);
      u.typeSource = found.type === null ? "profile_default" : "attribute";
      if (profile.tokenAttribute) u.tokenSerial = found.tokenSerial;
      u.status = found.status;
      const groups = [...new Set([...profile.requiredGroups, ...profile.reply.map((r) => r.group)])];
      const member = groups.length > 0 ? await dir.memberOf(found, groups) : new Set<string>();
      u.requiredGroups = profile.requiredGroups.map((group) => ({ group, member: member.has(group) }));
      u.replyGroups = profile.reply.map((r) => ({ group: r.group, member: member.has(r.group), attributes: Object.keys(r.attributes) }));
      u.refused = found.status !== "ok" || u.requiredGroups.some((g) => !g.member);
    }
  } catch (e) {
    u.error = e instanceof DirectoryUnavailableError ? e.message : reason(e);
  } finally {
    await dir.close();
  }
  if (u.refused) out.ok = false;
  return out;
}

function formatName(n: unknown): string {
  if (!n || typeof n !== "object") return "?";
  return Object.entries(n as Record<string, string | string[]>)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join("+") : v}`)
    .join(", ");
}
