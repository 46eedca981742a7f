// The HTTP SMS gateway channel against a real HTTP server on 127.0.0.1 playing Twilio, 46elks and Vonage: exact wire requests, failure modes, failover.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createDispatcher } from "../../src/delivery/dispatcher.ts";
import { createSmsHttpChannel, type SmsHttpOptions } from "../../src/delivery/sms-http.ts";
import type { DeliveryResult } from "../../src/delivery/types.ts";
import type { SqliteStore } from "../../src/store/sqlite/store.ts";
import { cleanup, openIn, tempDir } from "../unit/store/helpers.ts";
import { SmsGateway, answer, type GatewayReply } from "./helpers/sms-gateway.ts";

const LINK = "https://mfa.example.com/ml/AbCdEfGhIjKlMnOpQrStUv";
const TEXT = `Approve "Acme VPN" & sign in: ${LINK}`;
const TO = "+46701234567";
const PASSWORD = "twilio-auth-token-s3cret";
const HEADER_SECRET = "x-api-key-v4lue-s3cret";

let gw: SmsGateway;
let base: string;
beforeAll(() => {
  gw = new SmsGateway();
  base = gw.url;
});
afterAll(async () => {
  await gw.stop();
});

function send(opts: Partial<SmsHttpOptions>, text = TEXT): Promise<DeliveryResult> {
  gw.clear();
  const ch = createSmsHttpChannel({ url: `${base}/sms`, method: "POST", contentType: "form", body: "to={to}&message={message}", timeoutMs: 2000, ...opts });
  return ch.send({ to: TO, text }, {});
}

describe("wire format", () => {
  test("Twilio Messages API: form POST with basic auth, To/From/Body, 201 with the SID", async () => {
    gw.reply = answer(201, { sid: "SM0123456789abcdef", status: "queued" });
    const r = await send({
      url: `${base}/2010-04-01/Accounts/AC0123/Messages.json`,
      body: "To={to}&From=Acme&Body={message}",
      basicAuth: { user: "AC0123", password: PASSWORD },
    });
    expect(r).toEqual({ ok: true, providerId: "SM0123456789abcdef" });
    const [got] = gw.received;
    expect(got!.method).toBe("POST");
    expect(got!.url).toBe("/2010-04-01/Accounts/AC0123/Messages.json");
    expect(got!.headers["content-type"]).toBe("application/x-www-form-urlencoded");
    expect(got!.headers.authorization).toBe(`Basic ${Buffer.from(`AC0123:${PASSWORD}`).toString("base64")}`);
    expect(got!.body).toBe(
      "To=%2B46701234567&From=Acme&Body=Approve+%22Acme+VPN%22+%26+sign+in%3A+https%3A%2F%2Fmfa.example.com%2Fml%2FAbCdEfGhIjKlMnOpQrStUv",
    );
    // What a form parser on the other side reads back.
    const p = new URLSearchParams(got!.body);
    expect([p.get("To"), p.get("From"), p.get("Body")]).toEqual([TO, "Acme", TEXT]);
  });

  test("46elks: form POST of from/to/message", async () => {
    gw.reply = answer(200, { id: "s70df59406a1b4643b96f3f91e0bfb7b0", status: "created" });
    const r = await send({ url: `${base}/a1/sms`, body: "from=Acme&to={to}&message={message}", basicAuth: { user: "u1", password: PASSWORD } });
    expect(r).toEqual({ ok: true, providerId: "s70df59406a1b4643b96f3f91e0bfb7b0" });
    expect(Object.fromEntries(new URLSearchParams(gw.received[0]!.body))).toEqual({ from: "Acme", to: TO, message: TEXT });
  });

  test("JSON body: values JSON-escaped (quotes, newline, non-ASCII), custom header, no basic auth", async () => {
    gw.reply = answer(202, "{}");
    const text = `Hej "Åsa"\nÖppna: ${LINK} \\ {to}`;
    const r = await send({ contentType: "json", body: '{"to":"{to}","text":"{message}","sender":"Acme"}', headers: { "X-Api-Key": HEADER_SECRET } }, text);
    expect(r).toEqual({ ok: true });
    const [got] = gw.received;
    expect(got!.headers["content-type"]).toBe("application/json");
    expect(got!.headers["x-api-key"]).toBe(HEADER_SECRET);
    expect(got!.headers.authorization).toBeUndefined();
    expect(JSON.parse(got!.body)).toEqual({ to: TO, text, sender: "Acme" });
  });

  test("GET: the rendered template becomes the query string", async () => {
    gw.reply = answer(200, "OK: queued");
    const r = await send({ method: "GET", url: `${base}/send?user=acme`, body: "dest={to}&msg={message}", successMatch: /^OK/ });
    expect(r).toEqual({ ok: true });
    const [got] = gw.received;
    expect(got!.method).toBe("GET");
    expect(got!.body).toBe("");
    const u = new URL(got!.url, base);
    expect(u.pathname).toBe("/send");
    expect([...u.searchParams]).toEqual([["user", "acme"], ["dest", TO], ["msg", TEXT]]);
  });

  test("Vonage SMS API: 200 with status 0 and a message-id is success under success_match", async () => {
    gw.reply = answer(200, { "message-count": "1", messages: [{ to: "46701234567", "message-id": "0C000000217B7F02", status: "0" }] });
    const r = await send({ url: `${base}/sms/json`, body: "api_key=k&api_secret=s&from=Acme&to={to_digits}&text={message}", successMatch: /"status":\s*"0"/ });
    expect(r).toEqual({ ok: true, providerId: "0C000000217B7F02" });
    expect(gw.received[0]!.body).toBe(`api_key=k&api_secret=s&from=Acme&to=46701234567&text=${new URLSearchParams({ t: TEXT }).toString().slice(2)}`);
  });
});

