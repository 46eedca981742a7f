// Phone factors over RADIUS against the compiled binary: types mobile (2), touch (6), touch-plus (7)
// and touch-mobile (8), local users and slapd users, driven by radclient and raw UDP, with a local
// HTTP server playing the SMS gateway in its real wire format (form POST, JSON answer checked with
// success_match, as in the Magic Link tests; it can be told to fail message by message) and
// headless Chromium opening the approval link from the captured SMS.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { chromium, type Browser } from "playwright-core";
import { Appliance, Attr, Code, UDPClient, addLiveClient, attributeValues, buildAccessRequest, checkReply, eventually, identifier, tomlString, type RawAttribute, type ServerProcess } from "./helpers/appliance.ts";
import { attr, quote, radclient, radclientPath } from "./helpers/radclient.ts";
import { BASE_DN, PEOPLE, SERVICE_DN, SERVICE_PASSWORD, runSlapdTests, slapdPath, startSlapd, type Slapd } from "./helpers/slapd.ts";
import { decodeBase32, encodeBase32, totp, type CheckedReply } from "../../scripts/bench/radius-wire.ts";
import { DELIVERY_LIMITS_OFF, SmsGateway, codeIn, linkIn } from "./helpers/sms-gateway.ts";

const CHROMIUM = "/usr/bin/chromium";
const CALLING_STATION_ID = 31;
const SESSION_TIMEOUT = 27;
const REJECT = "Authentication failed";
const UNREACHABLE = "Phone not reachable; enter the code from your authenticator app";
const NO_ANSWER = "No answer on the phone; enter the code from your authenticator app";
const APPROVE = "Approve the request on your phone, then press OK";
const PASSWORD = "correct horse battery";

function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const newSeed = () => encodeBase32(randomBytes(20));
const codeOf = (seed: string) => totp(decodeBase32(seed), { now: Date.now() });

let app: Appliance;
let server: ServerProcess;
let gateway: SmsGateway;
let browser: Browser;
let base: string;
/** A code sent at start-up and left to expire (sms_code_lifetime_s = 30). */
let expiring: { state: string; code: string; sentAt: number };
/** Per client: its shared secret. */
const secrets: Record<string, string> = {};
/** Per user: phone number and TOTP seed (when enrolled). */
const phones: Record<string, string> = {};
const seeds: Record<string, string> = {};
let nextPhone = 100;

/** Adds a local user of `type` with a fresh number (unless `phone` is false) and a TOTP token (unless `token` is false). */
async function user(name: string, type: string, { phone = true, token = true } = {}): Promise<void> {
  const args = ["user", "add", name, "--password-stdin", "--type", type];
  if (phone) {
    phones[name] = `+4670123${String(nextPhone++).padStart(4, "0")}`;
    args.push("--phone", phones[name]!);
  }
  await app.cli(args, { stdin: PASSWORD });
  if (token) {
    seeds[name] = newSeed();
    await app.cli(["token", "add", name, "--totp", "--secret", seeds[name]!]);
  }
}

/** One Access-Request (Message-Authenticator first), with an optional State and Calling-Station-Id. */
function request(client: string, name: string, password: string, { state, station, id = identifier() }: { state?: Uint8Array; station?: string; id?: number } = {}): Uint8Array {
  const attributes: RawAttribute[] = [
    [Attr.UserName, enc.encode(name)],
    [Attr.UserPassword, enc.encode(password)],
  ];
  if (state) attributes.push([Attr.State, state]);
  if (station) attributes.push([CALLING_STATION_ID, enc.encode(station)]);
  return buildAccessRequest({ identifier: id, secret: secrets[client]!, attributes });
}

/** Sends `packet` from `udp` and waits for its reply (checked: authenticators valid, MA first). */
async function send(udp: UDPClient, client: string, packet: Uint8Array, timeoutMs = 5000): Promise<CheckedReply> {
  const reply = await udp.exchange(packet, server.port, secrets[client]!, { timeoutMs });
  expect(reply.responseAuthenticatorValid).toBe(true);
  expect(reply.messageAuthenticatorValid && reply.messageAuthenticatorFirst).toBe(true);
  return reply;
}

