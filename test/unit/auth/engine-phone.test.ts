// The phone chains through the engine, over a real SQLite store, the approval service and SMS codes
// on a recording SMS channel, a settable clock and a manually driven waiter hub: every state
// transition of types mobile (2), touch (6), touch-plus (7) and touch-mobile (8), held and in
// challenge mode, with their fallbacks, joins, limits and audit lines.

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { AuditEvent } from "../../../src/audit/events.ts";
import { Engine, type Attempt, type Channel, type Decision, type EngineOptions, type PasswordVerifier } from "../../../src/auth/engine.ts";
import { DEFAULT_LOCKOUT } from "../../../src/auth/lockout.ts";
import { PHONE_PROMPTS, PROVEN_PASSWORD_MESSAGES } from "../../../src/auth/messages.ts";
import { matchNumber } from "../../../src/auth/phone.ts";
import type { AuthType } from "../../../src/domain/auth-types.ts";
import { generateTOTP } from "../../../src/otp/index.ts";
import { DEFAULT_CLIENT_PHONE, type ClientPhoneSettings } from "../../../src/store/types.ts";
import type { WaitOutcome } from "../../../src/approvals/waiters.ts";
import { approvalHarness, cleanup, tempDir, type ApprovalHarness } from "../approvals/helpers.ts";

const SEED = new TextEncoder().encode("12345678901234567890");
const PHONE = "+46701234567";

const plain: PasswordVerifier = {
  async verify(p, hash) {
    return hash === `plain:${p}`;
  },
  async dummy() {},
};

let dir: string;
let h: ApprovalHarness;
let events: AuditEvent[];
let holds: Array<[WaitOutcome, number]>;

beforeEach(async () => {
  dir = tempDir();
  h = await approvalHarness({ dir });
  events = [];
  holds = [];
});
afterEach(async () => {
  await h.close();
  cleanup(dir);
});

const options = (over: Partial<EngineOptions> = {}): EngineOptions => ({
  realms: "strip",
  window: 1,
  hotpLookAhead: 10,
  challengeTtlMs: 120_000,
  challengeMaxFailures: 3,
  otpPrompt: "Enter your verification code",
  retryPrompt: "Wrong code, try again",
  lockout: { ...DEFAULT_LOCKOUT, codeThreshold: 10, codeIdentityCap: 10 },
  passwords: plain,
  phone: { approvals: h.service, smsCodes: h.codes, onHold: (o, s) => void holds.push([o, s]) },
  ...over,
});
const engine = (over: Partial<EngineOptions> = {}) => new Engine(h.store, options(over), (e) => void events.push(e));

const channel = (phone: Partial<ClientPhoneSettings> = {}, over: Partial<Channel> = {}): Channel => ({
  kind: "radius",
  name: "vpn",
  firstFactor: "password",
  otpMode: "challenge",
  allowPasswordOnly: false,
  directories: null,
  phone: { ...DEFAULT_CLIENT_PHONE, ...phone },
  ...over,
});
const HOLD = channel();
const CHALLENGE = channel({ approvalMode: "challenge", approvalHoldS: 60 });
const CONCAT = channel({}, { otpMode: "concat" });

async function addUser(name: string, type: AuthType, { phone = PHONE as string | null, token = true, email = null as string | null } = {}) {
  const user = await h.store.users.add({ username: name, passwordHash: "plain:pw", type, phone, email, disabled: false, expiresAt: null, directory: null, externalId: null, directoryPhone: null });
  if (token) await h.store.tokens.add({ serial: `T-${name}`, userId: user.id, kind: "totp", secret: SEED, algorithm: "SHA1", digits: 6, period: 30, state: "active" });
  return user;
}

const login = (ch: Channel, user: string, secret: string, extra: Partial<Attempt> = {}): Attempt => ({ channel: ch, username: user, secret, method: "pap", now: h.clock.t, ...extra });
const totp = () => generateTOTP({ secret: SEED, algorithm: "SHA1", digits: 6, period: 30 }, { now: h.clock.t });

function challenged(d: Decision): Extract<Decision, { kind: "challenge" }> {
  if (d.kind !== "challenge") throw new Error(`expected a challenge, got ${JSON.stringify(d)}`);
  return d;
}

