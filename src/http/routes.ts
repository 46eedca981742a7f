// The route modules mounted on each listener. Add a module here (one line) to serve it.
//
// Public listener: the Magic Link API (/api/sfwa/*), the approval pages (/ml/*) and the approver
// app's device protocol (/app/api/v1/*).
// Admin listener: the admin REST API (/api/admin/v1/*) and its OpenAPI document (/api/openapi.json).
// The two lists never share a module: the admin API must not be reachable on the public listener.

import { adminApi } from "./admin/index.ts";
import { appApiRoutes } from "../devices/routes.ts";
import { magicLinkRoutes } from "../magiclink/routes.tsx";
import type { RouteModule } from "./types.ts";

export const PUBLIC_ROUTES: RouteModule[] = [magicLinkRoutes, appApiRoutes];

export const ADMIN_ROUTES: RouteModule[] = [adminApi];
