// The dashboard through the admin app (no browser): logins per minute from the store's counters
// (whoever added them), pending approvals from the approvals table, the switch card from the
// connection's state as /readyz reports it; and the audit page reading the stored log with filters.

import { afterEach, describe, expect, test } from "bun:test";
import { addAdminAccount } from "../../../../src/admin/admin-accounts.ts";
import { setLogSink } from "../../../../src/audit/log.ts";
import { buildAdminApp } from "../../../../src/http/app.ts";
import type { Readiness } from "../../../../src/http/types.ts";
import { decodeBase32, generateTOTP } from "../../../../src/otp/index.ts";
import type { SqliteStore } from "../../../../src/store/sqlite/store.ts";
import { auditLogOf, type Approval } from "../../../../src/store/types.ts";
import { cleanup } from "../../store/helpers.ts";
import { testDeps } from "../helpers.ts";

setLogSink(() => {});

const PASSWORD = "a long admin password";
const T0 = Date.parse("2026-12-03T10:05:30Z");
const opened: Array<{ store: SqliteStore; dir: string }> = [];

afterEach(async () => {
  for (const o of opened.splice(0)) {
    await o.store.close();
    cleanup(o.dir);
  }
});

/** A signed-in root session on an admin app whose readiness reports `sw` as the switch. */
async function signedIn(sw?: Readiness["switch"]) {
  const t = await testDeps({ tls: false, now: () => T0, random: (n) => crypto.getRandomValues(new Uint8Array(n)), ready: async () => ({ ok: true, checks: {}, ...(sw ? { switch: sw } : {}) }) });
  opened.push({ store: t.store, dir: t.dir });
  const ctx = { config: t.deps.config, store: t.store, audit: { actor: { name: "t", role: "root" as const }, change: async <T>(f: () => Promise<T>) => f(), note: async () => {} }, now: () => T0, random: t.deps.random };
  const { uri } = await addAdminAccount(ctx, { name: "ann", role: "operator", password: PASSWORD });
  const secret = decodeBase32(/secret=([A-Z2-7]+)/.exec(uri)![1]!);
  const app = buildAdminApp(t.deps);
  const req = (path: string, init: RequestInit = {}) => app.request(`http://127.0.0.1${path}`, init);
  const page = await req("/ui/sign-in");
  const pre = page.headers.get("set-cookie")!.split(";")[0]!;
  const csrf = /name="csrf" value="([^"]+)"/.exec(await page.text())![1]!;
  const code = generateTOTP({ secret, algorithm: "SHA1", digits: 6, period: 30 }, { now: T0 });
  const res = await req("/ui/sign-in", { method: "POST", headers: { cookie: pre, "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ csrf, name: "ann", password: PASSWORD, code }).toString() });
  const cookie = res.headers.get("set-cookie")!.split(";")[0]!;
  const html = async (path: string) => {
    const r = await req(path, { headers: { cookie } });
    return { status: r.status, text: await r.text() };
  };
  return { store: t.store, html };
}

const byId = (text: string, id: string) => new RegExp(`id="${id}"[^>]*>([^<]*)<`).exec(text)?.[1]?.trim();

describe("dashboard", () => {
  test("logins per minute from the store's counters, pending approvals from the approvals table, switch not configured", async () => {
    const s = await signedIn();
    const minute = Math.floor(T0 / 60_000) * 60_000;
    // Two processes' counts for the same minutes add up; a minute older than ten is not shown.
    await auditLogOf(s.store)!.addCounts([{ minute, outcome: "accept", n: 7 }, { minute, outcome: "reject", n: 2 }]);
    await auditLogOf(s.store)!.addCounts([{ minute, outcome: "accept", n: 5 }, { minute: minute - 60_000, outcome: "challenge", n: 3 }, { minute: minute - 11 * 60_000, outcome: "reject", n: 100 }]);
    const base: Approval = { id: "", kind: "radius", user: "u", client: "vpn", source: null, msisdn: null, apiKeyId: null, state: "pending", channel: null, linkHash: null, texts: "{}", numberMatch: null, createdAt: T0, expiresAt: T0 + 60_000, answeredAt: null };
    await s.store.approvals.create({ ...base, id: "a1" });
    await s.store.approvals.create({ ...base, id: "a2", kind: "password-reset", user: "v" });
    await s.store.approvals.create({ ...base, id: "a3", user: "w", expiresAt: T0 - 1 });
    const { status, text } = await s.html("/ui/");
    expect(status).toBe(200);
    expect(byId(text, "auth-total")).toBe("12 accepted, 2 rejected");
    expect(text).toContain("3 challenged");
    expect(byId(text, "pending")).toBe("2");
    expect(byId(text, "pending-kinds")).toBe("password-reset 1, radius 1");
    expect(byId(text, "switch")).toBe("not configured");
    const rows = /<tbody>(.*?)<\/tbody>/s.exec(text)![1]!;
    expect(rows).toContain("<td>10:05</td><td>12</td><td>2</td><td>0</td>");
    expect(rows).toContain("<td>10:04</td><td>0</td><td>0</td><td>3</td>");
  });

  test.each([
    [{ state: "connected", url: "wss://relay.example:8443" }, "connected", /to wss:\/\/relay\.example:8443, held by this process \([^,]+, pid \d+\)/],
    [{ state: "connecting", url: null }, "connecting", /held by this process/],
  ])("the switch card shows the connection's state and which process holds it (%p)", async (sw, stat, detail) => {
    const s = await signedIn(sw);
    const { text } = await s.html("/ui/");
    expect(byId(text, "switch")).toBe(stat);
    expect(byId(text, "switch-detail")).toMatch(detail);
  });
});

describe("audit page", () => {
  test("reads the stored log with its filters; a bad filter is shown next to its field without echoing it", async () => {
    const s = await signedIn();
    await auditLogOf(s.store)!.append([
      { at: T0 - 2000, event: "auth.failure", actor: null, user: "dave", client: "vpn", outcome: "reject", node: "h:7/w2", fields: { reason: "bad_password" } },
      { at: T0 - 1000, event: "admin.user_unlocked", actor: "ui:root1", user: "dave", client: null, outcome: null, node: "h:8", fields: { user: "dave", cleared: true, by: "ui:root1" } },
    ]);
    const all = await s.html("/ui/audit");
    expect(all.status).toBe(200);
    expect(all.text).toContain("h:7/w2");
    expect(all.text).toContain("reason=bad_password");
    const admin = await s.html("/ui/audit?event=admin.&user=dave");
    expect(admin.text).toContain("admin.user_unlocked");
    expect(admin.text).not.toContain("bad_password");
    expect(admin.text).toContain("cleared=true");
    const none = await s.html("/ui/audit?outcome=accept");
    expect(none.text).toContain('id="audit-empty"');
    const bad = await s.html("/ui/audit?from=not-a-time-at-all");
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('id="f-from-error"');
    expect(bad.text.split("not-a-time-at-all").length).toBeLessThanOrEqual(2); // at most the field's own value
  });
});