const message = (r: CheckedReply) => attributeValues(r.attributes, Attr.ReplyMessage).join("");
const stateOf = (r: CheckedReply) => r.attributes.find(([t]) => t === Attr.State)![1];
const sessionTimeout = (r: CheckedReply) => new DataView(r.attributes.find(([t]) => t === SESSION_TIMEOUT)![1].buffer).getUint32(0);
const codeName = (c: number) => ({ [Code.AccessAccept]: "Access-Accept", [Code.AccessReject]: "Access-Reject", [Code.AccessChallenge]: "Access-Challenge" })[c] ?? String(c);

/** Waits for the next SMS to `to` after `from` messages; returns its text. */
const nextSms = (to: string, from: number) => gateway.waitFor(to, from);

/** The auth.failure line of a user (waited for: a log line may reach the test after the reply). */
const failureOf = (name: string, reason: string) => server.waitForLog((l) => l.event === "auth.failure" && l.user === name && l.reason === reason);
/** The auth.success line of a user. */
const successOf = (name: string) => server.waitForLog((l) => l.event === "auth.success" && l.user === name);
/** The auth.step lines of a user so far, as [factor, result, reason]. */
const stepsOf = (name: string) => server.logs.filter((l) => l.event === "auth.step" && l.user === name).map((l) => [l.factor, l.result, l.reason ?? null]);

/** Approves or rejects a link in headless Chromium, as a user does. */
async function tap(link: string, button: "approve" | "reject"): Promise<string> {
  const page = await browser.newPage();
  try {
    await page.goto(link);
    await page.click(`#${button}`);
    await page.waitForSelector("#result");
    return (await page.textContent("#result")) ?? "";
  } finally {
    await page.close();
  }
}

/** Answers a link with plain form POSTs (CSRF token from the GET). */
async function answerByForm(link: string, action: "approve" | "reject"): Promise<number> {
  const html = await (await fetch(link)).text();
  const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? "";
  return (await fetch(link, { method: "POST", body: new URLSearchParams({ csrf, action }) })).status;
}

/** A radclient-style challenge leg's State, as hex for radclient's attribute list. */
const hexState = (r: { attributes: Array<[string, string]> }) => attr(r as never, "State")!.replace(/^0x/, "");
const rad = (client: string, attrs: string[]) => radclient(server.port, secrets[client]!, attrs);
const radState = (hex: string) => `State = 0x${hex}`;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: these tests need headless Chromium (apt-get install -y chromium)`);
  if (!radclientPath) throw new Error("radclient not installed: apt-get install freeradius-utils");
  gateway = new SmsGateway();
  app = new Appliance();
  const port = freePort();
  base = `http://127.0.0.1:${port}`;
  app.writeConfig(`
region = "SE"
[radius]
# the expired-code test answers a State issued at start-up: the State must outlive the file's run
# (slow on a loaded machine) so that the code's own lifetime is what refuses it
challenge_ttl_s = 600
[http]
public_url = "${base}"
tls = false
[delivery]
${DELIVERY_LIMITS_OFF}
sms_code_lifetime_s = 30
${gateway.smsConfig()}
`);
  server = await app.serve({ httpListen: `127.0.0.1:${port}` });
  secrets.hold = await addLiveClient(app, server, "hold", "127.0.0.1", ["--approval-hold", "20"]);
  secrets.short = await addLiveClient(app, server, "short", "127.0.0.2", ["--approval-hold", "5"]);
  secrets.challenge = await addLiveClient(app, server, "challenge", "127.0.0.3", ["--approval-mode", "challenge", "--approval-hold", "6"]);
  secrets.concat = await addLiveClient(app, server, "concat", "127.0.0.4", ["--otp-mode", "concat"]);
  // The expired-code test's first leg goes now, so that the code's 30 s run while the other tests do.
  await user("m3", "mobile");
  const from = gateway.messages.length;
  const first = await rad("hold", [`User-Name = m3`, `User-Password = ${quote(PASSWORD)}`]);
  expiring = { state: hexState(first), code: codeIn(await nextSms(phones.m3!, from))!, sentAt: Date.now() };
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await app?.[Symbol.asyncDispose]();
  await gateway?.stop();
});


