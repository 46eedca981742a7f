// Held-approval benchmark driver (run through scripts/bench-approvals, which raises the fd limit).
//
// 1. Starts the compiled appliance (plain HTTP, no delivery limits, a client with the longest hold,
//    120 s) with a local SMS gateway stub that captures each approval link, and N users of type
//    touch (6) imported with one cheap pre-hashed argon2id password: this measures holding and
//    answering approvals, not argon2 (a real one costs ~30 ms of CPU per login).
// 2. Sends N Access-Requests over raw UDP (Message-Authenticator first, a Calling-Station-Id each),
//    from 64 sockets so that Identifiers never repeat per source port, with at most `--in-flight`
//    of them not yet delivered at once; like a NAS, each is retransmitted every 2 s until its link
//    arrived, and every one twice more while all are held (the retries must be absorbed: no second
//    SMS, no second approval).
// 3. Waits until the gateway has N links: N requests are now held. Records the server's RSS while
//    all are held (sampled every 50 ms; the peak of that phase, and VmHWM overall).
// 4. Fetches every approval page (CSRF token), then POSTs Approve for each with bounded
//    concurrency, timing each from the POST's start to the arrival of its Access-Accept.
// Prints a JSON report; exits 1 when the SMS count is not exactly N, a request did not end in
// Access-Accept, or (for 10,000 requests or more) the peak RSS while held is 350 MB or more or the
// approval → Access-Accept p99 is 100 ms or more.
//
// With --app every user has an enrolled approver-app device instead (enrolled through the admin API
// and the public device protocol, each with a Web Push subscription at a loopback push service that
// checks VAPID and decrypts every message). The first --streams devices hold the event stream open;
// the rest learn their request ID from the push alone. No SMS may go out. Each request is approved
// with a signed POST /app/api/v1/requests/{id}. Bars: answer → Access-Accept p99 under 100 ms and
// peak RSS under 400 MB (the streams' connections are part of it).
//
// With --via-switch the appliance has no public URL and no gateway of its own: a relay (`switch
// serve`, its own data directory and generated certificate) holds the gateway stub, the appliance
// joins it and sends every link over its one WebSocket, and the pages are fetched and answered on
// the relay, which forwards each to the appliance. It also reports the relay's delivery throughput
// (gateway messages per second between the first and the last) and the relay's RSS. Bar: answer →
// Access-Accept p99 under 150 ms through the relay.

import { spawn } from "bun";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { randomBytes } from "node:crypto";
import { Attr, Code, buildAccessRequest, checkReply } from "./bench/radius-wire.ts";
import { DeviceClient } from "../test/integration/helpers/device-client.ts";
import { TestPushService, type TestSubscription } from "../test/integration/helpers/push-service.ts";
import { DELIVERY_LIMITS_OFF } from "../test/integration/helpers/sms-gateway.ts";

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "10000" },
    "answer-concurrency": { type: "string", default: "32" },
    "in-flight": { type: "string", default: "128" },
    bin: { type: "string", default: "dist/portcullis" },
    keep: { type: "boolean", default: false },
    app: { type: "boolean", default: false },
    streams: { type: "string", default: "1000" },
    "via-switch": { type: "boolean", default: false },
  },
});
const VIA_SWITCH = values["via-switch"]!;
const APP = values.app!;
const STREAMS = APP ? Math.min(Number(values.streams), Number(values.requests)) : 0;
const N = Number(values.requests);
const CONC = Number(values["answer-concurrency"]);
const IN_FLIGHT = Number(values["in-flight"]);
const root = resolve(import.meta.dir, "..");
const bin = resolve(root, values.bin!);
if (!existsSync(bin)) throw new Error(`${bin} is missing: run bun run build first`);
if (!(N > 0 && N <= 50_000)) throw new Error("--requests must be 1-50000");
if (!(STREAMS >= 0)) throw new Error("--streams must be 0 or more");
if (VIA_SWITCH && APP) throw new Error("--via-switch and --app cannot be combined (the relay does not carry the app's API)");

const SECRET = "bench-approvals-shared-secret";
const PASSWORD = "bench-Passw0rd";
const SOCKETS = 64;
const HOLD_S = 120;
const CALLING_STATION_ID = 31;

