// The admin web UI (/ui/ on the admin listener): server-rendered pages over the admin operations
// (src/admin/*), working without any script. Sign-in with a local admin account (password + TOTP),
// sessions, CSRF and roles are in session.ts; each page module registers its own routes.

import { Hono } from "hono";
import { checkUiSignIn } from "../../admin/admin-directory.ts";
import { APPROVAL_CSS } from "../pages/approval.tsx";
import type { RouteModule } from "../types.ts";
import { seeOther, uiLockout, type UiApp, type UiEnv } from "./common.tsx";
import { BarePage, Field, UI_CSS } from "./layout.tsx";
import { dashboardRoutes } from "./dashboard.tsx";
import { userRoutes } from "./users.tsx";
import { tokenRoutes } from "./tokens.tsx";
import { clientRoutes } from "./clients.tsx";
import { otherRoutes } from "./other.tsx";
import { auditRoutes } from "./audit.tsx";
import { accountRoutes } from "./account.tsx";
import { endpointRoutes } from "./endpoints.tsx";
import { csrfValid, endSession, requireSession, signInToken, signInTokenValid, startSession, UI_BASE } from "./session.ts";
import { AdminError } from "../../admin/errors.ts";
import { adminAccountsOf, StoreError } from "../../store/types.ts";
import { ADMIN_ERROR_STATUS, STORE_ERROR_STATUS } from "../admin/errors.ts";

const CSS = APPROVAL_CSS + UI_CSS;

const ENDED: Record<string, string> = {
  idle: "Your session ended after a period without activity. Sign in again.",
  expired: "Your session reached its maximum length. Sign in again.",
  out: "You are signed out.",
};

function SignInPage({ token, error, name, ended }: { token: string; error?: boolean; name?: string; ended?: string | undefined }) {
  return (
    <BarePage title="Sign in">
      <h1>Portcullis admin</h1>
      {ended && ENDED[ended] ? (
        <p class="notice" role="status" id="ended">
          {ENDED[ended]}
        </p>
      ) : null}
      {error ? (
        <p class="alert" role="alert" id="sign-in-error">
          The name, password or code is not right, or too many attempts were made. Try again.
        </p>
      ) : null}
      <form method="post" action={`${UI_BASE}/sign-in`}>
        <input type="hidden" name="csrf" value={token} />
        <Field name="name" label="Account name" value={name} required autocomplete="username" />
        <Field name="password" label="Password" type="password" required autocomplete="current-password" />
        <Field name="code" label="Code from your authenticator app" required autocomplete="one-time-code" inputmode="numeric" />
        <button type="submit" class="primary" id="sign-in">
          Sign in
        </button>
      </form>
    </BarePage>
  );
}

/** The admin web UI. Not mounted when `[admin_ui] enabled = false`. */
export const adminUiRoutes: RouteModule = (app, deps) => {
  if (!deps.config.admin_ui.enabled) return;
  const ui: UiApp = new Hono<UiEnv>();

  // A failure no page caught: an HTML page with the status the admin API would answer.
  ui.onError((err, c) => {
    const status = err instanceof AdminError ? ADMIN_ERROR_STATUS[err.code] : err instanceof StoreError ? STORE_ERROR_STATUS[err.code] : 500;
    if (status >= 500) deps.log("error", "http.error", { requestId: c.get("requestId"), path: c.req.routePath, error: err.name });
    c.status(status);
    return c.html(
      <BarePage title="Something went wrong">
        <h1 id="error-page">{status >= 500 ? "Something went wrong" : "This could not be done"}</h1>
        <p>Nothing more is shown here; the request ID is {c.get("requestId")}.</p>
        <p>
          <a href={`${UI_BASE}/`}>Back to the dashboard</a>
        </p>
      </BarePage>,
    );
  });

  ui.get("/assets/ui.css", (c) => c.body(CSS, 200, { "Content-Type": "text/css; charset=utf-8", "Cache-Control": "public, max-age=3600" }));

  ui.get("/sign-in", (c) => c.html(<SignInPage token={signInToken(c, deps)} ended={c.req.query("ended")} />));

  ui.post("/sign-in", async (c) => {
    const form = await c.req.parseBody();
    const name = typeof form.name === "string" ? form.name.slice(0, 64) : "";
    // Login CSRF: the form must come from our page (double-submit token).
    if (!signInTokenValid(c, deps, typeof form.csrf === "string" ? form.csrf : undefined)) {
      c.status(403);
      return c.html(<SignInPage token={signInToken(c, deps)} error name={name} />);
    }
    const client = c.get("clientIp");
    const result = await checkUiSignIn(
      { store: deps.store, now: deps.now, lockout: uiLockout(deps.config), window: deps.config.otp.window, hotpLookAhead: deps.config.otp.hotp_look_ahead, random: deps.random, ui: deps.config.admin_ui, ...(deps.directories ? { directories: deps.directories } : {}) },
      { name, password: typeof form.password === "string" ? form.password : "", code: typeof form.code === "string" ? form.code : "", source: `ui:${client}` },
    );
    if (!result.ok) {
      deps.audit({ type: "ui.sign_in_failed", reason: result.reason, client, ...(result.account ? { account: result.account } : { userHash: result.userHash ?? "" }) });
      c.status(401);
      return c.html(<SignInPage token={signInToken(c, deps)} error name={name} />);
    }
    // Sessions nobody came back to are deleted here (a live one is checked at each request).
    await adminAccountsOf(deps.store).purgeSessions(deps.now(), deps.config.admin_ui.idle_timeout_s * 1000);
    await startSession(c, deps, result.account);
    deps.audit({ type: "ui.signed_in", account: result.account.name, role: result.account.role, client, source: result.source });
    return seeOther(c, `${UI_BASE}/`);
  });

  ui.use("*", requireSession(deps));

  ui.post("/sign-out", async (c) => {
    const form = await c.req.parseBody();
    const { account } = c.get("ui");
    // Signing out needs the CSRF token too: a cross-site form must not end a session.
    if (!csrfValid(c, form)) return seeOther(c, `${UI_BASE}/`);
    await endSession(c, deps);
    deps.audit({ type: "ui.session_ended", account: account.name, reason: "signed_out" });
    return seeOther(c, `${UI_BASE}/sign-in?ended=out`);
  });

  dashboardRoutes(ui, deps);
  userRoutes(ui, deps);
  tokenRoutes(ui, deps);
  clientRoutes(ui, deps);
  otherRoutes(ui, deps);
  auditRoutes(ui, deps);
  accountRoutes(ui, deps);
  endpointRoutes(ui, deps);

  app.get(UI_BASE, (c) => c.redirect(`${UI_BASE}/`, 301));
  // Mounted at "/ui/" so that the dashboard is "/ui/" (Hono's paths are strict about the slash).
  app.route(`${UI_BASE}/`, ui);
};