describe("type mobile (2): SMS one-time code, radclient", () => {
  test("challenge naming the masked number; the code is accepted; the same code again is refused; the text carries neither name nor password", async () => {
    await user("m1", "mobile");
    const from = gateway.messages.length;
    const first = await rad("hold", [`User-Name = m1`, `User-Password = ${quote(PASSWORD)}`]);
    expect(first.code).toBe("Access-Challenge");
    expect(attr(first, "Reply-Message")).toBe(`Enter the code sent to +46…${phones.m1!.slice(-2)}`);
    const sms = await nextSms(phones.m1!, from);
    expect(sms).toMatch(/^Your sign-in code is \d{6}\. Do not share it with anyone\.$/);
    expect(sms).not.toContain("m1");
    expect(sms).not.toContain(PASSWORD);
    const code = codeIn(sms)!;
    const ok = await rad("hold", [`User-Name = m1`, `User-Password = ${quote(code)}`, radState(hexState(first))]);
    expect(ok.code).toBe("Access-Accept");
    const twice = await rad("hold", [`User-Name = m1`, `User-Password = ${quote(code)}`, radState(hexState(first))]);
    expect(twice.code).toBe("Access-Reject");
    expect(attr(twice, "Reply-Message")).toBe(REJECT);
    expect(await successOf("m1")).toMatchObject({ factors: ["password", "sms"] });
    expect(JSON.stringify(server.logs)).not.toContain(code);
  });

  test("a wrong code is challenged again and the right one then accepted; three wrong codes end it", async () => {
    await user("m2", "mobile");
    const from = gateway.messages.length;
    const first = await rad("hold", [`User-Name = m2`, `User-Password = ${quote(PASSWORD)}`]);
    const code = codeIn(await nextSms(phones.m2!, from))!;
    const wrong = code === "000000" ? "111111" : "000000";
    const retry = await rad("hold", [`User-Name = m2`, `User-Password = ${wrong}`, radState(hexState(first))]);
    expect(retry.code).toBe("Access-Challenge");
    expect(attr(retry, "Reply-Message")).toBe("Wrong code, try again");
    expect((await rad("hold", [`User-Name = m2`, `User-Password = ${quote(code)}`, radState(hexState(retry))])).code).toBe("Access-Accept");

    const from2 = gateway.messages.length;
    let leg = await rad("hold", [`User-Name = m2`, `User-Password = ${quote(PASSWORD)}`]);
    await nextSms(phones.m2!, from2);
    for (let i = 0; i < 2; i++) {
      leg = await rad("hold", [`User-Name = m2`, `User-Password = ${wrong}`, radState(hexState(leg))]);
      expect(leg.code).toBe("Access-Challenge");
    }
    expect((await rad("hold", [`User-Name = m2`, `User-Password = ${wrong}`, radState(hexState(leg))])).code).toBe("Access-Reject");
    await failureOf("m2", "too_many_codes");
  });

  test("the gateway fails → the TOTP token is asked for; the code from the app is accepted", async () => {
    await user("m4", "mobile");
    gateway.queued = ["down"];
    const first = await rad("hold", [`User-Name = m4`, `User-Password = ${quote(PASSWORD)}`]);
    expect(first.code).toBe("Access-Challenge");
    expect(attr(first, "Reply-Message")).toBe(UNREACHABLE);
    const ok = await rad("hold", [`User-Name = m4`, `User-Password = ${codeOf(seeds.m4!)}`, radState(hexState(first))]);
    expect(ok.code).toBe("Access-Accept");
    expect(await successOf("m4")).toMatchObject({ factors: ["password", "otp"] });
    expect(stepsOf("m4")).toEqual([
      ["sms", "skipped", "not_delivered"],
      ["otp", "asked", null],
    ]);
  });

  test("the gateway fails and no token → Access-Reject, generic text, the audit line names the delivery failure", async () => {
    await user("m5", "mobile", { token: false });
    gateway.queued = ["down"];
    const r = await rad("hold", [`User-Name = m5`, `User-Password = ${quote(PASSWORD)}`]);
    expect(r.code).toBe("Access-Reject");
    expect(attr(r, "Reply-Message")).toBe(REJECT);
    expect(await failureOf("m5", "phone_unreachable")).toMatchObject({ detail: "sms: not_delivered (all_channels_failed); otp: no_token" });
  });

  test("a concat client: a clear Reply-Message and a log line, nothing sent", async () => {
    await user("m6", "mobile");
    const from = gateway.messages.length;
    // radclient sends from the concat client's address (FreeRADIUS's Packet-Src-IP-Address)
    const r = await rad("concat", [`User-Name = m6`, `User-Password = ${quote(PASSWORD)}`, "Packet-Src-IP-Address = 127.0.0.4"]);
    expect(r.code).toBe("Access-Reject");
    expect(attr(r, "Reply-Message")).toContain("cannot ask for the second factor your account uses");
    await failureOf("m6", "challenge_unsupported");
    expect(server.logs.filter((l) => l.event === "auth.step" && l.user === "m6").map((l) => [l.level, l.factor, l.reason])).toEqual([
      ["warn", "sms", "needs_challenge"],
      ["warn", "otp", "needs_challenge"],
    ]);
    expect(gateway.messages.length).toBe(from);
  });
});