/** The SMS code in the last message (template "{code} is your {client} code"). */
const lastCode = () => /^(\S+) is your /.exec(h.sms.sent.at(-1)!.text)![1]!;
/** The link token in message `n` (1-based). */
const linkToken = (n = h.sms.sent.length) => /\/ml\/([A-Za-z0-9_-]{43})/.exec(h.sms.sent[n - 1]!.text)![1]!;

/** Answers the approval page like a browser: GET for the CSRF token, then POST. */
async function answer(token: string, action: "approve" | "reject", pick?: number) {
  const view = await h.service.view(token);
  if (view.kind !== "pending") throw new Error(`page is ${view.kind}`);
  const form: { csrf: string; action: string; pick?: string } = { csrf: view.csrf, action };
  if (pick !== undefined) form.pick = String(pick);
  return h.service.answer(token, form);
}

/** Lets the engine reach its wait: the delivery and store steps are promises. */
async function until(what: string, probe: () => boolean) {
  for (let i = 0; i < 200; i++) {
    if (probe()) return;
    await sleep(2);
  }
  throw new Error(`never: ${what}`);
}

const steps = () => events.filter((e) => e.type === "auth.step").map((e) => (e.type === "auth.step" ? [e.factor, e.result, e.reason ?? null] : null));
const failures = () => events.filter((e) => e.type === "auth.failure");

