// The Mideye-compatible API and the approval pages through app.request(): exact answer shapes, keys,
// parameters, limits, delivery failures, approve/reject/number matching, CSRF, single use, cancel.

import { afterEach, describe, expect, test } from "bun:test";
import { setTimeout as sleep } from "node:timers/promises";
import { hashLinkToken } from "../../../src/magiclink/tokens.ts";
import { defaultEndpointProfile } from "../../../src/store/types.ts";
import { cleanup } from "../store/helpers.ts";
import { csrfOf, harness, post, T0, type Harness } from "./helpers.ts";

let h: Harness | undefined;
afterEach(async () => {
  h?.hub.closeAll();
  await h?.store.close();
  cleanup(h?.dir);
  h = undefined;
});

const MSISDN = "msisdn=%2B46701234567";

async function setup(opts: Parameters<typeof harness>[0] = {}) {
  h = await harness(opts);
  return h;
}

/** Starts a call, waits for its SMS, and returns the pending response and the link token. */
async function started(x: Harness, key: string, query = MSISDN) {
  const n = x.sms.sent.length + 1;
  const response = x.call(query, key);
  const token = await x.sms.nextLink(n);
  return { response, token };
}

describe("answer shape", () => {
  test("every answer is HTTP 200, application/json, exactly {\"code\":\"…\"}", async () => {
    const x = await setup();
    const r = await x.call(MSISDN, "pcl_wrong");
    expect(r).toEqual({ status: 200, type: "application/json", body: '{"code":"BAD_REQUEST"}' });
  });
});

describe("API keys", () => {
  test.each([
    ["missing", undefined, {}],
    ["unknown", "pcl_unknown", {}],
    ["disabled", "KEY", { disabled: true }],
    ["expired", "KEY", { expiresAt: T0 - 1 }],
    ["expiring now", "KEY", { expiresAt: T0 }],
    ["admin role", "KEY", { role: "admin" as const }],
    ["other endpoint", "KEY", { endpoint: "other" }],
  ])("%s key → BAD_REQUEST, nothing sent", async (_name, which, patch) => {
    const x = await setup();
    const key = await x.key("k", patch);
    const r = await x.call(MSISDN, which === "KEY" ? key : which);
    expect(r.body).toBe('{"code":"BAD_REQUEST"}');
    expect(x.sms.sent).toHaveLength(0);
    expect(x.metrics.magiclinkOutcomes.get({ code: "BAD_REQUEST" })).toBe(1);
  });

  test("a key bound to endpoint A cannot call /api/sfwa/auth/B, but can call /A", async () => {
    const x = await setup();
    await x.store.endpoints.put({ ...(await x.store.endpoints.get("default"))!, name: "vpn" });
    const key = await x.key("k", { endpoint: "vpn" });
    expect((await x.call(MSISDN, key, { path: "/api/sfwa/auth/default" })).body).toBe('{"code":"BAD_REQUEST"}');
    const n = x.sms.sent.length + 1;
    const pending = x.call(MSISDN, key, { path: "/api/sfwa/auth/vpn" });
    const token = await x.sms.nextLink(n);
    const page = await (await x.app.request(`/ml/${token}`)).text();
    await post(x.app, token, { csrf: csrfOf(page), action: "approve" });
    expect((await pending).body).toBe('{"code":"TOUCH_ACCEPTED"}');
  });
});

