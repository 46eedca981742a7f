// Test helpers for Magic Link: a real SQLite store, the public app with a MagicLinkService over an
// in-process recording channel, a settable clock and a manually driven waiter hub.

import { randomBytes } from "node:crypto";
import { magicLinkAuditLog, type AuditEvent } from "../../../src/audit/events.ts";
import { createDispatcher, type RateLimitSettings } from "../../../src/delivery/dispatcher.ts";
import type { Channel, DeliveryResult, OutboundMessage } from "../../../src/delivery/types.ts";
import { hashApiKey } from "../../../src/http/api-keys.ts";
import { buildPublicApp } from "../../../src/http/app.ts";
import { KnownNumbers } from "../../../src/magiclink/known-users.ts";
import { MagicLinkService } from "../../../src/magiclink/service.ts";
import { WaiterHub } from "../../../src/approvals/waiters.ts";
import type { SqliteStore } from "../../../src/store/sqlite/store.ts";
import { defaultEndpointProfile, type EndpointProfile, type NewApiKey } from "../../../src/store/types.ts";
import { testDeps } from "../http/helpers.ts";

export const T0 = Math.floor(1_700_000_000_000 / 3_600_000) * 3_600_000;
export const NO_LIMITS: RateLimitSettings = { perNumberPerMinute: 0, perNumberPerHour: 0, perKeyPerMinute: 0, perKeyPerHour: 0, overallPerMinute: 0, overallPerHour: 0 };
export const PUBLIC_URL = "https://mfa.example.com";

/** A channel that records messages and answers from `script` (the last answer repeats). */
export function recordingChannel(name = "sms", kind: "sms" | "email" = "sms") {
  const sent: OutboundMessage[] = [];
  const waiters: Array<() => void> = [];
  const ch = {
    name,
    kind,
    sent,
    script: [{ ok: true }] as DeliveryResult[],
    async send(msg: OutboundMessage): Promise<DeliveryResult> {
      sent.push(msg);
      for (const w of waiters.splice(0)) w();
      return ch.script[Math.min(sent.length - 1, ch.script.length - 1)]!;
    },
    /** Waits (bounded) until `n` messages were sent; returns the link token of the last one. */
    async nextLink(n = sent.length + 1, timeoutMs = 5000): Promise<string> {
      const end = Date.now() + timeoutMs;
      while (sent.length < n) {
        if (Date.now() > end) throw new Error("no message sent");
        await new Promise<void>((r) => {
          const t = setTimeout(r, 50);
          waiters.push(() => {
            clearTimeout(t);
            r();
          });
        });
      }
      const m = /\/ml\/([A-Za-z0-9_-]{43})/.exec(sent[n - 1]!.text);
      if (!m) throw new Error("message has no link");
      return m[1]!;
    },
  } satisfies Channel & Record<string, unknown>;
  return ch;
}

export interface Harness {
  store: SqliteStore;
  dir: string;
  app: ReturnType<typeof buildPublicApp>;
  service: MagicLinkService;
  hub: WaiterHub;
  sms: ReturnType<typeof recordingChannel>;
  clock: { t: number };
  logs: unknown[][];
  metrics: Awaited<ReturnType<typeof testDeps>>["deps"]["metrics"];
  /** Adds a key and returns it. */
  key(name: string, patch?: Partial<NewApiKey>): Promise<string>;
  /** Calls the API; resolves with status, content type and body text. */
  call(query: string, key: string | undefined, init?: { path?: string; signal?: AbortSignal }): Promise<{ status: number; type: string | null; body: string }>;
}

export async function harness({
  limits = NO_LIMITS,
  profile = {},
  allowList = { countries: ["SE"], prefixes: [] },
  publicUrl = PUBLIC_URL,
  audit,
}: {
  limits?: RateLimitSettings;
  profile?: Partial<EndpointProfile>;
  allowList?: { countries: string[]; prefixes: string[] };
  publicUrl?: string;
  /** Receives the audit events (routes, the service's session lines, the dispatcher) as serve wires them. */
  audit?: (event: AuditEvent) => void;
} = {}): Promise<Harness> {
  const clock = { t: T0 };
  const now = () => clock.t;
  const t = await testDeps(audit ? { now, audit } : { now });
  const { store, deps } = t;
  await store.endpoints.put({ ...defaultEndpointProfile(), rateLimits: { perNumberPerMinute: 0, perNumberPerHour: 0, perKeyPerMinute: 0, overallPerMinute: 0 }, ...profile });
  const sms = recordingChannel();
  const known = new KnownNumbers(store, "SE", now);
  const dispatcher = createDispatcher({ channels: [sms], region: "SE", allowList, limits, rateLimits: store.rateLimits, deliveryLog: store.deliveryLog, isKnownNumber: (e) => known.isKnown(e), now, audit });
  const hub = new WaiterHub(store.approvals, { now, schedule: () => () => {} });
  const service = new MagicLinkService({
    store,
    rateLimits: store.rateLimits,
    dispatcherFor: () => dispatcher,
    publicUrl,
    region: "SE",
    smsMaxLength: 300,
    emailSubject: "Sign-in request",
    secret: new Uint8Array(randomBytes(32)),
    now,
    random: (n) => new Uint8Array(randomBytes(n)),
    log: audit ? magicLinkAuditLog(audit, deps.log) : deps.log,
    onOutcome: (code) => deps.metrics.magiclinkOutcomes.inc({ code }),
    hub,
  });
  const app = buildPublicApp({ ...deps, magicLink: service });
  return {
    store,
    dir: t.dir,
    app,
    service,
    hub,
    sms,
    clock,
    logs: t.logs,
    metrics: deps.metrics,
    async key(name, patch = {}) {
      const key = `pcl_${randomBytes(32).toString("base64url")}`;
      await store.apiKeys.add({ name, role: "magiclink", endpoint: null, hash: hashApiKey(key), prefix: key.slice(0, 10), expiresAt: null, ...patch });
      return key;
    },
    async call(query, key, init = {}) {
      const headers: Record<string, string> = key === undefined ? {} : { "api-key": key };
      const r = await app.request(`${init.path ?? "/api/sfwa/auth"}?${query}`, { headers, signal: init.signal });
      return { status: r.status, type: r.headers.get("content-type"), body: await r.text() };
    },
  };
}

/** The CSRF token in an approval page. */
export function csrfOf(html: string): string {
  const m = /name="csrf" value="([^"]+)"/.exec(html);
  if (!m) throw new Error("no csrf field");
  return m[1]!;
}

/** Posts the approval form. */
export function post(app: Harness["app"], token: string, fields: Record<string, string>) {
  return app.request(`/ml/${token}`, { method: "POST", body: new URLSearchParams(fields), headers: { "content-type": "application/x-www-form-urlencoded" } });
}