describe("type mobile (2): SMS one-time code", () => {
  test("password → the code goes by SMS, Access-Challenge names the masked number → the code is accepted once", async () => {
    await addUser("alice", "mobile");
    const e = engine();
    const c = challenged(await e.authenticate(login(HOLD, "alice", "pw")));
    expect(c.prompt).toBe(PHONE_PROMPTS.smsCode("+46…67"));
    expect(c.timeoutS).toBe(300); // the code's lifetime, longer than the usual challenge
    expect(h.sms.sent).toHaveLength(1);
    expect(h.sms.sent[0]!.to).toBe(PHONE);
    expect(h.sms.sent[0]!.text).toMatch(/^\d{6} is your vpn code$/);
    expect(h.sms.sent[0]!.text).not.toContain("alice");
    const code = lastCode();
    expect(await e.authenticate(login(HOLD, "alice", code, { state: c.state }))).toEqual({ kind: "accept", user: "alice" });
    expect(events.find((x) => x.type === "auth.success")).toMatchObject({ factors: ["password", "sms"] });
    expect(steps()).toEqual([["sms", "asked", null]]);
    // the State is single-use, and the code with it
    expect(await e.authenticate(login(HOLD, "alice", code, { state: c.state }))).toMatchObject({ kind: "reject", reason: "state_unknown" });
    // a used code on the next login's State is a wrong code there
    const again = challenged(await e.authenticate(login(HOLD, "alice", "pw")));
    // (one chance in a million that the new code is the same six digits: then there is nothing to show)
    if (lastCode() !== code) expect(challenged(await e.authenticate(login(HOLD, "alice", code, { state: again.state }))).prompt).toBe("Wrong code, try again");
    expect(JSON.stringify(events)).not.toContain(code);
  });

  test("a wrong code is re-challenged (the code stays bound) and counts against the code back-off; the right code then works", async () => {
    await addUser("alice", "mobile");
    const e = engine();
    const c = challenged(await e.authenticate(login(HOLD, "alice", "pw", { source: "csid:10.0.0.9" })));
    const code = lastCode();
    const wrong = code === "000000" ? "111111" : "000000";
    const retry = challenged(await e.authenticate(login(HOLD, "alice", wrong, { state: c.state, source: "csid:10.0.0.9" })));
    expect(retry.prompt).toBe("Wrong code, try again");
    expect(await h.store.lockouts.get("alice", "code", "csid:10.0.0.9")).toMatchObject({ failures: 1 });
    expect(await e.authenticate(login(HOLD, "alice", code, { state: retry.state, source: "csid:10.0.0.9" }))).toEqual({ kind: "accept", user: "alice" });
    // the success cleared the counter it had found
    expect(await h.store.lockouts.get("alice", "code", "csid:10.0.0.9")).toBeUndefined();
  });

  test("wrong codes up to the limit invalidate the code: too_many_codes", async () => {
    await addUser("alice", "mobile");
    const e = engine();
    let state = challenged(await e.authenticate(login(HOLD, "alice", "pw"))).state;
    const wrong = lastCode() === "000000" ? "111111" : "000000";
    state = challenged(await e.authenticate(login(HOLD, "alice", wrong, { state }))).state;
    state = challenged(await e.authenticate(login(HOLD, "alice", wrong, { state }))).state;
    expect(await e.authenticate(login(HOLD, "alice", wrong, { state }))).toEqual({ kind: "reject", reason: "too_many_codes" });
    expect(h.events.filter((x) => x.type === "sms_code.invalidated")).toHaveLength(1);
  });

  test("an expired code is refused: code_expired", async () => {
    await addUser("alice", "mobile");
    const e = engine();
    const c = challenged(await e.authenticate(login(HOLD, "alice", "pw")));
    const code = lastCode();
    h.clock.t += 300_001; // the code's clock; the State is checked at the attempt's time
    expect(await e.authenticate(login(HOLD, "alice", code, { state: c.state, now: h.clock.t - 300_001 + 1000 }))).toEqual({ kind: "reject", reason: "code_expired" });
  });

  test("the client's code format is used", async () => {
    await addUser("alice", "mobile");
    challenged(await engine().authenticate(login(channel({ smsCodeLength: 9, smsCodeAlphabet: "alphanumeric" }), "alice", "pw")));
    expect(lastCode()).toMatch(/^[2-9A-HJKMNP-Z]{9}$/);
  });

  test("every channel fails → the TOTP token is asked for instead, with the documented prompt", async () => {
    await addUser("alice", "mobile");
    h.sms.script = [{ ok: false, reason: "gateway_error", detail: "503" }];
    const e = engine();
    const c = challenged(await e.authenticate(login(HOLD, "alice", "pw")));
    expect(c.prompt).toBe("Phone not reachable; enter the code from your authenticator app");
    expect(await e.authenticate(login(HOLD, "alice", totp(), { state: c.state }))).toEqual({ kind: "accept", user: "alice" });
    expect(events.find((x) => x.type === "auth.success")).toMatchObject({ factors: ["password", "otp"] });
    expect(steps()).toEqual([
      ["sms", "skipped", "not_delivered"],
      ["otp", "asked", null],
    ]);
  });

  test("delivery fails and no token → Access-Reject, generic, the audit line names the delivery failure", async () => {
    await addUser("alice", "mobile", { token: false });
    h.sms.script = [{ ok: false, reason: "gateway_error", detail: "503" }];
    expect(await engine().authenticate(login(HOLD, "alice", "pw"))).toEqual({ kind: "reject", reason: "phone_unreachable" });
    expect(failures().at(-1)).toMatchObject({ reason: "phone_unreachable", user: "alice", detail: "sms: not_delivered (all_channels_failed); otp: no_token" });
    expect(h.events.some((x) => x.type === "sms_code.not_delivered")).toBe(true);
  });

  test("no phone number and no token → phone_unreachable; no phone but a token → the token", async () => {
    await addUser("nophone", "mobile", { phone: null, token: false });
    expect(await engine().authenticate(login(HOLD, "nophone", "pw"))).toEqual({ kind: "reject", reason: "phone_unreachable" });
    await addUser("withtoken", "mobile", { phone: null });
    expect(challenged(await engine().authenticate(login(HOLD, "withtoken", "pw"))).prompt).toBe(PHONE_PROMPTS.unreachable);
    expect(h.sms.sent).toHaveLength(0);
  });

  test("a concat client cannot ask for a code: a clear Reply-Message after the proven password, a log line, nothing sent", async () => {
    await addUser("alice", "mobile");
    expect(await engine().authenticate(login(CONCAT, "alice", "pw"))).toEqual({ kind: "reject", reason: "challenge_unsupported", message: PROVEN_PASSWORD_MESSAGES.challenge_unsupported });
    expect(steps()).toEqual([
      ["sms", "skipped", "needs_challenge"],
      ["otp", "skipped", "needs_challenge"],
    ]);
    expect(h.sms.sent).toHaveLength(0);
    // a wrong password gets the generic reject
    expect(await engine().authenticate(login(CONCAT, "alice", "nope"))).toEqual({ kind: "reject", reason: "bad_password" });
  });

  test("without phone services the SMS step is skipped and the token asked", async () => {
    await addUser("alice", "mobile");
    expect(challenged(await engine({ phone: undefined }).authenticate(login(HOLD, "alice", "pw"))).prompt).toBe(PHONE_PROMPTS.unreachable);
  });

  test("phone services still loading: the attempt waits for them", async () => {
    await addUser("alice", "mobile");
    let ready!: (s: NonNullable<EngineOptions["phone"]>) => void;
    const e = engine({ phone: new Promise((r) => (ready = r)) });
    const pending = e.authenticate(login(HOLD, "alice", "pw"));
    await sleep(5);
    expect(h.sms.sent).toHaveLength(0);
    ready({ approvals: h.service, smsCodes: h.codes });
    expect(challenged(await pending).prompt).toBe(PHONE_PROMPTS.smsCode("+46…67"));
  });
});

