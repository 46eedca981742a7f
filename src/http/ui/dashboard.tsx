// The dashboard: authentications per minute by outcome (the store's per-minute counters, added to
// by every process and node), pending approvals (the approvals table), delivery health (the
// delivery log), the switch connection and the directories.

import { hostname } from "node:os";
import { listClients } from "../../admin/clients.ts";
import { ldapProfiles } from "../../config/index.ts";
import { auditLogOf, type AuthMinute, type Store } from "../../store/types.ts";
import type { HttpDeps } from "../types.ts";
import type { UiApp } from "./common.tsx";
import { Page, utc } from "./layout.tsx";
import { UI_BASE } from "./session.ts";

const MINUTES = 10;

export interface MinuteRow {
  minute: number;
  accept: number;
  reject: number;
  challenge: number;
}

/** Authentications in each of the last `minutes` whole minutes (newest first), from the store's counters; undefined when the store keeps none. */
export async function authPerMinute(store: Store, now: number, minutes = MINUTES): Promise<MinuteRow[] | undefined> {
  const repo = auditLogOf(store);
  if (!repo) return undefined;
  const first = Math.floor(now / 60_000) - minutes + 1;
  const rows: MinuteRow[] = Array.from({ length: minutes }, (_, i) => ({ minute: (first + i) * 60_000, accept: 0, reject: 0, challenge: 0 }));
  const counts: AuthMinute[] = await repo.minutes(first * 60_000);
  for (const c of counts) {
    const row = rows[Math.floor(c.minute / 60_000) - first];
    if (row) row[c.outcome] += c.n;
  }
  return rows.reverse();
}

/** The switch card's text: the connection of the process serving this page, which holds it. */
function switchText(sw: { state: string; url: string | null } | undefined): { stat: string; detail?: string } {
  if (!sw) return { stat: "not configured" };
  const holder = `held by this process (${hostname()}, pid ${process.pid}); every other node on the store has its own connection`;
  if (sw.state === "connected") return { stat: "connected", detail: `to ${sw.url ?? "?"}, ${holder}` };
  return { stat: sw.state, detail: sw.url ? `last relay ${sw.url}, ${holder}` : holder };
}

export function dashboardRoutes(app: UiApp, deps: HttpDeps): void {
  app.get("/", async (c) => {
    const { account, session } = c.get("ui");
    const now = deps.now();
    const [perMinute, pending, deliveries, clients, ready] = await Promise.all([
      deps.config.audit.store ? authPerMinute(deps.store, now) : Promise.resolve(undefined),
      deps.store.approvals.pendingCounts(now),
      deps.delivery ? deps.delivery.log.recent(50) : Promise.resolve([]),
      listClients(deps),
      deps.ready(),
    ]);
    const failed = deliveries.filter((d) => d.result !== "sent");
    const profiles = ldapProfiles(deps.config);
    const total = (perMinute ?? []).reduce((n, m) => ({ accept: n.accept + m.accept, reject: n.reject + m.reject, challenge: n.challenge + m.challenge }), { accept: 0, reject: 0, challenge: 0 });
    const pendingTotal = Object.values(pending).reduce((a, b) => a + (b ?? 0), 0);
    const sw = switchText(ready.switch);
    return c.html(
      <Page title="Dashboard" account={account} csrf={session.csrf} current="/">
        <div class="grid" id="summary">
          <div class="card">
            <h2>Authentications, last {MINUTES} minutes</h2>
            <p class="stat" id="auth-total">
              {perMinute ? `${total.accept} accepted, ${total.reject} rejected` : "not counted"}
            </p>
            {perMinute && total.challenge > 0 ? <p class="muted">{total.challenge} challenged for a second leg</p> : null}
          </div>
          <div class="card">
            <h2>Pending approvals</h2>
            <p class="stat" id="pending">
              {pendingTotal}
            </p>
            {pendingTotal > 0 ? (
              <p class="muted" id="pending-kinds">
                {Object.entries(pending)
                  .sort(([a], [b]) => a.localeCompare(b))
                  .map(([k, n]) => `${k} ${n}`)
                  .join(", ")}
              </p>
            ) : null}
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
                {profiles.map((p) => p.name).join(", ")} · <a href={`${UI_BASE}/ldap`}>Diagnose</a>
              </p>
            ) : null}
          </div>
          <div class="card">
            <h2>Switch</h2>
            <p class="stat" id="switch">
              {sw.stat}
            </p>
            {sw.detail ? (
              <p class="muted" id="switch-detail">
                {sw.detail}
              </p>
            ) : null}
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
          {perMinute ? (
            <div class="table-wrap" tabindex={0} role="region" aria-labelledby="per-minute">
              <table aria-labelledby="per-minute" id="auth-per-minute">
                <thead>
                  <tr>
                    <th scope="col">Minute (UTC)</th>
                    <th scope="col">Accepted</th>
                    <th scope="col">Rejected</th>
                    <th scope="col">Challenged</th>
                  </tr>
                </thead>
                <tbody>
                  {perMinute.map((m) => (
                    <tr>
                      <td>{utc(m.minute).slice(11, 16)}</td>
                      <td>{m.accept}</td>
                      <td>{m.reject}</td>
                      <td>{m.challenge}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : null}
          <p class="muted">
            {perMinute
              ? "Counted by every process and node on this store, added every few seconds (the current minute may lag); Prometheus has each process's counters at /metrics."
              : "This store keeps no per-minute counts ([audit] store = false)."}
          </p>
        </div>
      </Page>,
    );
  });
}
