// The self-service portal on the public listener (docs/self-service.md), mounted only when
// `[self_service] enabled = true`; otherwise every /self-service path answers 404.
//
//   GET  /self-service                     sign-in form, or the signed-in overview
//   GET  /self-service/style.css           APPROVAL_CSS + SELF_SERVICE_CSS
//   POST /self-service/sign-in             username, password, code (checked by the engine as a RADIUS login);
//                                          an empty code: the password, then an approver-app approval
//   GET  /self-service/sign-in/status      the waiting sign-in's approval: {"state":"waiting"|"answered"|"none"}
//   POST /self-service/sign-in/continue    the waiting sign-in's next leg: the session starts once approved
//   POST /self-service/sign-in/cancel      withdraws the waiting sign-in's approval
//   GET  /self-service/wait.js             the waiting page's poll (progressive enhancement)
//   GET  /self-service/link/{code}         an administrator's link: a page with a Continue button
//   POST /self-service/link                uses the link (single use) and signs in
//   POST /self-service/sign-out
//   POST /self-service/totp                starts a TOTP enrolment (a sealed pending seed in the session)
//   GET  /self-service/totp                its QR code, secret and confirmation form
//   POST /self-service/totp/confirm        one valid code makes it an active token
//   POST /self-service/totp/cancel
//   POST /self-service/app                 an approver-app enrolment link and its QR code
//   POST /self-service/tokens/{id}/remove, /self-service/devices/{id}/remove
//
// Every change goes through the admin operations (src/admin/*) with the actor "self:<user>", so it
// is audited like an administrator's, and a user acts only on their own tokens and devices. Every
// failed sign-in shows the same text, whatever the reason.
//
// A sign-in with the approver app is a RADIUS challenge-mode login in all but transport: the engine
// checks the password and opens an app request of kind "self-service" (the [app] limits against
// fatigue and number matching apply), answering a challenge; the browser keeps its State in the
// sealed wait cookie, the page polls the approval (read only), and the next leg (the engine again,
// the State consumed once) starts the session when the approval is in.

import { createHash } from "node:crypto";
import type { Context } from "hono";
import { getCookie } from "hono/cookie";
import type { AdminAudit } from "../admin/audit.ts";
import type { AdminContext } from "../admin/context.ts";
import { deleteDevice, enrolDevice, listDevices } from "../admin/devices.ts";
import { ENROL_LINK_CODE, hashEnrolLinkCode } from "../admin/enrol-links.ts";
import { AdminError } from "../admin/errors.ts";
import { enrolToken, listTokens, removeToken } from "../admin/tokens.ts";
import type { AuditEvent } from "../audit/events.ts";
import type { Attempt, Channel, Decision } from "../auth/attempt.ts";
import { APPROVAL_CSS } from "../http/pages/approval.tsx";
import type { HttpEnv, RouteModule } from "../http/types.ts";
import { encodeBase32, generateSecret, otpauthURI, svgQR, verifyTOTP } from "../otp/index.ts";
import type { SelfServiceMethod, SelfServiceSession, User } from "../store/types.ts";
import { AppEnrolPage, HomePage, LinkPage, ProblemPage, SELF_SERVICE_CSS, SELF_SERVICE_CSS_PATH, SELF_SERVICE_WAIT_JS, SELF_SERVICE_WAIT_JS_PATH, SignInPage, TotpPage, WaitPage } from "./pages.tsx";
import { clearCookie, cookieNames, csrfToken, csrfValid, newCookieValue, openWaiting, readCookie, sealWaiting, sessionIdHash, writeCookie, writeWaitCookie, type WaitingSignIn } from "./session.ts";

/** The one text of every failed sign-in: it never tells whether the user exists or which part was wrong. */
export const SIGN_IN_FAILED = "Sign-in failed. Check your user name, password and code, and try again.";
/** The one text of every refused link: unknown, used and expired look the same. */
export const LINK_REFUSED = "This link cannot be used. It may have been used already or have expired. Ask your administrator for a new one.";
export const LAST_FACTOR = "This is your last sign-in method, so you cannot remove it here. Add another one first, or ask an administrator to remove it.";
const STALE_FORM = "This form has expired. Go back, reload the page and try again.";
const BUSY = "The service is busy. Try again in a moment.";
const TOO_MANY = "Too many sign-in attempts from your network. Wait a few minutes and try again.";

