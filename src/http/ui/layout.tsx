// The admin web UI's page frame, stylesheet, form fields, and the one place where an admin
// operation's error becomes a message next to a form field.

import { raw } from "hono/html";
import type { Child } from "hono/jsx";
import { roleAtLeast, type AdminRole } from "../../admin/audit.ts";
import { AdminError } from "../../admin/errors.ts";
import { StoreError } from "../../store/types.ts";
import type { AdminAccount } from "../../store/types.ts";
import { UI_BASE } from "./session.ts";

export const UI_CSS_PATH = `${UI_BASE}/assets/ui.css`;

/** The UI's rules on top of the approval pages' stylesheet (served together): a wider page, navigation, tables, inputs. */
export const UI_CSS = `
main.console { max-width: 64rem; }
header.top { display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: 0.5rem; max-width: 64rem; margin: 0 auto; padding: 0.75rem 1rem 0; }
header.top .brand { font-weight: 700; }
nav.menu ul { list-style: none; display: flex; flex-wrap: wrap; gap: 0.25rem 0.75rem; margin: 0; padding: 0.5rem 1rem; max-width: 64rem; margin: 0 auto; }
nav.menu a { display: inline-block; padding: 0.35rem 0.25rem; color: var(--fg); }
nav.menu a[aria-current="page"] { font-weight: 700; text-decoration-thickness: 3px; }
a { color: var(--focus); }
a:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.card + .card { margin-top: 1rem; }
h2 { font-size: 1.15rem; margin: 0 0 0.5rem; }
label { display: block; font-weight: 600; margin: 0.5rem 0 0.25rem; }
input, select, textarea { font: inherit; width: 100%; min-height: 2.75rem; padding: 0.5rem; border: 1px solid var(--muted); border-radius: 0.4rem; background: var(--card); color: var(--fg); }
input[type="checkbox"] { width: auto; min-height: auto; }
button.primary { background: var(--focus); color: #fff; margin-top: 0.75rem; }
button.secondary { background: transparent; color: var(--fg); border-color: var(--muted); }
button.danger { background: transparent; color: var(--no); border-color: var(--no); }
form.inline { display: inline-block; margin: 0.25rem 0.25rem 0 0; }
form.inline button { display: inline-block; width: auto; min-height: 2.5rem; padding: 0.4rem 0.9rem; }
.field-error { color: var(--no); font-weight: 600; margin: 0.25rem 0 0; }
.notice { border-left: 4px solid var(--ok); padding: 0.5rem 0.75rem; background: var(--bg); }
.alert { border-left: 4px solid var(--no); padding: 0.5rem 0.75rem; background: var(--bg); }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 0.95rem; }
th, td { text-align: left; padding: 0.4rem 0.5rem; border-bottom: 1px solid rgba(127,127,127,.35); vertical-align: top; overflow-wrap: break-word; }
th { white-space: nowrap; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(14rem, 1fr)); gap: 1rem; }
.stat { font-size: 1.6rem; font-weight: 700; }
.qr svg { width: 14rem; height: 14rem; background: #fff; }
progress { width: 100%; height: 1.25rem; }
code { overflow-wrap: anywhere; }
.row { display: flex; flex-wrap: wrap; gap: 0.75rem; }
.row > * { flex: 1 1 12rem; }
@media (max-width: 30rem) { main.console { padding: 1rem 0.5rem 2rem; } .card { padding: 0.9rem; } td, th { padding: 0.35rem 0.4rem; } }
`;

/** The pages and the least role that sees each in the navigation (every role may read them). */
const NAV: Array<{ path: string; label: string; role: AdminRole }> = [
  { path: "/", label: "Dashboard", role: "operator" },
  { path: "/users", label: "Users", role: "operator" },
  { path: "/tokens", label: "Tokens", role: "operator" },
  { path: "/clients", label: "RADIUS clients", role: "operator" },
  { path: "/endpoints", label: "Magic Link", role: "operator" },
  { path: "/delivery", label: "Delivery", role: "admin" },
  { path: "/audit", label: "Audit log", role: "operator" },
  { path: "/ldap", label: "Directories", role: "operator" },
];

