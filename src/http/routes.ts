// The route modules mounted on each listener. Add a module here (one line) to serve it.
//
// Public listener: the Magic Link API (/api/sfwa/*), the approval pages (/ml/*), the approver app's
// files (/app/, src/app/routes.tsx), its device protocol (/app/api/v1/*), the password-reset
// portals (/password-reset/*, http/password-reset.tsx) and the self-service portal (/self-service,
// src/selfservice/routes.tsx; only when [self_service] enabled).
// Admin listener: the admin REST API (/api/admin/v1/*) and its OpenAPI document (/api/openapi.json),
// and the admin web UI (/ui/, src/http/ui).
// The two lists never share a module: the admin API must not be reachable on the public listener.

import { adminApi } from "./admin/index.ts";
import { appPageRoutes } from "../app/routes.tsx";
import { appApiRoutes } from "../devices/routes.ts";
import { magicLinkRoutes } from "./magiclink.tsx";
import { passwordResetRoutes } from "./password-reset.tsx";
import { selfServiceRoutes } from "../selfservice/routes.tsx";
import { adminUiRoutes } from "./ui/routes.tsx";
import type { RouteModule } from "./types.ts";

export const PUBLIC_ROUTES: RouteModule[] = [magicLinkRoutes, appApiRoutes, appPageRoutes, passwordResetRoutes, selfServiceRoutes];

export const ADMIN_ROUTES: RouteModule[] = [adminApi, adminUiRoutes];
