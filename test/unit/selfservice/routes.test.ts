// The self-service portal through app.request() with a real store and engine: off by default, sign-in
// with password and code (one text for every failure), CSRF, sessions (idle, sign-out), single-use
// links, TOTP enrolment confirmed by a code, removal and the last-factor rule, the audit actor, and
// the sign-in with an approver-app approval (kind self-service, v2 only, the wait cookie, Continue,
// Cancel, one text for every failure).

import { afterEach, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { AppRequests, DEFAULT_APP_SETTINGS, type AppSettings } from "../../../src/approvals/app.ts";
import { ApprovalService } from "../../../src/approvals/service.ts";
import { WaiterHub } from "../../../src/approvals/waiters.ts";
import type { AuditEvent } from "../../../src/audit/events.ts";
import { createEnrolLink } from "../../../src/admin/enrol-links.ts";
import { Engine, type PasswordVerifier } from "../../../src/auth/engine.ts";
import { DEFAULT_LOCKOUT } from "../../../src/auth/lockout.ts";
import type { Config } from "../../../src/config/index.ts";
import { buildPublicApp } from "../../../src/http/app.ts";
import { PUBLIC_ROUTES } from "../../../src/http/routes.ts";
import { decodeBase32, generateTOTP } from "../../../src/otp/index.ts";
import { LAST_FACTOR, LINK_REFUSED, selfAudit, SIGN_IN_FAILED } from "../../../src/selfservice/routes.tsx";
import type { SqliteStore } from "../../../src/store/sqlite/store.ts";
import { cleanup } from "../store/helpers.ts";
import { testDeps } from "../http/helpers.ts";

const SEED = new TextEncoder().encode("12345678901234567890");
const T0 = 1_800_000_000_000;

/** Plaintext "hashes" keep these tests fast; argon2id has tests of its own. */
const plain: PasswordVerifier = { verify: async (p, h) => h === `plain:${p}`, dummy: async () => {} };

let store: SqliteStore | undefined;
let dir: string | undefined;
afterEach(async () => {
  await store?.close();
  cleanup(dir);
  store = dir = undefined;
});

/** A tiny cookie jar over app.request(). */
class Browser {
  readonly cookies = new Map<string, string>();
  lastSetCookie: string[] = [];
  constructor(private readonly app: ReturnType<typeof buildPublicApp>) {}
  async get(path: string): Promise<Response> {
    return this.keep(await this.app.request(path, { headers: this.header() }));
  }
  async post(path: string, fields: Record<string, string>): Promise<Response> {
    return this.keep(await this.app.request(path, { method: "POST", headers: { ...this.header(), "Content-Type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(fields).toString() }));
  }
  private header(): Record<string, string> {
    return this.cookies.size === 0 ? {} : { Cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ") };
  }
  private keep(r: Response): Response {
    this.lastSetCookie = r.headers.getSetCookie();
    for (const line of this.lastSetCookie) {
      const [pair] = line.split(";");
      const [name, value] = pair!.split("=");
      if (value === "" || /Max-Age=0/i.test(line)) this.cookies.delete(name!);
      else this.cookies.set(name!, value!);
    }
    return r;
  }
}

const csrfOf = (page: string) => /name="csrf" value="([^"]+)"/.exec(page)?.[1] ?? "";

async function setUp({ enabled = true, patch, tls = false }: { enabled?: boolean; patch?: (c: Config) => void; tls?: boolean } = {}) {
  let now = T0;
  const events: AuditEvent[] = [];
  const made = await testDeps({
    tls,
    now: () => now,
    audit: (e) => void events.push(e),
    configPatch: (c) => {
      // Left at its default when not enabled: the test below checks that the default is off.
      if (enabled) c.self_service.enabled = true;
      c.http.public_url = "https://mfa.example.test";
      patch?.(c);
    },
  });
  store = made.store;
  dir = made.dir;
  const engine = new Engine(
    made.store,
    { realms: "strip", window: 1, hotpLookAhead: 10, challengeTtlMs: 60_000, challengeMaxFailures: 3, otpPrompt: "Code", retryPrompt: "Again", lockout: DEFAULT_LOCKOUT, passwords: plain },
    (e) => void events.push(e),
  );
  made.deps.engine = engine;
  const app = buildPublicApp(made.deps, PUBLIC_ROUTES);
  const addUser = async (name: string, { token = true }: { token?: boolean } = {}) => {
    const user = await made.store.users.add({ username: name, passwordHash: "plain:correct horse", type: "totp", phone: null, email: null, disabled: false, expiresAt: null, directory: null, externalId: null, directoryPhone: null });
    const t = token ? await made.store.tokens.add({ serial: `T-${name}`, userId: user.id, kind: "totp", secret: SEED, algorithm: "SHA1", digits: 6, period: 30, state: "active" }) : undefined;
    return { user, token: t };
  };
  return { app, deps: made.deps, store: made.store, events, addUser, setNow: (t: number) => void (now = t), browser: () => new Browser(app) };
}

const code = (now: number, secret: Uint8Array = SEED) => generateTOTP({ secret, algorithm: "SHA1", digits: 6, period: 30 }, { now });

async function signIn(b: Browser, username: string, password: string, typed: string): Promise<Response> {
  const page = await (await b.get("/self-service")).text();
  return b.post("/self-service/sign-in", { csrf: csrfOf(page), username, password, code: typed });
}

describe("off by default", () => {
  test("every /self-service path answers 404 unless enabled", async () => {
    const { app, deps } = await setUp({ enabled: false });
    expect(deps.config.self_service.enabled).toBe(false);
    for (const path of ["/self-service", "/self-service/style.css", "/self-service/link/AAAAAAAAAAAAAAAAAAAAAA"]) expect((await app.request(path)).status).toBe(404);
    expect((await app.request("/self-service/sign-in", { method: "POST" })).status).toBe(404);
  });
});

describe("sign-in with password and code", () => {
  test("a right password and code start a session with a strict cookie; the same code again is refused", async () => {
    const { addUser, browser, events } = await setUp();
    await addUser("alice");
    const b = browser();
    const r = await signIn(b, "alice", "correct horse", code(T0));
    expect(r.status).toBe(303);
    const cookie = b.lastSetCookie.find((l) => l.startsWith("portcullis-ss="))!;
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Strict");
    const home = await (await b.get("/self-service")).text();
    expect(home).toContain('id="who">alice<');
    expect(home).toContain("T-alice");
    expect(events.some((e) => e.type === "selfservice.signed_in" && e.user === "alice" && e.method === "password_totp")).toBe(true);
    expect(events.some((e) => e.type === "auth.success" && e.channel === "self-service")).toBe(true);
    const again = await signIn(browser(), "alice", "correct horse", code(T0));
    expect(again.status).toBe(401);
    expect(await again.text()).toContain(SIGN_IN_FAILED);
  });

  test("on a TLS listener the cookies are __Host- and Secure", async () => {
    const { addUser, browser } = await setUp({ tls: true });
    await addUser("alice");
    const b = browser();
    await b.get("/self-service");
    expect(b.lastSetCookie.join("\n")).toMatch(/^__Host-portcullis-ss-pre=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; Secure; SameSite=Strict$/m);
    expect((await signIn(b, "alice", "correct horse", code(T0))).status).toBe(303);
    const session = b.lastSetCookie.find((l) => l.startsWith("__Host-portcullis-ss="))!;
    expect(session).toMatch(/; Path=\/; HttpOnly; Secure; SameSite=Strict$/);
  });

  test("wrong code, wrong password and unknown user get the same page", async () => {
    const { addUser, browser } = await setUp();
    await addUser("alice");
    const texts: string[] = [];
    for (const [user, pw, c] of [
      ["alice", "correct horse", "000000"],
      ["alice", "wrong", code(T0)],
      ["nobody", "correct horse", code(T0)],
    ] as const) {
      const r = await signIn(browser(), user, pw, c);
      expect(r.status).toBe(401);
      // Only the CSRF token differs (another browser); the typed name is not repeated.
      const text = await r.text();
      expect(text).not.toContain(user);
      texts.push(text.replace(/name="csrf" value="[^"]+"/, ""));
    }
    expect(texts[0]).toContain(SIGN_IN_FAILED);
    expect(new Set(texts).size).toBe(1);
  });

  test("a POST without the pre-session cookie's CSRF token is refused before any check", async () => {
    const { addUser, browser, events } = await setUp();
    await addUser("alice");
    const b = browser();
    await b.get("/self-service");
    expect((await b.post("/self-service/sign-in", { csrf: "forged", username: "alice", password: "correct horse", code: code(T0) })).status).toBe(403);
    const other = browser();
    const page = await (await other.get("/self-service")).text();
    // A token made for another browser does not fit this one's cookie.
    expect((await b.post("/self-service/sign-in", { csrf: csrfOf(page), username: "alice", password: "correct horse", code: code(T0) })).status).toBe(403);
    expect(events.filter((e) => e.type.startsWith("auth."))).toEqual([]);
  });

  test("the session ends when idle, and at sign-out", async () => {
    const { addUser, browser, setNow, deps } = await setUp();
    await addUser("alice");
    const b = browser();
    await signIn(b, "alice", "correct horse", code(T0));
    expect(await (await b.get("/self-service")).text()).toContain('id="who"');
    setNow(T0 + deps.config.self_service.idle_timeout_s * 1000 + 1);
    expect(await (await b.get("/self-service")).text()).toContain('id="sign-in"');

    setNow(T0 + 3_600_000);
    const c = browser();
    expect((await signIn(c, "alice", "correct horse", code(T0 + 3_600_000))).status).toBe(303);
    const home = await (await c.get("/self-service")).text();
    const cookie = c.cookies.get("portcullis-ss")!;
    expect((await c.post("/self-service/sign-out", { csrf: csrfOf(home) })).status).toBe(303);
    // The old cookie value no longer opens anything.
    c.cookies.set("portcullis-ss", cookie);
    expect(await (await c.get("/self-service")).text()).toContain('id="sign-in"');
  });
});

describe("per-address limit", () => {
  test("beyond sign_ins_per_minute an address is refused before any check, links included; a minute (and a one-second slot) later it is admitted", async () => {
    const s = await setUp({ patch: (c) => void (c.self_service.sign_ins_per_minute = 3) });
    s.deps.rateLimits = s.store.rateLimits;
    await s.addUser("alice");
    for (let i = 0; i < 3; i++) expect((await signIn(s.browser(), "alice", "wrong", "000000")).status).toBe(401);
    const before = s.events.filter((e) => e.type === "auth.failure").length;
    const r = await signIn(s.browser(), "alice", "correct horse", code(T0));
    expect(r.status).toBe(429);
    expect(await r.text()).toContain("Too many sign-in attempts");
    const b = s.browser();
    const landing = await (await b.get("/self-service/link/AAAAAAAAAAAAAAAAAAAAAA")).text();
    expect((await b.post("/self-service/link", { csrf: csrfOf(landing), code: "AAAAAAAAAAAAAAAAAAAAAA" })).status).toBe(429);
    expect(s.events.filter((e) => e.type === "auth.failure").length).toBe(before);
    expect(s.events.filter((e) => e.type === "selfservice.rate_limited").length).toBe(2);
    // A sliding window: the next calendar minute does not reopen it, the end of the first hits' slot does.
    s.setNow(T0 + 60_000);
    expect((await signIn(s.browser(), "alice", "correct horse", code(T0 + 60_000))).status).toBe(429);
    s.setNow(T0 + 61_000);
    expect((await signIn(s.browser(), "alice", "correct horse", code(T0 + 61_000))).status).toBe(303);
  });
});

describe("enrolment links", () => {
  test("a link signs in once; a second use is refused with the generic text", async () => {
    const { addUser, deps, browser, events } = await setUp();
    const { user } = await addUser("bob", { token: false });
    const made = await createEnrolLink({ config: deps.config, store: deps.store, audit: selfAudit(deps.audit, "admin-test"), now: deps.now, random: deps.random }, "bob");
    expect(made.user.id).toBe(user.id);
    const path = new URL(made.link).pathname;
    const b = browser();
    const landing = await (await b.get(path)).text();
    expect(landing).toContain('id="continue"');
    const code = /name="code" value="([^"]+)"/.exec(landing)![1]!;
    expect((await b.post("/self-service/link", { csrf: csrfOf(landing), code })).status).toBe(303);
    expect(await (await b.get("/self-service")).text()).toContain('id="who">bob<');

    const c = browser();
    const again = await (await c.get(path)).text();
    const r = await c.post("/self-service/link", { csrf: csrfOf(again), code });
    expect(r.status).toBe(404);
    expect(await r.text()).toContain(LINK_REFUSED.split(".")[0]!);
    expect(events.map((e) => e.type)).toContain("selfservice.link_refused");
    expect(events.some((e) => e.type === "admin.enrol_link_created" && e.user === "bob")).toBe(true);
  });

  test("an expired link is refused; the code is never stored in clear", async () => {
    const { addUser, deps, browser, setNow } = await setUp();
    await addUser("bob", { token: false });
    const made = await createEnrolLink({ config: deps.config, store: deps.store, audit: selfAudit(deps.audit, "t"), now: deps.now, random: deps.random }, "bob");
    const code = made.link.split("/").at(-1)!;
    const raw = (deps.store as unknown as { db: { prepare(s: string): { all(): Array<{ code_hash: string }> } } }).db.prepare("SELECT code_hash FROM self_service_links").all();
    expect(raw.map((r) => r.code_hash)).not.toContain(code);
    setNow(T0 + deps.config.self_service.enrol_link_ttl_h * 3_600_000);
    const b = browser();
    const landing = await (await b.get(new URL(made.link).pathname)).text();
    expect((await b.post("/self-service/link", { csrf: csrfOf(landing), code })).status).toBe(404);
  });

  test("no link is made while the portal is off", async () => {
    const { addUser, deps } = await setUp({ enabled: false });
    await addUser("bob", { token: false });
    await expect(createEnrolLink({ config: deps.config, store: deps.store, audit: selfAudit(deps.audit, "t"), now: deps.now, random: deps.random }, "bob")).rejects.toThrow(/self-service portal is off/);
  });
});

/** Signs `name` in with a link (no factor needed) and returns the browser and the overview's HTML. */
async function linkSession(s: Awaited<ReturnType<typeof setUp>>, name: string): Promise<{ b: Browser; home: string }> {
  const made = await createEnrolLink({ config: s.deps.config, store: s.deps.store, audit: selfAudit(s.deps.audit, "t"), now: s.deps.now, random: s.deps.random }, name);
  const b = s.browser();
  const landing = await (await b.get(new URL(made.link).pathname)).text();
  await b.post("/self-service/link", { csrf: csrfOf(landing), code: /name="code" value="([^"]+)"/.exec(landing)![1]! });
  return { b, home: await (await b.get("/self-service")).text() };
}

describe("TOTP enrolment", () => {
  test("the token exists only once a code is confirmed; it then signs in, and the confirming code is spent", async () => {
    const s = await setUp();
    const { user } = await s.addUser("bob", { token: false });
    const { b, home } = await linkSession(s, "bob");
    expect((await b.post("/self-service/totp", { csrf: csrfOf(home) })).status).toBe(303);
    const page = await (await b.get("/self-service/totp")).text();
    expect(page).toContain("<svg");
    const secret = decodeBase32(/id="secret">([A-Z2-7 ]+)</.exec(page)![1]!.replace(/ /g, ""));
    // Unconfirmed: no token, and a wrong code keeps it so.
    expect(await s.store.tokens.list(user.id)).toEqual([]);
    expect((await b.post("/self-service/totp/confirm", { csrf: csrfOf(page), code: "000000" })).status).toBe(400);
    expect(await s.store.tokens.list(user.id)).toEqual([]);
    expect(s.events.map((e) => e.type)).toContain("selfservice.totp_unconfirmed");
    expect((await b.post("/self-service/totp/confirm", { csrf: csrfOf(page), code: code(T0, secret) })).status).toBe(303);
    const tokens = await s.store.tokens.list(user.id);
    expect(tokens.map((t) => t.state)).toEqual(["active"]);
    expect(s.events.some((e) => e.type === "admin.token_enrolled" && e.by === "self:bob")).toBe(true);
    // The confirming code cannot sign in; the next one can.
    expect((await signIn(s.browser(), "bob", "correct horse", code(T0, secret))).status).toBe(401);
    expect((await signIn(s.browser(), "bob", "correct horse", code(T0 + 30_000, secret))).status).toBe(303);
  });

  test("a pending seed expires", async () => {
    // A session that outlives the pending seed.
    const s = await setUp({ patch: (c) => void (c.self_service.idle_timeout_s = 3600) });
    await s.addUser("bob", { token: false });
    const { b, home } = await linkSession(s, "bob");
    await b.post("/self-service/totp", { csrf: csrfOf(home) });
    const page = await (await b.get("/self-service/totp")).text();
    const secret = decodeBase32(/id="secret">([A-Z2-7 ]+)</.exec(page)![1]!.replace(/ /g, ""));
    s.setNow(T0 + s.deps.config.self_service.pending_totp_ttl_s * 1000 + 1);
    expect((await b.post("/self-service/totp/confirm", { csrf: csrfOf(page), code: code(s.deps.now(), secret) })).status).toBe(409);
    expect((await b.get("/self-service/totp")).status).toBe(303);
  });
});

describe("removal", () => {
  test("one of two tokens can be removed; the last one cannot; another user's never", async () => {
    const s = await setUp();
    const { user } = await s.addUser("carol");
    const second = await s.store.tokens.add({ serial: "T-carol-2", userId: user.id, kind: "totp", secret: SEED, algorithm: "SHA1", digits: 6, period: 30, state: "active" });
    const { token: davesToken } = await s.addUser("dave");
    const { b, home } = await linkSession(s, "carol");
    expect((await b.post(`/self-service/tokens/${davesToken!.id}/remove`, { csrf: csrfOf(home) })).status).toBe(409);
    expect(await s.store.tokens.findById(davesToken!.id)).toBeDefined();
    expect((await b.post(`/self-service/tokens/${second.id}/remove`, { csrf: csrfOf(home) })).status).toBe(303);
    expect(await s.store.tokens.findById(second.id)).toBeUndefined();
    expect(s.events.some((e) => e.type === "admin.token_removed" && e.token === second.id && e.by === "self:carol")).toBe(true);
    const last = (await s.store.tokens.list(user.id))[0]!;
    const r = await b.post(`/self-service/tokens/${last.id}/remove`, { csrf: csrfOf(home) });
    expect(r.status).toBe(409);
    expect(await r.text()).toContain("ask an administrator");
    expect(LAST_FACTOR).toContain("administrator");
    expect(await s.store.tokens.findById(last.id)).toBeDefined();
    expect(s.events.some((e) => e.type === "selfservice.removal_refused" && e.reason === "last_factor")).toBe(true);
  });

  test("two removals at once never remove the last two tokens", async () => {
    const s = await setUp();
    const { user } = await s.addUser("erin");
    await s.store.tokens.add({ serial: "T-erin-2", userId: user.id, kind: "totp", secret: SEED, algorithm: "SHA1", digits: 6, period: 30, state: "active" });
    const { b, home } = await linkSession(s, "erin");
    const ids = (await s.store.tokens.list(user.id)).map((t) => t.id);
    const statuses = await Promise.all(ids.map((id) => b.post(`/self-service/tokens/${id}/remove`, { csrf: csrfOf(home) }).then((r) => r.status)));
    expect(statuses.sort()).toEqual([303, 409]);
    expect((await s.store.tokens.list(user.id)).length).toBe(1);
  });

  test("a device: the last factor is refused; beside a token it is removed, audited as self", async () => {
    const s = await setUp();
    const { user } = await s.addUser("fred", { token: false });
    const device = async (id: string) => {
      await s.store.devices.addEnrolment({ codeHash: `h-${id}`, userId: user.id, createdAt: T0, expiresAt: T0 + 60_000 });
      await s.store.devices.enrol(`h-${id}`, T0, { id, name: `phone ${id.slice(0, 2)}`, publicKey: { kty: "EC", crv: "P-256", x: "x", y: "y" }, push: null });
    };
    await device("AAAAAAAAAAAAAAAAAAAAAA");
    const { b, home } = await linkSession(s, "fred");
    expect(home).toContain("phone AA");
    const r = await b.post("/self-service/devices/AAAAAAAAAAAAAAAAAAAAAA/remove", { csrf: csrfOf(home) });
    expect(r.status).toBe(409);
    expect(await r.text()).toContain("ask an administrator");
    await s.store.tokens.add({ serial: "T-fred", userId: user.id, kind: "totp", secret: SEED, algorithm: "SHA1", digits: 6, period: 30, state: "active" });
    expect((await b.post("/self-service/devices/AAAAAAAAAAAAAAAAAAAAAA/remove", { csrf: csrfOf(home) })).status).toBe(303);
    expect((await s.store.devices.get("AAAAAAAAAAAAAAAAAAAAAA"))?.removedAt).not.toBeNull();
    expect(s.events.some((e) => e.type === "admin.device_removed" && e.by === "self:fred")).toBe(true);
    // Gone now: a second removal is refused as not the user's.
    expect((await b.post("/self-service/devices/AAAAAAAAAAAAAAAAAAAAAA/remove", { csrf: csrfOf(home) })).status).toBe(409);
  });

  test("the approver-app button makes a device enrolment link audited as self", async () => {
    const s = await setUp();
    await s.addUser("gina", { token: false });
    const { b, home } = await linkSession(s, "gina");
    const r = await b.post("/self-service/app", { csrf: csrfOf(home) });
    expect(r.status).toBe(200);
    expect(await r.text()).toMatch(/href="https:\/\/mfa\.example\.test\/app\/#enrol=[A-Za-z0-9_-]{22}"/);
    expect(s.events.some((e) => e.type === "admin.device_enrolment_created" && e.user === "gina" && e.by === "self:gina")).toBe(true);
  });

  test("with allow_totp_sign_in off, the form is gone and a posted password is refused", async () => {
    const s = await setUp({ patch: (c) => void (c.self_service.allow_totp_sign_in = false) });
    await s.addUser("alice");
    const b = s.browser();
    const page = await (await b.get("/self-service")).text();
    expect(page).not.toContain('id="password"');
    // No form, so no CSRF token either: refused as a stale form (403) before the switch is even read.
    const r = await b.post("/self-service/sign-in", { csrf: csrfOf(page), username: "alice", password: "correct horse", code: code(T0) });
    expect(r.status).toBe(403);
    expect(s.events.filter((e) => e.type.startsWith("auth."))).toEqual([]);
  });

  test("a forged CSRF token changes nothing", async () => {
    const s = await setUp();
    const { user } = await s.addUser("carol");
    await s.store.tokens.add({ serial: "T-carol-2", userId: user.id, kind: "totp", secret: SEED, algorithm: "SHA1", digits: 6, period: 30, state: "active" });
    const { b } = await linkSession(s, "carol");
    const t = (await s.store.tokens.list(user.id))[0]!;
    expect((await b.post(`/self-service/tokens/${t.id}/remove`, { csrf: "x" })).status).toBe(403);
    expect(await s.store.tokens.findById(t.id)).toBeDefined();
  });
});

/** The portal with the approver app wired in: a real ApprovalService and AppRequests on the same store, no SMS. */
async function setUpApp({ patch, appSettings = {} }: { patch?: (c: Config) => void; appSettings?: Partial<AppSettings> } = {}) {
  let t = T0;
  const events: AuditEvent[] = [];
  const made = await testDeps({
    tls: false,
    now: () => t,
    audit: (e) => void events.push(e),
    configPatch: (c) => {
      c.self_service.enabled = true;
      c.http.public_url = "https://mfa.example.test";
      patch?.(c);
    },
  });
  store = made.store;
  dir = made.dir;
  const secret = await made.store.approvals.serverSecret(() => new Uint8Array(randomBytes(32)));
  const random = (n: number) => new Uint8Array(randomBytes(n));
  const approvals = new ApprovalService({
    approvals: made.store.approvals,
    dispatcherFor: () => {
      throw new Error("no SMS in these tests");
    },
    publicUrl: "https://mfa.example.test",
    smsMaxLength: 300,
    emailSubject: "x",
    secret,
    now: () => t,
    random,
    log: () => {},
    audit: (e) => void events.push(e),
    hub: new WaiterHub(made.store.approvals, { now: () => t, schedule: () => () => {} }),
  });
  const app = new AppRequests({ store: made.store, rateLimits: made.store.rateLimits, approvals, secret, settings: { ...DEFAULT_APP_SETTINGS, ...appSettings }, now: () => t, audit: (e) => void events.push(e), log: () => {} });
  const noSms = {
    send: async () => {
      throw new Error("no SMS in these tests");
    },
    verify: async () => {
      throw new Error("no SMS in these tests");
    },
  };
  const engine = new Engine(
    made.store,
    { realms: "strip", window: 1, hotpLookAhead: 10, challengeTtlMs: 60_000, challengeMaxFailures: 3, otpPrompt: "Code", retryPrompt: "Again", lockout: DEFAULT_LOCKOUT, passwords: plain, phone: { approvals, smsCodes: noSms, app } },
    (e) => void events.push(e),
  );
  made.deps.engine = engine;
  made.deps.app = app;
  made.deps.rateLimits = made.store.rateLimits;
  const web = buildPublicApp(made.deps, PUBLIC_ROUTES);
  let n = 0;
  const addUser = async (name: string, { device = true, type = "touch" as const }: { device?: boolean; type?: "touch" } = {}) => {
    const user = await made.store.users.add({ username: name, passwordHash: "plain:correct horse", type, phone: null, email: null, disabled: false, expiresAt: null, directory: null, externalId: null, directoryPhone: null });
    if (device) {
      const id = `dev${String(++n).padStart(19, "0")}`;
      await made.store.devices.addEnrolment({ codeHash: `h-${id}`, userId: user.id, createdAt: t, expiresAt: t + 60_000 });
      await made.store.devices.enrol(`h-${id}`, t, { id, name: "phone", publicKey: { kty: "EC", crv: "P-256", x: "x", y: "y" }, push: null });
    }
    return user;
  };
  const device = async (name: string) => (await made.store.devices.list({ userId: (await made.store.users.findByName(name))!.id }))[0]!;
  return { app, web, store: made.store, events, addUser, device, advance: (ms: number) => void (t += ms), browser: () => new Browser(web) };
}

describe("sign-in with the approver app", () => {
  test("an empty code asks the app: the request is of kind self-service, v2 only; the page waits; approving starts the session", async () => {
    const s = await setUpApp();
    await s.addUser("alice");
    const b = s.browser();
    const r = await signIn(b, "alice", "correct horse", "");
    expect(r.status).toBe(303);
    expect([...b.cookies.keys()]).toContain("portcullis-ss-wait");
    expect(b.lastSetCookie.find((l) => l.startsWith("portcullis-ss-wait="))).toMatch(/HttpOnly; SameSite=Strict$/);
    const page = await (await b.get("/self-service")).text();
    expect(page).toContain("Approve the sign-in in your app");
    const number = Number(/id="match"[^>]*>(\d+)</.exec(page)![1]);
    expect((await (await b.get("/self-service/sign-in/status")).json()) as unknown).toEqual({ state: "waiting" });
    // Seen by a v2 client, never by a v1 client.
    expect(await s.app.list("alice", 1)).toEqual([]);
    const [v] = await s.app.list("alice", 2);
    expect(v).toMatchObject({ kind: "self-service", service: "self-service", user: "alice" });
    expect(v!.choices).toContain(number);
    expect(v!.code).toBeUndefined();
    // Continue before the answer: still waiting (a new State), no session.
    const early = await b.post("/self-service/sign-in/continue", { csrf: csrfOf(page) });
    expect(early.status).toBe(200);
    expect(await early.text()).toContain("Approve the sign-in in your app");
    expect(await s.app.answer(await s.device("alice"), { username: "alice" }, v!.id, "approve", number, 2)).toEqual({ ok: true, status: "approved" });
    expect((await (await b.get("/self-service/sign-in/status")).json()) as unknown).toEqual({ state: "answered" });
    const done = await b.post("/self-service/sign-in/continue", { csrf: csrfOf(page) });
    expect(done.status).toBe(303);
    expect(b.cookies.has("portcullis-ss-wait")).toBe(false);
    expect(await (await b.get("/self-service")).text()).toContain('id="who">alice<');
    expect(s.events).toContainEqual(expect.objectContaining({ type: "selfservice.signed_in", user: "alice", method: "app" }));
    expect(s.events).toContainEqual(expect.objectContaining({ type: "auth.success", channel: "self-service", factors: ["password", "approval"] }));
    expect(s.events).toContainEqual(expect.objectContaining({ type: "approval.created", kind: "self-service", client: "self-service" }));
  });

  test("a rejection, a wrong number and an expiry each end with the one generic text; a rejection starts the back-off", async () => {
    const s = await setUpApp();
    await s.addUser("bob");
    const b = s.browser();
    await signIn(b, "bob", "correct horse", "");
    const [v] = await s.app.list("bob", 2);
    const page = await (await b.get("/self-service")).text();
    await s.app.answer(await s.device("bob"), { username: "bob" }, v!.id, "reject", undefined, 2);
    const r = await b.post("/self-service/sign-in/continue", { csrf: csrfOf(page) });
    expect(r.status).toBe(401);
    expect(await r.text()).toContain(SIGN_IN_FAILED);
    expect(b.cookies.has("portcullis-ss-wait")).toBe(false);
    expect(s.events).toContainEqual(expect.objectContaining({ type: "auth.failure", channel: "self-service", reason: "approval_rejected" }));
    // The back-off refuses the next request before anything is sent; the page is the same.
    const again = await signIn(b, "bob", "correct horse", "");
    expect(again.status).toBe(401);
    expect(await again.text()).toContain(SIGN_IN_FAILED);
    expect(s.events).toContainEqual(expect.objectContaining({ type: "approval.limited", kind: "self-service", reason: "backoff" }));

    const s2 = await setUpApp({ appSettings: { rejectBackoffMs: 0 } });
    await s2.addUser("carol");
    const b2 = s2.browser();
    await signIn(b2, "carol", "correct horse", "");
    const page2 = await (await b2.get("/self-service")).text();
    s2.advance(91_000);
    expect((await (await b2.get("/self-service/sign-in/status")).json()) as unknown).toEqual({ state: "answered" });
    const expired = await b2.post("/self-service/sign-in/continue", { csrf: csrfOf(page2) });
    expect(expired.status).toBe(401);
    expect(await expired.text()).toContain(SIGN_IN_FAILED);
  });

  test("no device, a wrong password and an unknown user look alike, and nothing is asked", async () => {
    const s = await setUpApp();
    await s.addUser("dave", { device: false });
    await s.addUser("erin");
    for (const [name, password] of [
      ["dave", "correct horse"],
      ["erin", "wrong"],
      ["nobody", "correct horse"],
    ] as const) {
      const r = await signIn(s.browser(), name, password, "");
      expect(r.status).toBe(401);
      expect(await r.text()).toContain(SIGN_IN_FAILED);
    }
    expect(s.events).toContainEqual(expect.objectContaining({ type: "auth.failure", reason: "no_device", user: "dave" }));
    expect(s.events.some((e) => e.type === "approval.created")).toBe(false);
  });

  test("Cancel withdraws the approval; a second browser cannot ride on a waiting sign-in", async () => {
    const s = await setUpApp();
    await s.addUser("frank");
    const a = s.browser();
    await signIn(a, "frank", "correct horse", "");
    const [v] = await s.app.list("frank", 2);
    const other = await signIn(s.browser(), "frank", "correct horse", "");
    expect(other.status).toBe(401);
    expect(s.events).toContainEqual(expect.objectContaining({ type: "auth.failure", reason: "approval_busy" }));
    const page = await (await a.get("/self-service")).text();
    expect((await a.post("/self-service/sign-in/cancel", { csrf: csrfOf(page) })).status).toBe(303);
    expect((await s.store.approvals.get(v!.id))!.state).toBe("cancelled");
    expect(a.cookies.has("portcullis-ss-wait")).toBe(false);
    expect(await (await a.get("/self-service")).text()).toContain('action="/self-service/sign-in"');
  });

  test("a forged or altered wait cookie is ignored; Continue needs the form's CSRF token", async () => {
    const s = await setUpApp();
    await s.addUser("gina");
    const b = s.browser();
    await signIn(b, "gina", "correct horse", "");
    const page = await (await b.get("/self-service")).text();
    expect((await b.post("/self-service/sign-in/continue", { csrf: "x" })).status).toBe(403);
    const real = b.cookies.get("portcullis-ss-wait")!;
    b.cookies.set("portcullis-ss-wait", real.slice(0, -2) + (real.endsWith("A") ? "BB" : "AA"));
    expect((await (await b.get("/self-service/sign-in/status")).json()) as unknown).toEqual({ state: "none" });
    expect(await (await b.get("/self-service")).text()).toContain('action="/self-service/sign-in"');
    const r = await b.post("/self-service/sign-in/continue", { csrf: csrfOf(page) });
    expect(r.status).toBe(303);
    expect(b.cookies.has("portcullis-ss")).toBe(false);
  });

  test("allow_app_sign_in = false: an empty code is a failed code sign-in, and the field is required again", async () => {
    const s = await setUpApp({ patch: (c) => void (c.self_service.allow_app_sign_in = false) });
    await s.addUser("hank");
    const b = s.browser();
    expect(await (await b.get("/self-service")).text()).toMatch(/id="code"[^>]*required/);
    const r = await signIn(b, "hank", "correct horse", "");
    expect(r.status).toBe(401);
    expect(s.events.some((e) => e.type === "approval.created")).toBe(false);
  });
});
