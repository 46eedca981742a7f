// The approver app in headless Firefox (ESR, from Debian) against the real server process, driven
// over WebDriver BiDi (helpers/firefox.ts): enrolment from the `device enrol` link with a
// non-extractable P-256 key, a held RADIUS request arriving over the event stream and approved with a
// trusted tap, challenge mode's number matching, and a waiting Magic Link call. http://127.0.0.1 is a
// secure context for Firefox as for Chromium, so WebCrypto and the service worker work without a
// certificate. Firefox subscribes to Web Push through a push service of the tests' own that speaks
// Mozilla's autopush protocols (helpers/mozilla-push.ts), so the whole push path runs: Firefox's
// subscription reaches the appliance, the appliance's VAPID-signed, encrypted message goes to the
// service, Firefox decrypts it and its service worker shows the notification. Notifications are
// denied in most tests; one leaves Firefox's permission prompt open and unanswered, as a user may.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync } from "node:fs";
import { Appliance, Attr, Code, UDPClient, addLiveClient, buildAccessRequest, identifier, type RawAttribute, type ServerProcess } from "./helpers/appliance.ts";
import { FIREFOX, Firefox, type Tab } from "./helpers/firefox.ts";
import { MozillaPushService } from "./helpers/mozilla-push.ts";

// A browser start, an enrolment and a held login each; a loaded 2-core machine needs the room.
setDefaultTimeout(120_000);

function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

let appliance: Appliance;
let server: ServerProcess;
let firefox: Firefox;
let mozilla: MozillaPushService;
let base: string;
let mlKey: string;
const secrets: Record<string, string> = {};
const PASSWORD = "correct horse battery";
const phones: Record<string, string> = {};
let nextPhone = 300;
/** Console errors and CSP reports from every page, by browsing context. */
const problems = new Map<string, string[]>();

beforeAll(async () => {
  if (!existsSync(FIREFOX)) throw new Error(`${FIREFOX} is missing: these tests need headless Firefox (apt-get install -y firefox-esr)`);
  appliance = new Appliance();
  const port = freePort();
  base = `http://127.0.0.1:${port}`;
  appliance.writeConfig(`region = "SE"
[http]
public_url = "${base}"
tls = false
[push]
subject = "mailto:ops@example.com"
allowed_hosts = ["127.0.0.1"]
timeout_ms = 3000
[app]
requests_per_minute = 0
requests_per_hour = 0
reject_backoff_s = 0
`);
  server = await appliance.serve({ httpListen: `127.0.0.1:${port}` });
  secrets.hold = await addLiveClient(appliance, server, "vpn-hold", "127.0.0.1", ["--approval-hold", "30"]);
  secrets.challenge = await addLiveClient(appliance, server, "vpn-challenge", "127.0.0.3", ["--approval-mode", "challenge", "--approval-hold", "60", "--approval-number-match", "true"]);
  mlKey = /pcl_[A-Za-z0-9_-]{43}/.exec(await appliance.cli(["apikey", "add", "web"]))![0];
  mozilla = new MozillaPushService();
  firefox = await Firefox.launch({
    "dom.push.serverURL": mozilla.serverURL,
    "dom.push.testing.allowInsecureServerURL": true,
    // The remote agent turns the push connection off for automation; these tests want it.
    "dom.push.connection.enabled": true,
    "dom.push.enabled": true,
    // Headless Firefox has no system notification service: its own alert windows show the notifications.
    "alerts.useSystemBackend": false,
  });
  await firefox.on(["log.entryAdded"], (_method, params) => {
    const entry = params as { level: string; text: string; source: { context?: string } };
    if (entry.level === "error" || /Content[- ]Security[- ]Policy|Trusted ?Type/i.test(entry.text ?? "")) {
      const key = entry.source.context ?? "?";
      problems.set(key, [...(problems.get(key) ?? []), entry.text]);
    }
  });
}, 90_000);

afterAll(async () => {
  await firefox?.[Symbol.asyncDispose]();
  mozilla?.[Symbol.dispose]();
  await appliance?.[Symbol.asyncDispose]();
});