describe("type touch (6): held approval", () => {
  test("the request is held until Approve: Access-Accept, the hold observed, the link to the phone by SMS", async () => {
    await addUser("alice", "touch");
    const e = engine();
    const pending = e.authenticate(login(HOLD, "alice", "pw", { source: "csid:203.0.113.5" }));
    await until("the link to go out", () => h.sms.sent.length === 1);
    expect(h.sms.sent[0]!.to).toBe(PHONE);
    expect(h.sms.sent[0]!.text).toStartWith("Approve your VPN sign-in: https://mfa.example.com/ml/");
    const view = await h.service.view(linkToken());
    expect(view).toMatchObject({ kind: "pending", context: { client: "vpn", source: "203.0.113.5" } });
    expect((await answer(linkToken(), "approve")).kind).toBe("done");
    expect(await pending).toEqual({ kind: "accept", user: "alice" });
    expect(events.find((x) => x.type === "auth.success")).toMatchObject({ factors: ["password", "approval"] });
    expect(holds.map(([o]) => o)).toEqual(["approved"]);
    expect(h.outcomes).toEqual([["radius", "approved"]]);
  });

  test("Reject → Access-Reject (approval_rejected)", async () => {
    await addUser("alice", "touch");
    const pending = engine().authenticate(login(HOLD, "alice", "pw"));
    await until("the link", () => h.sms.sent.length === 1);
    await answer(linkToken(), "reject");
    expect(await pending).toEqual({ kind: "reject", reason: "approval_rejected" });
  });

  test("the hold ends unanswered → Access-Reject, audit timeout; the link is dead", async () => {
    await addUser("alice", "touch");
    const pending = engine().authenticate(login(channel({ approvalHoldS: 10 }), "alice", "pw"));
    await until("the link", () => h.sms.sent.length === 1);
    h.clock.t += 10_000;
    await h.hub.tick();
    expect(await pending).toEqual({ kind: "reject", reason: "timeout" });
    expect(failures().at(-1)).toMatchObject({ reason: "timeout", detail: "no answer within the 10 s hold" });
    expect(holds.map(([o]) => o)).toEqual(["expired"]);
    expect((await h.service.view(linkToken())).kind).toBe("invalid");
  });

  test("a second request for the same user and client from the same source joins: one SMS, both accepted by one tap", async () => {
    await addUser("alice", "touch");
    const e = engine();
    const first = e.authenticate(login(HOLD, "alice", "pw", { source: "csid:203.0.113.5" }));
    await until("the link", () => h.sms.sent.length === 1);
    const second = e.authenticate(login(HOLD, "alice", "pw", { source: "csid:203.0.113.5" }));
    await until("the join", () => h.events.some((x) => x.type === "approval.joined"));
    await sleep(5);
    await answer(linkToken(), "approve");
    expect(await Promise.all([first, second])).toEqual([
      { kind: "accept", user: "alice" },
      { kind: "accept", user: "alice" },
    ]);
    expect(h.sms.sent).toHaveLength(1);
  });

  test("a second request from another source does not join: approval_busy, nothing sent", async () => {
    await addUser("alice", "touch");
    const e = engine();
    const first = e.authenticate(login(HOLD, "alice", "pw", { source: "csid:203.0.113.5" }));
    await until("the link", () => h.sms.sent.length === 1);
    expect(await e.authenticate(login(HOLD, "alice", "pw", { source: "csid:198.51.100.66" }))).toEqual({ kind: "reject", reason: "approval_busy" });
    expect(h.sms.sent).toHaveLength(1);
    await answer(linkToken(), "approve");
    expect(await first).toEqual({ kind: "accept", user: "alice" });
  });

  test("a wrong password never sends anything", async () => {
    await addUser("alice", "touch");
    expect(await engine().authenticate(login(HOLD, "alice", "wrong"))).toEqual({ kind: "reject", reason: "bad_password" });
    expect(h.sms.sent).toHaveLength(0);
  });

  test("the link cannot be delivered: phone_unreachable (touch has no fallback), the approval closed as failed", async () => {
    await addUser("alice", "touch");
    h.sms.script = [{ ok: false, reason: "timeout", detail: "x" }];
    expect(await engine().authenticate(login(HOLD, "alice", "pw"))).toEqual({ kind: "reject", reason: "phone_unreachable" });
    expect(failures().at(-1)).toMatchObject({ detail: "approval: not_delivered (all_channels_failed)" });
    expect(h.outcomes).toEqual([["radius", "failed"]]);
  });

  test("a held approval works on a concat client (no challenge needed); the whole field is the password", async () => {
    await addUser("alice", "touch");
    const pending = engine().authenticate(login(CONCAT, "alice", "pw"));
    await until("the link", () => h.sms.sent.length === 1);
    await answer(linkToken(), "approve");
    expect(await pending).toEqual({ kind: "accept", user: "alice" });
  });
});