describe("failure modes", () => {
  test.each<[string, GatewayReply, Partial<SmsHttpOptions>, DeliveryResult]>([
    ["HTTP 500", answer(500, "boom"), {}, { ok: false, reason: "gateway_error", detail: "HTTP 500" }],
    ["HTTP 401 (bad credentials)", answer(401, `{"message":"Authenticate","text":${JSON.stringify(TEXT)}}`), {}, { ok: false, reason: "rejected", detail: "HTTP 401" }],
    [
      "200 with an error body (Vonage status 4) and success_match",
      answer(200, JSON.stringify({ messages: [{ status: "4", "error-text": "Bad Credentials" }] })),
      { successMatch: /"status":\s*"0"/ },
      { ok: false, reason: "rejected", detail: "HTTP 200 without a success_match match" },
    ],
    [
      "a redirect is not followed (credentials stay with the gateway)",
      answer(302, "", { location: "http://127.0.0.1:9/steal" }),
      { basicAuth: { user: "u", password: PASSWORD } },
      { ok: false, reason: "gateway_error", detail: "HTTP 302" },
    ],
  ])("%s", async (_, reply, opts, expected) => {
    gw.reply = reply;
    const r = await send(opts);
    expect(r).toEqual(expected);
    expect(gw.received.length).toBe(1);
  });

  test("200 without success_match configured is success even with a body", async () => {
    gw.reply = answer(200, "anything");
    expect(await send({})).toEqual({ ok: true });
  });

  test("a gateway that never answers times out", async () => {
    gw.hold();
    const r = await send({ timeoutMs: 200 });
    expect(r).toEqual({ ok: false, reason: "timeout", detail: "no answer within 200 ms" });
  });

  test("the caller's abort signal ends the request", async () => {
    gw.hold();
    const ac = new AbortController();
    const ch = createSmsHttpChannel({ url: `${base}/sms`, method: "POST", contentType: "form", body: "to={to}&message={message}", timeoutMs: 30_000 });
    const pending = ch.send({ to: TO, text: TEXT }, { signal: ac.signal });
    ac.abort();
    expect(await pending).toEqual({ ok: false, reason: "timeout", detail: "aborted by the caller" });
  });

  test("connection refused is a network failure", async () => {
    const closed = new SmsGateway();
    const url = closed.url;
    await closed.stop();
    const r = await createSmsHttpChannel({ url: `${url}/sms`, method: "POST", contentType: "form", body: "to={to}&message={message}", timeoutMs: 2000 }).send({ to: TO, text: TEXT }, {});
    expect(r.ok).toBe(false);
    expect(r).toMatchObject({ reason: "network" });
  });

  test("no failure detail ever holds the text, the link, the number or a credential", async () => {
    const details: string[] = [];
    for (const reply of [answer(400, TEXT), answer(200, TEXT)]) {
      gw.reply = reply;
      const r = await send({ successMatch: /never/, basicAuth: { user: "u", password: PASSWORD }, headers: { "X-Api-Key": HEADER_SECRET } });
      if (!r.ok) details.push(r.detail);
    }
    gw.hold();
    const r = await send({ timeoutMs: 100, method: "GET", url: `${base}/x?password=${PASSWORD}` });
    if (!r.ok) details.push(r.detail);
    expect(details.length).toBe(3);
    for (const s of [LINK, "Approve", TO, "701234567", PASSWORD, HEADER_SECRET]) expect(details.join("\n")).not.toContain(s);
  });
});