describe("type touch (6): held approval", () => {
  test("Chromium approves the link from the SMS → Access-Accept; the page shows client, source and time", async () => {
    await user("t1", "touch");
    using udp = await UDPClient.open("127.0.0.1");
    const from = gateway.messages.length;
    const held = send(udp, "hold", request("hold", "t1", PASSWORD, { station: "203.0.113.7" }), 20_000);
    const link = linkIn(await nextSms(phones.t1!, from))!;
    expect(link.startsWith(`${base}/ml/`)).toBe(true);
    const page = await browser.newPage();
    await page.goto(link);
    const body = (await page.textContent("body")) ?? "";
    expect(body).toContain("hold");
    expect(body).toContain("203.0.113.7");
    await page.click("#approve");
    await page.waitForSelector("#result");
    await page.close();
    const reply = await held;
    expect(codeName(reply.code)).toBe("Access-Accept");
    expect(await successOf("t1")).toMatchObject({ factors: ["password", "approval"] });
  });

  test("Chromium rejects → Access-Reject", async () => {
    await user("t2", "touch");
    using udp = await UDPClient.open("127.0.0.1");
    const from = gateway.messages.length;
    const held = send(udp, "hold", request("hold", "t2", PASSWORD), 20_000);
    expect(await tap(linkIn(await nextSms(phones.t2!, from))!, "reject")).toContain("rejected");
    expect(codeName((await held).code)).toBe("Access-Reject");
    await failureOf("t2", "approval_rejected");
  });

  test("the hold ends unanswered → Access-Reject after the client's hold, audit timeout", async () => {
    await user("t3", "touch");
    using udp = await UDPClient.open("127.0.0.2");
    const started = Date.now();
    const reply = await send(udp, "short", request("short", "t3", PASSWORD), 15_000);
    expect(codeName(reply.code)).toBe("Access-Reject");
    expect(Date.now() - started).toBeGreaterThanOrEqual(4_500);
    await failureOf("t3", "timeout");
  }, 30_000);

  test("retransmissions during the hold: exactly one SMS, one evaluation, and the retransmission after the answer gets the same reply", async () => {
    await user("t4", "touch");
    using udp = await UDPClient.open("127.0.0.1");
    const before = await server.stats();
    const from = gateway.messages.length;
    const packet = request("hold", "t4", PASSWORD, { station: "203.0.113.8" });
    const held = send(udp, "hold", packet, 20_000);
    const link = linkIn(await nextSms(phones.t4!, from))!;
    for (let i = 0; i < 3; i++) {
      udp.send(packet, server.port); // the NAS retransmits
      await Bun.sleep(300);
    }
    expect(await answerByForm(link, "approve")).toBe(200);
    const reply = await held;
    expect(codeName(reply.code)).toBe("Access-Accept");
    const again = await send(udp, "hold", packet);
    expect(again.code).toBe(reply.code);
    expect(gateway.to(phones.t4!, from)).toHaveLength(1);
    const after = await server.stats();
    expect((after.dropped.duplicate_in_progress ?? 0) - (before.dropped.duplicate_in_progress ?? 0)).toBe(3);
    expect(after.duplicates - before.duplicates).toBeGreaterThanOrEqual(1);
    expect(server.logs.filter((l) => l.event === "approval.created" && l.user === "t4")).toHaveLength(1);
  });

  test("two requests for one user (a second Connect, same station) join one approval: one SMS, both accepted", async () => {
    await user("t5", "touch");
    using udp = await UDPClient.open("127.0.0.1");
    const from = gateway.messages.length;
    const one = send(udp, "hold", request("hold", "t5", PASSWORD, { station: "203.0.113.9" }), 20_000);
    const link = linkIn(await nextSms(phones.t5!, from))!;
    const two = send(udp, "hold", request("hold", "t5", PASSWORD, { station: "203.0.113.9" }), 20_000);
    await server.waitForLog((l) => l.event === "approval.joined" && l.user === "t5");
    expect(await answerByForm(link, "approve")).toBe(200);
    expect((await Promise.all([one, two])).map((r) => codeName(r.code))).toEqual(["Access-Accept", "Access-Accept"]);
    expect(gateway.to(phones.t5!, from)).toHaveLength(1);
  });

  test("a request from another station while one is pending is not joined: Access-Reject, nothing sent", async () => {
    await user("t6", "touch");
    using udp = await UDPClient.open("127.0.0.1");
    const from = gateway.messages.length;
    const one = send(udp, "hold", request("hold", "t6", PASSWORD, { station: "203.0.113.10" }), 20_000);
    const link = linkIn(await nextSms(phones.t6!, from))!;
    const other = await send(udp, "hold", request("hold", "t6", PASSWORD, { station: "198.51.100.99" }));
    expect(codeName(other.code)).toBe("Access-Reject");
    await failureOf("t6", "approval_busy");
    await answerByForm(link, "approve");
    expect(codeName((await one).code)).toBe("Access-Accept");
    expect(gateway.to(phones.t6!, from)).toHaveLength(1);
  });

  test("challenge mode: Access-Challenge at once with Session-Timeout; OK before approving is challenged again; after approving, an empty password is accepted", async () => {
    await user("t7", "touch");
    using udp = await UDPClient.open("127.0.0.3");
    const from = gateway.messages.length;
    const first = await send(udp, "challenge", request("challenge", "t7", PASSWORD));
    expect(codeName(first.code)).toBe("Access-Challenge");
    expect(message(first)).toBe(APPROVE);
    expect(sessionTimeout(first)).toBeLessThanOrEqual(6);
    expect(first.attributes.map(([t]) => t).every((t) => [Attr.MessageAuthenticator, Attr.ReplyMessage, Attr.State, SESSION_TIMEOUT].includes(t as never))).toBe(true);
    const early = await send(udp, "challenge", request("challenge", "t7", "", { state: stateOf(first) }));
    expect(codeName(early.code)).toBe("Access-Challenge");
    expect(message(early)).toBe("Not approved yet. Approve the request on your phone, then press OK");
    expect(await tap(linkIn(await nextSms(phones.t7!, from))!, "approve")).toContain("approved");
    expect(codeName((await send(udp, "challenge", request("challenge", "t7", "", { state: stateOf(early) }))).code)).toBe("Access-Accept");
  });
});

