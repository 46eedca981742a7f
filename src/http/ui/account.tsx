// The signed-in account's own page: change one's password (the current password and a code from
// the authenticator app, the new one twice). Every role may use it; the other sessions of the
// account end, this one stays.

import { getCookie } from "hono/cookie";
import { ADMIN_PASSWORD_MIN, changeAdminPassword } from "../../admin/admin-accounts.ts";
import { isDirectoryAccount } from "../../admin/admin-directory.ts";
import type { HttpDeps } from "../types.ts";
import { post, seeOther, text, uiLockout, type UiApp } from "./common.tsx";
import { Csrf, Field, FormAlert, formError, Page, utc, type FormError } from "./layout.tsx";
import { sessionCookieName, tokenHash, uiAdminContext, UI_BASE, type UiContext } from "./session.ts";

export function accountRoutes(app: UiApp, deps: HttpDeps): void {
  function accountPage(c: UiContext, { error, refused }: { error?: FormError; refused?: boolean } = {}) {
    const { account, session } = c.get("ui");
    if (error || refused) c.status(400);
    return c.html(
      <Page title="Your account" account={account} csrf={session.csrf} current="/account">
        {c.req.query("done") === "password" ? (
          <p class="notice" role="status" id="notice">
            Password changed. Your other sessions have ended; this one goes on.
          </p>
        ) : null}
        <div class="card">
          <dl class="context" id="account-details">
            <dt>Account</dt>
            <dd>{account.name}</dd>
            <dt>Role</dt>
            <dd>{account.role}</dd>
            <dt>Signed in</dt>
            <dd>{utc(session.createdAt)}</dd>
          </dl>
        </div>
        {isDirectoryAccount(account) ? (
          <div class="card">
            <h2 id="change-password">Your password</h2>
            <p id="directory-password">
              You signed in with your directory account: your password is the directory's, and is changed there (or at the password-reset portal), not here. Your role comes from your directory groups
              and is checked again at every sign-in.
            </p>
          </div>
        ) : (
          <div class="card">
            <h2 id="change-password">Change your password</h2>
            <form method="post" action={`${UI_BASE}/account/password`} aria-labelledby="change-password">
              <Csrf token={session.csrf} />
              {refused ? (
                <p class="alert" role="alert" id="password-refused">
                  The current password or code is not right, or too many attempts were made. Nothing was changed.
                </p>
              ) : null}
              <FormAlert error={error} />
              {/* The account name lets password managers file the new password under the right entry. */}
              <input type="text" name="username" value={account.name} autocomplete="username" hidden readonly />
              <Field name="current" label="Current password" type="password" autocomplete="current-password" error={error} required />
              <Field name="code" label="Code from your authenticator app" autocomplete="one-time-code" inputmode="numeric" error={error} required hint="A code not used to sign in: wait for the next one if you just signed in." />
              <Field name="password" label="New password" type="password" autocomplete="new-password" error={error} required hint={`At least ${ADMIN_PASSWORD_MIN} characters.`} />
              <Field name="again" label="New password again" type="password" autocomplete="new-password" error={error} required />
              <button type="submit" class="primary" id="change-password-submit">
                Change password
              </button>
            </form>
          </div>
        )}
      </Page>,
    );
  }

  app.get("/account", (c) => accountPage(c));

  post(app, deps, "/account/password", "operator", async (c, form) => {
    const { account } = c.get("ui");
    const client = c.get("clientIp");
    // A directory account has no local password to change (its name cannot pass the check anyway).
    if (isDirectoryAccount(account)) return accountPage(c, { refused: true });
    const cookie = getCookie(c, sessionCookieName(deps));
    try {
      const result = await changeAdminPassword(
        uiAdminContext(deps, c),
        { lockout: uiLockout(deps.config), window: deps.config.otp.window },
        {
          name: account.name,
          current: text(form, "current"),
          code: text(form, "code"),
          password: text(form, "password"),
          again: text(form, "again"),
          source: `ui:${client}`,
          ...(cookie ? { keepSession: tokenHash(cookie) } : {}),
        },
      );
      if (!result.ok) {
        deps.audit({ type: "ui.password_change_failed", account: account.name, reason: result.reason, client });
        return accountPage(c, { refused: true });
      }
      return seeOther(c, `${UI_BASE}/account?done=password`);
    } catch (err) {
      const error = formError(err);
      if (!error) throw err;
      return accountPage(c, { error });
    }
  });
}