describe("type touch (6): challenge mode", () => {
  test("Access-Challenge at once with the remaining time; OK before approving is challenged again; after approving, accepted", async () => {
    await addUser("alice", "touch");
    const e = engine();
    const c = challenged(await e.authenticate(login(CHALLENGE, "alice", "pw")));
    expect(c.prompt).toBe("Approve the request on your phone, then press OK");
    expect(c.timeoutS).toBe(60);
    expect(h.sms.sent).toHaveLength(1);
    h.clock.t += 20_000;
    const again = challenged(await e.authenticate(login(CHALLENGE, "alice", "", { state: c.state })));
    expect(again.prompt).toBe(PHONE_PROMPTS.notYet);
    expect(again.timeoutS).toBe(40);
    await answer(linkToken(), "approve");
    expect(await e.authenticate(login(CHALLENGE, "alice", "", { state: again.state }))).toEqual({ kind: "accept", user: "alice" });
    expect(await e.authenticate(login(CHALLENGE, "alice", "", { state: again.state }))).toMatchObject({ kind: "reject", reason: "state_unknown" });
  });

  test("number matching: the prompt names the number, the page offers it; a wrong pick rejects", async () => {
    await addUser("alice", "touch");
    const e = engine();
    const ch = channel({ approvalMode: "challenge", approvalNumberMatch: true });
    const c = challenged(await e.authenticate(login(ch, "alice", "pw")));
    const n = Number(/choose (\d+)/.exec(c.prompt)![1]);
    const view = await h.service.view(linkToken());
    if (view.kind !== "pending") throw new Error("not pending");
    expect(view.choices).toContain(n);
    await answer(linkToken(), "approve", view.choices!.find((x) => x !== n));
    expect(await e.authenticate(login(ch, "alice", "", { state: c.state }))).toEqual({ kind: "reject", reason: "approval_rejected" });
  });

  test("the approval expires unanswered → timeout", async () => {
    await addUser("alice", "touch");
    const e = engine();
    const c = challenged(await e.authenticate(login(CHALLENGE, "alice", "pw")));
    h.clock.t += 61_000;
    expect(await e.authenticate(login(CHALLENGE, "alice", "", { state: c.state, now: h.clock.t }))).toEqual({ kind: "reject", reason: "timeout" });
  });

  test("the State is bound to its user: another User-Name with it is refused", async () => {
    await addUser("alice", "touch");
    await addUser("bob", "touch");
    const e = engine();
    const c = challenged(await e.authenticate(login(CHALLENGE, "alice", "pw")));
    await answer(linkToken(), "approve");
    expect(await e.authenticate(login(CHALLENGE, "bob", "", { state: c.state }))).toMatchObject({ kind: "reject", reason: "state_mismatch" });
  });
});

