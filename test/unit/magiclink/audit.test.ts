// Magic Link audit events: each call names its key, each session's creation, answer, expiry,
// cancellation and failed delivery is a typed event, and no event holds the link, a token or a key.

import { afterEach, describe, expect, test } from "bun:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { AuditEvent } from "../../../src/audit/events.ts";
import { cleanup } from "../store/helpers.ts";
import { csrfOf, harness, post, type Harness } from "./helpers.ts";

let h: Harness | undefined;
afterEach(async () => {
  h?.hub.closeAll();
  await h?.store.close();
  cleanup(h?.dir);
  h = undefined;
});

const MSISDN = "msisdn=%2B46701234567";
const MASKED = "+46…67";

async function setup(opts: Parameters<typeof harness>[0] = {}) {
  const events: AuditEvent[] = [];
  h = await harness({ ...opts, audit: (e) => void events.push(e) });
  return { x: h, events };
}

/** Starts a call and waits for its SMS; returns the pending response and the link token. */
async function started(x: Harness, key: string, query = MSISDN, signal?: AbortSignal) {
  const n = x.sms.sent.length + 1;
  const response = x.call(query, key, { signal });
  const token = await x.sms.nextLink(n);
  return { response, token };
}

/** The events in order, without those of other kinds. */
const of = (events: AuditEvent[], prefix: string) => events.filter((e) => e.type.startsWith(prefix));

function expectNoSecret(events: AuditEvent[], secrets: string[]) {
  const text = JSON.stringify(events);
  for (const s of secrets) expect(text).not.toContain(s);
  expect(text).not.toContain("46701234567");
  expect(text).not.toContain("/ml/");
}

