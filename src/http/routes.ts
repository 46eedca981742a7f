// The route modules mounted on each listener. Add a module here (one line) to serve it.
//
// Public listener: the Magic Link API (/api/sfwa/*) and the approval pages (/ml/*).
// Admin listener: the admin REST API (/api/admin/v1/*) and its OpenAPI document (/api/openapi.json).
// The two lists never share a module: the admin API must not be reachable on the public listener.

import { adminApi } from "./admin/index.ts";
import { magicLinkRoutes } from "../magiclink/routes.tsx";
import type { RouteModule } from "./types.ts";

export const PUBLIC_ROUTES: RouteModule[] = [magicLinkRoutes];

export const ADMIN_ROUTES: RouteModule[] = [adminApi];