/** A page of the signed-in UI: header with the account and sign-out, navigation, the content. */
export function Page({ title, account, csrf, current, head, children }: { title: string; account: Pick<AdminAccount, "name" | "role">; csrf: string; current: string; /** More elements of the head (a script of the page's own). */ head?: Child; children: Child }) {
  return (
    <>
      {raw("<!DOCTYPE html>")}
      <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="robots" content="noindex, nofollow" />
        <meta name="referrer" content="no-referrer" />
        <title>{`${title} · Portcullis admin`}</title>
        <link rel="stylesheet" href={UI_CSS_PATH} />
        {head}
      </head>
      <body>
        <header class="top">
          <span class="brand">Portcullis admin</span>
          <form method="post" action={`${UI_BASE}/sign-out`} class="inline">
            <input type="hidden" name="csrf" value={csrf} />
            <a href={`${UI_BASE}/account`} class="muted" id="whoami" aria-current={current === "/account" ? "page" : undefined}>
              {account.name} ({account.role})
            </a>{" "}
            <button type="submit" class="secondary" id="sign-out">
              Sign out
            </button>
          </form>
        </header>
        <nav class="menu" aria-label="Main">
          <ul>
            {NAV.filter((n) => roleAtLeast(account.role, n.role)).map((n) => (
              <li>
                <a href={`${UI_BASE}${n.path}`} aria-current={current === n.path ? "page" : undefined}>
                  {n.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <main class="console">
          <h1>{title}</h1>
          {children}
        </main>
      </body>
      </html>
    </>
  );
}

/** A page outside a session (sign-in). */
export function BarePage({ title, children }: { title: string; children: Child }) {
  return (
    <>
      {raw("<!DOCTYPE html>")}
      <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="robots" content="noindex, nofollow" />
        <meta name="referrer" content="no-referrer" />
        <title>{`${title} · Portcullis admin`}</title>
        <link rel="stylesheet" href={UI_CSS_PATH} />
      </head>
      <body>
        <main>
          <div class="card">{children}</div>
        </main>
      </body>
      </html>
    </>
  );
}

/** An error shown next to the form field it concerns (`field` "" : above the form). */
export interface FormError {
  field: string;
  message: string;
}

const GENERIC: Record<AdminError["code"], string> = {
  invalid: "is not valid",
  not_found: "was not found",
  conflict: "already exists or clashes with an existing entry",
  forbidden: "Your role may not do this.",
  rate_limited: "Too many attempts; try again later.",
  unavailable: "The service this needs is not available on this node.",
};

/**
 * The one mapping from an admin operation's failure to what a form shows: an AdminError becomes a
 * message next to its field (its `expose` text, which never holds the input, else a fixed text per
 * code); a store failure a message above the form. Anything else is not a form error: undefined
 * (the caller rethrows it).
 */
export function formError(err: unknown): FormError | undefined {
  if (err instanceof AdminError) {
    const field = err.field ?? "";
    const text = err.expose ?? GENERIC[err.code];
    if (err.code === "invalid" || ((err.code === "not_found" || err.code === "conflict") && field !== "")) return { field, message: `${label(field)} ${text}` };
    return { field: "", message: text };
  }
  if (err instanceof StoreError) {
    if (err.code === "conflict" || err.code === "network_taken") return { field: "", message: "This clashes with an existing entry." };
    if (err.code === "not_found") return { field: "", message: "Not found." };
    return { field: "", message: "The database is not available right now; nothing was changed." };
  }
  return undefined;
}

/** Field names that read badly when split at capitals. */
const LABELS: Record<string, string> = {
  approvalHoldS: "Approval hold",
  smsCodeLength: "SMS code length",
  smsCodeAlphabet: "SMS code alphabet",
  msisdn: "Phone number",
  pskHex: "Pre-shared key",
  code1: "First code",
  code2: "Next code",
  otpMode: "OTP mode",
};

/** How a form names an admin operation's input fields. */
function label(field: string): string {
  if (LABELS[field]) return `${LABELS[field]}:`;
  const words = field.replace(/[A-Z]/g, (c) => ` ${c.toLowerCase()}`).replace(/[._]/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1) + ":";
}

/** An error above a form (not tied to one field). */
export function FormAlert({ error }: { error: FormError | undefined }) {
  if (!error || error.field !== "") return null;
  return (
    <p class="alert" role="alert" id="form-error">
      {error.message}
    </p>
  );
}

/** A labelled input with its error (aria-invalid, described by the message). */
export function Field({
  name,
  label: text,
  type = "text",
  value,
  error,
  required = false,
  autocomplete,
  hint,
  inputmode,
}: {
  name: string;
  label: string;
  type?: string;
  value?: string | undefined;
  error?: FormError | undefined;
  required?: boolean;
  autocomplete?: string;
  hint?: string;
  inputmode?: "numeric" | "text" | "tel" | "email";
}) {
  const id = `f-${name}`;
  const bad = error !== undefined && error.field === name;
  const described = [hint ? `${id}-hint` : "", bad ? `${id}-error` : ""].filter(Boolean).join(" ") || undefined;
  return (
    <div>
      <label for={id}>{text}</label>
      {hint ? (
        <p class="muted" id={`${id}-hint`}>
          {hint}
        </p>
      ) : null}
      <input id={id} name={name} type={type} value={value ?? ""} required={required} autocomplete={autocomplete} inputmode={inputmode} aria-invalid={bad ? "true" : undefined} aria-describedby={described} />
      {bad ? (
        <p class="field-error" id={`${id}-error`}>
          {error.message}
        </p>
      ) : null}
    </div>
  );
}

/** A labelled select. */
export function Select({ name, label: text, options, value, error }: { name: string; label: string; options: Array<[string, string]>; value?: string | undefined; error?: FormError | undefined }) {
  const id = `f-${name}`;
  const bad = error !== undefined && error.field === name;
  return (
    <div>
      <label for={id}>{text}</label>
      <select id={id} name={name} aria-invalid={bad ? "true" : undefined} aria-describedby={bad ? `${id}-error` : undefined}>
        {options.map(([v, t]) => (
          <option value={v} selected={v === value}>
            {t}
          </option>
        ))}
      </select>
      {bad ? (
        <p class="field-error" id={`${id}-error`}>
          {error.message}
        </p>
      ) : null}
    </div>
  );
}

/** A one-button POST form carrying the CSRF token (and hidden fields). */
export function ActionButton({ action, csrf, text, id, kind = "secondary", fields = {} }: { action: string; csrf: string; text: string; id?: string; kind?: "secondary" | "danger" | "primary"; fields?: Record<string, string> }) {
  return (
    <form method="post" action={action} class="inline">
      <input type="hidden" name="csrf" value={csrf} />
      {Object.entries(fields).map(([k, v]) => (
        <input type="hidden" name={k} value={v} />
      ))}
      <button type="submit" class={kind} id={id}>
        {text}
      </button>
    </form>
  );
}

export function Csrf({ token }: { token: string }) {
  return <input type="hidden" name="csrf" value={token} />;
}

/** "2024-05-01 13:37:05 UTC" from an ISO string or unix ms. */
export function utc(t: string | number | null): string {
  if (t === null) return "-";
  return new Date(t).toISOString().replace("T", " ").replace(/\.\d{3}Z$/, " UTC");
}