describe("type touch-plus (7): approval, then the token", () => {
  test("approved: Access-Accept (the token is never asked)", async () => {
    await user("p1", "touch-plus");
    using udp = await UDPClient.open("127.0.0.1");
    const from = gateway.messages.length;
    const held = send(udp, "hold", request("hold", "p1", PASSWORD), 20_000);
    await answerByForm(linkIn(await nextSms(phones.p1!, from))!, "approve");
    expect(codeName((await held).code)).toBe("Access-Accept");
  });

  test("the gateway fails → Access-Challenge for the token → accepted", async () => {
    await user("p2", "touch-plus");
    using udp = await UDPClient.open("127.0.0.1");
    gateway.queued = ["down"];
    const first = await send(udp, "hold", request("hold", "p2", PASSWORD));
    expect(codeName(first.code)).toBe("Access-Challenge");
    expect(message(first)).toBe(UNREACHABLE);
    expect(codeName((await send(udp, "hold", request("hold", "p2", codeOf(seeds.p2!), { state: stateOf(first) }))).code)).toBe("Access-Accept");
  });

  test("no phone number → the token", async () => {
    await user("p3", "touch-plus", { phone: false });
    using udp = await UDPClient.open("127.0.0.1");
    const first = await send(udp, "hold", request("hold", "p3", PASSWORD));
    expect(message(first)).toBe(UNREACHABLE);
    expect(codeName((await send(udp, "hold", request("hold", "p3", codeOf(seeds.p3!), { state: stateOf(first) }))).code)).toBe("Access-Accept");
  });
});

