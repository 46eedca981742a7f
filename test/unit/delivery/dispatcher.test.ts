// The dispatcher: validation, allow-list, known-user rule, each shared rate limit with a frozen clock, failover, the log and the hooks.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { createDispatcher, type DeliveryRequest, type DispatcherOptions, type RateLimitSettings } from "../../../src/delivery/dispatcher.ts";
import type { Channel, DeliveryResult, OutboundMessage } from "../../../src/delivery/types.ts";
import type { SqliteStore } from "../../../src/store/sqlite/store.ts";
import { cleanup, openIn, tempDir } from "../store/helpers.ts";

const LINK = "https://mfa.example.com/ml/secret-link-token-0123456789";
const TEXT = `Approve: ${LINK}`;
const T0 = 1_700_000_000_000;

let dir: string;
let store: SqliteStore;
let clock: number;

beforeEach(async () => {
  dir = tempDir();
  store = await openIn(dir);
  clock = Math.floor(T0 / 3_600_000) * 3_600_000; // start of an hour window
});
afterEach(async () => {
  await store.close();
  cleanup(dir);
});

/** An in-process channel that records what it was asked to send and answers from a script. */
function channel(name: string, kind: "sms" | "email", answers: DeliveryResult[] = [{ ok: true, providerId: `${name}-id` }]) {
  const sent: OutboundMessage[] = [];
  const ch: Channel & { sent: OutboundMessage[] } = {
    name,
    kind,
    sent,
    async send(msg) {
      sent.push(msg);
      return answers[Math.min(sent.length - 1, answers.length - 1)]!;
    },
  };
  return ch;
}

const NO_LIMITS: RateLimitSettings = { perNumberPerMinute: 0, perNumberPerHour: 0, perKeyPerMinute: 0, perKeyPerHour: 0, overallPerMinute: 0, overallPerHour: 0 };

function dispatcher(patch: Partial<DispatcherOptions> = {}) {
  return createDispatcher({
    channels: [channel("sms", "sms")],
    region: "SE",
    allowList: { countries: ["SE"], prefixes: [] },
    limits: NO_LIMITS,
    rateLimits: store.rateLimits,
    deliveryLog: store.deliveryLog,
    now: () => clock,
    ...patch,
  });
}

const req = (patch: Partial<DeliveryRequest> = {}): DeliveryRequest => ({ msisdn: "+46701234567", text: TEXT, endpoint: "default", apiKeyId: "key-1", ...patch });

