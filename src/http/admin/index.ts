// The admin REST API route module (/api/admin/v1/*) and its OpenAPI document (/api/openapi.json),
// mounted on the admin listener only (src/http/routes.ts ADMIN_ROUTES).

import { buildOpenAPI, OPENAPI_PATH } from "../openapi.ts";
import type { RouteModule } from "../types.ts";
import { apiKeyRoutes } from "./api-keys.ts";
import { auditLogRoutes } from "./audit-log.ts";
import { clientRoutes } from "./clients.ts";
import { deliveryRoutes } from "./delivery.ts";
import { deviceRoutes } from "./devices.ts";
import { endpointRoutes } from "./endpoints.ts";
import { keyRoutes } from "./key.ts";
import { ldapRoutes } from "./ldap.ts";
import { ADMIN_BASE, AdminRouter, type AdminRouteSpec } from "./route.ts";
import { tokenRoutes } from "./tokens.ts";
import { userRoutes } from "./users.ts";

/**
 * Registers every admin resource on `r` and returns their specs. Exported for tests, which compare
 * them with the app's registered routes.
 */
export function registerAdminResources(r: AdminRouter): readonly AdminRouteSpec[] {
  userRoutes(r);
  tokenRoutes(r);
  deviceRoutes(r);
  clientRoutes(r);
  apiKeyRoutes(r);
  endpointRoutes(r);
  deliveryRoutes(r);
  keyRoutes(r);
  ldapRoutes(r);
  auditLogRoutes(r);
  return r.specs;
}

/** The admin API and /api/openapi.json. */
export const adminApi: RouteModule = (app, deps) => {
  const specs = registerAdminResources(new AdminRouter(app, deps));
  const doc = JSON.stringify(buildOpenAPI(specs));
  // Public on the admin listener: it describes the API and holds no data.
  app.get(OPENAPI_PATH, (c) => c.body(doc, 200, { "Content-Type": "application/json; charset=utf-8" }));
};
