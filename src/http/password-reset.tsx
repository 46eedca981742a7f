// The password-reset portal's routes on the public listener (/password-reset/{name}): GET shows the
// page of the browser's reset session (cookie), POST takes one form (username, code, new password,
// start again) and answers with a redirect to the GET (or the same page with a message), and
// /status answers the waiting page's poll. The flow itself is reset/service.ts.

import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { PasswordResetService, ResetPortal } from "../reset/service.ts";
import { BODY_LIMITS, bodyCap } from "./middleware.ts";
import { CodePage, DonePage, FailedPage, NotFoundPage, PasswordPage, RESET_CSS, RESET_CSS_PATH, RESET_JS, RESET_JS_PATH, StartPage, WaitingPage } from "./pages/password-reset.tsx";
import type { HttpEnv, RouteModule } from "./types.ts";

/** The reset session's cookie (the token; the store holds its SHA-256). */
export const RESET_COOKIE = "pcl_reset";
/** The start page's cookie: the token its form's CSRF value is bound to. */
export const RESET_START_COOKIE = "pcl_reset_start";

type Ctx = Context<HttpEnv>;

/** Registers the portals of `deps.passwordReset`; without it every portal path is 404. */
export const passwordResetRoutes: RouteModule = (app, deps) => {
  const service = deps.passwordReset;
  const secure = deps.tls || deps.config.http.public_url.startsWith("https:");
  const path = (p: ResetPortal) => `/password-reset/${p.name}`;
  const cookie = (c: Ctx, p: ResetPortal, name: string, value: string, maxAge: number) =>
    setCookie(c, name, value, { path: path(p), httpOnly: true, sameSite: "Strict", secure, maxAge });
  const noStore = (c: Ctx) => c.header("Cache-Control", "no-store");

  app.get(RESET_CSS_PATH, (c) => c.body(RESET_CSS, 200, { "Content-Type": "text/css; charset=utf-8", "Cache-Control": "public, max-age=86400" }));
  app.get(RESET_JS_PATH, (c) => c.body(RESET_JS, 200, { "Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "public, max-age=86400" }));

  const portalOf = (c: Ctx): ResetPortal | undefined => service?.portal(c.req.param("name") ?? "");

  async function page(c: Ctx, svc: PasswordResetService, p: ResetPortal): Promise<Response> {
    noStore(c);
    const token = getCookie(c, RESET_COOKIE);
    const view = await svc.view(p, token);
    switch (view.kind) {
      case "code":
        return c.html(<CodePage csrf={svc.csrf(token!)} />);
      case "waiting":
        return c.html(<WaitingPage csrf={svc.csrf(token!)} role={p.approver_role} statusPath={`${path(p)}/status`} />);
      case "password":
        return c.html(<PasswordPage csrf={svc.csrf(token!)} />);
      case "done":
        deleteCookie(c, RESET_COOKIE, { path: path(p), secure });
        return c.html(<DonePage />);
      case "failed":
        deleteCookie(c, RESET_COOKIE, { path: path(p), secure });
        return c.html(<FailedPage startPath={path(p)} />);
      default: {
        const start = svc.newToken();
        cookie(c, p, RESET_START_COOKIE, start, p.session_ttl_s);
        return c.html(<StartPage csrf={svc.csrf(start)} role={p.approver_role} />);
      }
    }
  }

  app.get("/password-reset/:name", async (c) => {
    const p = portalOf(c);
    if (!service || !p) return c.html(<NotFoundPage />, 404);
    return page(c, service, p);
  });

  app.get("/password-reset/:name/status", async (c) => {
    const p = portalOf(c);
    noStore(c);
    if (!service || !p) return c.json({ state: "none" }, 404);
    const view = await service.view(p, getCookie(c, RESET_COOKIE));
    return c.json({ state: view.kind });
  });

  app.post(
    "/password-reset/:name",
    async function knownPortal(c, next) {
      if (!service || !portalOf(c)) return c.html(<NotFoundPage />, 404);
      await next();
    },
    bodyCap(BODY_LIMITS.form),
    async (c) => {
      const svc = service!;
      const p = portalOf(c)!;
      noStore(c);
      let body: Record<string, unknown> = {};
      try {
        body = (await c.req.parseBody()) as Record<string, unknown>;
      } catch {
        return c.redirect(path(p), 303);
      }
      const field = (k: string) => (typeof body[k] === "string" ? (body[k] as string) : "");
      const step = field("step");
      const token = getCookie(c, RESET_COOKIE);
      if (step === "") {
        // The username form: bound to the start cookie, not to a session.
        if (!svc.checkCsrf(getCookie(c, RESET_START_COOKIE), field("csrf"))) return c.redirect(path(p), 303);
        deleteCookie(c, RESET_START_COOKIE, { path: path(p), secure });
        const created = await svc.start(p, field("username"), c.get("clientIp"));
        if (!created) return c.html(<FailedPage startPath={path(p)} />);
        cookie(c, p, RESET_COOKIE, created, p.session_ttl_s);
        return c.redirect(path(p), 303);
      }
      if (!svc.checkCsrf(token, field("csrf"))) return c.redirect(path(p), 303);
      if (step === "restart") {
        deleteCookie(c, RESET_COOKIE, { path: path(p), secure });
        return c.redirect(path(p), 303);
      }
      if (step === "code") {
        const r = await svc.submitCode(p, token, field("code"));
        if (r.kind === "wrong") return c.html(<CodePage csrf={svc.csrf(token!)} wrong />, 422);
        return c.redirect(path(p), 303);
      }
      if (step === "password") {
        const r = await svc.setPassword(p, token, field("password"), field("again"));
        if (r.kind === "retry") return c.html(<PasswordPage csrf={svc.csrf(token!)} message={r.message} />, 422);
        return c.redirect(path(p), 303);
      }
      return c.redirect(path(p), 303);
    },
  );
};