describe("parameters", () => {
  test.each([
    ["no msisdn", ""],
    ["empty msisdn", "msisdn="],
    ["letters", "msisdn=abc"],
    ["touch-timeout below 15", `${MSISDN}&touch-timeout=14`],
    ["touch-timeout above 300", `${MSISDN}&touch-timeout=301`],
    ["touch-timeout not a number", `${MSISDN}&touch-timeout=9x`],
    ["match-number out of range", `${MSISDN}&match-number=100`],
    ["title too long", `${MSISDN}&title-text=${"a".repeat(201)}`],
    ["control character", `${MSISDN}&authentication-text=a%07b`],
  ])("%s → BAD_REQUEST without sending", async (_name, query) => {
    const x = await setup();
    const key = await x.key("k");
    expect((await x.call(query, key)).body).toBe('{"code":"BAD_REQUEST"}');
    expect(x.sms.sent).toHaveLength(0);
  });

  /** The answer, or "still waiting" when the call went on to send and wait (what a refused call must not do). */
  async function answerOf(x: Harness, query: string, key: string): Promise<string> {
    return Promise.race([x.call(query, key).then((r) => r.body), sleep(2000).then(() => "still waiting")]);
  }

  // Every text reaches the approval page or the SMS: a bidirectional formatting character (which can
  // show a text in another order than it says) or a control character refuses the call.
  const TEXTS = ["sms-text", "authentication-text", "touch-accept-text", "touch-reject-text", "button-accept-text", "button-reject-text", "title-text"];
  const UNSAFE = [
    ["U+202E right-to-left override", "\u202e"],
    ["U+202A left-to-right embedding", "\u202a"],
    ["U+2067 right-to-left isolate", "\u2067"],
    ["U+2069 pop directional isolate", "\u2069"],
    ["U+200F right-to-left mark", "\u200f"],
    ["U+061C Arabic letter mark", "\u061c"],
    ["U+206E national digit shapes", "\u206e"],
    ["U+0085 next line (C1)", "\u0085"],
    ["U+001B escape", "\u001b"],
  ];
  test.each(TEXTS.flatMap((param) => UNSAFE.map(([name, ch]) => [param, name!, ch!] as const)))("%s with %s → BAD_REQUEST, nothing sent", async (param, _name, ch) => {
    const x = await setup({ profile: { allowCustomSmsText: true } });
    const key = await x.key("k");
    expect(await answerOf(x, `${MSISDN}&${param}=${encodeURIComponent(`Approve${ch}evorppa {link}`)}`, key)).toBe('{"code":"BAD_REQUEST"}');
    expect(x.sms.sent).toHaveLength(0);
  });

  test("tab, line breaks, and joiners (emoji, Persian) are ordinary text", async () => {
    const x = await setup();
    const key = await x.key("k");
    const { response, token } = await started(x, key, `${MSISDN}&authentication-text=${encodeURIComponent("Sign in?\r\n\tOK 👩\u200d💻 می\u200cخواهم")}`);
    const html = await (await x.app.request(`/ml/${token}`)).text();
    expect(html).toContain("👩\u200d💻 می\u200cخواهم");
    await post(x.app, token, { csrf: csrfOf(html), action: "approve" });
    expect((await response).body).toBe('{"code":"TOUCH_ACCEPTED"}');
  });

  test("an unencoded + (arriving as a space) still reads as E.164", async () => {
    const x = await setup();
    const key = await x.key("k");
    const { response, token } = await started(x, key, "msisdn=+46701234567");
    expect(x.sms.sent[0]!.to).toBe("+46701234567");
    const page = await (await x.app.request(`/ml/${token}`)).text();
    await post(x.app, token, { csrf: csrfOf(page), action: "reject" });
    expect((await response).body).toBe('{"code":"TOUCH_REJECTED"}');
  });
});

describe("custom sms-text", () => {
  const CUSTOM = encodeURIComponent("URGENT: your account is frozen, act now {link}");

  test("by default the endpoint's own text is sent; the call proceeds as usual", async () => {
    const x = await setup({ profile: { texts: { ...defaultEndpointProfile().texts, sms_text: "Acme sign-in: {link}" } } });
    const key = await x.key("k");
    const { response, token } = await started(x, key, `${MSISDN}&sms-text=${CUSTOM}`);
    expect(x.sms.sent[0]!.text).toBe(`Acme sign-in: https://mfa.example.com/ml/${token}`);
    await post(x.app, token, { csrf: csrfOf(await (await x.app.request(`/ml/${token}`)).text()), action: "approve" });
    expect((await response).body).toBe('{"code":"TOUCH_ACCEPTED"}');
  });

  test("an endpoint with allowCustomSmsText sends the caller's text (with the link)", async () => {
    const x = await setup({ profile: { allowCustomSmsText: true } });
    const key = await x.key("k");
    const { token } = await started(x, key, `${MSISDN}&sms-text=${encodeURIComponent("Acme VPN: {link}")}`);
    expect(x.sms.sent[0]!.text).toBe(`Acme VPN: https://mfa.example.com/ml/${token}`);
  });
});