async function enrolmentLink(user: string): Promise<string> {
  const out = await appliance.cli(["device", "enrol", user]);
  const link = /^(http:\/\/\S+\/app\/#enrol=[A-Za-z0-9_-]{22})$/m.exec(out)?.[1];
  if (!link) throw new Error("device enrol printed no link");
  return link;
}

async function devices(user: string): Promise<Array<{ id: string; name: string; push: string | null }>> {
  return JSON.parse(await appliance.cli(["device", "list", user, "--json"]));
}

async function touchUser(name: string): Promise<void> {
  phones[name] = `+4670126${String(nextPhone++).padStart(4, "0")}`;
  await appliance.cli(["user", "add", name, "--password-stdin", "--type", "touch", "--phone", phones[name]!], { stdin: PASSWORD });
}

const visible = (selector: string) => `(() => { const e = document.querySelector(${JSON.stringify(selector)}); return !!e && !e.hidden && e.getClientRects().length > 0; })()`;

/** Opens the link in a fresh user context, names the device and taps Enrol; resolves when the request list shows. */
async function enrolInFirefox(user: string, name: string, notifications: "denied" | "prompt" | "granted" = "denied"): Promise<Tab> {
  const tab = await firefox.newTab();
  await tab.setPermission("notifications", base, notifications);
  await tab.goto(await enrolmentLink(user));
  await tab.waitFor("the enrolment view", visible("#view-enrol"));
  await tab.fill("#device-name", name);
  await tab.click("#enrol");
  await tab.waitFor("the request list", visible("#view-main"));
  return tab;
}

async function radius(client: string, address: string, name: string, password: string, { state }: { state?: Uint8Array } = {}) {
  const attributes: RawAttribute[] = [
    [Attr.UserName, new TextEncoder().encode(name)],
    [Attr.UserPassword, new TextEncoder().encode(password)],
  ];
  if (state) attributes.push([Attr.State, state]);
  const udp = await UDPClient.open(address);
  try {
    return await udp.exchange(buildAccessRequest({ identifier: identifier(), secret: secrets[client]!, attributes }), server.port, secrets[client]!, { timeoutMs: 40_000 });
  } finally {
    udp[Symbol.dispose]();
  }
}

const PENDING = "li.request:not([data-state=done])";

async function eventuallyValue<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (let i = 0; i < 600 && Date.now() < until; i++) {
    const v = await probe();
    if (v !== undefined) return v;
    await Bun.sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("the approver app in Firefox", () => {
  test("enrolment from the link: the device is listed, the fragment is gone, the key is non-extractable, the worker controls /app/", async () => {
    await touchUser("fiona");
    const tab = await enrolInFirefox("fiona", "Fiona's Firefox");
    expect(await tab.eval("location.hash")).toBe("");
    expect(await tab.eval("location.pathname")).toBe("/app/");
    expect(await tab.eval("document.querySelector('#device-label').textContent")).toBe("Fiona's Firefox");
    const listed = await devices("fiona");
    expect(listed).toEqual([expect.objectContaining({ name: "Fiona's Firefox", push: null })]);
    const key = await tab.eval(`(async () => {
      const device = await PortcullisLib.getDevice();
      let exported = "exported";
      try { await crypto.subtle.exportKey("jwk", device.privateKey); } catch (e) { exported = e.name; }
      const k = device.privateKey;
      return { id: device.id, type: k.type, extractable: k.extractable, name: k.algorithm.name, curve: k.algorithm.namedCurve, usages: k.usages, exported };
    })()`);
    expect(key).toEqual({ id: listed[0]!.id, type: "private", extractable: false, name: "ECDSA", curve: "P-256", usages: ["sign"], exported: "InvalidAccessError" });
    expect(await tab.eval("navigator.serviceWorker.ready.then((r) => r.scope)")).toBe(`${base}/app/`);
    await tab.reload();
    await tab.waitFor("the request list after a reload", visible("#view-main"));
    expect(await tab.waitFor("the worker in control", "navigator.serviceWorker.controller?.scriptURL")).toBe(`${base}/app/sw.js`);
    // Notifications are denied in this profile: the app says requests show while it is open.
    expect(await tab.eval("document.body.textContent")).toContain("Notifications are blocked");
    expect(problems.get(tab.context) ?? []).toEqual([]);
    await tab.close();
  });

  test("an unanswered notification prompt does not hold up enrolment; the app offers notifications later", async () => {
    await touchUser("fern");
    // The Enrol tap asks for notification permission; Firefox's prompt stays open (nobody answers).
    const tab = await enrolInFirefox("fern", "Fern's Firefox", "prompt");
    expect((await devices("fern")).map((d) => d.name)).toEqual(["Fern's Firefox"]);
    expect(await tab.eval("Notification.permission")).toBe("default");
    await tab.waitFor("the offer to turn on notifications", visible("#notify-on"));
    await tab.waitFor("the event stream", "document.body.dataset.live === 'stream'");
    await tab.close();
  });

  test("Web Push through Mozilla's protocol: the subscription reaches the appliance; a held login is pushed and the service worker shows it", async () => {
    await touchUser("fanny");
    const tab = await enrolInFirefox("fanny", "Fanny's Firefox", "granted");
    await tab.waitFor("notifications on", "document.body.textContent.includes('Notifications are on')", { timeoutMs: 40_000 });
    // The subscription Firefox made at the push service, registered with the appliance.
    const listed = await eventuallyValue("the subscription", async () => ((await devices("fanny"))[0]?.push ? devices("fanny") : undefined));
    expect(listed).toEqual([expect.objectContaining({ name: "Fanny's Firefox", push: expect.stringContaining("127.0.0.1") })]);
    // Away from the app: the page is gone, only the service worker can tell the user.
    await tab.goto("about:blank");
    const before = mozilla.forwarded.length;
    const login = radius("hold", "127.0.0.1", "fanny", PASSWORD);
    const pushed = await eventuallyValue("the push", () => mozilla.forwarded[before]);
    expect(pushed.urgency).toBe("high");
    expect(Number(pushed.ttl)).toBeGreaterThan(0);
    expect(Number(pushed.ttl)).toBeLessThanOrEqual(30);
    await tab.goto(`${base}/app/`);
    const shown = await tab.waitFor<Array<{ title: string; body: string }>>(
      "the notification",
      "navigator.serviceWorker.ready.then((r) => r.getNotifications()).then((l) => l.length ? l.map((n) => ({ title: n.title, body: n.body })) : null)",
      { timeoutMs: 30_000 },
    );
    expect(shown[0]).toEqual({ title: "Sign-in request", body: expect.stringContaining("Open Portcullis") });
    expect(mozilla.refused).toEqual([]);
    // Firefox acknowledged the message it decrypted.
    expect(mozilla.acks.length).toBeGreaterThan(0);
    await tab.waitFor("the request", `!!document.querySelector(${JSON.stringify(PENDING)})`);
    await tab.click(`${PENDING} button[data-decision=approve]`);
    expect((await login).code).toBe(Code.AccessAccept);
    await tab.close();
  });

  test("a held RADIUS request arrives over the event stream; a tap on Approve → Access-Accept, Reject → Access-Reject", async () => {
    await touchUser("felix");
    const tab = await enrolInFirefox("felix", "Felix's Firefox");
    await tab.waitFor("the event stream", "document.body.dataset.live === 'stream'");
    const login = radius("hold", "127.0.0.1", "felix", PASSWORD);
    await tab.waitFor("the request", `!!document.querySelector(${JSON.stringify(PENDING)})`);
    expect(await tab.eval("document.body.dataset.live")).toBe("stream");
    expect(await tab.eval(`document.querySelector('${PENDING} [data-field=service]').textContent`)).toBe("vpn-hold");
    expect(await tab.eval(`document.querySelector('${PENDING} [data-field=for]').textContent`)).toBe("felix");
    await tab.click(`${PENDING} button[data-decision=approve]`);
    expect((await login).code).toBe(Code.AccessAccept);
    await tab.waitFor("the answered card", "document.querySelector('li.request[data-state=done] .result')?.textContent.includes('Approved')");
    await server.waitForLog((l) => l.event === "approval.app_answered" && l.user === "felix" && l.state === "approved");

    await tab.eval("document.querySelectorAll('li.request').forEach((e) => e.remove()), true");
    const rejected = radius("hold", "127.0.0.1", "felix", PASSWORD);
    await tab.waitFor("the second request", `!!document.querySelector(${JSON.stringify(PENDING)})`);
    await tab.click(`${PENDING} button[data-decision=reject]`);
    expect((await rejected).code).toBe(Code.AccessReject);
    expect(problems.get(tab.context) ?? []).toEqual([]);
    await tab.close();
  });

  test("challenge mode: the three numbers include the prompt's; picking it approves the next leg", async () => {
    await touchUser("flora");
    const tab = await enrolInFirefox("flora", "Flora's Firefox");
    await tab.waitFor("the event stream", "document.body.dataset.live === 'stream'");
    const first = await radius("challenge", "127.0.0.3", "flora", PASSWORD);
    expect(first.code).toBe(Code.AccessChallenge);
    const prompt = first.attributes.filter(([t]) => t === Attr.ReplyMessage).map(([, v]) => new TextDecoder().decode(v)).join("");
    const n = /choose (\d+)/.exec(prompt)![1]!;
    await tab.waitFor("the request", `!!document.querySelector(${JSON.stringify(PENDING)})`);
    const picks = await tab.eval<string[]>(`[...document.querySelectorAll('${PENDING} button[data-pick]')].map((b) => b.getAttribute('data-pick'))`);
    expect(picks).toHaveLength(3);
    expect(picks).toContain(n);
    await tab.click(`${PENDING} button[data-pick="${n}"]`);
    await tab.waitFor("the answered card", "!!document.querySelector('li.request[data-state=done]')");
    const state = first.attributes.find(([t]) => t === Attr.State)![1];
    expect((await radius("challenge", "127.0.0.3", "flora", "", { state })).code).toBe(Code.AccessAccept);
    await tab.close();
  });

  test("a waiting Magic Link call ends TOUCH_ACCEPTED when the app approves", async () => {
    await touchUser("frank");
    const tab = await enrolInFirefox("frank", "Frank's Firefox");
    await tab.waitFor("the event stream", "document.body.dataset.live === 'stream'");
    const call = fetch(`${base}/api/sfwa/auth?msisdn=${encodeURIComponent(phones.frank!)}`, { headers: { "api-key": mlKey } }).then((r) => r.text());
    await tab.waitFor("the request", `document.querySelector(${JSON.stringify(PENDING)})?.getAttribute('data-kind') === 'magic-link'`);
    await tab.click(`${PENDING} button[data-decision=approve]`);
    expect(await call).toBe('{"code":"TOUCH_ACCEPTED"}');
    await tab.close();
  });
});