describe("type touch-plus (7): approval, then the token", () => {
  test("approved: the token is never asked", async () => {
    await addUser("alice", "touch-plus");
    const pending = engine().authenticate(login(HOLD, "alice", "pw"));
    await until("the link", () => h.sms.sent.length === 1);
    await answer(linkToken(), "approve");
    expect(await pending).toEqual({ kind: "accept", user: "alice" });
  });

  test("the link cannot be delivered → the token by Access-Challenge", async () => {
    await addUser("alice", "touch-plus");
    h.sms.script = [{ ok: false, reason: "gateway_error", detail: "x" }];
    const e = engine();
    const c = challenged(await e.authenticate(login(HOLD, "alice", "pw")));
    expect(c.prompt).toBe(PHONE_PROMPTS.unreachable);
    expect(await e.authenticate(login(HOLD, "alice", totp(), { state: c.state }))).toEqual({ kind: "accept", user: "alice" });
    expect(steps()).toEqual([
      ["approval", "skipped", "not_delivered"],
      ["otp", "asked", null],
    ]);
    expect(events.find((x) => x.type === "auth.success")).toMatchObject({ factors: ["password", "otp"] });
  });

  test("no phone at all → the token", async () => {
    await addUser("alice", "touch-plus", { phone: null });
    expect(challenged(await engine().authenticate(login(HOLD, "alice", "pw"))).prompt).toBe(PHONE_PROMPTS.unreachable);
  });

  test("challenge mode, no answer before the approval expires → the token", async () => {
    await addUser("alice", "touch-plus");
    const e = engine();
    const c = challenged(await e.authenticate(login(CHALLENGE, "alice", "pw")));
    h.clock.t += 61_000;
    const t = challenged(await e.authenticate(login(CHALLENGE, "alice", "", { state: c.state, now: h.clock.t })));
    expect(t.prompt).toBe(PHONE_PROMPTS.noAnswer);
    expect(await e.authenticate(login(CHALLENGE, "alice", totp(), { state: t.state, now: h.clock.t }))).toEqual({ kind: "accept", user: "alice" });
    expect(steps()).toEqual([
      ["approval", "asked", null],
      ["approval", "skipped", "no_answer"],
      ["otp", "asked", null],
    ]);
  });

  test("held and rejected: no fallback", async () => {
    await addUser("alice", "touch-plus");
    const pending = engine().authenticate(login(HOLD, "alice", "pw"));
    await until("the link", () => h.sms.sent.length === 1);
    await answer(linkToken(), "reject");
    expect(await pending).toEqual({ kind: "reject", reason: "approval_rejected" });
  });

  test("on a concat client, when the link cannot be delivered the token step needs a challenge: skipped, and the refusal names the unreachable phone", async () => {
    await addUser("alice", "touch-plus");
    h.sms.script = [{ ok: false, reason: "gateway_error", detail: "x" }];
    expect(await engine().authenticate(login(CONCAT, "alice", "pw"))).toEqual({ kind: "reject", reason: "phone_unreachable" });
    expect(steps()).toEqual([
      ["approval", "skipped", "not_delivered"],
      ["otp", "skipped", "needs_challenge"],
    ]);
  });
});