describe("type touch-mobile (8): approval, then an SMS code, then the token", () => {
  test("approved: Access-Accept, one message", async () => {
    await user("x1", "touch-mobile");
    using udp = await UDPClient.open("127.0.0.1");
    const from = gateway.messages.length;
    const held = send(udp, "hold", request("hold", "x1", PASSWORD), 20_000);
    await answerByForm(linkIn(await nextSms(phones.x1!, from))!, "approve");
    expect(codeName((await held).code)).toBe("Access-Accept");
    expect(gateway.to(phones.x1!, from)).toHaveLength(1);
  });

  test("the gateway fails for the link and works for the code: the SMS code completes", async () => {
    await user("x2", "touch-mobile");
    using udp = await UDPClient.open("127.0.0.1");
    const from = gateway.messages.length;
    gateway.queued = ["down", "ok"];
    const first = await send(udp, "hold", request("hold", "x2", PASSWORD));
    expect(message(first)).toBe(`Enter the code sent to +46…${phones.x2!.slice(-2)}`);
    const sent = gateway.to(phones.x2!, from);
    expect(sent).toHaveLength(2);
    expect(linkIn(sent[0]!.message)).toBeDefined();
    const code = codeIn(sent[1]!.message)!;
    expect(codeName((await send(udp, "hold", request("hold", "x2", code, { state: stateOf(first) }))).code)).toBe("Access-Accept");
    expect(await successOf("x2")).toMatchObject({ factors: ["password", "sms"] });
  });

  test("the gateway fails for both → the token", async () => {
    await user("x3", "touch-mobile");
    using udp = await UDPClient.open("127.0.0.1");
    gateway.queued = ["down", "down"];
    const first = await send(udp, "hold", request("hold", "x3", PASSWORD));
    expect(message(first)).toBe(UNREACHABLE);
    expect(codeName((await send(udp, "hold", request("hold", "x3", codeOf(seeds.x3!), { state: stateOf(first) }))).code)).toBe("Access-Accept");
    await successOf("x3");
    expect(stepsOf("x3")).toEqual([
      ["approval", "skipped", "not_delivered"],
      ["sms", "skipped", "not_delivered"],
      ["otp", "asked", null],
    ]);
  });
});

describe("challenge mode, no answer before the approval expires (types 6, 7 and 8 side by side, one wait)", () => {
  test("touch → Access-Reject (timeout); touch-plus → the token; touch-mobile → an SMS code", async () => {
    await user("t8", "touch");
    await user("p4", "touch-plus");
    await user("x4", "touch-mobile");
    using udp = await UDPClient.open("127.0.0.3");
    const from = gateway.messages.length;
    const first: Record<string, CheckedReply> = {};
    for (const name of ["t8", "p4", "x4"]) {
      first[name] = await send(udp, "challenge", request("challenge", name, PASSWORD));
      expect(message(first[name]!)).toBe(APPROVE);
    }
    await Bun.sleep(6_500); // the client's approval time is 6 s
    expect(codeName((await send(udp, "challenge", request("challenge", "t8", "", { state: stateOf(first.t8!) }))).code)).toBe("Access-Reject");
    await failureOf("t8", "timeout");

    const token = await send(udp, "challenge", request("challenge", "p4", "", { state: stateOf(first.p4!) }));
    expect(codeName(token.code)).toBe("Access-Challenge");
    expect(message(token)).toBe(NO_ANSWER);
    expect(codeName((await send(udp, "challenge", request("challenge", "p4", codeOf(seeds.p4!), { state: stateOf(token) }))).code)).toBe("Access-Accept");
    await successOf("p4");
    expect(stepsOf("p4")).toEqual([
      ["approval", "asked", null],
      ["approval", "skipped", "no_answer"],
      ["otp", "asked", null],
    ]);

    const sms = await send(udp, "challenge", request("challenge", "x4", "", { state: stateOf(first.x4!) }));
    expect(message(sms)).toBe(`Enter the code sent to +46…${phones.x4!.slice(-2)}`);
    const code = codeIn((await eventually("the code", () => gateway.to(phones.x4!, from)[1]?.message))!)!;
    expect(codeName((await send(udp, "challenge", request("challenge", "x4", code, { state: stateOf(sms) }))).code)).toBe("Access-Accept");
    expect(await successOf("x4")).toMatchObject({ factors: ["password", "sms"] });
  }, 30_000);
});

