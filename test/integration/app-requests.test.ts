// The approver app's requests end to end through the real server process, without a browser: a
// device client (WebCrypto keys, signed requests) enrolled from the CLI link, the test push service
// (decrypts each message with the subscription's keys), raw UDP for held RADIUS requests and
// challenge legs, the Magic Link API, and a local SMS gateway for users without a device.
// Covered: app channel instead of the SMS link, the push payload, list and event stream, approve,
// reject, report, number matching, the code typed at the VPN, a replayed or altered answer, another
// user's request, a removed device, an ended request, a push endpoint host not allowed, and the
// limits against fatigue (back-off, report lock, per-minute count).

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { Appliance, Attr, Code, UDPClient, addLiveClient, attributeValues, buildAccessRequest, eventually, identifier, type RawAttribute, type ServerProcess } from "./helpers/appliance.ts";
import { DeviceClient } from "./helpers/device-client.ts";
import { TestPushService } from "./helpers/push-service.ts";
import { decodeBase32, encodeBase32, totp } from "../../scripts/bench/radius-wire.ts";
import { DELIVERY_LIMITS_OFF, SmsGateway } from "./helpers/sms-gateway.ts";

// Each test drives several CLI runs and logins through a server process on a shared, loaded machine.
setDefaultTimeout(60_000);

const SUBJECT = "mailto:ops@example.com";
const PASSWORD = "correct horse battery";
const CALLING_STATION_ID = 31;
const enc = new TextEncoder();

function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

interface View {
  id: string;
  kind: string;
  user: string;
  service: string;
  source: string | null;
  created: string;
  expires: string;
  choices?: number[];
  code?: string;
}

let app: Appliance;
let server: ServerProcess;
let push: TestPushService;
let gateway: SmsGateway;
let base: string;
let mlKey: string;
const secrets: Record<string, string> = {};
const phones: Record<string, string> = {};
let nextPhone = 200;

async function user(name: string, type = "touch"): Promise<void> {
  phones[name] = `+4670124${String(nextPhone++).padStart(4, "0")}`;
  await app.cli(["user", "add", name, "--password-stdin", "--type", type, "--phone", phones[name]!], { stdin: PASSWORD });
}

/** Enrols a device for `name` from the CLI link (with a push subscription unless `withPush` is false). */
async function enrol(name: string, withPush = true): Promise<{ client: DeviceClient; sub?: ReturnType<TestPushService["subscribe"]> }> {
  const out = await app.cli(["device", "enrol", name]);
  const code = /#enrol=([A-Za-z0-9_-]{22})/.exec(out)![1]!;
  const client = await DeviceClient.create();
  const sub = withPush ? push.subscribe() : undefined;
  const res = await fetch(`${base}/app/api/v1/devices`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ enrolment: code, public_key: client.publicJwk, name: `${name}'s phone`, ...(sub ? { push: TestPushService.json(sub) } : {}) }),
  });
  expect(res.status).toBe(201);
  client.id = ((await res.json()) as { device: string }).device;
  return { client, sub };
}

async function list(client: DeviceClient): Promise<View[]> {
  const res = await fetch(await client.request(base, "GET", "/app/api/v1/requests"));
  expect(res.status).toBe(200);
  return ((await res.json()) as { requests: View[] }).requests;
}

/** The one pending request of a device's user, waited for. */
const pendingOf = (client: DeviceClient, service?: string) => eventually("a pending app request", async () => (await list(client)).find((v) => service === undefined || v.service === service));

