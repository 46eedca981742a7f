// The admin web UI's sessions through the admin app (no browser): the cookie's name and attributes
// with and without TLS, only the cookie's hash stored, the idle and absolute timeouts, the CSRF
// check of a form and of the sign-in form, and a refused role.
import { afterEach, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { addAdminAccount } from "../../../../src/admin/admin-accounts.ts";
import type { AuditEvent } from "../../../../src/audit/events.ts";
import { setLogSink } from "../../../../src/audit/log.ts";
import { buildAdminApp } from "../../../../src/http/app.ts";
import { decodeBase32, generateTOTP } from "../../../../src/otp/index.ts";
import type { SqliteStore } from "../../../../src/store/sqlite/store.ts";
import { cleanup } from "../../store/helpers.ts";
import { testDeps } from "../helpers.ts";

setLogSink(() => {});

const PASSWORD = "a long admin password";
const T0 = 1_700_000_000_000;
const opened: Array<{ store: SqliteStore; dir: string }> = [];

afterEach(async () => {
  for (const o of opened.splice(0)) {
    await o.store.close();
    cleanup(o.dir);
  }
});

async function setup(tls: boolean, role = "root") {
  let now = T0;
  const events: AuditEvent[] = [];
  const t = await testDeps({ tls, now: () => now, audit: (e) => void events.push(e), random: (n) => crypto.getRandomValues(new Uint8Array(n)) });
  opened.push({ store: t.store, dir: t.dir });
  const ctx = { config: t.deps.config, store: t.store, audit: { actor: { name: "t", role: "root" as const }, change: async <T>(f: () => Promise<T>) => f(), note: async () => {} }, now: () => now, random: t.deps.random };
  const { uri } = await addAdminAccount(ctx, { name: "ann", role, password: PASSWORD });
  const secret = decodeBase32(/secret=([A-Z2-7]+)/.exec(uri)![1]!);
  const app = buildAdminApp(t.deps);
  const req = (path: string, init: RequestInit = {}) => app.request(`http://127.0.0.1${path}`, init);
  /** GET the sign-in page, POST the form; returns the answer and the session cookie (name=value). */
  const signIn = async (code = generateTOTP({ secret, algorithm: "SHA1", digits: 6, period: 30 }, { now })) => {
    const page = await req("/ui/sign-in");
    const pre = page.headers.get("set-cookie")!.split(";")[0]!;
    const csrf = /name="csrf" value="([^"]+)"/.exec(await page.text())![1]!;
    const res = await req("/ui/sign-in", { method: "POST", headers: { cookie: pre, "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ csrf, name: "ann", password: PASSWORD, code }).toString() });
    return { res, cookie: res.headers.get("set-cookie")?.split(";")[0] };
  };
  return { app, req, signIn, store: t.store, events, advance: (ms: number) => void (now += ms), config: t.deps.config };
}

describe("admin web UI sessions", () => {
  test.each([
    [true, "__Host-portcullis-ui", /^__Host-portcullis-ui=[A-Za-z0-9_-]{43}; Max-Age=28800; Path=\/; HttpOnly; Secure; SameSite=Strict$/],
    [false, "portcullis-ui", /^portcullis-ui=[A-Za-z0-9_-]{43}; Max-Age=28800; Path=\/ui; HttpOnly; SameSite=Strict$/],
  ])("tls=%p: the cookie is %s, HttpOnly, SameSite=Strict (Secure with TLS); the store holds only its SHA-256", async (tls, name, shape) => {
    const s = await setup(tls);
    const { res } = await s.signIn();
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/ui/");
    const header = res.headers.get("set-cookie")!;
    expect(header).toMatch(shape);
    const value = header.split(";")[0]!.slice(name.length + 1);
    const session = await s.store.adminAccounts.getSession(createHash("sha256").update(value).digest("hex"));
    expect(session).toBeDefined();
    expect(JSON.stringify(session)).not.toContain(value);
    const home = await s.req("/ui/", { headers: { cookie: `${name}=${value}` } });
    expect(home.status).toBe(200);
    expect(await home.text()).toContain("ann (root)");
  });

  test("idle timeout: a request after idle_timeout_s ends the session (redirect with ended=idle, row gone, audited)", async () => {
    const s = await setup(false);
    const { cookie } = await s.signIn();
    const idle = s.config.admin_ui.idle_timeout_s * 1000;
    s.advance(idle - 1000);
    expect((await s.req("/ui/users", { headers: { cookie: cookie! } })).status).toBe(200);
    s.advance(idle);
    const after = await s.req("/ui/users", { headers: { cookie: cookie! } });
    expect(after.status).toBe(303);
    expect(after.headers.get("location")).toBe("/ui/sign-in?ended=idle");
    expect(s.events).toContainEqual({ type: "ui.session_ended", account: "ann", reason: "idle" });
    expect((await s.req("/ui/users", { headers: { cookie: cookie! } })).headers.get("location")).toBe("/ui/sign-in");
  });

  test("absolute lifetime: an active session still ends after session_lifetime_s", async () => {
    const s = await setup(false);
    const { cookie } = await s.signIn();
    const step = (s.config.admin_ui.idle_timeout_s - 1) * 1000;
    const end = s.config.admin_ui.session_lifetime_s * 1000;
    let last = 200;
    for (let t = 0; t < end + step && last === 200; t += step) {
      s.advance(step);
      last = (await s.req("/ui/", { headers: { cookie: cookie! } })).status;
    }
    expect(last).toBe(303);
    expect(s.events).toContainEqual({ type: "ui.session_ended", account: "ann", reason: "expired" });
  });

  test("a form without the session's CSRF token is refused (403) and changes nothing; with it, it works", async () => {
    const s = await setup(false);
    const { cookie } = await s.signIn();
    const form = (body: Record<string, string>) => ({ method: "POST", headers: { cookie: cookie!, "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(body).toString() });
    expect((await s.req("/ui/users", form({ username: "eve" }))).status).toBe(403);
    expect((await s.req("/ui/users", form({ username: "eve", csrf: "A".repeat(43) }))).status).toBe(403);
    expect(await s.store.users.findByName("eve")).toBeUndefined();
    expect(s.events).toContainEqual({ type: "ui.refused", account: "ann", reason: "csrf", path: "/ui/users" });
    const page = await (await s.req("/ui/users", { headers: { cookie: cookie! } })).text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(page)![1]!;
    const ok = await s.req("/ui/users", form({ username: "eve", csrf }));
    expect(ok.status).toBe(303);
    expect(await s.store.users.findByName("eve")).toBeDefined();
    expect(s.events).toContainEqual({ type: "admin.user_added", user: "eve", by: "ui:ann" });
  });

  test("the sign-in form needs its double-submit cookie", async () => {
    const s = await setup(false);
    const res = await s.req("/ui/sign-in", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ csrf: "x", name: "ann", password: PASSWORD, code: "123456" }).toString() });
    expect(res.status).toBe(403);
    expect(res.headers.get("set-cookie")).toMatch(/^portcullis-ui-signin=/);
  });

  test("an operator's create is refused (403, audited); unlock is allowed", async () => {
    const s = await setup(false, "operator");
    const { cookie } = await s.signIn();
    const page = await (await s.req("/ui/users", { headers: { cookie: cookie! } })).text();
    expect(page).not.toContain('id="add-user"');
    const csrf = /name="csrf" value="([^"]+)"/.exec(page)![1]!;
    const post = (path: string, body: Record<string, string>) => s.req(path, { method: "POST", headers: { cookie: cookie!, "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ csrf, ...body }).toString() });
    expect((await post("/ui/users", { username: "eve" })).status).toBe(403);
    expect(s.events).toContainEqual({ type: "ui.refused", account: "ann", reason: "role", path: "/ui/users" });
    await s.store.users.add({ username: "bob", passwordHash: null, type: "totp", phone: null, email: null } as never);
    expect((await post("/ui/users/bob/unlock", {})).status).toBe(303);
  });
});

describe("directory accounts' sessions", () => {
  test("a directory user's session lives while [admin_ui] ldap_profile names its profile, and ends when it no longer does", async () => {
    let now = T0;
    const t = await testDeps({ tls: false, now: () => now, random: (n) => crypto.getRandomValues(new Uint8Array(n)), configPatch: (c) => void (c.admin_ui.ldap_profile = "corp") });
    opened.push({ store: t.store, dir: t.dir });
    const row = await t.store.adminAccounts.add({ name: "ldap:corp:ada", role: "admin", passwordHash: "!directory", totpSecret: new Uint8Array(20) });
    const token = "t".repeat(43);
    const tokenHash = createHash("sha256").update(token).digest("hex");
    await t.store.adminAccounts.createSession({ tokenHash, accountId: row.id, csrf: "c", createdAt: now, lastSeenAt: now, expiresAt: now + 3_600_000 });
    const home = (deps: typeof t.deps) => buildAdminApp(deps).request("http://127.0.0.1/ui/", { headers: { cookie: `portcullis-ui=${token}` } });
    const on = await home(t.deps);
    expect(on.status).toBe(200);
    expect(await on.text()).toContain("ldap:corp:ada (admin)");
    now += 1000;
    const other = await home({ ...t.deps, config: { ...t.deps.config, admin_ui: { ...t.deps.config.admin_ui, ldap_profile: "other" } } });
    expect(other.status).toBe(303);
    expect(await t.store.adminAccounts.getSession(tokenHash)).toBeUndefined();
  });
});