describe("type touch-mobile (8): approval, then an SMS code, then the token", () => {
  test("the gateway fails for the link, works for the code: the SMS code completes", async () => {
    await addUser("alice", "touch-mobile");
    h.sms.script = [{ ok: false, reason: "gateway_error", detail: "x" }, { ok: true }];
    const e = engine();
    const c = challenged(await e.authenticate(login(HOLD, "alice", "pw")));
    expect(c.prompt).toBe(PHONE_PROMPTS.smsCode("+46…67"));
    expect(await e.authenticate(login(HOLD, "alice", lastCode(), { state: c.state }))).toEqual({ kind: "accept", user: "alice" });
    expect(steps()).toEqual([
      ["approval", "skipped", "not_delivered"],
      ["sms", "asked", null],
    ]);
    expect(events.find((x) => x.type === "auth.success")).toMatchObject({ factors: ["password", "sms"] });
  });

  test("the gateway fails for both → the token", async () => {
    await addUser("alice", "touch-mobile");
    h.sms.script = [{ ok: false, reason: "gateway_error", detail: "x" }];
    const e = engine();
    const c = challenged(await e.authenticate(login(HOLD, "alice", "pw")));
    expect(c.prompt).toBe(PHONE_PROMPTS.unreachable);
    expect(await e.authenticate(login(HOLD, "alice", totp(), { state: c.state }))).toEqual({ kind: "accept", user: "alice" });
    expect(steps()).toEqual([
      ["approval", "skipped", "not_delivered"],
      ["sms", "skipped", "not_delivered"],
      ["otp", "asked", null],
    ]);
  });

  test("challenge mode, no answer → an SMS code; the gateway then fails → the token", async () => {
    await addUser("alice", "touch-mobile");
    const e = engine();
    const c = challenged(await e.authenticate(login(CHALLENGE, "alice", "pw")));
    h.clock.t += 61_000;
    const s = challenged(await e.authenticate(login(CHALLENGE, "alice", "", { state: c.state, now: h.clock.t })));
    expect(s.prompt).toBe(PHONE_PROMPTS.smsCode("+46…67"));
    expect(await e.authenticate(login(CHALLENGE, "alice", lastCode(), { state: s.state, now: h.clock.t }))).toEqual({ kind: "accept", user: "alice" });

    h.sms.script = [{ ok: true }, { ok: false, reason: "gateway_error", detail: "x" }];
    h.sms.sent.length = 0;
    const c2 = challenged(await e.authenticate(login(CHALLENGE, "alice", "pw", { now: h.clock.t })));
    h.clock.t += 61_000;
    const t = challenged(await e.authenticate(login(CHALLENGE, "alice", "", { state: c2.state, now: h.clock.t })));
    expect(t.prompt).toBe(PHONE_PROMPTS.unreachable);
    expect(await e.authenticate(login(CHALLENGE, "alice", totp(), { state: t.state, now: h.clock.t }))).toEqual({ kind: "accept", user: "alice" });
    expect(steps().slice(-4)).toEqual([
      ["approval", "asked", null],
      ["approval", "skipped", "no_answer"],
      ["sms", "skipped", "not_delivered"],
      ["otp", "asked", null],
    ]);
  });

  test("approved: neither code nor token is asked", async () => {
    await addUser("alice", "touch-mobile");
    const pending = engine().authenticate(login(HOLD, "alice", "pw"));
    await until("the link", () => h.sms.sent.length === 1);
    await answer(linkToken(), "approve");
    expect(await pending).toEqual({ kind: "accept", user: "alice" });
    expect(h.sms.sent).toHaveLength(1);
  });
});

describe("code-only clients and the change flow", () => {
  test("a code-only client refuses phone types (type_not_allowed) without sending anything", async () => {
    await addUser("alice", "touch");
    expect(await engine().authenticate(login(channel({}, { firstFactor: "none" }), "alice", "123456"))).toEqual({ kind: "reject", reason: "type_not_allowed" });
    expect(h.sms.sent).toHaveLength(0);
  });
});

test("matchNumber is uniform over 10-99 and rejects bytes ≥ 180", () => {
  const counts = new Map<number, number>();
  for (let b = 0; b < 256; b++) {
    const n = matchNumber(() => Uint8Array.of(b, 5, 5, 5));
    counts.set(n, (counts.get(n) ?? 0) + 1);
  }
  expect([...counts.keys()].sort((a, b) => a - b)[0]).toBe(10);
  expect(Math.max(...counts.keys())).toBe(99);
  // 0-179 map two each onto 10-99; 180-255 fall through to the next byte (5 → 15)
  expect(counts.get(15)).toBe(2 + 76);
  expect(counts.get(16)).toBe(2);
});