const rssKB = (pid: number, field = "VmRSS") => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const mb = (kb: number) => +(kb / 1024).toFixed(1);
const deadline = (what: string, ms: number) => {
  const end = Date.now() + ms;
  return () => {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
  };
};
const freePort = () => {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const p = l.port;
  l.stop(true);
  return p;
};

// The SMS gateway stub: number → link, and every message counted.
const links = new Map<string, string>();
let smsSent = 0;
let firstSmsAt = 0;
let lastSmsAt = 0;
const gateway = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(req) {
    const form = new URLSearchParams(await req.text());
    smsSent++;
    lastSmsAt = performance.now();
    if (firstSmsAt === 0) firstSmsAt = lastSmsAt;
    const link = /(https?:\/\/\S+\/ml\/[A-Za-z0-9_-]{43})/.exec(form.get("message") ?? "")?.[1];
    if (link) links.set(form.get("to") ?? "", link);
    return new Response("ok");
  },
});

const port = freePort();
const adminPort = freePort();
const NO_LIMITS = `[delivery]
${DELIVERY_LIMITS_OFF}`;
const GATEWAY = `[delivery.sms]
url = "http://127.0.0.1:${gateway.port}/sms"
body = "to={to}&message={message}"`;
// --via-switch: the relay's port, data directory and configuration (the gateway stub behind it).
const relayPort = freePort();
const relayUrl = `https://127.0.0.1:${relayPort}`;
const relayDir = mkdtempSync(join(tmpdir(), "portcullis-bench-relay-"));
if (VIA_SWITCH) {
  writeFileSync(
    join(relayDir, "portcullis.toml"),
    `region = "SE"
log_level = "warn"
[switch_server]
listen = "127.0.0.1:${relayPort}"
public_url = "${relayUrl}"
per_appliance_per_minute = 0
per_appliance_per_hour = 0
${NO_LIMITS}
${GATEWAY}
`,
  );
}
const base = `http://127.0.0.1:${port}`;
const dataDir = mkdtempSync(join(tmpdir(), "portcullis-bench-approvals-"));
writeFileSync(
  join(dataDir, "portcullis.toml"),
  `region = "SE"
log_level = "warn"
[http]
${VIA_SWITCH ? "" : `public_url = "${base}"\n`}tls = false
[admin]
listen = "127.0.0.1:${adminPort}"
${NO_LIMITS}
${VIA_SWITCH ? `[switch]\nurls = ["${relayUrl}"]\nca_file = "${join(relayDir, "http-cert.pem")}"\n` : GATEWAY}
${
  APP
    ? `[push]
subject = "mailto:bench@example.com"
allowed_hosts = ["127.0.0.1"]
`
    : ""
}`,
);
if (APP) {
  // The event streams and the answers all come from 127.0.0.1: lift the per-address cap for the bench.
  const cfg = join(dataDir, "portcullis.toml");
  writeFileSync(cfg, readFileSync(cfg, "utf8").replace("tls = false\n", `tls = false\nmax_connections = ${STREAMS + 2048}\nmax_connections_per_address = ${STREAMS + 2048}\n`));
}
// One RADIUS process (comparable with the figures measured before `[radius] workers`); the environment may ask for more.
const env: Record<string, string | undefined> = { PORTCULLIS_RADIUS_WORKERS: "1", ...process.env, PORTCULLIS_KEY: randomBytes(32).toString("base64") };
delete env.PORTCULLIS_CONFIG;
delete env.PORTCULLIS_DATA_DIR;
const cli = async (args: string[]) => {
  const p = spawn([bin, "--data-dir", dataDir, ...args], { env, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`portcullis ${args[0]} ${args[1]} failed: ${err || out}`);
  return out;
};

// N users of type touch, one cheap argon2id hash for all (m = 8 KiB, t = 1: about 0.1 ms to verify).
const hash = await Bun.password.hash(PASSWORD, { algorithm: "argon2id", memoryCost: 8, timeCost: 1 });
const numbers = Array.from({ length: N }, (_, i) => `+46701${String(1_000_000 + i).slice(1)}`);
const names = Array.from({ length: N }, (_, i) => `u${i}`);
const csv = join(dataDir, "users.csv");
writeFileSync(csv, "username,password,type,phone,email,totp_secret,totp_algorithm,totp_digits,totp_period\n" + names.map((n, i) => `${n},"${hash}",touch,${numbers[i]},,,,,`).join("\n") + "\n");
await cli(["user", "import", csv]);
await cli(["client", "add", "bench", "--address", "127.0.0.1/32", "--secret", SECRET, "--approval-hold", String(HOLD_S)]);
const adminKey = APP ? /pcl_[A-Za-z0-9_-]{43}/.exec(await cli(["apikey", "add", "bench", "--role", "admin"]))![0] : "";
const pushService = APP ? new TestPushService("mailto:bench@example.com") : undefined;

let relay: ReturnType<typeof spawn> | undefined;
let relayCa = "";
if (VIA_SWITCH) {
  const relayEnv = { ...env, PORTCULLIS_CONFIG: join(relayDir, "portcullis.toml") };
  relay = spawn([bin, "--data-dir", relayDir, "switch", "serve"], { env: relayEnv, stdout: "inherit", stderr: "inherit" });
  for (const check = deadline("the relay", 30_000); ; ) {
    check();
    if (existsSync(join(relayDir, "http-cert.pem"))) {
      relayCa = readFileSync(join(relayDir, "http-cert.pem"), "utf8");
      try {
        if ((await fetch(`${relayUrl}/healthz`, { tls: { ca: relayCa } } as RequestInit)).ok) break;
      } catch {}
    }
    await Bun.sleep(100);
  }
  const p = spawn([bin, "--data-dir", relayDir, "switch", "appliance", "add", "bench"], { env: relayEnv, stdout: "pipe", stderr: "pipe" });
  const token = (await new Response(p.stdout).text()).trim();
  if ((await p.exited) !== 0) throw new Error("switch appliance add failed");
  await cli(["switch", "join", relayUrl, token]);
}
/** Page fetches: the relay's pages need its certificate. */
const pageFetch = (url: string, init: RequestInit = {}) => fetch(url, VIA_SWITCH ? ({ ...init, tls: { ca: relayCa } } as RequestInit) : init);

// A UDP port free right now (log_level warn hides the radius.listening line).
const probe = await Bun.udpSocket({ hostname: "127.0.0.1", port: 0 });
const radiusPort = probe.port;
probe.close();
const server = spawn([bin, "--data-dir", dataDir, "serve", "--radius-listen", `127.0.0.1:${radiusPort}`, "--http-listen", `127.0.0.1:${port}`], { env, stdout: "inherit", stderr: "inherit" });
let report: Record<string, unknown> = {};

/** A Prometheus sample's value from the admin listener's /metrics. */
async function metric(name: string, labels = ""): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels} `) || (labels === "" && l.startsWith(`${name} `)));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

try {
  for (const check = deadline("HTTP listener", 30_000); ; ) {
    check();
    try {
      if ((await fetch(`${base}/healthz`)).ok) break;
    } catch {}
    await Bun.sleep(100);
  }
  // --app: one device per user, each with a push subscription; the first STREAMS devices listen.
  const devices: DeviceClient[] = [];
  const subscriptions: TestSubscription[] = [];
  const userOfPushPath = new Map<string, number>();
  /** Request ID per user, from the event stream or the push, whichever came first. */
  const requestIds = new Map<number, string>();
  const learnedBy = { stream: 0, push: 0 };
  const streamAborts: AbortController[] = [];
  let enrolMs = 0;
  let enrolRetries = 0;
  /**
   * Set-up calls are tried again after a connection reset: a keep-alive connection that the server
   * closed as idle just as the client reused it (a client-side race, not a refusal; counted).
   */
  const retried = async (call: () => Promise<Response>): Promise<Response> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await call();
      } catch (e) {
        if (attempt >= 3 || (e as { code?: string }).code !== "ECONNRESET") throw e;
        enrolRetries++;
      }
    }
  };
  if (APP) {
    const t = Date.now();
    let nextUser = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (nextUser < N) {
          const i = nextUser++;
          const made = await retried(() => fetch(`http://127.0.0.1:${adminPort}/api/admin/v1/devices/enrolments`, { method: "POST", headers: { "api-key": adminKey, "content-type": "application/json" }, body: JSON.stringify({ user: names[i] }) }));
          if (made.status !== 201) throw new Error(`enrolment link for user ${i}: ${made.status}`);
          const code = /#enrol=([A-Za-z0-9_-]+)/.exec(((await made.json()) as { link: string }).link)![1]!;
          const device = await DeviceClient.create();
          const sub = pushService!.subscribe();
          const r = await retried(() => fetch(`${base}/app/api/v1/devices`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ enrolment: code, public_key: device.publicJwk, name: `bench ${i}`, push: TestPushService.json(sub) }) }));
          if (r.status !== 201) throw new Error(`device enrolment for user ${i}: ${r.status} ${await r.text()}`);
          device.id = ((await r.json()) as { device: string }).device;
          devices[i] = device;
          subscriptions[i] = sub;
          userOfPushPath.set(new URL(sub.endpoint).pathname, i);
        }
      }),
    );
    enrolMs = Date.now() - t;
    for (let i = 0; i < STREAMS; i++) streamAborts.push(openStream(i));
  }
  let pushSeen = 0;
  /** Reads the push messages that arrived since the last call into requestIds. */
  const takePushes = () => {
    const messages = pushService?.messages ?? [];
    for (; pushSeen < messages.length; pushSeen++) {
      const m = messages[pushSeen]!;
      const i = userOfPushPath.get(m.path);
      const id = (JSON.parse(m.payload) as { id: string }).id;
      if (i !== undefined && !requestIds.has(i)) {
        requestIds.set(i, id);
        learnedBy.push++;
      }
    }
  };

  /** Holds device i's signed event stream open and records each `request` event's ID. */
  function openStream(i: number): AbortController {
    const abort = new AbortController();
    void (async () => {
      const path = "/app/api/v1/events";
      const r = await fetch(base + path, { headers: await devices[i]!.headers("GET", path), signal: abort.signal });
      if (r.status !== 200 || !r.body) throw new Error(`event stream of device ${i}: ${r.status}`);
      const dec = new TextDecoder();
      let buf = "";
      for await (const chunk of r.body) {
        buf += dec.decode(chunk, { stream: true });
        let end: number;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          const event = buf.slice(0, end);
          buf = buf.slice(end + 2);
          if (!/^event: request$/m.test(event)) continue;
          const data = /^data: (.*)$/m.exec(event)?.[1];
          if (!data) continue;
          const id = (JSON.parse(data) as { id: string }).id;
          if (!requestIds.has(i)) {
            requestIds.set(i, id);
            learnedBy.stream++;
          }
        }
      }
    })().catch((e: Error) => {
      if (e.name !== "AbortError") console.error(`bench-approvals: event stream ${i}: ${e.message}`);
    });
    return abort;
  }

  await Bun.sleep(1000);
  const rssIdle = rssKB(server.pid);
  const phasePeak: Record<string, number> = { arrival: 0, held: 0, answering: 0 };
  let phase = "arrival";
  const sampler = setInterval(() => {
    try {
      phasePeak[phase] = Math.max(phasePeak[phase]!, rssKB(server.pid));
    } catch {}
  }, 50);

  // One request per user: socket i % SOCKETS, Identifier floor(i / SOCKETS) (at most 256 per socket).
  if (N > SOCKETS * 256) throw new Error(`at most ${SOCKETS * 256} requests`);
  const replies = new Map<number, { code: number; at: number }>();
  const packets: Uint8Array[] = [];
  const sockets = await Promise.all(
    Array.from({ length: SOCKETS }, (_, s) =>
      Bun.udpSocket({
        hostname: "127.0.0.1",
        port: 0,
        socket: {
          data(_sock, data) {
            const i = data[1]! * SOCKETS + s;
            if (replies.has(i)) return; // a retransmission's cached copy
            const r = checkReply(new Uint8Array(data), packets[i]!, SECRET);
            if (!r || !r.responseAuthenticatorValid || !r.messageAuthenticatorValid) throw new Error(`bad reply to request ${i}`);
            replies.set(i, { code: r.code, at: performance.now() });
          },
          error() {},
        },
      }),
    ),
  );
  const enc = new TextEncoder();
  for (let i = 0; i < N; i++) {
    packets.push(
      buildAccessRequest({
        identifier: Math.floor(i / SOCKETS),
        secret: SECRET,
        attributes: [
          [Attr.UserName, enc.encode(names[i]!)],
          [Attr.UserPassword, enc.encode(PASSWORD)],
          [CALLING_STATION_ID, enc.encode(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`)],
        ],
      }),
    );
  }
  const sendOne = (i: number) => sockets[i % SOCKETS]!.send(packets[i]!, radiusPort, "127.0.0.1");

  // Arrival: at most IN_FLIGHT requests sent whose link has not arrived yet. Like a NAS, each request
  // is retransmitted every 2 s until its link arrived (a request dropped because the password queue
  // was full is evaluated again; one in progress is absorbed), then once more after all are held.
  const t0 = Date.now();
  const lastSent = new Array<number>(N).fill(0);
  const waitingLink = new Set<number>();
  let retransmissions = 0;
  let sent = 0;
  const delivered = (i: number) => (APP ? requestIds.has(i) : links.has(numbers[i]!));
  const deliveredCount = () => (APP ? requestIds.size : links.size);
  for (const check = deadline(APP ? "every request ID at its device" : "every link at the gateway", 110_000); deliveredCount() < N; ) {
    check();
    takePushes();
    for (const i of waitingLink) if (delivered(i)) waitingLink.delete(i);
    while (sent < N && waitingLink.size < IN_FLIGHT) {
      sendOne(sent);
      lastSent[sent] = Date.now();
      waitingLink.add(sent++);
    }
    const now = Date.now();
    for (const i of waitingLink) {
      if (now - lastSent[i]! < 2000) continue;
      sendOne(i);
      lastSent[i] = now;
      retransmissions++;
    }
    if (replies.size > 0) throw new Error(`requests answered before approval: ${replies.size}`);
    await Bun.sleep(5);
  }
  const allHeldMs = Date.now() - t0;
  // Two retransmissions of every request while all are held, a second apart: each must be absorbed.
  for (let round = 0; round < 2; round++) {
    if (round > 0) await Bun.sleep(1000);
    for (let i = 0; i < N; i++) sendOne(i);
    retransmissions += N;
  }
  phase = "held";
  await Bun.sleep(2000); // the poll loop and the collector settle with everything held
  takePushes();
  const rssHeld = rssKB(server.pid);
  const pushes = pushService?.messages ?? [];
  const pushSpanMs = pushes.length > 1 ? pushes.at(-1)!.at - pushes[0]!.at : 0;
  const smsWhileHeld = smsSent;
  if (replies.size > 0) throw new Error(`requests answered before approval: ${replies.size}`);

  // Answering: the pages first (CSRF tokens), so that the timed part is only the POST; in app mode
  // the signature is made before the clock starts for the same reason.
  phase = "answering";
  const csrf = new Array<string>(N);
  const signed = new Array<Request>(N);
  let next = 0;
  if (APP) {
    for (let i = 0; i < N; i++) signed[i] = await devices[i]!.request(base, "POST", `/app/api/v1/requests/${requestIds.get(i)!}`, { decision: "approve" });
  } else await Promise.all(
    Array.from({ length: CONC }, async () => {
      while (next < N) {
        const i = next++;
        const html = await (await pageFetch(links.get(numbers[i]!)!)).text();
        csrf[i] = /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? "";
      }
    }),
  );
  const postedAt = new Array<number>(N);
  next = 0;
  const answeredFrom = Date.now();
  await Promise.all(
    Array.from({ length: CONC }, async () => {
      while (next < N) {
        const i = next++;
        postedAt[i] = performance.now();
        const r = APP ? await fetch(signed[i]!) : await pageFetch(links.get(numbers[i]!)!, { method: "POST", body: new URLSearchParams({ csrf: csrf[i]!, action: "approve" }) });
        await r.arrayBuffer();
        if (r.status !== 200) throw new Error(`approval POST answered ${r.status}`);
      }
    }),
  );
  for (const check = deadline("every Access-Accept", 60_000); replies.size < N; ) {
    check();
    await Bun.sleep(20);
  }
  const answeredMs = Date.now() - answeredFrom;
  clearInterval(sampler);
  const latencies = Array.from({ length: N }, (_, i) => replies.get(i)!.at - postedAt[i]!).sort((a, b) => a - b);
  const codes: Record<string, number> = {};
  for (const r of replies.values()) {
    const name = r.code === Code.AccessAccept ? "Access-Accept" : r.code === Code.AccessReject ? "Access-Reject" : String(r.code);
    codes[name] = (codes[name] ?? 0) + 1;
  }
  await Bun.sleep(500);
  for (const a of streamAborts) a.abort();
  report = {
    mode: APP ? "app" : VIA_SWITCH ? "sms-link-via-switch" : "sms-link",
    ...(VIA_SWITCH
      ? {
          switch_deliveries_per_s: lastSmsAt > firstSmsAt ? Math.round(((smsSent - 1) * 1000) / (lastSmsAt - firstSmsAt)) : null,
          relay_rss_mb: mb(rssKB(relay!.pid)),
          relay_rss_hwm_mb: mb(rssKB(relay!.pid, "VmHWM")),
        }
      : {}),
    requests: N,
    ...(APP
      ? {
          event_streams: STREAMS,
          enrolment_ms: enrolMs,
          enrolment_retries_after_reset: enrolRetries,
          request_id_learned_by: learnedBy,
          push_messages: pushes.length,
          push_refusals: pushService!.refusals.length,
          push_per_s: pushSpanMs > 0 ? Math.round(((pushes.length - 1) * 1000) / pushSpanMs) : null,
        }
      : {}),
    hold_s: HOLD_S,
    all_held_after_ms: allHeldMs,
    sms_sent: smsSent,
    sms_sent_while_held: smsWhileHeld,
    retransmissions_sent: retransmissions,
    overload_drops: await metric("portcullis_radius_dropped_total", '{reason="overloaded"}'),
    retransmissions_dropped_in_progress: await metric("portcullis_radius_dropped_total", '{reason="duplicate_in_progress"}'),
    approvals_approved: await metric("portcullis_approvals_total", '{kind="radius",outcome="approved"}'),
    server_rss_idle_mb: mb(rssIdle),
    server_rss_held_mb: mb(rssHeld),
    server_rss_peak_held_mb: mb(phasePeak.held!),
    server_rss_peak_by_phase_mb: { arrival: mb(phasePeak.arrival!), held: mb(phasePeak.held!), answering: mb(phasePeak.answering!) },
    server_rss_hwm_mb: mb(rssKB(server.pid, "VmHWM")),
    per_held_request_kb: +((rssHeld - rssIdle) / N).toFixed(2),
    answering_ms: answeredMs,
    approval_to_accept_ms: { p50: +pct(latencies, 50).toFixed(2), p99: +pct(latencies, 99).toFixed(2), max: +latencies.at(-1)!.toFixed(2), samples: latencies.length },
    replies: codes,
    load_average: readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" "),
  };
  console.log(JSON.stringify(report, null, 2));
  for (const s of sockets) s.close();
} finally {
  server.kill("SIGTERM");
  await Promise.race([server.exited, Bun.sleep(10_000)]);
  relay?.kill("SIGTERM");
  if (relay) await Promise.race([relay.exited, Bun.sleep(10_000)]);
  gateway.stop(true);
  pushService?.stop();
  if (!values.keep) {
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(relayDir, { recursive: true, force: true });
  }
}

// The bars: exactly one SMS per login whatever the retransmissions, peak RSS while all are held
// under 350 MB, and the approval → Access-Accept p99 under 100 ms.
const RSS_LIMIT_MB = APP ? 400 : 350;
const P99_LIMIT_MS = VIA_SWITCH ? 150 : 100;
const failures: string[] = [];
if (!APP && report.sms_sent !== N) failures.push(`${report.sms_sent} SMS sent for ${N} logins`);
if (APP && report.sms_sent !== 0) failures.push(`${report.sms_sent} SMS sent to users with an approver app`);
if (APP && report.push_messages !== N) failures.push(`${report.push_messages} push messages for ${N} requests`);
if (APP && report.push_refusals !== 0) failures.push(`the push service refused ${report.push_refusals} messages`);
if ((report.replies as Record<string, number>)?.["Access-Accept"] !== N) failures.push("not every request ended in Access-Accept");
const p99 = (report.approval_to_accept_ms as { p99: number } | undefined)?.p99;
if (N >= 10_000 && !((report.server_rss_peak_held_mb as number) < RSS_LIMIT_MB)) failures.push(`peak RSS while held ${report.server_rss_peak_held_mb} MB ≥ ${RSS_LIMIT_MB} MB`);
if (N >= 10_000 && !(p99! < P99_LIMIT_MS)) failures.push(`approval → Access-Accept p99 ${p99} ms ≥ ${P99_LIMIT_MS} ms`);
for (const f of failures) console.error(`bench-approvals: FAIL: ${f}`);
process.exit(failures.length === 0 ? 0 : 1);
