// Magic Link endpoint profiles: add a stored profile, edit one (every `[[endpoint]]` key, checked
// by the file's rules), remove one. Profiles the configuration file declares are shown, not edited:
// `serve` rewrites them from the file at every start.

import { defaultEndpointTable, putEndpoint, removeEndpoint, showEndpoint, updateEndpoint, type EndpointView } from "../../admin/endpoints.ts";
import { CONFIG_TABLE_ARRAYS } from "../../config/fields.ts";
import { DEFAULT_ENDPOINT } from "../../store/types.ts";
import type { HttpDeps } from "../types.ts";
import { get, post, seeOther, text, type Form, type UiApp } from "./common.tsx";
import { ActionButton, Csrf, Field, FormAlert, formError, Page, Select, type FormError } from "./layout.tsx";
import { uiAdminContext, UI_BASE, type UiContext } from "./session.ts";

/** The form's fields: each `[[endpoint]]` key but the name, with its label. */
const TEXTS: Array<[keyof EndpointView, string]> = [
  ["title_text", "Title of the approval page"],
  ["authentication_text", "Question on the approval page"],
  ["button_accept_text", "Approve button"],
  ["button_reject_text", "Reject button"],
  ["touch_accept_text", "Text after Approve"],
  ["touch_reject_text", "Text after Reject"],
  ["sms_text", "SMS text ({link} is the approval link)"],
];
const NUMBERS: Array<[keyof EndpointView, string]> = [
  ["touch_timeout_s", "Wait for the user (seconds)"],
  ["per_number_per_minute", "Messages to one number in any 60 s"],
  ["per_number_per_hour", "Messages to one number in any hour"],
  ["per_key_per_minute", "Calls per API key in any 60 s (0: no limit)"],
  ["overall_per_minute", "Calls on this endpoint in any 60 s (0: no limit)"],
];
const FLAGS: Array<[keyof EndpointView, string]> = [
  ["require_known_user", "Only numbers of known users"],
  ["allow_custom_sms_text", "Callers may replace the SMS text"],
];

const must = (key: string) => CONFIG_TABLE_ARRAYS.find((t) => t.name === "endpoint")?.fields.find((f) => f.key === key)?.must;

/** The form's values as an `[[endpoint]]` patch: numbers and booleans typed, channels split. */
function patchOf(form: Form): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const [key] of TEXTS) patch[key] = text(form, key);
  for (const [key] of NUMBERS) {
    const raw = text(form, key).trim();
    // Not a whole number: left as text, so the [[endpoint]] rules refuse it naming the field.
    patch[key] = /^\d{1,9}$/.test(raw) ? Number(raw) : raw;
  }
  for (const [key] of FLAGS) patch[key] = text(form, key) === "true";
  patch.channels = text(form, "channels")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  return patch;
}

