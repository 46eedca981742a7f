// Sessions of the admin web UI: the cookie, the session row in the store, the idle and absolute
// timeouts, the CSRF synchroniser token, the role check, and the audit port that names the actor
// `ui:<account>`.
//
// - The cookie holds 32 random bytes (base64url); the store keeps only their SHA-256, so a copy of
//   the database signs nobody in. HttpOnly, SameSite=Strict, Path=/ui; `Secure` with the `__Host-`
//   name prefix when the listener speaks TLS or `[admin_ui] secure_cookie` says a TLS proxy fronts it.
// - Each session has its own random CSRF token; every POST form carries it and a POST without the
//   exact value (compared in constant time) is refused before anything else is read. The sign-in
//   form, made before any session exists, is protected by a double-submit token in a short-lived
//   cookie of its own.
// - A session ends `idle_timeout_s` after its last request and `session_lifetime_s` after sign-in.

import { createHash, timingSafeEqual } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import { roleAtLeast, type AdminAudit, type AdminRole } from "../../admin/audit.ts";
import type { AdminContext } from "../../admin/context.ts";
import { directoryAccountName, isDirectoryAccount } from "../../admin/admin-directory.ts";
import { adminAccountsOf, type AdminAccount, type AdminSession } from "../../store/types.ts";
import type { HttpDeps, HttpEnv } from "../types.ts";

export const UI_BASE = "/ui";

/** What the session middleware hands every page. */
export interface UiState {
  account: AdminAccount;
  session: AdminSession;
}

export type UiContext = Context<HttpEnv & { Variables: { ui: UiState } }>;

function secureCookies(deps: HttpDeps): boolean {
  return deps.tls || deps.config.admin_ui.secure_cookie;
}

/** The session cookie's name: `__Host-` prefixed where the cookie is Secure. */
export function sessionCookieName(deps: HttpDeps): string {
  return secureCookies(deps) ? "__Host-portcullis-ui" : "portcullis-ui";
}

/** The sign-in form's double-submit cookie. */
export function signInCookieName(deps: HttpDeps): string {
  return secureCookies(deps) ? "__Host-portcullis-ui-signin" : "portcullis-ui-signin";
}

function cookieOptions(deps: HttpDeps, maxAge?: number) {
  const secure = secureCookies(deps);
  // `__Host-` requires Path=/ and no Domain; without it the cookie is scoped to the UI's path.
  return { httpOnly: true, secure, sameSite: "Strict" as const, path: secure ? "/" : UI_BASE, ...(maxAge !== undefined ? { maxAge } : {}) };
}

export function tokenHash(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

export function randomToken(deps: HttpDeps): string {
  return Buffer.from(deps.random(32)).toString("base64url");
}

/** Constant-time equality of two tokens (false when either is missing or the lengths differ). */
export function tokensEqual(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Starts a session for `account`: a new cookie value, its hash and a CSRF token stored. */
export async function startSession(c: Context, deps: HttpDeps, account: AdminAccount): Promise<void> {
  const token = randomToken(deps);
  const now = deps.now();
  const { admin_ui } = deps.config;
  await adminAccountsOf(deps.store).createSession({ tokenHash: tokenHash(token), accountId: account.id, csrf: randomToken(deps), createdAt: now, lastSeenAt: now, expiresAt: now + admin_ui.session_lifetime_s * 1000 });
  setCookie(c, sessionCookieName(deps), token, cookieOptions(deps, admin_ui.session_lifetime_s));
}

/** Ends the request's session (if any) and clears the cookie. */
export async function endSession(c: Context, deps: HttpDeps): Promise<void> {
  const token = getCookie(c, sessionCookieName(deps));
  if (token) await adminAccountsOf(deps.store).deleteSession(tokenHash(token));
  setCookie(c, sessionCookieName(deps), "", cookieOptions(deps, 0));
}

/** A new double-submit token for the sign-in form, set as its cookie (10 minutes). */
export function signInToken(c: Context, deps: HttpDeps): string {
  const token = randomToken(deps);
  setCookie(c, signInCookieName(deps), token, cookieOptions(deps, 600));
  return token;
}

export function signInTokenValid(c: Context, deps: HttpDeps, presented: string | undefined): boolean {
  return tokensEqual(getCookie(c, signInCookieName(deps)), presented);
}

/**
 * Requires a live session: otherwise a redirect to the sign-in page (`?ended=idle|expired` when a
 * session just timed out). Moves the session's idle clock. Sets `ui`.
 */
export function requireSession(deps: HttpDeps): MiddlewareHandler<HttpEnv & { Variables: { ui: UiState } }> {
  return async function uiSession(c, next) {
    const token = getCookie(c, sessionCookieName(deps));
    const repo = adminAccountsOf(deps.store);
    const signIn = (ended?: string) => c.redirect(`${UI_BASE}/sign-in${ended ? `?ended=${ended}` : ""}`, 303);
    if (!token) return signIn();
    const hash = tokenHash(token);
    const session = await repo.getSession(hash);
    if (!session) return signIn();
    const now = deps.now();
    const idle = now - session.lastSeenAt >= deps.config.admin_ui.idle_timeout_s * 1000;
    const expired = now >= session.expiresAt;
    const found = await repo.getById(session.accountId);
    // A directory user's session ends once `[admin_ui] ldap_profile` no longer names its profile.
    const profile = deps.config.admin_ui.ldap_profile;
    const account = found && isDirectoryAccount(found) && (profile === "" || !found.name.startsWith(directoryAccountName(profile, ""))) ? undefined : found;
    if (idle || expired || !account) {
      await repo.deleteSession(hash);
      if (account) deps.audit({ type: "ui.session_ended", account: account.name, reason: expired ? "expired" : "idle" });
      setCookie(c, sessionCookieName(deps), "", cookieOptions(deps, 0));
      return signIn(account ? (expired ? "expired" : "idle") : undefined);
    }
    await repo.touchSession(hash, now);
    c.set("ui", { account, session });
    await next();
  };
}

/**
 * The CSRF check of every POST made in a session: the form's `csrf` must equal the session's
 * token. Called by each POST handler before it reads anything else of the form.
 */
export function csrfValid(c: UiContext, form: Record<string, unknown>): boolean {
  const presented = form.csrf;
  return typeof presented === "string" && tokensEqual(presented, c.get("ui").session.csrf);
}

/** Whether the signed-in account's role is at least `least`. */
export function may(c: UiContext, least: AdminRole): boolean {
  return roleAtLeast(c.get("ui").account.role, least);
}

/** The actor's name in audit events: `ui:<account>`. */
export function uiActorName(account: Pick<AdminAccount, "name">): string {
  return `ui:${account.name}`;
}

/** The audit port of one UI action: events go to the server's bus with `by` = `ui:<account>`. */
export function uiAudit(deps: Pick<HttpDeps, "audit">, account: Pick<AdminAccount, "name" | "role">): AdminAudit {
  const actor = { name: uiActorName(account), role: account.role } as const;
  return {
    actor,
    async change(change, describe) {
      const result = await change();
      const event = describe(result);
      if (event !== null) deps.audit({ ...event, by: actor.name } as Parameters<HttpDeps["audit"]>[0]);
      return result;
    },
    async note(event) {
      deps.audit({ ...event, by: actor.name } as Parameters<HttpDeps["audit"]>[0]);
    },
  };
}

/** The admin operations' context of one UI request. */
export function uiAdminContext(deps: HttpDeps, c: UiContext): AdminContext {
  return { config: deps.config, store: deps.store, audit: uiAudit(deps, c.get("ui").account), now: deps.now, random: deps.random };
}