describe("destination checks", () => {
  test("a valid Swedish number in local format is sent as E.164", async () => {
    const sms = channel("sms", "sms");
    const d = dispatcher({ channels: [sms] });
    expect(await d.deliver(req({ msisdn: "070-123 45 67" }))).toEqual({ ok: true, channel: "sms" });
    expect(sms.sent).toEqual([{ to: "+46701234567", text: TEXT, subject: undefined }]);
  });

  test.each([
    ["invalid number", { msisdn: "12" }, "invalid_number"],
    ["letters", { msisdn: "+46CALLME" }, "invalid_number"],
    ["no destination at all", { msisdn: undefined }, "invalid_number"],
    ["malformed e-mail only", { msisdn: undefined, email: "not-an-address" }, "invalid_number"],
    ["outside the allow-list", { msisdn: "+358401234567" }, "country_not_allowed"],
    ["UK premium-rate number", { msisdn: "+449098790000" }, "country_not_allowed"],
    ["a pumping favourite (Côte d'Ivoire)", { msisdn: "+2250707123456" }, "country_not_allowed"],
    ["Swedish premium rate 0900, country allowed", { msisdn: "+46900123456" }, "number_type_not_allowed"],
    ["Swedish premium rate 0939", { msisdn: "+46939123456" }, "number_type_not_allowed"],
    ["Swedish premium rate 099x", { msisdn: "+469911234" }, "number_type_not_allowed"],
    ["Swedish 0991 outside every known range", { msisdn: "+46991123456" }, "number_type_not_allowed"],
    ["a Stockholm landline", { msisdn: "08-123 456 78" }, "number_type_not_allowed"],
  ])("%s is refused before any channel", async (_, patch, reason) => {
    const sms = channel("sms", "sms");
    const d = dispatcher({ channels: [sms] });
    const r = await d.deliver(req(patch));
    expect(r.ok).toBe(false);
    expect(r).toMatchObject({ ok: false, reason });
    expect(sms.sent).toEqual([]);
    const [row] = await store.deliveryLog.recent(1);
    expect(row).toMatchObject({ channel: null, result: "refused", reason });
  });

  test("an allowed prefix lets one foreign range through", async () => {
    const d = dispatcher({ allowList: { countries: ["SE"], prefixes: ["+35840"] } });
    expect((await d.deliver(req({ msisdn: "+358401234567" }))).ok).toBe(true);
    expect((await d.deliver(req({ msisdn: "+35891234567" }))).ok).toBe(false);
  });

  test("a listed prefix lets a non-mobile range through (any type), and only that range", async () => {
    const sms = channel("sms", "sms");
    const d = dispatcher({ channels: [sms], allowList: { countries: ["SE"], prefixes: ["+468"] } });
    expect(await d.deliver(req({ msisdn: "+4681234567" }))).toEqual({ ok: true, channel: "sms" });
    expect(await d.deliver(req({ msisdn: "+46311234567" }))).toMatchObject({ ok: false, reason: "number_type_not_allowed" });
    expect(await d.deliver(req({ msisdn: "+46900123456" }))).toMatchObject({ ok: false, reason: "number_type_not_allowed" });
    expect(sms.sent.map((m) => m.to)).toEqual(["+4681234567"]);
  });

  test("a type refusal is logged, audited and counted with the masked number and the type, never the number", async () => {
    const events: unknown[] = [];
    const refused: unknown[][] = [];
    const d = dispatcher({ audit: (e) => void events.push(e), onRefused: (...a) => void refused.push(a) });
    await d.deliver(req({ msisdn: "+46900123456" }));
    const detail = "destination is a premium-rate number, not a mobile (list its prefix in allowed_prefixes to allow it)";
    expect(events).toEqual([{ type: "delivery.refused", endpoint: "default", to: "+46…56", country: "SE", reason: "number_type_not_allowed", detail }]);
    expect(refused).toEqual([["number_type_not_allowed", "SE"]]);
    const [row] = await store.deliveryLog.recent(1);
    expect(row).toMatchObject({ destination: "+46…56", country: "SE", result: "refused", reason: "number_type_not_allowed", detail });
    expect(JSON.stringify([events, row])).not.toContain("900123456");
  });

  test("an empty allow-list refuses every SMS", async () => {
    const d = dispatcher({ allowList: { countries: [], prefixes: [] } });
    expect(await d.deliver(req())).toMatchObject({ ok: false, reason: "country_not_allowed" });
  });
});

describe("known-user rule", () => {
  test.each([
    ["known number passes", true, async () => true, true],
    ["unknown number refused", true, async () => false, false],
    ["no callback fails closed", true, undefined, false],
    ["rule off: the callback is not asked", false, async () => false, true],
    ["a failing lookup (directory down) fails closed", true, async (): Promise<boolean> => Promise.reject(new Error("ldap down")), false],
  ])("%s", async (_, requireKnownUser, isKnownNumber, ok) => {
    const asked: string[] = [];
    const d = dispatcher({
      isKnownNumber: isKnownNumber && (async (n: string) => (asked.push(n), isKnownNumber())),
    });
    const r = await d.deliver(req({ requireKnownUser, msisdn: "0701234567" }));
    expect(r.ok).toBe(ok);
    if (!ok) expect(r).toMatchObject({ reason: "unknown_user" });
    if (requireKnownUser && isKnownNumber) expect(asked).toEqual(["+46701234567"]);
    if (!requireKnownUser) expect(asked).toEqual([]);
  });
});