async function answer(client: DeviceClient, id: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(await client.request(base, "POST", `/app/api/v1/requests/${id}`, body));
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

function accessRequest(client: string, name: string, password: string, { state, station }: { state?: Uint8Array; station?: string } = {}): Uint8Array {
  const attributes: RawAttribute[] = [
    [Attr.UserName, enc.encode(name)],
    [Attr.UserPassword, enc.encode(password)],
  ];
  if (state) attributes.push([Attr.State, state]);
  if (station) attributes.push([CALLING_STATION_ID, enc.encode(station)]);
  return buildAccessRequest({ identifier: identifier(), secret: secrets[client]!, attributes });
}

/** Sends one Access-Request from `address` and resolves with its reply (a held one waits for the answer). */
async function radius(client: string, address: string, name: string, password: string, options: { state?: Uint8Array; station?: string } = {}) {
  const udp = await UDPClient.open(address);
  try {
    const reply = await udp.exchange(accessRequest(client, name, password, options), server.port, secrets[client]!, { timeoutMs: 30_000 });
    expect(reply.responseAuthenticatorValid && reply.messageAuthenticatorValid).toBe(true);
    return reply;
  } finally {
    udp[Symbol.dispose]();
  }
}

const message = (r: { attributes: RawAttribute[] }) => attributeValues(r.attributes, Attr.ReplyMessage).join("");
const stateOf = (r: { attributes: RawAttribute[] }) => r.attributes.find(([t]) => t === Attr.State)![1];

/** An open event stream of a device: parsed events as they arrive. */
async function openEvents(client: DeviceClient) {
  const abort = new AbortController();
  const res = await fetch(await client.request(base, "GET", "/app/api/v1/events", undefined, { headers: { Accept: "text/event-stream" } }), { signal: abort.signal });
  const events: Array<{ event: string; data: Record<string, unknown> }> = [];
  const status = res.status;
  let comments = 0;
  if (status === 200) {
    void (async () => {
      const reader = res.body!.getReader();
      let buf = "";
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += new TextDecoder().decode(value);
          let i: number;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            if (block.startsWith(":")) comments++;
            const ev = /^event: (.+)$/m.exec(block)?.[1];
            const data = /^data: (.+)$/m.exec(block)?.[1];
            if (ev && data) events.push({ event: ev, data: JSON.parse(data) });
          }
        }
      } catch {
        // aborted
      }
    })();
  }
  return {
    status,
    res,
    events,
    comments: () => comments,
    next: (event: string, id?: string) => eventually(`event ${event}`, () => events.find((e) => e.event === event && (id === undefined || e.data.id === id))),
    close: () => abort.abort(),
  };
}

beforeAll(async () => {
  push = new TestPushService(SUBJECT);
  gateway = new SmsGateway();
  app = new Appliance();
  const port = freePort();
  base = `http://127.0.0.1:${port}`;
  app.writeConfig(`
region = "SE"
[http]
public_url = "${base}"
tls = false
[push]
subject = "${SUBJECT}"
allowed_hosts = ["127.0.0.1"]
timeout_ms = 3000
[app]
requests_per_minute = 3
reject_backoff_s = 60
report_lock_s = 600
[delivery]
${DELIVERY_LIMITS_OFF}
${gateway.smsConfig()}
`);
  server = await app.serve({ httpListen: `127.0.0.1:${port}` });
  secrets.hold = await addLiveClient(app, server, "hold", "127.0.0.1", ["--approval-hold", "20"]);
  secrets.challenge = await addLiveClient(app, server, "challenge", "127.0.0.3", ["--approval-mode", "challenge", "--approval-hold", "30", "--approval-number-match", "true"]);
  const out = await app.cli(["apikey", "add", "it-ml"]);
  mlKey = /pcl_[A-Za-z0-9_-]{43}/.exec(out)![0];
}, 90_000);

afterAll(async () => {
  await app?.[Symbol.asyncDispose]();
  push?.stop();
  await gateway?.stop();
});

