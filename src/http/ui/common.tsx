// Shared plumbing of the admin web UI's route modules: the Hono environment, the POST wrapper
// (CSRF first, then the role), the refusal pages and the lockout policy of sign-ins.

import type { Context, Hono } from "hono";
import type { AdminRole } from "../../admin/audit.ts";
import type { LockoutPolicy } from "../../auth/lockout.ts";
import type { Config } from "../../config/index.ts";
import type { HttpDeps, HttpEnv } from "../types.ts";
import { BarePage, Page } from "./layout.tsx";
import { csrfValid, may, type UiContext, type UiState } from "./session.ts";

export type UiEnv = HttpEnv & { Variables: { ui: UiState } };
export type UiApp = Hono<UiEnv>;
export type Form = Record<string, string | File | (string | File)[]>;

/** A form field as text ("" when absent or a file). */
export function text(form: Form, name: string): string {
  const v = form[name];
  return typeof v === "string" ? v : "";
}

/** The text, or undefined when empty (an optional input left blank). */
export function optional(form: Form, name: string): string | undefined {
  const v = text(form, name).trim();
  return v === "" ? undefined : v;
}

/** The 403 page: the role may not do this (also audited). */
export function forbidden(c: UiContext, deps: HttpDeps): Response | Promise<Response> {
  const { account, session } = c.get("ui");
  deps.audit({ type: "ui.refused", account: account.name, reason: "role", path: c.req.path });
  c.status(403);
  return c.html(
    <Page title="Not allowed" account={account} csrf={session.csrf} current="">
      <div class="card">
        <p id="forbidden">Your role ({account.role}) may not do this. Ask an administrator with a higher role.</p>
      </div>
    </Page>,
  );
}

/** The 403 page of a form without the session's CSRF token (also audited). */
function staleForm(c: UiContext, deps: HttpDeps): Response | Promise<Response> {
  const { account } = c.get("ui");
  deps.audit({ type: "ui.refused", account: account.name, reason: "csrf", path: c.req.path });
  c.status(403);
  return c.html(
    <BarePage title="Form refused">
      <h1 id="csrf-refused">This form could not be accepted</h1>
      <p>It did not come from this session's page. Nothing was changed. Go back, reload the page and try again.</p>
    </BarePage>,
  );
}

/**
 * Registers a POST handler: the CSRF token is checked first (a 403 page otherwise, before anything
 * else is done), then the role (`least`).
 */
export function post(app: UiApp, deps: HttpDeps, path: string, least: AdminRole, handler: (c: UiContext, form: Form) => Response | Promise<Response>): void {
  app.post(path, async (c) => {
    const form = (await c.req.parseBody({ all: true })) as Form;
    if (!csrfValid(c, form)) return staleForm(c, deps);
    if (!may(c, least)) return forbidden(c, deps);
    return handler(c, form);
  });
}

/** A GET page that needs more than the operator role. */
export function get(app: UiApp, deps: HttpDeps, path: string, least: AdminRole, handler: (c: UiContext) => Response | Promise<Response>): void {
  app.get(path, async (c) => {
    if (!may(c, least)) return forbidden(c, deps);
    return handler(c);
  });
}

/** The redirect after a successful POST (303: the browser then GETs the page). */
export function seeOther(c: Context, path: string): Response {
  return c.redirect(path, 303);
}

/** The sign-in back-off: the [lockout] policy, on its own counters (admin-ui:<name>). */
export function uiLockout(config: Config): LockoutPolicy {
  const l = config.lockout;
  return {
    passwordThreshold: l.password_threshold,
    codeThreshold: l.code_threshold,
    baseDelayMs: l.base_delay_s * 1000,
    maxDelayMs: l.max_delay_s * 1000,
    resetAfterMs: l.reset_after_s * 1000,
    passwordIdentityCap: l.password_identity_cap,
    codeIdentityCap: l.code_identity_cap,
    knownSourceMs: l.known_source_days * 86_400_000,
    knownSourcesPerUser: l.known_sources_per_user,
  };
}
