// The two Hono apps: the public one (approval pages, Magic Link API) and the admin one (admin API,
// /metrics). Each gets the shared middleware, health endpoints and its own route modules.

import { Hono } from "hono";
import { METRICS_CONTENT_TYPE } from "../audit/metrics.ts";
import { adminOnError } from "./admin/errors.ts";
import { BODY_LIMITS, edge, jsonErrors } from "./middleware.ts";
import { ADMIN_ROUTES, PUBLIC_ROUTES } from "./routes.ts";
import type { HttpDeps, HttpEnv, RouteModule } from "./types.ts";

type Listener = "public" | "admin";

function baseApp(deps: HttpDeps, listener: Listener): Hono<HttpEnv> {
  const app = new Hono<HttpEnv>();
  const errors = jsonErrors(deps.log);
  app.onError(errors.onError);
  app.notFound(errors.notFound);
  app.use(
    edge({
      random: deps.random,
      tls: deps.tls,
      trustedProxies: deps.config.http.trusted_proxies,
      maxDeclaredBody: listener === "public" ? BODY_LIMITS.public : BODY_LIMITS.adminImport,
      onAnswered: (status) => deps.metrics.httpRequests.inc({ listener, status: `${Math.floor(status / 100)}xx` }),
    }),
  );

  // Liveness: the process answers. Readiness: it can do its job (store writable, RADIUS bound).
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", async (c) => {
    const r = await deps.ready().catch(() => ({ ok: false, checks: {} }));
    return c.json({ status: r.ok ? "ready" : "not_ready", checks: r.checks, ...("switch" in r && r.switch ? { switch: r.switch } : {}) }, r.ok ? 200 : 503);
  });
  return app;
}

/**
 * The public app: health endpoints plus `routes` (default: PUBLIC_ROUTES). Never mounts admin routes.
 * Throws TypeError when config.http.trusted_proxies holds an invalid entry.
 */
export function buildPublicApp(deps: HttpDeps, routes: readonly RouteModule[] = PUBLIC_ROUTES): Hono<HttpEnv> {
  const app = baseApp(deps, "public");
  for (const register of routes) register(app, deps);
  return app;
}

/**
 * The admin app: health endpoints, Prometheus /metrics, plus `routes` (default: ADMIN_ROUTES). Its
 * error handler maps the admin operations' errors and store failures to statuses (admin/errors.ts).
 */
export function buildAdminApp(deps: HttpDeps, routes: readonly RouteModule[] = ADMIN_ROUTES): Hono<HttpEnv> {
  const app = baseApp(deps, "admin");
  app.onError(adminOnError(deps.log));
  app.get("/metrics", async (c) => c.body(deps.metrics.registry.render(deps.metrics.others ? await deps.metrics.others() : []), 200, { "Content-Type": METRICS_CONTENT_TYPE }));
  for (const register of routes) register(app, deps);
  return app;
}
