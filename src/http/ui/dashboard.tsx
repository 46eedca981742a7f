// The dashboard: authentications per minute by outcome, pending approvals, delivery health,
// directories and the switch, from this process's recent events and the store.

import { listClients } from "../../admin/clients.ts";
import { ldapProfiles } from "../../config/index.ts";
import type { RecentEvents } from "../../audit/recent.ts";
import type { HttpDeps } from "../types.ts";
import type { UiApp } from "./common.tsx";
import { Page, utc } from "./layout.tsx";
import { UI_BASE } from "./session.ts";

const MINUTES = 10;

/** Accepted and rejected authentications in each of the last `minutes` whole minutes (newest first). */
export function authPerMinute(events: RecentEvents | undefined, now: number, minutes = MINUTES): Array<{ minute: number; success: number; failure: number }> {
  const first = Math.floor(now / 60_000) - minutes + 1;
  const buckets = Array.from({ length: minutes }, (_, i) => ({ minute: (first + i) * 60_000, success: 0, failure: 0 }));
  events?.scan((e) => {
    if (e.event.type !== "auth.success" && e.event.type !== "auth.failure") return;
    const b = buckets[Math.floor(e.at / 60_000) - first];
    if (b) b[e.event.type === "auth.success" ? "success" : "failure"]++;
  });
  return buckets.reverse();
}

/** Approvals created by this process and not ended yet (as its events tell). */
export function pendingApprovals(events: RecentEvents | undefined): number {
  const ended = new Set<string>();
  let pending = 0;
  // Newest first: an approval's end is seen before its creation.
  events?.scan((e) => {
    const ev = e.event;
    switch (ev.type) {
      case "approval.answered":
      case "approval.expired":
      case "approval.cancelled":
      case "approval.not_delivered":
      case "approval.app_answered":
        ended.add(ev.id);
        break;
      case "approval.created":
        if (!ended.has(ev.id)) pending++;
        break;
    }
  });
  return pending;
}

export function dashboardRoutes(app: UiApp, deps: HttpDeps): void {
  app.get("/", async (c) => {
    const { account, session } = c.get("ui");
    const now = deps.now();
    const perMinute = authPerMinute(deps.recentEvents, now);
    const pending = pendingApprovals(deps.recentEvents);
    const deliveries = deps.delivery ? await deps.delivery.log.recent(50) : [];
    const failed = deliveries.filter((d) => d.result !== "sent");
    const profiles = ldapProfiles(deps.config);
    const clients = await listClients(deps);
    const total = perMinute.reduce((n, m) => ({ success: n.success + m.success, failure: n.failure + m.failure }), { success: 0, failure: 0 });
    return c.html(
      <Page title="Dashboard" account={account} csrf={session.csrf} current="/">
        <div class="grid" id="summary">
          <div class="card">
            <h2>Authentications, last {MINUTES} minutes</h2>
            <p class="stat" id="auth-total">
              {total.success} accepted, {total.failure} rejected
            </p>
          </div>
          <div class="card">
            <h2>Pending approvals</h2>
            <p class="stat" id="pending">
              {pending}
            </p>
          </div>
          <div class="card">
            <h2>Delivery</h2>
            <p class="stat" id="delivery-health">
              {deps.delivery ? (deliveries.length === 0 ? "nothing sent yet" : `${deliveries.length - failed.length} of ${deliveries.length} delivered`) : "not configured"}
            </p>
            {failed[0] ? (
              <p class="muted">
                Last failure {utc(failed[0].at)}: {failed[0].reason ?? failed[0].result}
              </p>
            ) : null}
          </div>
          <div class="card">
            <h2>Directories</h2>
            <p class="stat" id="directories">
              {profiles.length === 0 ? "local users only" : `${profiles.length} profile${profiles.length === 1 ? "" : "s"}`}
            </p>
            {profiles.length > 0 ? (
              <p>
                <a href={`${UI_BASE}/ldap`}>Diagnose</a>
              </p>
            ) : null}
          </div>
          <div class="card">
            <h2>Switch</h2>
            <p class="stat" id="switch">
              not configured
            </p>
          </div>
          <div class="card">
            <h2>RADIUS clients</h2>
            <p class="stat" id="client-count">
              {clients.length}
            </p>
          </div>
        </div>
        <div class="card">
          <h2 id="per-minute">Authentications per minute</h2>
          <div class="table-wrap" tabindex={0}>
            <table aria-labelledby="per-minute" id="auth-per-minute">
              <thead>
                <tr>
                  <th scope="col">Minute (UTC)</th>
                  <th scope="col">Accepted</th>
                  <th scope="col">Rejected</th>
                </tr>
              </thead>
              <tbody>
                {perMinute.map((m) => (
                  <tr>
                    <td>{utc(m.minute).slice(11, 16)}</td>
                    <td>{m.success}</td>
                    <td>{m.failure}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <p class="muted">Counted by this process since it started; Prometheus has the same counters at /metrics.</p>
        </div>
      </Page>,
    );
  });
}