export function endpointRoutes(app: UiApp, deps: HttpDeps): void {
  async function editPage(c: UiContext, { error, values }: { error?: FormError; values?: Form } = {}) {
    const { account, session } = c.get("ui");
    const e = await showEndpoint(deps, c.req.param("name") ?? "");
    const base = `${UI_BASE}/endpoints/${encodeURIComponent(e.name)}`;
    const value = (key: keyof EndpointView) => (values ? text(values, key) : Array.isArray(e[key]) ? (e[key] as string[]).join(", ") : String(e[key]));
    // A channel error names its item (channels[1]): shown at the channels field.
    const err = error && /^channels\[\d+\]$/.test(error.field) ? { field: "channels", message: error.message.replace(/^Channels\[\d+\]:/, "Channels:") } : error;
    if (error) c.status(400);
    return c.html(
      <Page title={`Magic Link endpoint ${e.name}`} account={account} csrf={session.csrf} current="/endpoints">
        {c.req.query("done") === "saved" ? (
          <p class="notice" role="status" id="notice">
            Endpoint saved; the next call uses it.
          </p>
        ) : c.req.query("done") === "added" ? (
          <p class="notice" role="status" id="notice">
            Endpoint added with the default texts and limits; change them below.
          </p>
        ) : null}
        {e.declaredInConfig ? (
          <div class="card">
            <p id="declared">
              This profile is declared by <code>[[endpoint]]</code> in the configuration file, which is written to the store at every start: edit it in the file.
            </p>
          </div>
        ) : (
          <div class="card">
            <h2 id="edit-endpoint">Texts and limits</h2>
            <form method="post" action={base} aria-labelledby="edit-endpoint">
              <Csrf token={session.csrf} />
              <FormAlert error={err} />
              {TEXTS.map(([key, label]) => (
                <Field name={key} label={label} value={value(key)} error={err} required />
              ))}
              <div class="row">
                {NUMBERS.map(([key, label]) => (
                  <Field name={key} label={label} inputmode="numeric" value={value(key)} error={err} hint={must(key)} required />
                ))}
              </div>
              <div class="row">
                {FLAGS.map(([key, label]) => (
                  <Select name={key} label={label} options={[["false", "no"], ["true", "yes"]]} value={value(key)} error={err} />
                ))}
              </div>
              <Field name="channels" label="Delivery channels, in order (empty: the default order)" value={value("channels")} error={err} hint={`Comma-separated; configured: ${deps.config.delivery.channels.join(", ") || "none"}`} />
              <button type="submit" class="primary" id="save-endpoint">
                Save
              </button>
            </form>
            {e.name !== DEFAULT_ENDPOINT ? <ActionButton action={`${base}/remove`} csrf={session.csrf} text={`Remove ${e.name}`} id="remove-endpoint" kind="danger" /> : null}
          </div>
        )}
      </Page>,
    );
  }

  get(app, deps, "/endpoints/:name", "admin", (c) => editPage(c));

  post(app, deps, "/endpoints/:name", "admin", async (c, form) => {
    const name = c.req.param("name") ?? "";
    try {
      await updateEndpoint(uiAdminContext(deps, c), name, patchOf(form));
      return seeOther(c, `${UI_BASE}/endpoints/${encodeURIComponent(name)}?done=saved`);
    } catch (err) {
      const error = formError(err);
      if (!error) throw err;
      return editPage(c, { error, values: form });
    }
  });

  post(app, deps, "/endpoints/:name/remove", "admin", async (c) => {
    await removeEndpoint(uiAdminContext(deps, c), c.req.param("name") ?? "");
    return seeOther(c, `${UI_BASE}/endpoints?done=endpoint-removed`);
  });

  // A new stored profile starts from the defaults; its page then edits it.
  post(app, deps, "/endpoints", "admin", async (c, form) => {
    const name = text(form, "endpointName").trim();
    try {
      if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) return seeOther(c, `${UI_BASE}/endpoints?error=endpoint-name`);
      try {
        await showEndpoint(deps, name);
        return seeOther(c, `${UI_BASE}/endpoints?error=endpoint-exists`);
      } catch {
        // Not there yet: made below.
      }
      await putEndpoint(uiAdminContext(deps, c), name, defaultEndpointTable());
      return seeOther(c, `${UI_BASE}/endpoints/${encodeURIComponent(name)}?done=added`);
    } catch (err) {
      const error = formError(err);
      if (!error) throw err;
      return seeOther(c, `${UI_BASE}/endpoints?error=endpoint-declared`);
    }
  });
}

/** The endpoints list's messages after a change made on the pages above. */
export const ENDPOINT_NOTICES: Record<string, string> = { "endpoint-removed": "Endpoint removed." };
export const ENDPOINT_ERRORS: Record<string, string> = {
  "endpoint-name": "An endpoint name is 1-64 letters, digits, '.', '_' or '-'.",
  "endpoint-exists": "An endpoint of that name exists: edit it instead.",
  "endpoint-declared": "That endpoint is declared in the configuration file: edit it there.",
};