describe("approve and reject", () => {
  test("a profile stored before texts were checked is shown without its bidirectional characters", async () => {
    const x = await setup({ profile: { texts: { ...defaultEndpointProfile().texts, title_text: "Acme \u202eNPV\u202c", button_accept_text: "\u2067Approve\u2069" } } });
    const key = await x.key("k");
    const { token } = await started(x, key);
    const html = await (await x.app.request(`/ml/${token}`)).text();
    expect(html).toContain('id="title">Acme NPV</h1>');
    expect(html).toContain(">Approve</button>");
    expect(html).not.toMatch(/[\u202a-\u202e\u2066-\u2069]/);
  });


  test("a GET shows the question and changes nothing; a POST approves and wakes the call", async () => {
    const x = await setup();
    const key = await x.key("k");
    const { response, token } = await started(x, key, `${MSISDN}&title-text=${encodeURIComponent("<b>Acme</b>")}&button-accept-text=Yes`);
    expect(x.sms.sent[0]!.text).toContain(`https://mfa.example.com/ml/${token}`);
    for (let i = 0; i < 3; i++) {
      const r = await x.app.request(`/ml/${token}`);
      expect(r.status).toBe(200);
      const html = await r.text();
      expect(html).toContain("&lt;b&gt;Acme&lt;/b&gt;");
      expect(html).not.toContain("<b>Acme</b>");
      expect(html).toContain(">Yes</button>");
    }
    expect((await x.store.approvals.findByLink(hashLinkToken(token)))!.state).toBe("pending");
    const page = await (await x.app.request(`/ml/${token}`)).text();
    const r = await post(x.app, token, { csrf: csrfOf(page), action: "approve" });
    expect(r.status).toBe(200);
    expect(await r.text()).toContain("Sign-in approved");
    expect((await response).body).toBe('{"code":"TOUCH_ACCEPTED"}');
    expect(x.metrics.magiclinkOutcomes.get({ code: "TOUCH_ACCEPTED" })).toBe(1);
  });

  test("the link is single-use: a second POST (approve or reject) changes nothing", async () => {
    const x = await setup();
    const key = await x.key("k");
    const { response, token } = await started(x, key);
    const csrf = csrfOf(await (await x.app.request(`/ml/${token}`)).text());
    expect((await post(x.app, token, { csrf, action: "reject" })).status).toBe(200);
    expect((await response).body).toBe('{"code":"TOUCH_REJECTED"}');
    const again = await post(x.app, token, { csrf, action: "approve" });
    expect(again.status).toBe(409);
    expect(await again.text()).toContain("already answered");
    expect((await x.store.approvals.findByLink(hashLinkToken(token)))!.state).toBe("rejected");
  });

  test.each([
    ["missing", {}],
    ["wrong", { csrf: "A".repeat(43) }],
    ["another link's", "OTHER"],
  ])("%s CSRF token → 403, session still pending", async (_name, form) => {
    const x = await setup();
    const key = await x.key("k");
    const first = await started(x, key);
    const second = await started(x, key);
    let fields: Record<string, string> = { action: "approve" };
    if (form === "OTHER") fields.csrf = csrfOf(await (await x.app.request(`/ml/${second.token}`)).text());
    else fields = { ...fields, ...(form as Record<string, string>) };
    const r = await post(x.app, first.token, fields);
    expect(r.status).toBe(403);
    expect((await x.store.approvals.findByLink(hashLinkToken(first.token)))!.state).toBe("pending");
  });

  test.each([
    ["right pick", "right", '{"code":"TOUCH_ACCEPTED"}'],
    ["wrong pick", "wrong", '{"code":"TOUCH_REJECTED"}'],
    ["no pick", "none", '{"code":"TOUCH_REJECTED"}'],
  ])("number matching: %s", async (_name, which, expected) => {
    const x = await setup();
    const key = await x.key("k");
    const { response, token } = await started(x, key, `${MSISDN}&match-number=42`);
    const html = await (await x.app.request(`/ml/${token}`)).text();
    const picks = [...html.matchAll(/name="pick" value="(\d+)"/g)].map((m) => Number(m[1]));
    expect(picks).toHaveLength(3);
    expect(picks).toContain(42);
    expect(new Set(picks).size).toBe(3);
    const fields: Record<string, string> = { csrf: csrfOf(html), action: "approve" };
    if (which === "right") fields.pick = "42";
    if (which === "wrong") fields.pick = String(picks.find((p) => p !== 42));
    const r = await post(x.app, token, fields);
    if (which === "wrong") expect(await r.text()).toContain("was not the one shown");
    expect((await response).body).toBe(expected);
  });

  test.each(["unknown", "expired", "cancelled"])("an %s link shows the same invalid page (404)", async (kind) => {
    const x = await setup();
    const key = await x.key("k");
    let token = "A".repeat(43);
    if (kind !== "unknown") {
      const ctrl = new AbortController();
      const n = x.sms.sent.length + 1;
      const response = x.call(`${MSISDN}&touch-timeout=15`, key, { signal: ctrl.signal });
      token = await x.sms.nextLink(n);
      if (kind === "expired") {
        x.clock.t += 15_000;
        await x.hub.tick();
        expect((await response).body).toBe('{"code":"USER_NOT_RESPONDED"}');
      } else {
        ctrl.abort();
        await response.catch(() => {});
        for (let i = 0; i < 50 && (await x.store.approvals.findByLink(hashLinkToken(token)))!.state === "pending"; i++) await sleep(10);
        expect((await x.store.approvals.findByLink(hashLinkToken(token)))!.state).toBe("cancelled");
      }
    }
    const r = await x.app.request(`/ml/${token}`);
    expect(r.status).toBe(404);
    expect(await r.text()).toContain("This link is no longer valid");
  });
});