describe("rate limits (frozen clock, shared store)", () => {
  type Case = [string, Partial<RateLimitSettings>, (i: number) => Partial<DeliveryRequest>, number, number, string];
  test.each<Case>([
    // name, limits, request for the i-th call, allowed calls, window plus one slot (1/60) to recover, detail
    ["per number per minute (5)", { perNumberPerMinute: 5 }, () => ({}), 5, 61_000, "per-number limit per minute reached"],
    ["per number per hour (30)", { perNumberPerHour: 30 }, () => ({}), 30, 3_660_000, "per-number limit per hour reached"],
    ["per API key per minute", { perKeyPerMinute: 3 }, (i) => ({ msisdn: `+4670123450${i}` }), 3, 61_000, "per-API-key limit per minute reached"],
    ["per API key per hour", { perKeyPerHour: 4 }, (i) => ({ msisdn: `+4670123450${i}` }), 4, 3_660_000, "per-API-key limit per hour reached"],
    ["overall per minute, across keys and numbers", { overallPerMinute: 4 }, (i) => ({ msisdn: `+4670123450${i}`, apiKeyId: `k${i}` }), 4, 61_000, "overall limit per minute reached"],
    ["overall per hour", { overallPerHour: 6 }, (i) => ({ msisdn: `+4670123450${i}`, apiKeyId: `k${i}` }), 6, 3_660_000, "overall limit per hour reached"],
  ])("%s", async (_, limits, make, allowed, recover, detail) => {
    const sms = channel("sms", "sms");
    const d = dispatcher({ channels: [sms], limits: { ...NO_LIMITS, ...limits } });
    const start = clock;
    for (let i = 0; i < allowed; i++) {
      expect(await d.deliver(req(make(i)))).toEqual({ ok: true, channel: "sms" });
      clock += 1; // frozen apart from a tick, well inside the first slot
    }
    expect(await d.deliver(req(make(allowed)))).toEqual({ ok: false, reason: "rate_limited", detail });
    expect(sms.sent.length).toBe(allowed);
    // A sliding window: still refused in the next calendar window, until the first slot has left it.
    clock = start + recover - 1;
    expect(await d.deliver(req(make(allowed)))).toEqual({ ok: false, reason: "rate_limited", detail });
    clock = start + recover;
    expect((await d.deliver(req(make(allowed)))).ok).toBe(true);
  });

  test("the defaults are 5 a minute and 30 an hour per number", async () => {
    const d = dispatcher({ limits: undefined });
    let sent = 0;
    for (let minute = 0; minute < 10; minute++) {
      for (let i = 0; i < 6; i++) if ((await d.deliver(req())).ok) sent++;
      clock += 61_000; // a minute and the one-second slot
    }
    expect(sent).toBe(30);
  });

  test("a burst straddling a calendar minute gets no more than the per-minute limit", async () => {
    const sms = channel("sms", "sms");
    const d = dispatcher({ channels: [sms], limits: { ...NO_LIMITS, perNumberPerMinute: 3 } });
    clock += 59_000;
    const ok: boolean[] = [];
    for (let i = 0; i < 8; i++) {
      ok.push((await d.deliver(req())).ok);
      clock += 500; // four before the minute ends, four after
    }
    expect(ok).toEqual([true, true, true, false, false, false, false, false]);
    expect(sms.sent.length).toBe(3);
  });

  test("endpoint key limits replace the configured ones", async () => {
    const d = dispatcher({ limits: { ...NO_LIMITS, perKeyPerMinute: 100 } });
    const r = [];
    for (let i = 0; i < 3; i++) r.push((await d.deliver(req({ msisdn: `+4670123450${i}`, keyLimits: { perMinute: 2, perHour: 0 } }))).ok);
    expect(r).toEqual([true, true, false]);
  });

  test("a refused request (bad number) does not use up the budget", async () => {
    const d = dispatcher({ limits: { ...NO_LIMITS, perKeyPerMinute: 1 } });
    for (let i = 0; i < 5; i++) await d.deliver(req({ msisdn: "+358401234567" }));
    expect((await d.deliver(req())).ok).toBe(true);
  });

  test("two dispatchers on one store (two cluster nodes) share the limits", async () => {
    const a = dispatcher({ limits: { ...NO_LIMITS, perNumberPerMinute: 2 } });
    const b = dispatcher({ limits: { ...NO_LIMITS, perNumberPerMinute: 2 } });
    expect([(await a.deliver(req())).ok, (await b.deliver(req())).ok, (await a.deliver(req())).ok, (await b.deliver(req())).ok]).toEqual([true, true, false, false]);
  });
});

