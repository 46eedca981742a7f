// The HTTP contract: what every route module receives (HttpDeps), the Hono environment it runs in
// (HttpEnv), and the shape of a route module. Route modules hold no Bun.* and open no sockets.

import type { Hono } from "hono";
import type { AuditEvent } from "../audit/events.ts";
import type { Level } from "../audit/log.ts";
import type { PortcullisMetrics } from "../audit/metrics.ts";
import type { Engine } from "../auth/engine.ts";
import type { Config } from "../config/index.ts";
import type { MagicLinkService } from "../magiclink/service.ts";
import type { ApiKey, Store } from "../store/types.ts";

/** Readiness of this node: every check must pass for /readyz to answer 200. */
export interface Readiness {
  ok: boolean;
  checks: Record<string, boolean>;
  /** The switch connection, when `[switch]` is configured; informative, it does not make the node unready. */
  switch?: { state: string; url: string | null };
}

/** Everything a route module may use. Time and randomness are parameters so tests can freeze them. */
export interface HttpDeps {
  config: Config;
  store: Store;
  engine: Engine;
  /** Emits a typed audit event (AuditBus.emit). */
  audit: (event: AuditEvent) => void;
  metrics: PortcullisMetrics;
  /** unix ms. */
  now(): number;
  /** `n` cryptographically random bytes. */
  random(n: number): Uint8Array;
  /** Structured log line (audit/log.ts `log`); never pass a secret. */
  log(level: Level, event: string, fields?: Record<string, unknown>): void;
  /** Store writable, RADIUS bound…; backs /readyz. */
  ready(): Promise<Readiness>;
  /** True when the listener this app serves speaks TLS (turns HSTS on). */
  tls: boolean;
  /** Delivery (dispatcher and its log), when serve configured it; the admin delivery test and log need it. */
  delivery?: { dispatcher: import("../delivery/index.ts").Dispatcher; log: import("../store/types.ts").DeliveryLogRepo };
  /** Magic Link sessions (public listener); absent → the Magic Link API answers FAILED_DELIVERY. */
  magicLink?: MagicLinkService;
  /** Web Push to approver devices (VAPID key, allow-list); absent → the app's device routes answer 503. */
  push?: import("../push/sender.ts").PushSender;
  /** App requests (list, events, answers); absent → those device routes answer 503. */
  app?: import("../approvals/app.ts").AppRequests;
  /** The RADIUS listeners of this process, for the admin web UI's test authentication; absent → not offered. */
  radiusListeners?: ReadonlyArray<{ address: string; port: number }>;
  /** The store's shared rate-limit counters (serve sets them); absent → the self-service portal has no per-address limit. */
  rateLimits?: import("../store/types.ts").RateLimitRepo;
  /** The password-reset portals (`[[password_reset]]`); absent → /password-reset/* answers 404. */
  passwordReset?: import("../reset/service.ts").PasswordResetService;
  /** The LDAP/AD profiles; the admin web UI's sign-in by group (`[admin_ui] ldap_profile`) needs them. */
  directories?: import("../directory/registry.ts").Directories;
}

/** What runtime/http.ts passes per request as Hono's `c.env`. */
export interface HttpBindings {
  /** The TCP peer's address as the socket saw it (before any X-Forwarded-For). */
  remoteAddress?: string;
}

/** Context variables set by the middleware in http/middleware.ts. */
export interface HttpVariables {
  /** Random per-request ID, also in the X-Request-Id response header and every JSON error. */
  requestId: string;
  /** The client address: the socket peer, or from X-Forwarded-For through trusted proxies. */
  clientIp: string;
  /** The authenticated API key (set by apiKeyAuth; absent before it). */
  apiKey: ApiKey;
  /** The device that signed the request, and its user (set by signedRequest, http/device-auth.ts). */
  device: import("../store/types.ts").Device;
  deviceUser: import("../store/types.ts").User;
}

export type HttpEnv = { Bindings: HttpBindings; Variables: HttpVariables };

/**
 * A route module registers its routes on the app it is given, e.g. `src/http/magiclink.tsx`
 * (public: /api/sfwa/*, /ml/*) or `src/http/admin/*.ts` (admin: /api/admin/v1/*). List it in
 * src/http/routes.ts.
 */
export type RouteModule = (app: Hono<HttpEnv>, deps: HttpDeps) => void;