describe("delivery and limits", () => {
  test("a number outside the allow-list → FAILED_DELIVERY, nothing sent", async () => {
    const x = await setup();
    const key = await x.key("k");
    expect((await x.call("msisdn=%2B12025550123", key)).body).toBe('{"code":"FAILED_DELIVERY"}');
    expect(x.sms.sent).toHaveLength(0);
  });

  test("a failing gateway → FAILED_DELIVERY and the session is closed", async () => {
    const x = await setup();
    x.sms.script = [{ ok: false, reason: "gateway_error", detail: "HTTP 500" }];
    const key = await x.key("k");
    expect((await x.call(MSISDN, key)).body).toBe('{"code":"FAILED_DELIVERY"}');
    const token = await x.sms.nextLink(1);
    expect((await x.app.request(`/ml/${token}`)).status).toBe(404);
  });

  test("the known-user rule: an unknown number → FAILED_DELIVERY, a user's number is sent", async () => {
    const x = await setup({ profile: { requireKnownUser: true } });
    const key = await x.key("k");
    expect((await x.call(MSISDN, key)).body).toBe('{"code":"FAILED_DELIVERY"}');
    await x.store.users.add({ username: "alice", passwordHash: null, type: "touch", phone: "+46701234567", email: null, disabled: false, expiresAt: null, directory: null, externalId: null, directoryPhone: null });
    x.clock.t += 60_000;
    const { response, token } = await started(x, key);
    const csrf = csrfOf(await (await x.app.request(`/ml/${token}`)).text());
    await post(x.app, token, { csrf, action: "approve" });
    expect((await response).body).toBe('{"code":"TOUCH_ACCEPTED"}');
  });

  const endpointLimit = (patch: object) => ({ perNumberPerMinute: 0, perNumberPerHour: 0, perKeyPerMinute: 0, overallPerMinute: 0, ...patch });
  const globalLimit = (patch: object) => ({ perNumberPerMinute: 0, perNumberPerHour: 0, perKeyPerMinute: 0, perKeyPerHour: 0, overallPerMinute: 0, overallPerHour: 0, ...patch });
  test.each([
    ["endpoint per number per minute", { profile: { rateLimits: endpointLimit({ perNumberPerMinute: 1 }) } }, "same-number"],
    ["endpoint per number per hour", { profile: { rateLimits: endpointLimit({ perNumberPerHour: 1 }) } }, "same-number"],
    ["endpoint per key per minute", { profile: { rateLimits: endpointLimit({ perKeyPerMinute: 1 }) } }, "other-number"],
    ["endpoint overall per minute", { profile: { rateLimits: endpointLimit({ overallPerMinute: 1 }) } }, "other-key"],
    ["[delivery] per number per minute", { limits: globalLimit({ perNumberPerMinute: 1 }) }, "same-number"],
    ["[delivery] per key per hour", { limits: globalLimit({ perKeyPerHour: 1 }) }, "other-number"],
    ["[delivery] overall per hour", { limits: globalLimit({ overallPerHour: 1 }) }, "other-key"],
  ])("%s → BAD_REQUEST once used up", async (_name, opts, second) => {
    const x = await setup(opts as Parameters<typeof harness>[0]);
    const key = await x.key("k");
    const other = await x.key("k2");
    const { response, token } = await started(x, key);
    await post(x.app, token, { csrf: csrfOf(await (await x.app.request(`/ml/${token}`)).text()), action: "approve" });
    expect((await response).body).toBe('{"code":"TOUCH_ACCEPTED"}');
    const r = second === "same-number" ? await x.call(MSISDN, other) : second === "other-number" ? await x.call("msisdn=%2B46701234568", key) : await x.call("msisdn=%2B46701234569", other);
    expect(r.body).toBe('{"code":"BAD_REQUEST"}');
    expect(x.sms.sent).toHaveLength(1);
  });

  test("no public_url → FAILED_DELIVERY, nothing sent", async () => {
    const x = await setup({ publicUrl: "" });
    const key = await x.key("k");
    expect((await x.call(MSISDN, key)).body).toBe('{"code":"FAILED_DELIVERY"}');
    expect(x.sms.sent).toHaveLength(0);
  });
});