describe("RADIUS touch through the app (held request)", () => {
  test("a user with a device gets an app request and no SMS; the push names only the request; the stream and the list show it; approve → Access-Accept, then gone", async () => {
    await user("ann");
    const { client, sub } = await enrol("ann");
    const stream = await openEvents(client);
    expect(stream.status).toBe(200);
    expect(stream.res.headers.get("content-type")).toStartWith("text/event-stream");
    const sms = gateway.messages.length;
    const pushed = push.messages.length;
    const login = radius("hold", "127.0.0.1", "ann", PASSWORD, { station: "203.0.113.7" });

    const [m] = (await push.waitFor(pushed + 1)).slice(pushed);
    expect(m!.path).toBe(new URL(sub!.endpoint).pathname);
    const payload = JSON.parse(m!.payload) as { v: number; id: string };
    expect(Object.keys(payload).sort()).toEqual(["id", "v"]);
    expect(payload.v).toBe(1);
    expect(m!.urgency).toBe("high");
    expect(m!.ttl).toBeGreaterThan(0);
    expect(m!.ttl).toBeLessThanOrEqual(20);

    const ev = await stream.next("request", payload.id);
    const view = ev.data as unknown as View;
    expect(view).toMatchObject({ id: payload.id, kind: "radius", user: "ann", service: "hold", source: "203.0.113.7" });
    expect(Date.parse(view.expires) - Date.parse(view.created)).toBe(20_000);
    expect(view.choices).toBeUndefined();
    expect(view.code).toBeUndefined();
    expect(await list(client)).toEqual([view]);

    expect(await answer(client, payload.id, { decision: "approve" })).toEqual({ status: 200, json: { status: "approved" } });
    const reply = await login;
    expect(reply.code).toBe(Code.AccessAccept);
    await stream.next("gone", payload.id);
    expect(await list(client)).toEqual([]);
    // Nothing went to the SMS gateway: the app replaced the link.
    expect(gateway.messages.length).toBe(sms);
    await server.waitForLog((l) => l.event === "approval.app_answered" && l.user === "ann" && l.state === "approved");
    stream.close();
  });

  test("several devices are pushed in parallel; one whose push service answers 410 loses its subscription and the login still succeeds", async () => {
    await user("ned");
    const good = await enrol("ned");
    const gone = await app.cli(["device", "enrol", "ned"]);
    const code = /#enrol=([A-Za-z0-9_-]{22})/.exec(gone)![1]!;
    const stale = await DeviceClient.create();
    const staleSub = push.subscribe(410);
    const res = await fetch(`${base}/app/api/v1/devices`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ enrolment: code, public_key: stale.publicJwk, name: "old phone", push: TestPushService.json(staleSub) }),
    });
    stale.id = ((await res.json()) as { device: string }).device;
    const pushed = push.messages.length;
    const login = radius("hold", "127.0.0.1", "ned", PASSWORD);
    const got = (await push.waitFor(pushed + 2)).slice(pushed);
    expect(got.map((m) => m.path).sort()).toEqual([new URL(good.sub!.endpoint).pathname, new URL(staleSub.endpoint).pathname].sort());
    expect(new Set(got.map((m) => (JSON.parse(m.payload) as { id: string }).id)).size).toBe(1);
    // Either device may answer; the stale one does.
    const v = await pendingOf(stale);
    await answer(stale, v.id, { decision: "approve" });
    expect((await login).code).toBe(Code.AccessAccept);
    await server.waitForLog((l) => l.event === "push.subscription_removed" && l.device === stale.id);
    const listed = JSON.parse(await app.cli(["device", "list", "ned", "--json"])) as Array<{ id: string; push: string | null }>;
    expect(listed.find((d) => d.id === stale.id)!.push).toBeNull();
    expect(listed.find((d) => d.id === good.client.id)!.push).not.toBeNull();
  });

  test("a user without a device gets the SMS link exactly as before", async () => {
    await user("bob");
    const from = gateway.messages.length;
    const login = radius("hold", "127.0.0.1", "bob", PASSWORD);
    const sms = await eventually("bob's SMS", () => gateway.messages.slice(from).find((x) => x.to === phones.bob));
    const link = /(https?:\/\/\S+\/ml\/[A-Za-z0-9_-]{43})/.exec(sms.message)![1]!;
    const html = await (await fetch(link)).text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(html)![1]!;
    expect((await fetch(link, { method: "POST", body: new URLSearchParams({ csrf, action: "approve" }) })).status).toBe(200);
    expect((await login).code).toBe(Code.AccessAccept);
  });

  test("reject → Access-Reject; the rejection starts a back-off that refuses the next login (approval_limited) without a push", async () => {
    await user("cat");
    const { client } = await enrol("cat");
    const login = radius("hold", "127.0.0.1", "cat", PASSWORD);
    const v = await pendingOf(client);
    expect(await answer(client, v.id, { decision: "reject" })).toEqual({ status: 200, json: { status: "rejected" } });
    expect((await login).code).toBe(Code.AccessReject);
    const backoff = await server.waitForLog((l) => l.event === "approval.backoff" && l.user === "cat");
    expect(backoff.strikes).toBe(1);
    const pushed = push.messages.length;
    const again = await radius("hold", "127.0.0.1", "cat", PASSWORD);
    expect(again.code).toBe(Code.AccessReject);
    await server.waitForLog((l) => l.event === "auth.failure" && l.user === "cat" && l.reason === "approval_limited");
    expect(server.logs.find((l) => l.event === "approval.limited" && l.user === "cat")).toMatchObject({ reason: "backoff" });
    expect(await list(client)).toEqual([]);
    expect(push.messages.length).toBe(pushed);
  });

  test('"report" rejects, is audited as approval.reported and locks the user\'s app requests; `user unlock` ends the lock', async () => {
    await user("dan");
    const { client } = await enrol("dan");
    const login = radius("hold", "127.0.0.1", "dan", PASSWORD, { station: "198.51.100.9" });
    const v = await pendingOf(client);
    expect(await answer(client, v.id, { decision: "report" })).toEqual({ status: 200, json: { status: "reported" } });
    expect((await login).code).toBe(Code.AccessReject);
    const reported = await server.waitForLog((l) => l.event === "approval.reported" && l.user === "dan");
    expect(reported).toMatchObject({ level: "warn", id: v.id, device: client.id, source: "198.51.100.9", client: "hold" });
    expect(Date.parse(String(reported.until)) - Date.now()).toBeGreaterThan(500_000);
    expect((await radius("hold", "127.0.0.1", "dan", PASSWORD)).code).toBe(Code.AccessReject);
    expect(server.logs.find((l) => l.event === "approval.limited" && l.user === "dan")).toMatchObject({ reason: "locked" });

    await app.cli(["user", "unlock", "dan"]);
    const login2 = radius("hold", "127.0.0.1", "dan", PASSWORD);
    const v2 = await pendingOf(client);
    expect(v2.id).not.toBe(v.id);
    await answer(client, v2.id, { decision: "approve" });
    expect((await login2).code).toBe(Code.AccessAccept);
  });

  test("touch-plus under a back-off skips the app (app_limited) and asks for the token, which is accepted", async () => {
    await user("pia", "touch-plus");
    const seed = encodeBase32(randomBytes(20));
    await app.cli(["token", "add", "pia", "--totp", "--secret", seed]);
    const { client } = await enrol("pia");
    const login = radius("hold", "127.0.0.1", "pia", PASSWORD);
    const v = await pendingOf(client);
    await answer(client, v.id, { decision: "reject" });
    expect((await login).code).toBe(Code.AccessReject);
    const first = await radius("hold", "127.0.0.1", "pia", PASSWORD);
    expect(first.code).toBe(Code.AccessChallenge);
    const ok = await radius("hold", "127.0.0.1", "pia", totp(decodeBase32(seed), { now: Date.now() }), { state: stateOf(first) });
    expect(ok.code).toBe(Code.AccessAccept);
    const steps = server.logs.filter((l) => l.event === "auth.step" && l.user === "pia").map((l) => [l.factor, l.result, l.reason ?? null]);
    expect(steps.slice(-2)).toEqual([
      ["approval", "skipped", "app_limited"],
      ["otp", "asked", null],
    ]);
  });

  test("at most requests_per_minute app requests per user: the next is refused before any push", async () => {
    await user("eve");
    const { client } = await enrol("eve");
    for (let i = 0; i < 3; i++) {
      const login = radius("hold", "127.0.0.1", "eve", PASSWORD);
      const v = await pendingOf(client);
      await answer(client, v.id, { decision: "approve" });
      expect((await login).code).toBe(Code.AccessAccept);
    }
    const pushed = push.messages.length;
    expect((await radius("hold", "127.0.0.1", "eve", PASSWORD)).code).toBe(Code.AccessReject);
    expect(server.logs.find((l) => l.event === "approval.limited" && l.user === "eve")).toMatchObject({ reason: "rate_limited" });
    expect(push.messages.length).toBe(pushed);
  });
});