describe("metrics", () => {
  test("/metrics counts approvals by outcome, SMS codes by result, and the hold time", async () => {
    const text = await (await fetch(`http://127.0.0.1:${server.adminPort}/metrics`)).text();
    expect(text).toMatch(/portcullis_approvals_total\{kind="radius",outcome="approved"\} [1-9]/);
    expect(text).toMatch(/portcullis_approvals_total\{kind="radius",outcome="rejected"\} [1-9]/);
    expect(text).toMatch(/portcullis_approvals_total\{kind="radius",outcome="expired"\} [1-9]/);
    expect(text).toMatch(/portcullis_sms_codes_total\{result="accepted"\} [1-9]/);
    expect(text).toMatch(/portcullis_sms_codes_total\{result="not_delivered"\} [1-9]/);
    expect(text).toMatch(/portcullis_approval_hold_seconds_count\{outcome="approved"\} [1-9]/);
  });

  test("user show lists a pending approval", async () => {
    await user("s1", "touch");
    using udp = await UDPClient.open("127.0.0.1");
    const from = gateway.messages.length;
    const held = send(udp, "hold", request("hold", "s1", PASSWORD, { station: "203.0.113.77" }), 20_000);
    const link = linkIn(await nextSms(phones.s1!, from))!;
    const shown = await app.cli(["user", "show", "s1"]);
    expect(shown).toMatch(/pending approvals?:/i);
    expect(shown).toContain("hold");
    expect(shown).toContain("203.0.113.77");
    await answerByForm(link, "approve");
    await held;
  });
});