describe("waiting", () => {
  test("touch-timeout passes → USER_NOT_RESPONDED, and a late tap is refused", async () => {
    const x = await setup();
    const key = await x.key("k");
    const { response, token } = await started(x, key, `${MSISDN}&touch-timeout=20`);
    const csrf = csrfOf(await (await x.app.request(`/ml/${token}`)).text());
    x.clock.t += 19_999;
    await x.hub.tick();
    expect(x.hub.size).toBe(1);
    x.clock.t += 1;
    await x.hub.tick();
    expect((await response).body).toBe('{"code":"USER_NOT_RESPONDED"}');
    expect((await post(x.app, token, { csrf, action: "approve" })).status).toBe(404);
  });

  test("the endpoint's default timeout applies without touch-timeout", async () => {
    const x = await setup({ profile: { touchTimeoutS: 30 } });
    const key = await x.key("k");
    const { token } = await started(x, key);
    const s = (await x.store.approvals.findByLink(hashLinkToken(token)))!;
    expect(s.expiresAt - s.createdAt).toBe(30_000);
  });

  test("a disconnecting caller cancels the session", async () => {
    const x = await setup();
    const key = await x.key("k");
    const ctrl = new AbortController();
    const n = x.sms.sent.length + 1;
    const response = x.call(MSISDN, key, { signal: ctrl.signal });
    const token = await x.sms.nextLink(n);
    ctrl.abort();
    await response.catch(() => {});
    for (let i = 0; i < 100 && x.hub.size > 0; i++) await sleep(10);
    expect(x.hub.size).toBe(0);
    expect((await x.store.approvals.findByLink(hashLinkToken(token)))!.state).toBe("cancelled");
  });
});