const NOTICES: Record<string, string> = {
  "totp-added": "Your authenticator app is ready: it now works for signing in.",
  "token-removed": "The token was removed.",
  "device-removed": "The device was removed.",
};

/** How long after its approval ended a waiting page is still shown (its Continue then says what happened). */
const STALE_WAIT_MS = 300_000;

/** The longest field accepted: RADIUS User-Password carries at most 128 octets (RFC 2865 §5.2); names are shorter. */
const MAX_FIELD = 256;

/** The audit port of a user acting on their own account: actor "self:<user>". */
export function selfAudit(emit: (event: AuditEvent) => void, username: string): AdminAudit {
  const actor = { name: `self:${username}`, role: "operator" } as const;
  return {
    actor,
    async change(change, describe) {
      const result = await change();
      const event = describe(result);
      if (event !== null) emit({ ...event, by: actor.name } as AuditEvent);
      return result;
    },
    async note(event) {
      emit({ ...event, by: actor.name } as AuditEvent);
    },
  };
}

interface Signed {
  session: SelfServiceSession;
  user: User;
  /** The cookie value (the CSRF token is derived from it). */
  value: string;
}

/** Registers the portal's routes when `[self_service] enabled`; nothing otherwise. */
export const selfServiceRoutes: RouteModule = (app, deps) => {
  const settings = deps.config.self_service;
  if (!settings.enabled) return;
  deps.log("info", "self_service.enabled", {
    totp_sign_in: settings.allow_totp_sign_in,
    totp_enrolment: settings.allow_totp_enrolment,
    app_enrolment: settings.allow_app_enrolment,
    removal: settings.allow_removal,
    idle_timeout_s: settings.idle_timeout_s,
    session_lifetime_s: settings.session_lifetime_s,
  });
  if (!deps.config.http.public_url) deps.log("warn", "self_service.no_public_url", { detail: "http.public_url is empty: no sign-in link can be made and the approver app cannot be added from the portal" });
  const names = cookieNames(deps.tls);
  const idleMs = settings.idle_timeout_s * 1000;
  const channel: Channel = {
    kind: "self-service",
    name: "self-service",
    firstFactor: "password",
    otpMode: "concat",
    allowPasswordOnly: false,
    directories: settings.directories.length > 0 ? settings.directories : null,
  };
  // The approver-app sign-in: the same channel name (challenge State is bound to it), in challenge
  // mode, with the portal's own approval time and number matching.
  const appChannel: Channel = {
    ...channel,
    otpMode: "challenge",
    phone: { approvalHoldS: settings.app_sign_in_timeout_s, approvalMode: "challenge", approvalNumberMatch: settings.app_sign_in_number_match, smsCodeLength: null, smsCodeAlphabet: null },
  };
  /** Whether the app sign-in is offered now (the approver app's service loads with the delivery stack). */
  const appSignIn = () => settings.allow_app_sign_in && deps.app !== undefined;
  const signInPage = async (c: Context<HttpEnv>, error?: string) => (
    <SignInPage csrf={await preToken(c)} passwordSignIn={settings.allow_totp_sign_in} appSignIn={appSignIn()} {...(error ? { error } : {})} />
  );
  const css = APPROVAL_CSS + SELF_SERVICE_CSS;
  let secret: Promise<Uint8Array> | undefined;
  const serverSecret = () => (secret ??= deps.store.serverSecrets.get("self_service_csrf", () => deps.random(32)).catch((err) => ((secret = undefined), Promise.reject(err))));

  const html = (c: Context<HttpEnv>, page: unknown, status: 200 | 400 | 401 | 403 | 404 | 409 | 429 | 503 = 200) => c.html("<!doctype html>" + String(page), status);

  /** The signed-in session of this request, moved on; undefined (and the cookie cleared) when there is none. */
  async function signedIn(c: Context<HttpEnv>): Promise<Signed | undefined> {
    const value = readCookie(c, names.session);
    if (!value) return undefined;
    const session = await deps.store.selfService.touchSession(sessionIdHash(value), deps.now(), idleMs);
    const user = session && (await deps.store.users.findById(session.userId));
    if (!session || !user || user.disabled) {
      clearCookie(c, names.session, deps.tls);
      return undefined;
    }
    return { session, user, value };
  }

  /** The pre-session cookie's value (set now when absent) and the CSRF token of forms made for it. */
  async function preToken(c: Context<HttpEnv>): Promise<string> {
    let value = readCookie(c, names.pre);
    if (!value) {
      value = newCookieValue(deps.random);
      writeCookie(c, names.pre, value, deps.tls);
    }
    return csrfToken(await serverSecret(), "pre", value);
  }

  async function form(c: Context<HttpEnv>): Promise<Record<string, string> | undefined> {
    try {
      const body = await c.req.parseBody();
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(body)) {
        if (typeof v !== "string" || v.length > MAX_FIELD) return undefined;
        out[k] = v;
      }
      return out;
    } catch {
      return undefined;
    }
  }

  /**
   * Counts one sign-in attempt of the client address against `sign_ins_per_minute` and
   * `sign_ins_per_hour` (before any check); false when a limit refuses it.
   */
  async function admitted(c: Context<HttpEnv>): Promise<boolean> {
    if (!deps.rateLimits) return true;
    const addr = createHash("sha256").update(`self-service\n${c.get("clientIp")}`).digest("hex").slice(0, 32);
    const buckets = [
      { key: `selfservice:addr:${addr}:60000`, windowMs: 60_000, limit: settings.sign_ins_per_minute },
      { key: `selfservice:addr:${addr}:3600000`, windowMs: 3_600_000, limit: settings.sign_ins_per_hour },
    ].filter((b) => b.limit > 0);
    if (buckets.length === 0) return true;
    const r = await deps.rateLimits.consume(buckets, deps.now());
    if (!r.allowed) deps.audit({ type: "selfservice.rate_limited", client: c.get("clientIp") });
    return r.allowed;
  }

  /** Starts a session for `user` and answers 303 to the overview. */
  async function startSession(c: Context<HttpEnv>, user: User, method: SelfServiceMethod): Promise<Response> {
    const now = deps.now();
    await deps.store.selfService.purgeExpired(now, idleMs);
    const value = newCookieValue(deps.random);
    await deps.store.selfService.addSession({ idHash: sessionIdHash(value), userId: user.id, method, createdAt: now, lastSeenAt: now, expiresAt: now + settings.session_lifetime_s * 1000 });
    writeCookie(c, names.session, value, deps.tls);
    clearCookie(c, names.pre, deps.tls);
    deps.audit({ type: "selfservice.signed_in", user: user.username, method, client: c.get("clientIp") });
    return c.redirect("/self-service", 303);
  }

  function adminContext(user: User): AdminContext {
    return { config: deps.config, store: deps.store, audit: selfAudit(deps.audit, user.username), now: deps.now, random: deps.random };
  }

  async function home(c: Context<HttpEnv>, s: Signed, { notice, error, status = 200 }: { notice?: string; error?: string; status?: 200 | 409 } = {}): Promise<Response> {
    const [tokens, devices] = await Promise.all([listTokens(deps, { user: s.user.username }), listDevices(deps.store, { user: s.user })]);
    return html(
      c,
      <HomePage
        user={s.user.username}
        csrf={csrfToken(await serverSecret(), "session", s.value)}
        tokens={tokens}
        devices={devices}
        canEnrolTotp={settings.allow_totp_enrolment}
        canEnrolApp={settings.allow_app_enrolment && deps.config.http.public_url !== ""}
        canRemove={settings.allow_removal}
        notice={notice}
        error={error}
      />,
      status,
    );
  }

  /** A POST of a signed-in user with a valid CSRF token: its session and form, or the answer that refuses it. */
  async function signedPost(c: Context<HttpEnv>): Promise<{ s: Signed; body: Record<string, string> } | Response> {
    const s = await signedIn(c);
    if (!s) return c.redirect("/self-service", 303);
    const body = await form(c);
    if (!body || !csrfValid(await serverSecret(), "session", s.value, body.csrf)) return html(c, <ProblemPage title="Form expired" text={STALE_FORM} />, 403);
    return { s, body };
  }

  // Removals of one user run one at a time in this process, so that two at once cannot both see
  // "another factor is left" and remove the last two.
  const removals = new Map<number, Promise<unknown>>();
  function oneAtATime<T>(userId: number, run: () => Promise<T>): Promise<T> {
    const previous = removals.get(userId) ?? Promise.resolve();
    const next = previous.then(run, run);
    const settled = next.catch(() => {});
    removals.set(userId, settled);
    void settled.then(() => {
      if (removals.get(userId) === settled) removals.delete(userId);
    });
    return next;
  }

  /** Active tokens plus live devices: removing the last of them takes an administrator. */
  async function factorCount(user: User): Promise<number> {
    const [tokens, devices] = await Promise.all([deps.store.tokens.activeForUser(user.id), deps.store.devices.list({ userId: user.id })]);
    return tokens.length + devices.length;
  }

  app.get(SELF_SERVICE_CSS_PATH, (c) => c.body(css, 200, { "Content-Type": "text/css; charset=utf-8", "Cache-Control": "no-cache" }));
  app.get(SELF_SERVICE_WAIT_JS_PATH, (c) => c.body(SELF_SERVICE_WAIT_JS, 200, { "Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "no-cache" }));

  /** The sign-in this browser waits on (the sealed wait cookie), or undefined. */
  async function waiting(c: Context<HttpEnv>): Promise<WaitingSignIn | undefined> {
    return openWaiting(await serverSecret(), getCookie(c, names.wait));
  }

  async function waitPage(c: Context<HttpEnv>, w: WaitingSignIn): Promise<Response> {
    c.header("Cache-Control", "no-store");
    return html(c, <WaitPage csrf={await preToken(c)} number={w.number} statusPath="/self-service/sign-in/status" />);
  }

  /**
   * A challenge from the engine for an approver-app sign-in: the wait cookie keeps its State, the
   * approval and who; the browser goes to the waiting page.
   */
  async function wait(c: Context<HttpEnv>, username: string, decision: Extract<Decision, { kind: "challenge" }>): Promise<Response> {
    if (!decision.approval) return c.redirect("/self-service", 303);
    const w: WaitingSignIn = { state: decision.state, approval: decision.approval.id, username, number: decision.approval.number, expiresAt: decision.approval.expiresAt };
    writeWaitCookie(c, names.wait, sealWaiting(await serverSecret(), w), deps.tls);
    return c.redirect("/self-service", 303);
  }

  /** Withdraws the approval of a sign-in this browser gives up (a new sign-in, Cancel). */
  async function giveUp(c: Context<HttpEnv>, w: WaitingSignIn | undefined): Promise<void> {
    clearCookie(c, names.wait, deps.tls);
    if (w && deps.app) await deps.app.cancel(w.approval);
  }

  app.get("/self-service", async (c) => {
    const s = await signedIn(c);
    if (s) {
      const notice = NOTICES[c.req.query("notice") ?? ""];
      return home(c, s, notice ? { notice } : {});
    }
    const w = await waiting(c);
    // A wait long over (the browser kept its cookie) starts again at the sign-in form.
    if (w && deps.now() <= w.expiresAt + STALE_WAIT_MS) return waitPage(c, w);
    if (w) clearCookie(c, names.wait, deps.tls);
    return html(c, await signInPage(c));
  });
  app.get("/self-service/", (c) => c.redirect("/self-service", 301));

  app.post("/self-service/sign-in", async (c) => {
    const body = await form(c);
    if (!body || !csrfValid(await serverSecret(), "pre", readCookie(c, names.pre), body.csrf)) return html(c, <ProblemPage title="Form expired" text={STALE_FORM} />, 403);
    if (!(await admitted(c))) return html(c, await signInPage(c, TOO_MANY), 429);
    const username = (body.username ?? "").trim();
    const code = (body.code ?? "").trim();
    // The typed name is not shown again: users type passwords into that field too.
    const failed = async () => html(c, await signInPage(c, SIGN_IN_FAILED), 401);
    // A sign-in started again in this browser withdraws the one it was waiting on.
    const before = await waiting(c);
    if (before) await giveUp(c, before);
    const viaApp = code === "" && appSignIn();
    if (!viaApp && !settings.allow_totp_sign_in) return failed();
    const attempt: Attempt = { channel: viaApp ? appChannel : channel, username, method: "pap", now: deps.now(), source: `web:${c.get("clientIp")}` };
    const decision = viaApp ? await deps.engine.passwordAndApproval(attempt, body.password ?? "") : await deps.engine.passwordAndCode(attempt, body.password ?? "", code);
    if (decision.kind === "drop") return html(c, await signInPage(c, BUSY), 503);
    if (decision.kind === "challenge") return wait(c, username, decision);
    if (decision.kind !== "accept") return failed();
    const user = await deps.store.users.findByName(decision.user);
    if (!user) return failed();
    return startSession(c, user, "password_totp");
  });

  // The waiting page's poll: reads the approval only (nothing is consumed), so it may run any number
  // of times; "answered" covers every end (approved, rejected, expired, cancelled).
  app.get("/self-service/sign-in/status", async (c) => {
    c.header("Cache-Control", "no-store");
    const w = await waiting(c);
    const a = w && deps.app ? await deps.app.current(w.approval) : undefined;
    if (!a) return c.json({ state: "none" });
    return c.json({ state: a.state === "pending" ? "waiting" : "answered" });
  });

  app.post("/self-service/sign-in/continue", async (c) => {
    const body = await form(c);
    if (!body || !csrfValid(await serverSecret(), "pre", readCookie(c, names.pre), body.csrf)) return html(c, <ProblemPage title="Form expired" text={STALE_FORM} />, 403);
    const w = await waiting(c);
    if (!w) return c.redirect("/self-service", 303);
    // The next leg, as a RADIUS challenge-mode leg: the State is consumed, the user read again, and
    // the approval's answer decides (still pending: a new State, the page waits on).
    const attempt: Attempt = { channel: appChannel, username: w.username, method: "pap", secret: "", state: w.state, now: deps.now(), source: `web:${c.get("clientIp")}` };
    const decision = await deps.engine.authenticate(attempt);
    if (decision.kind === "challenge") {
      const next: WaitingSignIn = { ...w, state: decision.state };
      writeWaitCookie(c, names.wait, sealWaiting(await serverSecret(), next), deps.tls);
      return waitPage(c, next);
    }
    clearCookie(c, names.wait, deps.tls);
    if (decision.kind === "drop") return html(c, await signInPage(c, BUSY), 503);
    const user = decision.kind === "accept" ? await deps.store.users.findByName(decision.user) : undefined;
    if (!user) return html(c, await signInPage(c, SIGN_IN_FAILED), 401);
    return startSession(c, user, "app");
  });

  app.post("/self-service/sign-in/cancel", async (c) => {
    const body = await form(c);
    if (!body || !csrfValid(await serverSecret(), "pre", readCookie(c, names.pre), body.csrf)) return html(c, <ProblemPage title="Form expired" text={STALE_FORM} />, 403);
    await giveUp(c, await waiting(c));
    return c.redirect("/self-service", 303);
  });

  app.get("/self-service/link/:code", async (c) => {
    const code = c.req.param("code");
    if (!ENROL_LINK_CODE.test(code)) return html(c, <ProblemPage title="Link not valid" text={LINK_REFUSED} />, 404);
    return html(c, <LinkPage csrf={await preToken(c)} code={code} />);
  });

  app.post("/self-service/link", async (c) => {
    const body = await form(c);
    if (!body || !csrfValid(await serverSecret(), "pre", readCookie(c, names.pre), body.csrf)) return html(c, <ProblemPage title="Form expired" text={STALE_FORM} />, 403);
    if (!(await admitted(c))) return html(c, <ProblemPage title="Too many attempts" text={TOO_MANY} />, 429);
    const code = body.code ?? "";
    const userId = ENROL_LINK_CODE.test(code) ? await deps.store.selfService.consumeLink(hashEnrolLinkCode(code), deps.now()) : undefined;
    const user = userId === undefined ? undefined : await deps.store.users.findById(userId);
    if (!user || user.disabled) {
      deps.audit({ type: "selfservice.link_refused", client: c.get("clientIp") });
      return html(c, <ProblemPage title="Link not valid" text={LINK_REFUSED} />, 404);
    }
    return startSession(c, user, "link");
  });

  app.post("/self-service/sign-out", async (c) => {
    const r = await signedPost(c);
    if (r instanceof Response) return r;
    await deps.store.selfService.removeSession(r.s.session.idHash);
    clearCookie(c, names.session, deps.tls);
    deps.audit({ type: "selfservice.signed_out", user: r.s.user.username });
    return c.redirect("/self-service", 303);
  });

  // TOTP enrolment: the seed waits, sealed in the session, until a code from it is confirmed.
  const otp = deps.config.otp;
  async function totpPage(c: Context<HttpEnv>, s: Signed, pending: Uint8Array, error?: string, status: 200 | 400 = 200): Promise<Response> {
    const uri = otpauthURI({ kind: "totp", issuer: otp.issuer, account: s.user.username, secret: pending, algorithm: otp.default_algorithm, digits: otp.default_digits, period: otp.default_period });
    return html(
      c,
      <TotpPage
        csrf={csrfToken(await serverSecret(), "session", s.value)}
        svg={await svgQR(uri)}
        secret={encodeBase32(pending)}
        issuer={otp.issuer}
        account={s.user.username}
        digits={otp.default_digits}
        period={otp.default_period}
        algorithm={otp.default_algorithm}
        {...(error ? { error } : {})}
      />,
      status,
    );
  }

  app.post("/self-service/totp", async (c) => {
    const r = await signedPost(c);
    if (r instanceof Response) return r;
    if (!settings.allow_totp_enrolment) return home(c, r.s, { error: "Adding an authenticator app here is turned off.", status: 409 });
    const pending = generateSecret({ random: deps.random });
    await deps.store.selfService.setPending(r.s.session.idHash, { secret: pending, expiresAt: deps.now() + settings.pending_totp_ttl_s * 1000 });
    return c.redirect("/self-service/totp", 303);
  });

  app.get("/self-service/totp", async (c) => {
    const s = await signedIn(c);
    if (!s) return c.redirect("/self-service", 303);
    if (!s.session.pending) return c.redirect("/self-service", 303);
    return totpPage(c, s, s.session.pending.secret);
  });

  app.post("/self-service/totp/confirm", async (c) => {
    const r = await signedPost(c);
    if (r instanceof Response) return r;
    const { s, body } = r;
    const pending = s.session.pending;
    if (!pending || !settings.allow_totp_enrolment) return home(c, s, { error: "That enrolment has expired. Start again.", status: 409 });
    const now = deps.now();
    const params = { secret: pending.secret, algorithm: otp.default_algorithm, digits: otp.default_digits, period: otp.default_period, lastStep: 0, drift: 0 };
    const check = verifyTOTP(params, (body.code ?? "").trim(), { now, window: deps.config.otp.window });
    if (!check.ok) {
      deps.audit({ type: "selfservice.totp_unconfirmed", user: s.user.username });
      return totpPage(c, s, pending.secret, "That code does not match. Check the app and type the code it shows now.", 400);
    }
    // The seed becomes a token only now, and the confirming code is spent: it cannot be used to sign in.
    await deps.store.selfService.setPending(s.session.idHash, null);
    const { token } = await enrolToken(adminContext(s.user), { user: s.user.username, kind: "totp", secret: encodeBase32(pending.secret) });
    await deps.store.tokens.advanceTOTP(token.id, check.step, check.drift);
    return c.redirect("/self-service?notice=totp-added", 303);
  });

  app.post("/self-service/totp/cancel", async (c) => {
    const r = await signedPost(c);
    if (r instanceof Response) return r;
    await deps.store.selfService.setPending(r.s.session.idHash, null);
    return c.redirect("/self-service", 303);
  });

  app.post("/self-service/app", async (c) => {
    const r = await signedPost(c);
    if (r instanceof Response) return r;
    if (!settings.allow_app_enrolment || !deps.config.http.public_url) return home(c, r.s, { error: "Adding the approver app here is turned off.", status: 409 });
    const made = await enrolDevice(adminContext(r.s.user), r.s.user.username);
    const expires = new Date(made.expiresAt).toISOString().replace("T", " ").replace(/\.\d{3}Z$/, " UTC");
    return html(c, <AppEnrolPage csrf={csrfToken(await serverSecret(), "session", r.s.value)} link={made.link} svg={await svgQR(made.link)} expires={expires} />);
  });

  app.post("/self-service/tokens/:id/remove", async (c) => {
    const r = await signedPost(c);
    if (r instanceof Response) return r;
    const { s } = r;
    if (!settings.allow_removal) return home(c, s, { error: "Removing sign-in methods here is turned off.", status: 409 });
    const id = Number(c.req.param("id"));
    const token = Number.isSafeInteger(id) && id > 0 ? await deps.store.tokens.findById(id) : undefined;
    if (!token || token.userId !== s.user.id) {
      deps.audit({ type: "selfservice.removal_refused", user: s.user.username, what: "token", reason: "not_owner" });
      return home(c, s, { error: "That token is not yours or no longer exists.", status: 409 });
    }
    const removed = await oneAtATime(s.user.id, async () => {
      if (token.state === "active" && (await factorCount(s.user)) <= 1) return false;
      try {
        await removeToken(adminContext(s.user), token.id);
      } catch (err) {
        if (!(err instanceof AdminError && err.code === "not_found")) throw err;
      }
      return true;
    });
    if (!removed) {
      deps.audit({ type: "selfservice.removal_refused", user: s.user.username, what: "token", reason: "last_factor" });
      return home(c, s, { error: LAST_FACTOR, status: 409 });
    }
    return c.redirect("/self-service?notice=token-removed", 303);
  });

  app.post("/self-service/devices/:id/remove", async (c) => {
    const r = await signedPost(c);
    if (r instanceof Response) return r;
    const { s } = r;
    if (!settings.allow_removal) return home(c, s, { error: "Removing sign-in methods here is turned off.", status: 409 });
    const id = c.req.param("id");
    const device = /^[A-Za-z0-9_-]{22}$/.test(id) ? await deps.store.devices.get(id) : undefined;
    if (!device || device.userId !== s.user.id || device.removedAt !== null) {
      deps.audit({ type: "selfservice.removal_refused", user: s.user.username, what: "device", reason: "not_owner" });
      return home(c, s, { error: "That device is not yours or no longer exists.", status: 409 });
    }
    const removed = await oneAtATime(s.user.id, async () => {
      if ((await factorCount(s.user)) <= 1) return false;
      try {
        await deleteDevice(adminContext(s.user), device.id);
      } catch (err) {
        if (!(err instanceof AdminError && err.code === "not_found")) throw err;
      }
      return true;
    });
    if (!removed) {
      deps.audit({ type: "selfservice.removal_refused", user: s.user.username, what: "device", reason: "last_factor" });
      return home(c, s, { error: LAST_FACTOR, status: 409 });
    }
    return c.redirect("/self-service?notice=device-removed", 303);
  });
};

