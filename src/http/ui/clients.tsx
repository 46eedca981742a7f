// RADIUS clients: list (never the secret), add, remove.

import { addClient, listClients, removeClient, showClient, updateClientPhone } from "../../admin/clients.ts";
import { radiusTestRoute, testRadiusAuthentication, type RadiusTestResult } from "../../admin/radius-test.ts";
import type { HttpDeps } from "../types.ts";
import { forbidden, optional, post, seeOther, text, type Form, type UiApp } from "./common.tsx";
import { ActionButton, Csrf, Field, FormAlert, formError, Page, Select, type FormError } from "./layout.tsx";
import { may, uiAdminContext, UI_BASE, type UiContext } from "./session.ts";

/** What a test authentication's answer means (the clients' and the users' test). */
export const RADIUS_TEST_OUTCOME: Record<RadiusTestResult["outcome"], string> = {
  accept: "Access-Accept: the user would be let in.",
  reject: "Access-Reject: the user would be refused.",
  challenge: "Access-Challenge: the server asks for a code.",
  no_answer: "No answer in time (an approval may still be waiting, or the server dropped the packet).",
};

const NOTICES: Record<string, string> = { removed: "Client removed.", updated: "Phone-factor settings saved." };

export function clientRoutes(app: UiApp, deps: HttpDeps): void {
  async function listPage(c: UiContext, { error, values = {}, added }: { error?: FormError; values?: Form; added?: { name: string; warnings: string[] } } = {}) {
    const { account, session } = c.get("ui");
    const clients = await listClients(deps);
    const notice = c.req.query("done");
    if (error) c.status(400);
    return c.html(
      <Page title="RADIUS clients" account={account} csrf={session.csrf} current="/clients">
        {notice && NOTICES[notice] ? (
          <p class="notice" role="status">
            {NOTICES[notice]}
          </p>
        ) : null}
        {added ? (
          <div class="notice" role="status" id="client-added">
            <p>Client {added.name} added; the server uses it without a restart.</p>
            {added.warnings.map((w) => (
              <p class="alert">{w}</p>
            ))}
          </div>
        ) : null}
        <div class="card">
          <div class="table-wrap" tabindex={0}>
            <table id="clients">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Network</th>
                  <th scope="col">First factor</th>
                  <th scope="col">OTP mode</th>
                  <th scope="col">Message-Authenticator</th>
                  <th scope="col">Approvals</th>
                  {may(c, "admin") ? <th scope="col">Actions</th> : null}
                </tr>
              </thead>
              <tbody>
                {clients.map((cl) => (
                  <tr>
                    <td>
                      <a href={`${UI_BASE}/clients/${encodeURIComponent(cl.name)}`}>{cl.name}</a>
                    </td>
                    <td>
                      {cl.network ?? cl.address}
                      {cl.overlaps.unreachable ? " (unreachable: shadowed)" : ""}
                    </td>
                    <td>{cl.firstFactor}</td>
                    <td>{cl.otpMode}</td>
                    <td>{cl.requireMessageAuthenticator ? "required" : "optional (legacy)"}</td>
                    <td>
                      {cl.approvalMode}, {String(cl.approvalHoldS)} s{cl.approvalNumberMatch ? ", number matching" : ""}
                    </td>
                    {may(c, "admin") ? (
                      <td>
                        <a href={`${UI_BASE}/clients/${encodeURIComponent(cl.name)}/test`}>Test</a>{" "}
                        <ActionButton action={`${UI_BASE}/clients/${encodeURIComponent(cl.name)}/remove`} csrf={session.csrf} text="Remove" kind="danger" />
                      </td>
                    ) : null}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {clients.length === 0 ? <p>No clients yet.</p> : null}
        </div>
        {may(c, "admin") ? (
          <div class="card">
            <h2 id="add-client">Add a client</h2>
            <form method="post" action={`${UI_BASE}/clients`} aria-labelledby="add-client">
              <Csrf token={session.csrf} />
              <FormAlert error={error} />
              <div class="row">
                <Field name="name" label="Name" value={text(values, "name")} error={error} required />
                <Field name="address" label="Address or network" value={text(values, "address")} error={error} required hint="192.0.2.10, 192.0.2.0/24 or 2001:db8::/64" />
              </div>
              <Field name="secret" label="Shared secret" type="password" autocomplete="off" error={error} required hint="At least 16 characters; it is never shown again." />
              <div class="row">
                <Select name="firstFactor" label="First factor" options={[["password", "password"], ["none", "none (code only)"]]} value={text(values, "firstFactor")} error={error} />
                <Select name="otpMode" label="OTP mode" options={[["challenge", "challenge"], ["concat", "concat"]]} value={text(values, "otpMode")} error={error} />
              </div>
              <div class="row">
                <Select name="requireMessageAuthenticator" label="Message-Authenticator" options={[["true", "required"], ["false", "optional (legacy NAS)"]]} value={text(values, "requireMessageAuthenticator")} error={error} />
                <Select name="allowPasswordOnly" label="Users of type password" options={[["false", "refused"], ["true", "allowed"]]} value={text(values, "allowPasswordOnly")} error={error} />
              </div>
              <button type="submit" class="primary" id="add-client-submit">
                Add client
              </button>
            </form>
          </div>
        ) : null}
      </Page>,
    );
  }

  app.get("/clients", (c) => listPage(c));

  post(app, deps, "/clients", "admin", async (c, form) => {
    try {
      const { client, warnings } = await addClient(uiAdminContext(deps, c), {
        name: text(form, "name").trim(),
        address: text(form, "address"),
        secret: text(form, "secret"),
        ...(optional(form, "firstFactor") ? { firstFactor: optional(form, "firstFactor")! } : {}),
        ...(optional(form, "otpMode") ? { otpMode: optional(form, "otpMode")! } : {}),
        requireMessageAuthenticator: text(form, "requireMessageAuthenticator") !== "false",
        allowPasswordOnly: text(form, "allowPasswordOnly") === "true",
      });
      return listPage(c, { added: { name: client.name, warnings } });
    } catch (err) {
      const error = formError(err);
      if (!error) throw err;
      const { secret: _secret, ...values } = form;
      return listPage(c, { error, values });
    }
  });

  async function testPage(c: UiContext, { error, values = {}, result }: { error?: FormError; values?: Form; result?: RadiusTestResult } = {}) {
    const { account, session } = c.get("ui");
    const name = c.req.param("name") ?? "";
    const route = await radiusTestRoute(deps, name, deps.radiusListeners ?? []);
    const action = `${UI_BASE}/clients/${encodeURIComponent(name)}/test`;
    if (error) c.status(400);
    return c.html(
      <Page title={`Test authentication: ${name}`} account={account} csrf={session.csrf} current="/clients">
        <div class="card">
          <p class="muted">
            Sends a real Access-Request to this appliance's RADIUS listener from the loopback address with this client's shared secret, as the NAS would. It counts like any login (lockout, audit).
          </p>
          {result ? (
            <p class={result.outcome === "accept" ? "notice" : "alert"} role="status" id="test-result">
              {RADIUS_TEST_OUTCOME[result.outcome]}
              {result.message ? ` Reply-Message: "${result.message}"` : ""}
            </p>
          ) : null}
          {!route.ok ? (
            <p class="alert" id="not-testable">
              {route.reason}
            </p>
          ) : (
            <form method="post" action={action} aria-label="Test authentication">
              <Csrf token={session.csrf} />
              <FormAlert error={error} />
              {result?.outcome === "challenge" && result.state ? (
                <>
                  <input type="hidden" name="state" value={result.state} />
                  <input type="hidden" name="user" value={text(values, "user")} />
                  <Field name="password" label="Code (second leg)" autocomplete="one-time-code" error={error} required />
                </>
              ) : (
                <>
                  <Field name="user" label="User-Name" value={text(values, "user")} error={error} required />
                  <Field name="password" label="User-Password (password, or password and code for concat)" type="password" autocomplete="off" error={error} />
                </>
              )}
              <button type="submit" class="primary" id="test-submit">
                Send Access-Request
              </button>
            </form>
          )}
        </div>
      </Page>,
    );
  }

  async function showPage(c: UiContext, { error, values }: { error?: FormError; values?: Form } = {}) {
    const { account, session } = c.get("ui");
    const cl = await showClient(deps, c.req.param("name") ?? "");
    const v = (name: string, current: string) => (values ? text(values, name) : current);
    const notice = c.req.query("done");
    if (error) c.status(400);
    return c.html(
      <Page title={`RADIUS client ${cl.name}`} account={account} csrf={session.csrf} current="/clients">
        {notice && NOTICES[notice] ? (
          <p class="notice" role="status" id="notice">
            {NOTICES[notice]}
          </p>
        ) : null}
        <div class="card">
          <dl class="context" id="client-details">
            <dt>Network</dt>
            <dd>{cl.network ?? cl.address}</dd>
            <dt>First factor</dt>
            <dd>{cl.firstFactor}</dd>
            <dt>OTP mode</dt>
            <dd>{cl.otpMode}</dd>
            <dt>Message-Authenticator</dt>
            <dd>{cl.requireMessageAuthenticator ? "required" : "optional (legacy)"}</dd>
            <dt>Type password</dt>
            <dd>{cl.allowPasswordOnly ? "allowed" : "refused"}</dd>
            <dt>Directories</dt>
            <dd>{cl.directories === null ? "every profile, then local" : cl.directories.join(", ")}</dd>
            <dt>Overlaps</dt>
            <dd>
              {cl.overlaps.shadowedBy.length > 0 ? `narrower clients win for some addresses: ${cl.overlaps.shadowedBy.join(", ")}` : "none"}
              {cl.overlaps.unreachable ? "; unreachable" : ""}
            </dd>
          </dl>
          {may(c, "admin") ? <a href={`${UI_BASE}/clients/${encodeURIComponent(cl.name)}/test`}>Test authentication</a> : null}
        </div>
        {may(c, "admin") ? (
          <div class="card">
            <h2 id="phone-settings">Phone factors</h2>
            <form method="post" action={`${UI_BASE}/clients/${encodeURIComponent(cl.name)}/phone`} aria-labelledby="phone-settings">
              <Csrf token={session.csrf} />
              <FormAlert error={error} />
              <div class="row">
                <Field name="approvalHoldS" label="Approval hold (seconds, 5-120)" inputmode="numeric" value={v("approvalHoldS", String(cl.approvalHoldS))} error={error} />
                <Select name="approvalMode" label="Approval mode" options={[["hold", "hold (the request waits)"], ["challenge", "challenge (answered at once)"]]} value={v("approvalMode", cl.approvalMode)} error={error} />
              </div>
              <div class="row">
                <Select name="approvalNumberMatch" label="Number matching" options={[["false", "off"], ["true", "on (challenge mode)"]]} value={v("approvalNumberMatch", String(cl.approvalNumberMatch))} error={error} />
                <Field name="smsCodeLength" label="SMS code length (4-12, empty: default)" inputmode="numeric" value={v("smsCodeLength", cl.smsCodeLength === null ? "" : String(cl.smsCodeLength))} error={error} />
                <Select name="smsCodeAlphabet" label="SMS code alphabet" options={[["", "default"], ["numeric", "numeric"], ["alphabetic", "alphabetic"], ["alphanumeric", "alphanumeric"]]} value={v("smsCodeAlphabet", cl.smsCodeAlphabet ?? "")} error={error} />
              </div>
              <button type="submit" class="primary" id="phone-submit">
                Save
              </button>
            </form>
          </div>
        ) : null}
      </Page>,
    );
  }

  app.get("/clients/:name", (c) => showPage(c));

  post(app, deps, "/clients/:name/phone", "admin", async (c, form) => {
    const name = c.req.param("name") ?? "";
    const int = (field: string) => {
      const raw = text(form, field).trim();
      return raw === "" ? null : /^\d{1,4}$/.test(raw) ? Number(raw) : NaN;
    };
    try {
      const hold = int("approvalHoldS");
      await updateClientPhone(uiAdminContext(deps, c), name, {
        ...(hold !== null ? { approvalHoldS: hold } : {}),
        approvalMode: text(form, "approvalMode") === "challenge" ? "challenge" : "hold",
        approvalNumberMatch: text(form, "approvalNumberMatch") === "true",
        smsCodeLength: int("smsCodeLength"),
        smsCodeAlphabet: (optional(form, "smsCodeAlphabet") ?? null) as "numeric" | "alphabetic" | "alphanumeric" | null,
      });
      return seeOther(c, `${UI_BASE}/clients/${encodeURIComponent(name)}?done=updated`);
    } catch (err) {
      const error = formError(err);
      if (!error) throw err;
      return showPage(c, { error, values: form });
    }
  });

  app.get("/clients/:name/test", async (c) => {
    if (!may(c, "admin")) return forbidden(c, deps);
    return testPage(c);
  });

  post(app, deps, "/clients/:name/test", "admin", async (c, form) => {
    try {
      const result = await testRadiusAuthentication(uiAdminContext(deps, c), {
        client: c.req.param("name") ?? "",
        user: text(form, "user"),
        password: text(form, "password"),
        ...(optional(form, "state") ? { state: optional(form, "state")! } : {}),
        listeners: deps.radiusListeners ?? [],
      });
      return testPage(c, { values: { user: text(form, "user") }, result });
    } catch (err) {
      const error = formError(err);
      if (!error) throw err;
      return testPage(c, { error, values: { user: text(form, "user") } });
    }
  });

  post(app, deps, "/clients/:name/remove", "admin", async (c) => {
    await removeClient(uiAdminContext(deps, c), c.req.param("name") ?? "");
    return seeOther(c, `${UI_BASE}/clients?done=removed`);
  });
}