describe("signed answers", () => {
  test("a replayed answer, an altered one, another user's request, an ended request and a removed device are refused", async () => {
    await user("fay");
    await user("gus");
    const fay = await enrol("fay");
    const gus = await enrol("gus", false);
    const login = radius("hold", "127.0.0.1", "fay", PASSWORD);
    const v = await pendingOf(fay.client);
    // gus's device neither sees nor answers fay's request.
    expect(await list(gus.client)).toEqual([]);
    expect(await answer(gus.client, v.id, { decision: "approve" })).toMatchObject({ status: 403, json: { reason: "not_your_request" } });
    // A body other than the one signed (approve turned into a signed reject): bad signature.
    const altered = await fay.client.request(base, "POST", `/app/api/v1/requests/${v.id}`, { decision: "approve" }, { signBody: JSON.stringify({ decision: "reject" }) });
    expect((await fetch(altered)).status).toBe(401);
    // The same signature for another request ID (path): bad signature.
    const otherPath = await fay.client.request(base, "POST", `/app/api/v1/requests/${v.id}`, { decision: "approve" }, { signPath: "/app/api/v1/requests/AAAAAAAAAAAAAAAAAAAAAA" });
    expect((await fetch(otherPath)).status).toBe(401);
    const req = await fay.client.request(base, "POST", `/app/api/v1/requests/${v.id}`, { decision: "reject" });
    const replay = req.clone() as Request;
    expect((await fetch(req)).status).toBe(200);
    const again = await fetch(replay);
    expect(again.status).toBe(401);
    expect(await again.json()).toMatchObject({ reason: "replayed" });
    expect((await login).code).toBe(Code.AccessReject);
    // A fresh signature on an ended request: 409.
    expect(await answer(fay.client, v.id, { decision: "approve" })).toMatchObject({ status: 409, json: { reason: "ended" } });
    expect(await answer(fay.client, "no-such-request", { decision: "approve" })).toMatchObject({ status: 404 });
    expect((await answer(fay.client, v.id, { decision: "maybe" })).status).toBe(400);

    await app.cli(["device", "remove", fay.client.id]);
    expect(await answer(fay.client, v.id, { decision: "approve" })).toMatchObject({ status: 403, json: { reason: "removed_device" } });
    const res = await fetch(await fay.client.request(base, "GET", "/app/api/v1/requests"));
    expect(res.status).toBe(403);
  });

  test("a push endpoint on a host not in allowed_hosts is refused", async () => {
    await user("hal");
    const { client } = await enrol("hal", false);
    const res = await fetch(await client.request(base, "PUT", "/app/api/v1/push", { endpoint: "https://push.evil.example/x", keys: TestPushService.json(push.subscribe()).keys }));
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toContain("allowed_hosts");
  });
});

