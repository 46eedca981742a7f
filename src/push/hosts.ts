// Which push services Portcullis sends to: `[push] allowed_hosts`, checked when a device stores a
// subscription and again before every send (the list may have changed since).
//
// A subscription's endpoint is a URL the phone's browser chose; the appliance POSTs to it. Left
// open, that is a server-side request forgery primitive aimed at the appliance's own network, so an
// endpoint must be https: on a listed host. The one exception is http: to a loopback address listed
// literally (a push service of the tests' own), never a name that could resolve elsewhere.

import { isIP } from "node:net";

/** The push services of the browsers that implement Web Push with VAPID (docs/app.md "Push services"). */
export const DEFAULT_PUSH_HOSTS = [
  // Safari and Home Screen web apps (macOS, iOS, iPadOS): WebKit asks servers to allow any subdomain.
  "*.push.apple.com",
  // Chrome, Edge on Android, Samsung Internet, Opera and other Chromium browsers: Firebase Cloud Messaging.
  "fcm.googleapis.com",
  // Firefox (Mozilla autopush).
  "updates.push.services.mozilla.com",
  // Edge on Windows (Windows Push Notification Services, wns2-*.notify.windows.com).
  "*.notify.windows.com",
];

/** Longest endpoint accepted (real ones are a few hundred characters). */
export const MAX_ENDPOINT_LENGTH = 2048;

/**
 * True for an `allowed_hosts` entry: a DNS name ("fcm.googleapis.com"), a wildcard for its
 * subdomains ("*.push.apple.com", which does not match push.apple.com itself), or an IP address
 * (IPv6 with or without brackets).
 */
export function isPushHostRule(entry: string): boolean {
  const e = entry.trim().toLowerCase();
  if (isIP(unbracket(e)) !== 0) return true;
  const name = e.startsWith("*.") ? e.slice(2) : e;
  return /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(name);
}

function unbracket(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

function isLoopback(ip: string): boolean {
  return ip === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(ip);
}

/** The host of an endpoint for logs, events and listings, never its path (the path is the credential). */
export function endpointHost(endpoint: string): string {
  try {
    return new URL(endpoint).host;
  } catch {
    return "(malformed)";
  }
}

/** The allow-list, compiled once from `[push] allowed_hosts`. */
export class PushHosts {
  private readonly exact = new Set<string>();
  private readonly suffixes: string[] = [];

  /** Throws TypeError naming the entry (never anything else) when one is not a host rule. */
  constructor(entries: readonly string[]) {
    for (const raw of entries) {
      if (!isPushHostRule(raw)) throw new TypeError(`push.allowed_hosts: "${raw.slice(0, 80)}" is not a host name, *.domain or IP address`);
      const e = raw.trim().toLowerCase();
      if (e.startsWith("*.")) this.suffixes.push(e.slice(1));
      else this.exact.add(unbracket(e));
    }
  }

  private allows(host: string): boolean {
    if (this.exact.has(host)) return true;
    return isIP(host) === 0 && this.suffixes.some((s) => host.endsWith(s) && host.length > s.length);
  }

  /**
   * Checks a subscription endpoint. Accepted: an absolute https: URL without credentials or fragment,
   * at most MAX_ENDPOINT_LENGTH characters, whose host is allowed; or the same with http: when the host
   * is a loopback IP address listed literally. Returns the normalised URL (WHATWG href: lower-case
   * host, no default port), which is what is stored and what the VAPID audience is taken from.
   */
  check(endpoint: string): { ok: true; url: URL } | { ok: false; reason: "malformed" | "not_https" | "host_not_allowed" } {
    if (typeof endpoint !== "string" || endpoint.length > MAX_ENDPOINT_LENGTH) return { ok: false, reason: "malformed" };
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      return { ok: false, reason: "malformed" };
    }
    if (url.username !== "" || url.password !== "" || url.hash !== "" || url.hostname === "") return { ok: false, reason: "malformed" };
    const host = unbracket(url.hostname);
    if (url.protocol === "http:") {
      if (!(isIP(host) !== 0 && isLoopback(host))) return { ok: false, reason: "not_https" };
      return this.exact.has(host) ? { ok: true, url } : { ok: false, reason: "host_not_allowed" };
    }
    if (url.protocol !== "https:") return { ok: false, reason: "not_https" };
    return this.allows(host) ? { ok: true, url } : { ok: false, reason: "host_not_allowed" };
  }
}