describe("failover, log and hooks", () => {
  test("failover in order: a failing gateway, then the next SMS channel, e-mail untouched", async () => {
    const first = channel("sms", "sms", [{ ok: false, reason: "gateway_error", detail: "HTTP 503" }]);
    const second = channel("sms-backup", "sms");
    const mail = channel("email", "email");
    const seen: unknown[] = [];
    const d = dispatcher({ channels: [first, second, mail], onDelivered: (...a) => seen.push(a) });
    expect(await d.deliver(req({ email: "alice@example.com" }))).toEqual({ ok: true, channel: "sms-backup" });
    expect(mail.sent).toEqual([]);
    expect(seen).toEqual([
      ["sms", "gateway_error", "SE"],
      ["sms-backup", "ok", "SE"],
    ]);
    const rows = (await store.deliveryLog.recent(10)).reverse();
    expect(rows.map((r) => [r.channel, r.destination, r.country, r.result, r.reason, r.detail, r.providerId])).toEqual([
      ["sms", "+46…67", "SE", "failed", "gateway_error", "HTTP 503", null],
      ["sms-backup", "+46…67", "SE", "sent", null, null, "sms-backup-id"],
    ]);
  });

  test("SMS fails, e-mail gets the same text with the subject", async () => {
    const sms = channel("sms", "sms", [{ ok: false, reason: "timeout", detail: "no answer within 5000 ms" }]);
    const mail = channel("email", "email");
    const d = dispatcher({ channels: [sms, mail] });
    expect(await d.deliver(req({ email: "alice@example.com", subject: "Sign in" }))).toEqual({ ok: true, channel: "email" });
    expect(mail.sent).toEqual([{ to: "alice@example.com", text: TEXT, subject: "Sign in" }]);
  });

  test("every channel failing is all_channels_failed with each reason", async () => {
    const d = dispatcher({
      channels: [channel("sms", "sms", [{ ok: false, reason: "network", detail: "network error (ECONNREFUSED)" }]), channel("email", "email", [{ ok: false, reason: "rejected", detail: "smtp EAUTH 535" }])],
    });
    expect(await d.deliver(req({ email: "alice@example.com" }))).toEqual({ ok: false, reason: "all_channels_failed", detail: "sms: network; email: rejected" });
  });

  test("an e-mail-only request skips SMS channels; no usable channel is all_channels_failed", async () => {
    const sms = channel("sms", "sms");
    const mail = channel("email", "email");
    expect(await dispatcher({ channels: [sms, mail] }).deliver(req({ msisdn: undefined, email: "bob@example.org" }))).toEqual({ ok: true, channel: "email" });
    expect(sms.sent).toEqual([]);
    expect(await dispatcher({ channels: [mail] }).deliver(req())).toMatchObject({ ok: false, reason: "all_channels_failed" });
  });

  test("an aborted request stops before the next channel", async () => {
    const ac = new AbortController();
    const first: Channel = { name: "sms", kind: "sms", send: async () => (ac.abort(), { ok: false, reason: "timeout", detail: "aborted by the caller" }) };
    const mail = channel("email", "email");
    const r = await dispatcher({ channels: [first, mail] }).deliver(req({ email: "a@example.com", signal: ac.signal }));
    expect(r).toMatchObject({ ok: false, reason: "all_channels_failed" });
    expect(mail.sent).toEqual([]);
  });

  test("onRefused reports refusals with the country", async () => {
    const seen: unknown[] = [];
    const d = dispatcher({ onRefused: (...a) => seen.push(a) });
    await d.deliver(req({ msisdn: "+358401234567" }));
    await d.deliver(req({ msisdn: "nonsense" }));
    expect(seen).toEqual([
      ["country_not_allowed", "FI"],
      ["invalid_number", undefined],
    ]);
  });

  test("the delivery log never holds the text, the link, the full number or the address", async () => {
    const d = dispatcher({
      channels: [channel("sms", "sms", [{ ok: false, reason: "gateway_error", detail: "HTTP 500" }]), channel("email", "email")],
      limits: { ...NO_LIMITS, perNumberPerMinute: 1 },
    });
    await d.deliver(req({ email: "alice@example.com" }));
    await d.deliver(req({ email: "alice@example.com" })); // rate limited
    await d.deliver(req({ msisdn: "+358401234567" })); // not allowed
    await d.deliver(req({ msisdn: "+46 70 ABC" })); // invalid
    const dump = JSON.stringify(await store.deliveryLog.recent(100));
    expect((await store.deliveryLog.recent(100)).length).toBe(5);
    for (const secret of [LINK, "secret-link-token", "Approve", "701234567", "alice@", "358401234567", "ABC"]) expect(dump).not.toContain(secret);
  });

  test("a negative limit is a TypeError at construction", () => {
    expect(() => dispatcher({ limits: { ...NO_LIMITS, perKeyPerHour: -1 } })).toThrow(TypeError);
  });
});
