// The audit log page: the store's audit_log (every process and node on the store writes it), with
// filters (time range, event, actor, user, client, outcome) and paging, through the admin
// operations (admin/audit-log.ts) as GET /api/admin/v1/audit reads it.

import { listAuditEvents, type AuditFilter, type AuditPage } from "../../admin/audit-log.ts";
import type { HttpDeps } from "../types.ts";
import type { UiApp } from "./common.tsx";
import { Field, FormAlert, formError, Page, Select, utc, type FormError } from "./layout.tsx";
import { uiAudit, UI_BASE } from "./session.ts";

/** The event filter's choices: prefixes ("auth.") and a few single events. */
const EVENTS: Array<[string, string]> = [
  ["", "all"],
  ["auth.", "authentications (auth.*)"],
  ["auth.failure", "  rejected logins (auth.failure)"],
  ["admin.", "admin changes (admin.*)"],
  ["ui.", "admin web UI sign-ins (ui.*)"],
  ["approval.", "approvals (approval.*)"],
  ["sms_code.", "SMS codes (sms_code.*)"],
  ["magiclink.", "Magic Link (magiclink.*)"],
  ["delivery.", "delivery (delivery.*)"],
  ["device.", "approver app devices (device.*)"],
  ["push.", "push (push.*)"],
  ["directory.", "directories (directory.*)"],
  ["password_reset.", "password resets (password_reset.*)"],
  ["selfservice.", "self-service (selfservice.*)"],
  ["switch.", "switch relay (switch.*)"],
];

const OUTCOMES = ["accept", "reject", "challenge", "ok", "failed", "refused", "limited", "sent", "not_delivered", "approved", "rejected", "reported", "expired", "cancelled", "asked", "skipped"];

const FILTERS = ["from", "to", "event", "actor", "user", "client", "outcome"] as const;

/** An event's other fields as "key=value" text (stored events never hold a password, code, seed or key). */
export function fieldsText(fields: Record<string, unknown>): string {
  return Object.entries(fields)
    .filter(([k]) => k !== "by" && k !== "user" && k !== "client")
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
}

export function auditRoutes(app: UiApp, deps: HttpDeps): void {
  app.get("/audit", async (c) => {
    const { account, session } = c.get("ui");
    const values: Record<string, string> = {};
    for (const f of FILTERS) values[f] = (c.req.query(f) ?? "").slice(0, 256);
    const before = (c.req.query("before") ?? "").slice(0, 40);
    let page: AuditPage = { events: [], next: null };
    let error: FormError | undefined;
    try {
      page = await listAuditEvents({ store: deps.store, actor: uiAudit(deps, account).actor }, { ...(values as AuditFilter), before, limit: 50 });
    } catch (err) {
      error = formError(err);
      if (!error) throw err;
      c.status(400);
    }
    const params = (extra: Record<string, string>) => {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries({ ...values, ...extra })) if (v !== "") q.set(k, v);
      const s = q.toString();
      return `${UI_BASE}/audit${s ? `?${s}` : ""}`;
    };
    const events = EVENTS.some(([v]) => v === values.event) ? EVENTS : [...EVENTS, [values.event!, values.event!] as [string, string]];
    const outcomes: Array<[string, string]> = [["", "any"], ...OUTCOMES.map((o): [string, string] => [o, o])];
    if (values.outcome && !OUTCOMES.includes(values.outcome)) outcomes.push([values.outcome, values.outcome]);
    return c.html(
      <Page title="Audit log" account={account} csrf={session.csrf} current="/audit">
        <div class="card">
          <form method="get" action={`${UI_BASE}/audit`} role="search" aria-label="Filter the audit log">
            <FormAlert error={error} />
            <div class="row">
              <Field name="from" label="From (UTC)" type="datetime-local" value={values.from} error={error} />
              <Field name="to" label="Until (UTC)" type="datetime-local" value={values.to} error={error} />
            </div>
            <div class="row">
              <Select name="event" label="Event" options={events} value={values.event} error={error} />
              <Select name="outcome" label="Outcome" options={outcomes} value={values.outcome} error={error} />
            </div>
            <div class="row">
              <Field name="user" label="User" value={values.user} error={error} />
              <Field name="actor" label="Actor (ui:name, API key, cli:user)" value={values.actor} error={error} />
              <Field name="client" label="Client (RADIUS client or address)" value={values.client} error={error} />
            </div>
            <button type="submit" class="secondary" id="filter">
              Filter
            </button>
          </form>
          <p class="muted">
            Stored events of every process and node on this store ([audit] in the configuration: accepted logins are counted on the dashboard rather than stored one by one, unless configured). The complete log is each process's standard output (journald).
          </p>
          <div class="table-wrap" tabindex={0} role="region" aria-label="Audit events">
            <table id="audit">
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Event</th>
                  <th scope="col">Actor</th>
                  <th scope="col">User</th>
                  <th scope="col">Client</th>
                  <th scope="col">Outcome</th>
                  <th scope="col">Details</th>
                  <th scope="col">Process</th>
                </tr>
              </thead>
              <tbody>
                {page.events.map((e) => (
                  <tr>
                    <td>{utc(e.at)}</td>
                    <td>{e.event}</td>
                    <td>{e.actor ?? ""}</td>
                    <td>{e.user ?? ""}</td>
                    <td>{e.client ?? ""}</td>
                    <td>{e.outcome ?? ""}</td>
                    <td>{fieldsText(e.fields)}</td>
                    <td>{e.node}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {page.events.length === 0 && !error ? <p id="audit-empty">No events match.</p> : null}
          <p>
            {before ? (
              <a href={params({})} id="audit-newest">
                Newest events
              </a>
            ) : null}
            {before && page.next ? " · " : null}
            {page.next ? (
              <a href={params({ before: page.next })} id="audit-older">
                Older events
              </a>
            ) : null}
          </p>
        </div>
      </Page>,
    );
  });
}