describe("failover through the dispatcher", () => {
  let dir: string;
  let store: SqliteStore;
  beforeAll(async () => {
    dir = tempDir();
    store = await openIn(dir);
  });
  afterAll(async () => {
    await store.close();
    cleanup(dir);
  });

  test("a failing primary gateway (each failure mode) fails over to a second gateway", async () => {
    const backup = new SmsGateway();
    const backupURL = backup.url;
    const refused = new SmsGateway();
    const refusedURL = refused.url;
    await refused.stop();
    try {
      backup.reply = answer(200, JSON.stringify({ id: "backup-1" }));
      const cases: Array<[string, GatewayReply | undefined, Partial<SmsHttpOptions>]> = [
        ["HTTP 503", answer(503), {}],
        ["200 with an error body", answer(200, '{"status":"error"}'), { successMatch: /"status":"ok"/ }],
        ["timeout", undefined, { timeoutMs: 150 }],
        ["connection refused", answer(200), { url: `${refusedURL}/sms` }],
      ];
      for (const [name, reply, opts] of cases) {
        if (reply) gw.reply = reply;
        else gw.hold();
        backup.clear();
        const primary = createSmsHttpChannel({ name: "sms", url: `${base}/sms`, method: "POST", contentType: "form", body: "to={to}&message={message}", timeoutMs: 2000, ...opts });
        const second = createSmsHttpChannel({ name: "sms-backup", url: `${backupURL}/sms`, method: "POST", contentType: "form", body: "to={to}&message={message}", timeoutMs: 2000 });
        const d = createDispatcher({ channels: [primary, second], region: "SE", allowList: { countries: ["SE"], prefixes: [] }, rateLimits: store.rateLimits, deliveryLog: store.deliveryLog });
        const r = await d.deliver({ msisdn: "0701234567", text: TEXT, endpoint: "default", apiKeyId: `k-${name}` });
        expect([name, r]).toEqual([name, { ok: true, channel: "sms-backup" }]);
        expect(new URLSearchParams(backup.received[0]!.body).get("message")).toBe(TEXT);
      }
      const rows = (await store.deliveryLog.recent(100)).reverse();
      expect(rows.map((r) => [r.channel, r.result, r.reason])).toEqual([
        ["sms", "failed", "gateway_error"],
        ["sms-backup", "sent", null],
        ["sms", "failed", "rejected"],
        ["sms-backup", "sent", null],
        ["sms", "failed", "timeout"],
        ["sms-backup", "sent", null],
        ["sms", "failed", "network"],
        ["sms-backup", "sent", null],
      ]);
      expect(rows[1]!.providerId).toBe("backup-1");
      expect(JSON.stringify(rows)).not.toContain(LINK);
    } finally {
      await backup.stop();
    }
  });
});