const ldapRun = runSlapdTests;
describe.skipIf(!ldapRun)("directory users (slapd): type_attribute 2, 6, 7, 8 and the phone from phone_attribute", () => {
  let slapd: Slapd;
  let dirApp: Appliance;
  let dirServer: ServerProcess;
  let dirSecret: string;
  const DIR_USERS = { lmobile: ["2", "+46702000002"], ltouch: ["6", "+46702000006"], lplus: ["touch-plus", "+46702000007"], lboth: ["8", "+46702000008"] } as const;
  const dirPassword = (u: string) => `${u}-Passw0rd-1`;
  const dirSeeds: Record<string, string> = {};

  beforeAll(async () => {
    if (!slapdPath) throw new Error("slapd not installed: apt-get install slapd ldap-utils (required in CI)");
    slapd = await startSlapd();
    await slapd.modify(
      Object.entries(DIR_USERS)
        .map(([uid, [type, phone]]) =>
          [`dn: uid=${uid},${PEOPLE}`, "changetype: add", "objectClass: inetOrgPerson", `uid: ${uid}`, `cn: ${uid}`, `sn: ${uid}`, `userPassword: ${dirPassword(uid)}`, `mobile: ${phone}`, `employeeType: ${type}`, ""].join("\n"),
        )
        .join("\n"),
    );
    dirApp = new Appliance();
    const port = freePort();
    dirApp.writeConfig(
      [
        'region = "SE"',
        "[http]",
        `public_url = "http://127.0.0.1:${port}"`,
        "tls = false",
        "[delivery]",
        DELIVERY_LIMITS_OFF,
        gateway.smsConfig(),
        "[[ldap]]",
        'name = "corp"',
        `urls = [${tomlString(slapd.ldapsUrl)}]`,
        `ca_file = ${tomlString(slapd.caFile)}`,
        `bind_dn = ${tomlString(SERVICE_DN)}`,
        `bind_password = ${tomlString(SERVICE_PASSWORD)}`,
        `base_dn = ${tomlString(BASE_DN)}`,
        'user_filter = "(&(objectClass=inetOrgPerson)(uid={username}))"',
        'type_attribute = "employeeType"',
        'phone_attribute = "mobile"',
        "",
      ].join("\n"),
    );
    // Hybrid records for the token fallbacks (the directory checks the password and gives the type and phone).
    for (const uid of ["lmobile", "lplus"]) {
      await dirApp.cli(["user", "add", uid, "--directory", "corp"]);
      dirSeeds[uid] = newSeed();
      await dirApp.cli(["token", "add", uid, "--totp", "--secret", dirSeeds[uid]!]);
    }
    dirServer = await dirApp.serve({ httpListen: `127.0.0.1:${port}` });
    dirSecret = await addLiveClient(dirApp, dirServer, "vpn", "127.0.0.1", ["--approval-hold", "20"]);
  }, 90_000);

  afterAll(async () => {
    await dirApp?.[Symbol.asyncDispose]();
    await slapd?.stop();
  });

  const dirSend = (udp: UDPClient, name: string, password: string, state?: Uint8Array, timeoutMs = 5000) => {
    const attributes: RawAttribute[] = [
      [Attr.UserName, enc.encode(name)],
      [Attr.UserPassword, enc.encode(password)],
    ];
    if (state) attributes.push([Attr.State, state]);
    const packet = buildAccessRequest({ identifier: identifier(), secret: dirSecret, attributes });
    return udp.exchange(packet, dirServer.port, dirSecret, { timeoutMs });
  };

  test("type 2 from employeeType: the SMS code goes to the directory's mobile", async () => {
    using udp = await UDPClient.open("127.0.0.1");
    const from = gateway.messages.length;
    const first = await dirSend(udp, "lmobile", dirPassword("lmobile"));
    expect(message(first)).toBe("Enter the code sent to +46…02");
    const code = codeIn(await nextSms("+46702000002", from))!;
    expect(codeName((await dirSend(udp, "lmobile", code, stateOf(first))).code)).toBe("Access-Accept");
  });

  test("type 6: held, approved through the link", async () => {
    using udp = await UDPClient.open("127.0.0.1");
    const from = gateway.messages.length;
    const held = dirSend(udp, "ltouch", dirPassword("ltouch"), undefined, 20_000);
    expect(await tap(linkIn(await nextSms("+46702000006", from))!, "approve")).toContain("approved");
    expect(codeName((await held).code)).toBe("Access-Accept");
  });

  test("type touch-plus (by name): the gateway fails → the token of the hybrid record", async () => {
    using udp = await UDPClient.open("127.0.0.1");
    gateway.queued = ["down"];
    const first = await dirSend(udp, "lplus", dirPassword("lplus"));
    expect(message(first)).toBe(UNREACHABLE);
    expect(codeName((await dirSend(udp, "lplus", codeOf(dirSeeds.lplus!), stateOf(first))).code)).toBe("Access-Accept");
  });

  test("type 8: held, rejected in Chromium", async () => {
    using udp = await UDPClient.open("127.0.0.1");
    const from = gateway.messages.length;
    const held = dirSend(udp, "lboth", dirPassword("lboth"), undefined, 20_000);
    expect(await tap(linkIn(await nextSms("+46702000008", from))!, "reject")).toContain("rejected");
    expect(codeName((await held).code)).toBe("Access-Reject");
  });

  test("a hybrid record overrides the directory's phone", async () => {
    await dirApp.cli(["user", "add", "ltouch2", "--directory", "corp", "--phone", "+46702999999"]).catch(() => {});
    await slapd.modify([`dn: uid=ltouch2,${PEOPLE}`, "changetype: add", "objectClass: inetOrgPerson", "uid: ltouch2", "cn: x", "sn: x", `userPassword: ${dirPassword("ltouch2")}`, "mobile: +46702000099", "employeeType: 6", ""].join("\n"));
    using udp = await UDPClient.open("127.0.0.1");
    const from = gateway.messages.length;
    const held = dirSend(udp, "ltouch2", dirPassword("ltouch2"), undefined, 20_000);
    await answerByForm(linkIn(await nextSms("+46702999999", from))!, "approve");
    expect(codeName((await held).code)).toBe("Access-Accept");
    expect(gateway.to("+46702000099", from)).toHaveLength(0);
  });
});

describe("type mobile (2): the code's lifetime", () => {
  test("an expired code is refused (sms_code_lifetime_s = 30; sent at start-up)", async () => {
    await Bun.sleep(Math.max(0, expiring.sentAt + 31_000 - Date.now()));
    const late = await rad("hold", [`User-Name = m3`, `User-Password = ${quote(expiring.code)}`, radState(expiring.state)]);
    expect(late.code).toBe("Access-Reject");
    await failureOf("m3", "code_expired");
  }, 60_000);
});
