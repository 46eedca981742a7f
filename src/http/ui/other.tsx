// Magic Link endpoints and API keys, delivery (log and test message), and LDAP profile diagnosis
// (the audit log is audit.tsx).

import { addApiKey, API_KEY_ROLES, listApiKeys, mayManage, removeApiKey, setApiKeyDisabled } from "../../admin/api-keys.ts";
import { deliveryLog, deliveryTest } from "../../admin/delivery.ts";
import { listEndpoints } from "../../admin/endpoints.ts";
import { ENDPOINT_ERRORS, ENDPOINT_NOTICES } from "./endpoints.tsx";
import { diagnoseProfile } from "../../admin/ldap.ts";
import { ldapProfiles } from "../../config/index.ts";
import type { ApiKeyRole } from "../../store/types.ts";
import type { HttpDeps } from "../types.ts";
import { get, optional, post, seeOther, text, type Form, type UiApp } from "./common.tsx";
import { ActionButton, Csrf, Field, FormAlert, formError, Page, Select, utc, type FormError } from "./layout.tsx";
import { may, uiActorName, uiAdminContext, UI_BASE, type UiContext } from "./session.ts";

export function otherRoutes(app: UiApp, deps: HttpDeps): void {
  // --- Magic Link endpoints and API keys
  async function endpointsPage(c: UiContext, { error, values = {}, minted }: { error?: FormError; values?: Form; minted?: { name: string; key: string } } = {}) {
    const { account, session } = c.get("ui");
    const endpoints = await listEndpoints(deps);
    const { views: keys } = await listApiKeys(deps);
    const roles = API_KEY_ROLES.filter((r) => mayManage(account.role, r));
    const notice = c.req.query("done");
    const endpointError = c.req.query("error");
    if (error) c.status(400);
    return c.html(
      <Page title="Magic Link endpoints and API keys" account={account} csrf={session.csrf} current="/endpoints">
        {notice === "key" ? (
          <p class="notice" role="status">
            API key changed.
          </p>
        ) : notice && ENDPOINT_NOTICES[notice] ? (
          <p class="notice" role="status" id="notice">
            {ENDPOINT_NOTICES[notice]}
          </p>
        ) : null}
        {minted ? (
          <div class="notice" role="status" id="key-minted">
            <p>
              API key {minted.name} (shown once; copy it now): <code id="api-key">{minted.key}</code>
            </p>
          </div>
        ) : null}
        <div class="card">
          <h2>Endpoints</h2>
          <div class="table-wrap" tabindex={0}>
            <table id="endpoints">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Source</th>
                  <th scope="col">Timeout</th>
                  <th scope="col">Known users only</th>
                  <th scope="col">Per number</th>
                  <th scope="col">Channels</th>
                  {may(c, "admin") ? <th scope="col">Actions</th> : null}
                </tr>
              </thead>
              <tbody>
                {endpoints.map((e) => (
                  <tr>
                    <td>{e.name}</td>
                    <td>{e.declaredInConfig ? "configuration file" : "stored"}</td>
                    <td>{String(e.touch_timeout_s)} s</td>
                    <td>{e.require_known_user ? "yes" : "no"}</td>
                    <td>
                      {String(e.per_number_per_minute)}/min, {String(e.per_number_per_hour)}/h
                    </td>
                    <td>{e.channels.length > 0 ? e.channels.join(", ") : "default"}</td>
                    {may(c, "admin") ? <td>{e.declaredInConfig ? "edit the file" : <a href={`${UI_BASE}/endpoints/${encodeURIComponent(e.name)}`}>Edit {e.name}</a>}</td> : null}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <p class="muted">Profiles declared in the configuration file are edited there (the file is written to the store at every start); the others here, with the admin API or with <code>portcullis endpoint set</code>.</p>
        </div>
        {may(c, "admin") ? (
          <div class="card">
            <h2 id="add-endpoint">Add an endpoint</h2>
            <form method="post" action={`${UI_BASE}/endpoints`} aria-labelledby="add-endpoint">
              <Csrf token={session.csrf} />
              {endpointError && ENDPOINT_ERRORS[endpointError] ? (
                <p class="alert" role="alert" id="endpoint-error">
                  {ENDPOINT_ERRORS[endpointError]}
                </p>
              ) : null}
              <Field name="endpointName" label="Endpoint name" required hint="As in /api/sfwa/auth/NAME; it starts with the default texts and limits." />
              <button type="submit" class="primary" id="add-endpoint-submit">
                Add and edit
              </button>
            </form>
          </div>
        ) : null}
        <div class="card">
          <h2>API keys</h2>
          <div class="table-wrap" tabindex={0}>
            <table id="apikeys">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Role</th>
                  <th scope="col">Endpoint</th>
                  <th scope="col">Prefix</th>
                  <th scope="col">Status</th>
                  <th scope="col">Last used</th>
                  {may(c, "admin") ? <th scope="col">Actions</th> : null}
                </tr>
              </thead>
              <tbody>
                {keys.map((k) => (
                  <tr>
                    <td>{k.name}</td>
                    <td>{k.role}</td>
                    <td>{k.endpoint ?? "-"}</td>
                    <td>
                      <code>{k.prefix}</code>
                    </td>
                    <td>
                      {k.status}
                      {k.expiresAt ? ` (until ${utc(k.expiresAt)})` : ""}
                    </td>
                    <td>{utc(k.lastUsedAt)}</td>
                    {may(c, "admin") ? (
                      <td>
                        {mayManage(account.role, k.role) ? (
                          <>
                            <ActionButton action={`${UI_BASE}/apikeys/${encodeURIComponent(k.name)}/state`} csrf={session.csrf} text={k.status === "disabled" ? "Enable" : "Disable"} fields={{ disabled: k.status === "disabled" ? "false" : "true" }} />
                            <ActionButton action={`${UI_BASE}/apikeys/${encodeURIComponent(k.name)}/remove`} csrf={session.csrf} text="Remove" kind="danger" />
                          </>
                        ) : (
                          "root only"
                        )}
                      </td>
                    ) : null}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </div>
        {may(c, "admin") ? (
          <div class="card">
            <h2 id="add-key">Add an API key</h2>
            <form method="post" action={`${UI_BASE}/apikeys`} aria-labelledby="add-key">
              <Csrf token={session.csrf} />
              <FormAlert error={error} />
              <div class="row">
                <Field name="name" label="Name" value={text(values, "name")} error={error} required />
                <Select name="role" label="Role" options={roles.map((r): [string, string] => [r, r])} value={text(values, "role")} error={error} />
              </div>
              <div class="row">
                <Select name="endpoint" label="Endpoint (Magic Link keys)" options={[["", "default"], ...endpoints.map((e): [string, string] => [e.name, e.name])]} value={text(values, "endpoint")} error={error} />
                <Field name="expires" label="Expires (YYYY-MM-DD, optional)" value={text(values, "expires")} error={error} />
              </div>
              <button type="submit" class="primary" id="add-key-submit">
                Add key
              </button>
            </form>
          </div>
        ) : null}
      </Page>,
    );
  }

  app.get("/endpoints", (c) => endpointsPage(c));

  post(app, deps, "/apikeys", "admin", async (c, form) => {
    try {
      const role = text(form, "role") as ApiKeyRole;
      const { key, apiKey } = await addApiKey(uiAdminContext(deps, c), {
        name: text(form, "name").trim(),
        role,
        ...(role === "magiclink" && optional(form, "endpoint") ? { endpoint: optional(form, "endpoint")! } : {}),
        ...(optional(form, "expires") ? { expires: optional(form, "expires")! } : {}),
      });
      return endpointsPage(c, { minted: { name: apiKey.name, key } });
    } catch (err) {
      const error = formError(err);
      if (!error) throw err;
      return endpointsPage(c, { error, values: form });
    }
  });

  post(app, deps, "/apikeys/:name/state", "admin", async (c, form) => {
    await setApiKeyDisabled(uiAdminContext(deps, c), c.req.param("name") ?? "", text(form, "disabled") === "true");
    return seeOther(c, `${UI_BASE}/endpoints?done=key`);
  });

  post(app, deps, "/apikeys/:name/remove", "admin", async (c) => {
    await removeApiKey(uiAdminContext(deps, c), c.req.param("name") ?? "");
    return seeOther(c, `${UI_BASE}/endpoints?done=key`);
  });

  // --- delivery: the log and a test message (admin and root, as the admin API)
  async function deliveryPage(c: UiContext, { error, values = {}, result }: { error?: FormError; values?: Form; result?: string } = {}) {
    const { account, session } = c.get("ui");
    const configured = deps.delivery !== undefined;
    const log = configured ? await deliveryLog(deps.delivery?.log, { limit: 50 }) : [];
    if (error) c.status(400);
    return c.html(
      <Page title="Delivery" account={account} csrf={session.csrf} current="/delivery">
        {result ? (
          <p class="notice" role="status" id="delivery-result">
            {result}
          </p>
        ) : null}
        <div class="card">
          <h2 id="test-sms">Send a test message</h2>
          <p class="muted">A fixed text goes through the configured channels in order (at most 3 a minute per administrator).</p>
          {configured ? (
            <form method="post" action={`${UI_BASE}/delivery/test`} aria-labelledby="test-sms">
              <Csrf token={session.csrf} />
              <FormAlert error={error} />
              <div class="row">
                <Field name="msisdn" label="Phone number" type="tel" value={text(values, "msisdn")} error={error} />
                <Field name="email" label="or e-mail address" type="email" value={text(values, "email")} error={error} />
              </div>
              <button type="submit" class="primary" id="send-test">
                Send test message
              </button>
            </form>
          ) : (
            <p>Delivery is not configured on this node.</p>
          )}
        </div>
        <DeliverySettings config={deps.config} />
        <div class="card">
          <h2>Recent deliveries</h2>
          <div class="table-wrap" tabindex={0}>
            <table id="delivery-log">
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Channel</th>
                  <th scope="col">To</th>
                  <th scope="col">Endpoint</th>
                  <th scope="col">Result</th>
                </tr>
              </thead>
              <tbody>
                {log.map((e) => (
                  <tr>
                    <td>{utc(e.at)}</td>
                    <td>{e.channel ?? "-"}</td>
                    <td>{e.destination}</td>
                    <td>{e.endpoint}</td>
                    <td>
                      {e.result}
                      {e.reason ? ` (${e.reason})` : ""}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </div>
      </Page>,
    );
  }

  get(app, deps, "/delivery", "admin", (c) => deliveryPage(c));

  post(app, deps, "/delivery/test", "admin", async (c, form) => {
    try {
      const r = await deliveryTest(uiAdminContext(deps, c), deps.delivery?.dispatcher, {
        ...(optional(form, "msisdn") ? { msisdn: optional(form, "msisdn")! } : {}),
        ...(optional(form, "email") ? { email: optional(form, "email")! } : {}),
        limitKey: uiActorName(c.get("ui").account),
      });
      return deliveryPage(c, { values: form, result: r.ok ? `Sent through ${r.channel}.` : `Not delivered: ${r.reason ?? "failed"}${r.detail ? ` (${r.detail})` : ""}.` });
    } catch (err) {
      const error = formError(err);
      if (!error) throw err;
      return deliveryPage(c, { error, values: form });
    }
  });

  // --- LDAP profiles and their diagnosis
  async function ldapPage(c: UiContext, { error, values = {}, diagnosis }: { error?: FormError; values?: Form; diagnosis?: Awaited<ReturnType<typeof diagnoseProfile>>["diagnosis"] } = {}) {
    const { account, session } = c.get("ui");
    const profiles = ldapProfiles(deps.config);
    if (error) c.status(400);
    return c.html(
      <Page title="Directories" account={account} csrf={session.csrf} current="/ldap">
        <div class="card">
          <h2>LDAP and Active Directory profiles</h2>
          {profiles.length === 0 ? (
            <p id="no-profiles">No [[ldap]] profile is configured: only local users exist.</p>
          ) : (
            <ul id="profiles">
              {profiles.map((p) => (
                <li>
                  {p.name}: {p.urls.join(", ")} (base {p.baseDN})
                </li>
              ))}
            </ul>
          )}
        </div>
        {profiles.length > 0 && may(c, "admin") ? (
          <div class="card">
            <h2 id="diagnose">Diagnose a profile</h2>
            <form method="post" action={`${UI_BASE}/ldap/test`} aria-labelledby="diagnose">
              <Csrf token={session.csrf} />
              <FormAlert error={error} />
              <div class="row">
                <Select name="profile" label="Profile" options={profiles.map((p): [string, string] => [p.name, p.name])} value={text(values, "profile")} error={error} />
                <Field name="user" label="Look up a user (optional)" value={text(values, "user")} error={error} />
              </div>
              <button type="submit" class="primary" id="diagnose-submit">
                Diagnose
              </button>
            </form>
          </div>
        ) : null}
        {diagnosis ? (
          <div class="card" id="diagnosis">
            <h2>{diagnosis.ok ? "The profile works" : "The profile has problems"}</h2>
            {diagnosis.error ? <p class="alert">{diagnosis.error}</p> : null}
            <ul>
              {diagnosis.urls.map((u) => (
                <li>
                  {u.url} ({u.transport}): {u.reachable ? `reachable${u.connectMs !== null ? ` in ${Math.round(u.connectMs)} ms` : ""}` : `unreachable (${u.error ?? "error"})`}
                  {u.serviceBind ? `; service bind ${u.serviceBind.ok ? "ok" : `failed (${u.serviceBind.error ?? "error"})`}` : ""}
                  {u.tls?.certificate ? `; certificate ${u.tls.certificate.subject}, valid until ${u.tls.certificate.validUntil ?? "?"}` : ""}
                </li>
              ))}
            </ul>
            {diagnosis.user ? (
              <dl class="context">
                <dt>User</dt>
                <dd>{diagnosis.user.found ? (diagnosis.user.dn ?? "found") : `not found${diagnosis.user.error ? ` (${diagnosis.user.error})` : ""}`}</dd>
                <dt>Type</dt>
                <dd>{diagnosis.user.type ?? "-"}</dd>
                <dt>Phone</dt>
                <dd>{diagnosis.user.phone ?? "-"}</dd>
                <dt>Status</dt>
                <dd>{diagnosis.user.status ?? "-"}</dd>
                <dt>Would be let in</dt>
                <dd>{diagnosis.user.refused ? "no" : "yes"}</dd>
              </dl>
            ) : null}
          </div>
        ) : null}
      </Page>,
    );
  }

  app.get("/ldap", (c) => ldapPage(c));

  post(app, deps, "/ldap/test", "admin", async (c, form) => {
    try {
      const { diagnosis } = await diagnoseProfile(ldapProfiles(deps.config), text(form, "profile"), optional(form, "user"), { audit: uiAdminContext(deps, c).audit });
      return ldapPage(c, { values: form, diagnosis });
    } catch (err) {
      const error = formError(err);
      if (!error) throw err;
      return ldapPage(c, { error, values: form });
    }
  });
}

/** A gateway URL shown by its origin only: a path or query may carry an account ID or a key. */
function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return "(invalid URL)";
  }
}

/**
 * The delivery settings in force, read-only (they are set in the configuration file): channels in
 * the order they are tried and whether each is configured, the limits, the allowed destinations and
 * the SMS code rules. Never a password, token, URL path or query.
 */
function DeliverySettings({ config }: { config: HttpDeps["config"] }) {
  const d = config.delivery;
  const gateways = new Map(d.gateway.map((g) => [g.name, g]));
  const channel = (name: string): string => {
    if (name === "sms") return d.sms.url ? `HTTP gateway ${originOf(d.sms.url)}` : "not configured ([delivery.sms] url is empty)";
    if (name === "email") return d.smtp.host ? `SMTP ${d.smtp.host}:${d.smtp.port}${d.smtp.secure ? ", implicit TLS" : d.smtp.starttls ? ", STARTTLS required" : ", no TLS"}` : "not configured ([delivery.smtp] host is empty)";
    const g = gateways.get(name);
    if (g) return `HTTP gateway ${originOf(g.url)}`;
    return name === "switch" ? "the switch relay's own channels" : "not configured";
  };
  const limit = (n: number) => (n === 0 ? "off" : String(n));
  return (
    <div class="card">
      <h2 id="delivery-settings">Settings</h2>
      <p class="muted">Read-only: the delivery settings are set in the configuration file ([delivery]).</p>
      <div class="table-wrap" tabindex={0}>
        <table id="delivery-channels" aria-labelledby="delivery-settings">
          <thead>
            <tr>
              <th scope="col">Order</th>
              <th scope="col">Channel</th>
              <th scope="col">Goes to</th>
            </tr>
          </thead>
          <tbody>
            {d.channels.map((name, i) => (
              <tr>
                <td>{i + 1}</td>
                <td>{name}</td>
                <td>{channel(name)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <dl id="delivery-limits">
        <dt>Per number or address</dt>
        <dd>
          {limit(d.per_number_per_minute)} in any 60 s, {limit(d.per_number_per_hour)} in any hour
        </dd>
        <dt>Per API key</dt>
        <dd>
          {limit(d.per_key_per_minute)} in any 60 s, {limit(d.per_key_per_hour)} in any hour
        </dd>
        <dt>Whole appliance</dt>
        <dd>
          {limit(d.overall_per_minute)} in any 60 s, {limit(d.overall_per_hour)} in any hour
        </dd>
        <dt>SMS allowed to</dt>
        <dd>
          {d.allowed_countries.length > 0 ? d.allowed_countries.join(", ") : "no country"}
          {d.allowed_prefixes.length > 0 ? `; prefixes ${d.allowed_prefixes.join(", ")}` : ""}
        </dd>
        <dt>SMS codes</dt>
        <dd>
          {d.sms_code_length} characters, {d.sms_code_alphabet}, valid {d.sms_code_lifetime_s} s, {d.sms_code_max_failures} wrong tries
        </dd>
      </dl>
    </div>
  );
}
