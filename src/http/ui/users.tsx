// Users: search, show (type, phone, lockout, tokens, devices, pending approvals), create, change,
// unlock (operators too), remove, and an approver-app enrolment link.

import { ldapProfiles } from "../../config/index.ts";
import { addUser, listUsers, removeUser, showUser, unlockUser, updateUser, type UserListItem } from "../../admin/users.ts";
import { deleteDevice, enrolDevice, listDevices } from "../../admin/devices.ts";
import { LEAST_ROLE } from "../../admin/audit.ts";
import { testableClients, testUserLogin, type RadiusTestResult } from "../../admin/radius-test.ts";
import { RADIUS_TEST_OUTCOME } from "./clients.tsx";
import { AUTH_TYPES } from "../../domain/auth-types.ts";
import type { HttpDeps } from "../types.ts";
import { optional, post, seeOther, text, type Form, type UiApp } from "./common.tsx";
import { ActionButton, Csrf, Field, FormAlert, formError, Page, Select, utc, type FormError } from "./layout.tsx";
import { may, uiAdminContext, UI_BASE, type UiContext } from "./session.ts";

const NOTICES: Record<string, string> = {
  added: "User added.",
  updated: "User changed.",
  unlocked: "Lockout counters cleared.",
  clean: "The user had no failures recorded.",
  removed: "User removed (their tokens are kept, unassigned).",
  device: "Device removed.",
};

function matches(u: UserListItem, q: string): boolean {
  const needle = q.toLowerCase();
  return [u.username, u.phone ?? "", u.email ?? "", u.directory ?? ""].some((x) => x.toLowerCase().includes(needle));
}