describe("magiclink.* audit events", () => {
  test("approved: sent (masked number) → answered → outcome → call (key name)", async () => {
    const { x, events } = await setup();
    const key = await x.key("web-shop");
    const { response, token } = await started(x, key, `${MSISDN}&touch-timeout=60`);
    const page = await (await x.app.request(`/ml/${token}`)).text();
    const csrf = csrfOf(page);
    await post(x.app, token, { csrf, action: "approve" });
    expect((await response).body).toBe('{"code":"TOUCH_ACCEPTED"}');
    expect(of(events, "magiclink.")).toEqual([
      { type: "magiclink.sent", endpoint: "default", to: MASKED, channel: "sms", timeout_s: 60, number_match: false },
      { type: "magiclink.answered", endpoint: "default", status: "accepted", wrong_number: false },
      { type: "magiclink.outcome", endpoint: "default", to: MASKED, outcome: "accepted", code: "TOUCH_ACCEPTED" },
      { type: "magiclink.call", key: "web-shop", endpoint: "default", client: expect.any(String), code: "TOUCH_ACCEPTED" },
    ]);
    expectNoSecret(events, [key, token, csrf]);
  });

  test("rejected on the page", async () => {
    const { x, events } = await setup();
    const key = await x.key("k");
    const { response, token } = await started(x, key);
    await post(x.app, token, { csrf: csrfOf(await (await x.app.request(`/ml/${token}`)).text()), action: "reject" });
    await response;
    expect(of(events, "magiclink.answered")).toEqual([{ type: "magiclink.answered", endpoint: "default", status: "rejected", wrong_number: false }]);
    expect(of(events, "magiclink.outcome")).toEqual([{ type: "magiclink.outcome", endpoint: "default", to: MASKED, outcome: "rejected", code: "TOUCH_REJECTED" }]);
  });

  test("expired: outcome expired, no answer event", async () => {
    const { x, events } = await setup();
    const key = await x.key("k");
    const { response } = await started(x, key, `${MSISDN}&touch-timeout=15`);
    x.clock.t += 15_000;
    await x.hub.tick();
    expect((await response).body).toBe('{"code":"USER_NOT_RESPONDED"}');
    expect(of(events, "magiclink.answered")).toEqual([]);
    expect(of(events, "magiclink.outcome")).toEqual([{ type: "magiclink.outcome", endpoint: "default", to: MASKED, outcome: "expired", code: "USER_NOT_RESPONDED" }]);
  });

  test("cancelled: the caller disconnected", async () => {
    const { x, events } = await setup();
    const key = await x.key("k");
    const ctrl = new AbortController();
    const { response } = await started(x, key, MSISDN, ctrl.signal);
    ctrl.abort();
    await response.catch(() => {});
    for (let i = 0; i < 100 && of(events, "magiclink.outcome").length === 0; i++) await sleep(10);
    expect(of(events, "magiclink.outcome")).toEqual([{ type: "magiclink.outcome", endpoint: "default", to: MASKED, outcome: "cancelled", code: "USER_NOT_RESPONDED" }]);
  });

  test("delivery failed: delivery.failed per channel, then magiclink.not_delivered", async () => {
    const { x, events } = await setup();
    x.sms.script = [{ ok: false, reason: "gateway_error", detail: "HTTP 500" }];
    const key = await x.key("k");
    expect((await x.call(MSISDN, key)).body).toBe('{"code":"FAILED_DELIVERY"}');
    const token = await x.sms.nextLink(1);
    expect(events.filter((e) => e.type !== "magiclink.call")).toEqual([
      { type: "delivery.failed", channel: "sms", endpoint: "default", to: MASKED, reason: "gateway_error", detail: "HTTP 500" },
      { type: "magiclink.not_delivered", endpoint: "default", to: MASKED, reason: "all_channels_failed", code: "FAILED_DELIVERY" },
    ]);
    expectNoSecret(events, [key, token]);
  });

  test("a number outside the allow-list: delivery.refused, then magiclink.not_delivered", async () => {
    const { x, events } = await setup();
    const key = await x.key("k");
    expect((await x.call("msisdn=%2B4915123456789", key)).body).toBe('{"code":"FAILED_DELIVERY"}');
    expect(events.map((e) => [e.type, "reason" in e ? e.reason : undefined])).toEqual([
      ["delivery.refused", "country_not_allowed"],
      ["magiclink.not_delivered", "country_not_allowed"],
      ["magiclink.call", undefined],
    ]);
    expect(JSON.stringify(events)).not.toContain("4915123456789");
  });

  test.each([
    ["no key", undefined, "key_missing"],
    ["a wrong key", "pcl_wrongwrongwrongwrongwrongwrongwrongwrongwro", "key_unknown"],
  ])("%s: magiclink.bad_request without the key", async (_, key, reason) => {
    const { x, events } = await setup();
    expect((await x.call(MSISDN, key)).body).toBe('{"code":"BAD_REQUEST"}');
    expect(events).toEqual([{ type: "magiclink.bad_request", reason, client: expect.any(String) }]);
    if (key) expectNoSecret(events, [key]);
  });

  test("a bidirectional override in a text: magiclink.bad_request names the parameter, not its value", async () => {
    const { x, events } = await setup();
    const key = await x.key("web-shop");
    const title = encodeURIComponent("Acme\u202eNPV");
    expect((await x.call(`${MSISDN}&title-text=${title}&button-accept-text=ok`, key)).body).toBe('{"code":"BAD_REQUEST"}');
    expect(events).toEqual([
      { type: "magiclink.bad_request", reason: "parameters", endpoint: "default", fields: ["title-text"] },
      { type: "magiclink.call", key: "web-shop", endpoint: "default", client: expect.any(String), code: "BAD_REQUEST" },
    ]);
    expect(JSON.stringify(events)).not.toContain("NPV");
  });

  test("sms-text on an endpoint without custom text: magiclink.custom_text_ignored once per key, the calls proceed", async () => {
    const { x, events } = await setup();
    const shop = await x.key("web-shop");
    const vpn = await x.key("vpn");
    const custom = `sms-text=${encodeURIComponent("URGENT: your account is frozen {link}")}`;
    for (const key of [shop, shop, vpn, shop]) {
      const { response, token } = await started(x, key, `${MSISDN}&${custom}`);
      await post(x.app, token, { csrf: csrfOf(await (await x.app.request(`/ml/${token}`)).text()), action: "approve" });
      expect((await response).body).toBe('{"code":"TOUCH_ACCEPTED"}');
    }
    await started(x, shop); // no sms-text: nothing to ignore
    expect(of(events, "magiclink.custom_text_ignored")).toEqual([
      { type: "magiclink.custom_text_ignored", key: "web-shop", endpoint: "default" },
      { type: "magiclink.custom_text_ignored", key: "vpn", endpoint: "default" },
    ]);
    for (const m of x.sms.sent) expect(m.text).not.toContain("URGENT");
    expectNoSecret(events, [shop, vpn]);
  });

  test("sms-text on an endpoint that allows it: sent, nothing logged", async () => {
    const { x, events } = await setup({ profile: { allowCustomSmsText: true } });
    const key = await x.key("web-shop");
    await started(x, key, `${MSISDN}&sms-text=${encodeURIComponent("Acme: {link}")}`);
    expect(x.sms.sent[0]!.text).toStartWith("Acme: https://");
    expect(of(events, "magiclink.custom_text_ignored")).toEqual([]);
  });

  test("bad parameters: magiclink.bad_request names the key and the fields, not their values", async () => {
    const { x, events } = await setup();
    const key = await x.key("web-shop");
    expect((await x.call(`${MSISDN}&touch-timeout=9999`, key)).body).toBe('{"code":"BAD_REQUEST"}');
    expect(events).toEqual([
      { type: "magiclink.bad_request", reason: "parameters", endpoint: "default", fields: ["touch-timeout"] },
      { type: "magiclink.call", key: "web-shop", endpoint: "default", client: expect.any(String), code: "BAD_REQUEST" },
    ]);
    expect(JSON.stringify(events)).not.toContain("9999");
  });
});