describe("challenge mode through the app", () => {
  test("number matching: the choices include the number in the prompt; a wrong pick rejects the next leg", async () => {
    await user("ida");
    const { client } = await enrol("ida");
    const first = await radius("challenge", "127.0.0.3", "ida", PASSWORD);
    expect(first.code).toBe(Code.AccessChallenge);
    const n = Number(/choose (\d+)/.exec(message(first))![1]);
    expect(message(first)).toContain("or enter the code shown in the app");
    const v = await pendingOf(client);
    expect(v.choices).toHaveLength(3);
    expect(v.choices).toContain(n);
    expect(v.code).toMatch(/^\d{6}$/);
    const wrong = v.choices!.find((c) => c !== n)!;
    expect(await answer(client, v.id, { decision: "approve", pick: wrong })).toEqual({ status: 200, json: { status: "rejected" } });
    const next = await radius("challenge", "127.0.0.3", "ida", "", { state: stateOf(first) });
    expect(next.code).toBe(Code.AccessReject);
    await server.waitForLog((l) => l.event === "approval.app_answered" && l.user === "ida" && l.wrong_number === true);
  });

  test("the right pick approves; the code shown in the app, typed at the VPN, is accepted instead of a tap; a wrong code rejects", async () => {
    await user("jon");
    const { client } = await enrol("jon");
    let first = await radius("challenge", "127.0.0.3", "jon", PASSWORD);
    const n = Number(/choose (\d+)/.exec(message(first))![1]);
    let v = await pendingOf(client);
    expect(await answer(client, v.id, { decision: "approve", pick: n })).toEqual({ status: 200, json: { status: "approved" } });
    expect((await radius("challenge", "127.0.0.3", "jon", "", { state: stateOf(first) })).code).toBe(Code.AccessAccept);

    first = await radius("challenge", "127.0.0.3", "jon", PASSWORD);
    v = await pendingOf(client);
    const stream = await openEvents(client);
    await stream.next("request", v.id);
    const ok = await radius("challenge", "127.0.0.3", "jon", v.code!, { state: stateOf(first) });
    expect(ok.code).toBe(Code.AccessAccept);
    await stream.next("gone", v.id);
    stream.close();
    // The code is never in a log line.
    expect(JSON.stringify(server.logs)).not.toContain(`"${v.code}"`);

    first = await radius("challenge", "127.0.0.3", "jon", PASSWORD);
    v = await pendingOf(client);
    const wrongCode = v.code === "000000" ? "111111" : "000000";
    expect((await radius("challenge", "127.0.0.3", "jon", wrongCode, { state: stateOf(first) })).code).toBe(Code.AccessReject);
    await server.waitForLog((l) => l.event === "approval.wrong_code" && l.user === "jon");
    expect(await answer(client, v.id, { decision: "approve" })).toMatchObject({ status: 409 });
  });
});