export function userRoutes(app: UiApp, deps: HttpDeps): void {
  const typeOptions: Array<[string, string]> = AUTH_TYPES.map((t, i) => [t, `${t} (${i + 1})`]);

  async function listPage(c: UiContext, { error, values = {} }: { error?: FormError; values?: Form } = {}) {
    const { account, session } = c.get("ui");
    const q = (c.req.query("q") ?? "").trim().slice(0, 100);
    const all = await listUsers(deps);
    const rows = q ? all.filter((u) => matches(u, q)) : all;
    const shown = rows.slice(0, 500);
    const directories: Array<[string, string]> = [["", "local"], ...ldapProfiles(deps.config).map((p): [string, string] => [p.name, `${p.name} (directory)`])];
    const notice = c.req.query("done");
    if (error) c.status(400);
    return c.html(
      <Page title="Users" account={account} csrf={session.csrf} current="/users">
        {notice && NOTICES[notice] ? (
          <p class="notice" role="status">
            {NOTICES[notice]}
          </p>
        ) : null}
        <div class="card">
          <form method="get" action={`${UI_BASE}/users`} role="search">
            <Field name="q" label="Search by name, phone, e-mail or directory" type="search" value={q} />
            <button type="submit" class="secondary">
              Search
            </button>
          </form>
          <p class="muted">
            {rows.length} of {all.length} users{rows.length > shown.length ? `; the first ${shown.length} are shown` : ""}.
          </p>
          <div class="table-wrap" tabindex={0}>
            <table id="users">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Directory</th>
                  <th scope="col">Type</th>
                  <th scope="col">Phone</th>
                  <th scope="col">Tokens</th>
                  <th scope="col">Status</th>
                </tr>
              </thead>
              <tbody>
                {shown.map((u) => (
                  <tr>
                    <td>
                      <a href={`${UI_BASE}/users/${encodeURIComponent(u.username)}`}>{u.username}</a>
                    </td>
                    <td>{u.directory ?? "local"}</td>
                    <td>{u.type ?? "(directory)"}</td>
                    <td>{u.phone ?? "-"}</td>
                    <td>{String(u.tokens)}</td>
                    <td>{u.disabled ? "disabled" : "enabled"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </div>
        {may(c, "admin") ? (
          <div class="card">
            <h2 id="add-user">Add a user</h2>
            <form method="post" action={`${UI_BASE}/users`} aria-labelledby="add-user">
              <Csrf token={session.csrf} />
              <FormAlert error={error} />
              <div class="row">
                <Field name="username" label="Username" value={text(values, "username")} error={error} required />
                <Select name="directory" label="Directory" options={directories} value={text(values, "directory")} error={error} />
              </div>
              <div class="row">
                <Select name="type" label="Authentication type" options={[["", "default"], ...typeOptions]} value={text(values, "type")} error={error} />
                <Field name="password" label="Password (local users)" type="password" autocomplete="new-password" error={error} />
              </div>
              <div class="row">
                <Field name="phone" label="Phone" type="tel" value={text(values, "phone")} error={error} hint="E.164 (+46701234567), or local form when a region is set" />
                <Field name="email" label="E-mail" type="email" value={text(values, "email")} error={error} />
              </div>
              <button type="submit" class="primary" id="add-user-submit">
                Add user
              </button>
            </form>
          </div>
        ) : null}
      </Page>,
    );
  }

  app.get("/users", (c) => listPage(c));

  post(app, deps, "/users", "admin", async (c, form) => {
    try {
      const user = await addUser(uiAdminContext(deps, c), {
        username: text(form, "username"),
        ...(optional(form, "directory") ? { directory: optional(form, "directory")! } : {}),
        ...(text(form, "password") !== "" ? { password: text(form, "password") } : {}),
        ...(optional(form, "phone") ? { phone: optional(form, "phone")! } : {}),
        ...(optional(form, "email") ? { email: optional(form, "email")! } : {}),
        ...(optional(form, "type") ? { type: optional(form, "type")! } : {}),
      });
      return seeOther(c, `${UI_BASE}/users/${encodeURIComponent(user.username)}?done=added`);
    } catch (err) {
      const error = formError(err);
      if (!error) throw err;
      return listPage(c, { error, values: form });
    }
  });

  /** The result of a test login, and what its second leg needs. */
  interface LoginTest {
    client: string;
    result?: RadiusTestResult;
    error?: FormError;
  }

  async function showPage(c: UiContext, { error, link, test }: { error?: FormError; link?: { url: string; expires: number }; test?: LoginTest } = {}) {
    const { account, session } = c.get("ui");
    const { user, view } = await showUser(deps, c.req.param("name") ?? "");
    const devices = await listDevices(deps.store, { user });
    const testable = may(c, "admin") ? await testableClients(deps, deps.radiusListeners ?? []) : [];
    const base = `${UI_BASE}/users/${encodeURIComponent(view.username)}`;
    const notice = c.req.query("done");
    const linked = view.directory !== null;
    const lock = (l: { failures: number; lockedUntil: string | null }) => `${l.failures} failure${l.failures === 1 ? "" : "s"}${l.lockedUntil ? `, unknown sources refused until ${utc(l.lockedUntil)}` : ""}`;
    if (error || test?.error) c.status(400);
    const second = test?.result?.outcome === "challenge" && test.result.state ? test.result.state : undefined;
    return c.html(
      <Page title={`User ${view.username}`} account={account} csrf={session.csrf} current="/users">
        {notice && NOTICES[notice] ? (
          <p class="notice" role="status" id="notice">
            {NOTICES[notice]}
          </p>
        ) : null}
        <div class="card">
          <dl class="context" id="user-details">
            <dt>Directory</dt>
            <dd>{view.directory ?? "local"}</dd>
            <dt>Type</dt>
            <dd>{view.type === null ? "from the directory" : `${view.type} (${view.typeNumber})`}</dd>
            <dt>Phone</dt>
            <dd>{view.phone ?? (linked ? "from the directory" : "-")}</dd>
            <dt>E-mail</dt>
            <dd>{view.email ?? "-"}</dd>
            <dt>Password</dt>
            <dd>{linked ? "checked by the directory" : view.password}</dd>
            <dt>Status</dt>
            <dd id="user-status">
              {view.disabled ? "disabled" : "enabled"}
              {view.expiresAt ? `, expires ${utc(view.expiresAt)}` : ""}
            </dd>
            <dt>Created</dt>
            <dd>{utc(view.createdAt)}</dd>
          </dl>
        </div>
        <div class="card">
          <h2>Lockout</h2>
          <p id="lockout">
            Password: {lock(view.lockout.password)}. Code: {lock(view.lockout.code)}.
          </p>
          {view.lockout.sources.length > 0 ? (
            <ul id="lockout-sources">
              {view.lockout.sources.map((s) => (
                <li>
                  {s.source}: {s.kind} {String(s.failures)} failures{s.lockedUntil ? `, backing off until ${utc(s.lockedUntil)}` : ""}
                </li>
              ))}
            </ul>
          ) : null}
          <ActionButton action={`${base}/unlock`} csrf={session.csrf} text="Unlock" id="unlock" kind="primary" />
        </div>
        <div class="card">
          <h2>Tokens</h2>
          {view.tokens.length === 0 ? (
            <p id="no-tokens">No tokens.</p>
          ) : (
            <ul id="user-tokens">
              {view.tokens.map((t) => (
                <li>
                  {t.serial} ({t.kind}, {t.state}, {String(t.digits)} digits)
                </li>
              ))}
            </ul>
          )}
          {may(c, "admin") ? <a href={`${UI_BASE}/tokens?user=${encodeURIComponent(view.username)}#enrol`}>Enrol a token for {view.username}</a> : null}
        </div>
        <div class="card">
          <h2>Approver app devices</h2>
          {devices.length === 0 ? (
            <p>No devices.</p>
          ) : (
            <ul id="user-devices">
              {devices.map((d) => (
                <li>
                  {d.name} (since {utc(d.createdAt)}
                  {d.push ? `, push through ${d.push}` : ", no push"}){" "}
                  {may(c, "admin") ? <ActionButton action={`${base}/devices/${encodeURIComponent(d.id)}/remove`} csrf={session.csrf} text={`Remove ${d.name}`} kind="danger" /> : null}
                </li>
              ))}
            </ul>
          )}
          {link ? (
            <p class="notice" role="status">
              Enrolment link (single-use, until {utc(link.expires)}): <code id="device-link">{link.url}</code>
            </p>
          ) : null}
          {may(c, "admin") ? <ActionButton action={`${base}/device`} csrf={session.csrf} text="Make an enrolment link" id="device-enrol" /> : null}
        </div>
        {may(c, "admin") ? (
          <div class="card">
            <h2 id="test-login">Test a login</h2>
            <p class="muted">
              A real login through this appliance's RADIUS listener, sent from the loopback address with the chosen client's shared secret, as its NAS would. It counts like any login (lockout, log, audit); the password and code are not kept.
            </p>
            {test?.result ? (
              <p class={test.result.outcome === "accept" ? "notice" : "alert"} role="status" id="login-test-result">
                {RADIUS_TEST_OUTCOME[test.result.outcome]}
                {test.result.message ? ` Reply-Message: "${test.result.message}"` : ""}
              </p>
            ) : null}
            {testable.length === 0 ? (
              <p class="alert" id="login-test-unavailable">
                No RADIUS client can be tested from this appliance: the server picks a client by the packet's source address, and no client's network holds the loopback address. Add one (for example 127.0.0.1) or test from a NAS.
              </p>
            ) : (
              <form method="post" action={`${base}/test`} aria-labelledby="test-login">
                <Csrf token={session.csrf} />
                <FormAlert error={test?.error} />
                {second ? (
                  <>
                    <input type="hidden" name="state" value={second} />
                    <input type="hidden" name="client" value={test!.client} />
                    <p>Through client {test!.client}.</p>
                    <Field name="secret" label="Code (second leg)" autocomplete="one-time-code" error={test?.error} required />
                  </>
                ) : (
                  <>
                    <Select name="client" label="Through RADIUS client" options={testable.map((n): [string, string] => [n, n])} value={test?.client} error={test?.error} />
                    <Field name="secret" label="Password (or password and code, for a concat client)" type="password" autocomplete="off" error={test?.error} />
                  </>
                )}
                <button type="submit" class="secondary" id="login-test-submit">
                  {second ? "Send the code" : "Test the login"}
                </button>
              </form>
            )}
          </div>
        ) : null}
        {view.pendingApprovals.length > 0 ? (
          <div class="card">
            <h2>Pending approvals</h2>
            <ul>
              {view.pendingApprovals.map((a) => (
                <li>
                  {a.kind} from {a.client}
                  {a.source ? ` (${a.source})` : ""}, until {utc(a.expiresAt)}
                </li>
              ))}
            </ul>
          </div>
        ) : null}
        {may(c, "admin") ? (
          <div class="card">
            <h2 id="change-user">Change</h2>
            <form method="post" action={`${base}/update`} aria-labelledby="change-user">
              <Csrf token={session.csrf} />
              <FormAlert error={error} />
              <div class="row">
                <Select name="type" label="Authentication type" options={[["", linked ? "from the directory" : "unchanged"], ...AUTH_TYPES.map((t, i): [string, string] => [t, `${t} (${i + 1})`])]} value={view.type ?? ""} error={error} />
                <Field name="phone" label="Phone (empty clears)" type="tel" value={view.phone ?? ""} error={error} />
              </div>
              <div class="row">
                <Field name="email" label="E-mail (empty clears)" type="email" value={view.email ?? ""} error={error} />
                {linked ? null : <Field name="password" label="New password (empty keeps it)" type="password" autocomplete="new-password" error={error} />}
              </div>
              <Select name="status" label="Status" options={[["enabled", "enabled"], ["disabled", "disabled"]]} value={view.disabled ? "disabled" : "enabled"} error={error} />
              <button type="submit" class="primary" id="update-user">
                Save
              </button>
            </form>
            <ActionButton action={`${base}/remove`} csrf={session.csrf} text={`Remove ${view.username}`} id="remove-user" kind="danger" />
          </div>
        ) : null}
      </Page>,
    );
  }

  app.get("/users/:name", (c) => showPage(c));

  // Operators may unlock: read-only plus unlock.
  post(app, deps, "/users/:name/unlock", LEAST_ROLE.unlock, async (c) => {
    const { username, cleared } = await unlockUser(uiAdminContext(deps, c), c.req.param("name") ?? "");
    return seeOther(c, `${UI_BASE}/users/${encodeURIComponent(username)}?done=${cleared ? "unlocked" : "clean"}`);
  });

  post(app, deps, "/users/:name/update", "admin", async (c, form) => {
    const name = c.req.param("name") ?? "";
    try {
      const { view } = await showUser(deps, name);
      const patch: Parameters<typeof updateUser>[2] = {};
      const type = optional(form, "type") ?? null;
      if (type !== (view.type ?? null)) patch.type = type;
      const phone = optional(form, "phone") ?? null;
      if (phone !== view.phone) patch.phone = phone;
      const email = optional(form, "email") ?? null;
      if (email !== view.email) patch.email = email;
      if (text(form, "password") !== "") patch.password = text(form, "password");
      const disabled = text(form, "status") === "disabled";
      if (disabled !== view.disabled) patch.disabled = disabled;
      const user = await updateUser(uiAdminContext(deps, c), name, patch);
      return seeOther(c, `${UI_BASE}/users/${encodeURIComponent(user.username)}?done=updated`);
    } catch (err) {
      const error = formError(err);
      if (!error) throw err;
      return showPage(c, { error });
    }
  });

  post(app, deps, "/users/:name/test", "admin", async (c, form) => {
    const client = text(form, "client");
    try {
      const result = await testUserLogin(uiAdminContext(deps, c), {
        client,
        user: c.req.param("name") ?? "",
        password: text(form, "secret"),
        ...(optional(form, "state") ? { state: optional(form, "state")! } : {}),
        listeners: deps.radiusListeners ?? [],
      });
      return showPage(c, { test: { client, result } });
    } catch (err) {
      const error = formError(err);
      if (!error) throw err;
      // The operation's fields as this form names them: the password is `secret`, the client's `name` is `client`.
      const field = error.field === "password" ? "secret" : error.field === "name" ? "client" : "";
      return showPage(c, { test: { client, error: { field, message: field === "" && error.field !== "" ? "This login cannot be tested." : error.message } } });
    }
  });

  post(app, deps, "/users/:name/remove", "admin", async (c) => {
    await removeUser(uiAdminContext(deps, c), c.req.param("name") ?? "");
    return seeOther(c, `${UI_BASE}/users?done=removed`);
  });

  post(app, deps, "/users/:name/devices/:id/remove", "admin", async (c) => {
    const ctx = uiAdminContext(deps, c);
    const { user } = await showUser(deps, c.req.param("name") ?? "");
    // Only a device of the user whose page this is.
    const devices = await listDevices(deps.store, { user });
    const id = c.req.param("id") ?? "";
    if (!devices.some((d) => d.id === id)) return seeOther(c, `${UI_BASE}/users/${encodeURIComponent(user.username)}`);
    await deleteDevice(ctx, id);
    return seeOther(c, `${UI_BASE}/users/${encodeURIComponent(user.username)}?done=device`);
  });

  post(app, deps, "/users/:name/device", "admin", async (c) => {
    const { link, expiresAt } = await enrolDevice(uiAdminContext(deps, c), c.req.param("name") ?? "");
    return showPage(c, { link: { url: link, expires: expiresAt } });
  });
}