describe("Magic Link through the app", () => {
  test('a number whose user has a device gets an app request ("4a"): the waiting call ends TOUCH_ACCEPTED on approve and TOUCH_REJECTED on reject', async () => {
    await user("kim");
    const { client } = await enrol("kim");
    const from = gateway.messages.length;
    const call = fetch(`${base}/api/sfwa/auth?msisdn=${encodeURIComponent(phones.kim!)}`, { headers: { "api-key": mlKey } }).then((r) => r.text());
    const v = await pendingOf(client);
    expect(v).toMatchObject({ kind: "magic-link", user: "kim", service: "default" });
    await answer(client, v.id, { decision: "approve" });
    expect(await call).toBe('{"code":"TOUCH_ACCEPTED"}');

    const call2 = fetch(`${base}/api/sfwa/auth?msisdn=${encodeURIComponent(phones.kim!)}`, { headers: { "api-key": mlKey } }).then((r) => r.text());
    const v2 = await eventually("a second request", async () => (await list(client)).find((x) => x.id !== v.id));
    await answer(client, v2.id, { decision: "reject" });
    expect(await call2).toBe('{"code":"TOUCH_REJECTED"}');
    expect(gateway.messages.slice(from).filter((m) => m.to === phones.kim)).toEqual([]);
  });

  test('a number without a device gets the SMS link ("4b")', async () => {
    await user("lou");
    const from = gateway.messages.length;
    const abort = new AbortController();
    const call = fetch(`${base}/api/sfwa/auth?msisdn=${encodeURIComponent(phones.lou!)}`, { headers: { "api-key": mlKey }, signal: abort.signal }).then((r) => r.text());
    const sms = await eventually("lou's SMS", () => gateway.messages.slice(from).find((x) => x.to === phones.lou));
    expect(sms.message).toContain("/ml/");
    abort.abort();
    await call.catch(() => {});
  });
});

describe("event streams", () => {
  test("bounded per user: a fifth stream is refused with 429; a device's third closes its oldest", async () => {
    await user("max");
    const a = await enrol("max", false);
    const b = await enrol("max", false);
    const c = await enrol("max", false);
    const streams = [await openEvents(a.client), await openEvents(a.client), await openEvents(b.client), await openEvents(b.client)];
    expect(streams.map((s) => s.status)).toEqual([200, 200, 200, 200]);
    const fifth = await openEvents(c.client);
    expect(fifth.status).toBe(429);
    // A third stream of device a replaces its oldest, so it is admitted.
    const third = await openEvents(a.client);
    expect(third.status).toBe(200);
    for (const s of [...streams, third]) s.close();
  });
});
