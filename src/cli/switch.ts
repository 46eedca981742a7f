// `portcullis switch …`: the relay (`serve`, `appliance add|list|remove`, run on the relay host with
// its own data directory) and the appliance's enrolment with it (`join`). docs/switch.md.

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { AuditBus, logSink } from "../audit/events.ts";
import { log, setLogLevel } from "../audit/log.ts";
import { METRICS_CONTENT_TYPE, MetricsRegistry } from "../audit/metrics.ts";
import { ConfigError, type Config } from "../config/index.ts";
import { allowListFromConfig, channelsFromConfig, createDispatcher, deliveryWarnings, limitsFromConfig } from "../delivery/index.ts";
import { certificateNames, loadOrCreateTLS } from "../http/tls.ts";
import { PushHosts } from "../push/hosts.ts";
import { DEFAULT_HTTP_LIMITS, serveHttp, type HttpListener } from "../runtime/http.ts";
import { serveWebSocketHttp } from "../runtime/websocket.ts";
import { switchIdentity } from "../switch/appliance.ts";
import { SwitchClient } from "../switch/client.ts";
import { SwitchDb } from "../switch/db.ts";
import { MemoryRateLimits, NO_DELIVERY_LOG } from "../switch/memory.ts";
import { APPLIANCE_NAME, MAX_FRAME_BYTES, parseToken, SWITCH_PATH } from "../switch/protocol.ts";
import { CLIError, parseCommand, printList, usageError, type CLIContext } from "./context.ts";

export const SWITCH_USAGE = [
  "portcullis switch serve [--listen ADDR:PORT]",
  "portcullis switch appliance add NAME",
  "portcullis switch appliance list [--json]",
  "portcullis switch appliance remove NAME",
  "portcullis switch join URL TOKEN",
];

/** Runs `switch SUBCOMMAND …` other than serve. Throws CLIError for bad input or a failed operation. */
export async function switchCommand(ctx: CLIContext, args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === "appliance") {
    const [op, ...more] = rest;
    const db = new SwitchDb(ctx.config.data_dir);
    try {
      if (op === "add") return add(ctx, db, more);
      if (op === "list") return list(ctx, db, more);
      if (op === "remove") return remove(ctx, db, more);
    } finally {
      db.close();
    }
    throw usageError("switch appliance needs add, list or remove");
  }
  if (sub === "join") return join(ctx, rest);
  throw usageError("switch needs a subcommand: serve, appliance or join");
}

function add(ctx: CLIContext, db: SwitchDb, args: string[]): void {
  const { positionals } = parseCommand(args, {}, { min: 1, max: 1, usage: SWITCH_USAGE[1]! });
  const name = positionals[0]!;
  if (!APPLIANCE_NAME.test(name)) throw usageError("NAME must be 1-64 letters, digits, '_' or '-'");
  const secret = randomBytes(32).toString("base64url");
  try {
    db.add(name, secret, ctx.now());
  } catch (err) {
    if ((err as Error).message === "exists") throw new CLIError(`an appliance named ${name} exists; remove it first to enrol it again`);
    throw err;
  }
  ctx.out(`${name}.${secret}\n`);
  ctx.err(`Single-use enrolment token for ${name}, valid for 1 hour. On the appliance: portcullis switch join URL TOKEN\n`);
}

function list(ctx: CLIContext, db: SwitchDb, args: string[]): void {
  const { values } = parseCommand(args, { json: { type: "boolean" } }, { min: 0, max: 0, usage: SWITCH_USAGE[2]! });
  const rows = db.list().map((a) => ({
    name: a.name,
    state: a.publicKey ? "enrolled" : a.tokenExpires !== null && a.tokenExpires > ctx.now() ? "token pending" : "token expired",
    created: new Date(a.createdAt).toISOString(),
    enrolled: a.enrolledAt === null ? null : new Date(a.enrolledAt).toISOString(),
  }));
  printList(ctx, values.json as boolean | undefined, rows, "no appliances\n", ["NAME", "STATE", "CREATED", "ENROLLED"], (r) => [r.name, r.state, r.created, r.enrolled ?? "-"]);
}

function remove(ctx: CLIContext, db: SwitchDb, args: string[]): void {
  const { positionals } = parseCommand(args, {}, { min: 1, max: 1, usage: SWITCH_USAGE[3]! });
  if (!db.remove(positionals[0]!)) throw new CLIError(`no appliance named ${positionals[0]!.slice(0, 64)}`);
  ctx.out(`removed ${positionals[0]}\n`);
}

/** The appliance enrols with a relay: makes (or reuses) its key, and exchanges the token for it. */
async function join(ctx: CLIContext, args: string[]): Promise<void> {
  const { positionals } = parseCommand(args, {}, { min: 2, max: 2, usage: SWITCH_USAGE[4]! });
  const [url, token] = positionals as [string, string];
  if (!/^https:\/\/[^\s/]+/.test(url) || !URL.canParse(url)) throw usageError("URL must be the relay's https:// URL");
  const parsed = parseToken(token);
  if (!parsed) throw usageError("TOKEN is not an enrolment token (NAME.SECRET from switch appliance add)");
  if (ctx.config.switch.ca_file === "") throw new CLIError("set [switch] ca_file (the relay's CA certificate) before joining");
  let ca: string;
  try {
    ca = readFileSync(ctx.config.switch.ca_file, "utf8");
  } catch (err) {
    throw new CLIError(`switch.ca_file cannot be read (${(err as NodeJS.ErrnoException).code ?? "unreadable"})`);
  }
  const id = (await switchIdentity((await ctx.store()).serverSecrets, parsed.name))!;
  if (id.name !== parsed.name) throw new CLIError(`this appliance joined as ${id.name}: add it under that name on this relay`);
  const events: string[] = [];
  const client = new SwitchClient({
    urls: [url],
    ca,
    name: id.name,
    privateKey: id.privateKey,
    enrol: { token, publicKey: id.publicKey },
    audit: (e) => events.push(e.type),
    log: () => {},
    once: true,
  });
  client.start();
  const ok = await client.waitConnected(15_000);
  const code = client.lastCloseCode;
  client.stop();
  if (!ok) throw new CLIError(code === 4401 ? "the relay refused the token (wrong, expired or already used)" : `could not reach the relay (${client.lastCloseReason.slice(0, 120) || "no answer"})`);
  ctx.out(`joined ${url} as ${id.name}; list it in [switch] urls\n`);
}

/** "192.0.2.1:9443" / "[::1]:9443" (already validated by the config schema). */
function listenAddress(text: string, key = "listen"): { address: string; port: number } {
  const m = /^\[(.+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  if (!m) throw new ConfigError(`config: switch_server.${key} must be ADDR:PORT`);
  return { address: m[1]!, port: Number(m[2]) };
}

/** `switch serve`: the relay's composition root; resolves when stopped by SIGTERM/SIGINT. */
export async function switchServe(config: Config, flags: { listen?: string }): Promise<void> {
  const stopped = new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log("info", "server.stopping", { signal });
      resolve();
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  setLogLevel(config.log_level);
  const s = config.switch_server;
  if (!s.public_url) throw new ConfigError("config: switch_server.public_url must be set for switch serve");
  for (const warning of deliveryWarnings(config.delivery)) log("warn", "delivery.warning", { detail: warning });
  const audit = new AuditBus();
  audit.subscribe(logSink);
  const db = new SwitchDb(config.data_dir);
  const metrics = new MetricsRegistry();
  const deliveries = metrics.counter("portcullis_switch_deliveries_total", "Delivery attempts of the appliances' messages, by the relay's channel and result (ok, gateway_error, rejected, timeout, network).", ["channel", "result"]);
  const refusals = metrics.counter("portcullis_switch_deliveries_refused_total", "Appliances' messages refused before any channel (rate limits, destination rules, no channel for the destination), by reason.", ["reason"]);
  const dispatcher = createDispatcher({
    channels: channelsFromConfig(config.delivery),
    region: config.region,
    allowList: allowListFromConfig(config.delivery),
    limits: limitsFromConfig(config.delivery),
    rateLimits: new MemoryRateLimits(),
    deliveryLog: NO_DELIVERY_LOG,
    audit: audit.emit,
    onDelivered: (channel, result) => deliveries.inc({ channel, result }),
    onRefused: (reason) => refusals.inc({ reason }),
  });
  // The relay's pages are JSX: loaded only by the command that serves them.
  const { SwitchServer } = await import("../switch/server.tsx");
  const server = new SwitchServer({
    db,
    publicUrl: s.public_url,
    dispatcher,
    perAppliance: { perMinute: s.per_appliance_per_minute, perHour: s.per_appliance_per_hour },
    pushHosts: new PushHosts(config.push.allowed_hosts),
    pushTimeoutMs: config.push.timeout_ms,
    audit: audit.emit,
    log,
    metrics,
  });
  const listen = listenAddress(flags.listen ?? s.listen);
  let tls: { cert: string; key: string } | undefined;
  if (s.tls) {
    const t = await loadOrCreateTLS({
      certFile: s.cert_file,
      keyFile: s.key_file,
      dataDir: config.data_dir,
      names: certificateNames(listen.address, s.public_url),
      now: Date.now(),
      random: (n) => new Uint8Array(randomBytes(n)),
    });
    tls = { cert: t.cert, key: t.key };
    log(t.source === "configured" ? "info" : "warn", "switch.certificate", { source: t.source, cert_file: t.certFile });
  } else {
    log("warn", "switch.tls_disabled", { detail: "the relay speaks plain HTTP and WS; only run it behind a TLS-terminating reverse proxy" });
  }
  let listener;
  let metricsListener: HttpListener | undefined;
  try {
    if (s.metrics_listen) {
      // Metrics are never served on the public listener: only on this one, meant for loopback or a management network.
      metricsListener = await serveHttp({
        ...listenAddress(s.metrics_listen, "metrics_listen"),
        fetch: (req) => {
          const path = new URL(req.url).pathname;
          if (req.method !== "GET" && req.method !== "HEAD") return new Response("Method not allowed\n", { status: 405, headers: { "Content-Type": "text/plain" } });
          if (path === "/metrics") return new Response(metrics.render(), { headers: { "Content-Type": METRICS_CONTENT_TYPE, "Cache-Control": "no-store" } });
          if (path === "/healthz") return new Response("ok\n", { headers: { "Content-Type": "text/plain" } });
          return new Response("Not found\n", { status: 404, headers: { "Content-Type": "text/plain" } });
        },
        limits: { ...DEFAULT_HTTP_LIMITS, maxConnections: 32, maxConnectionsPerAddress: 16, maxRequestBodySize: 1024 },
      });
      log("info", "switch.metrics_listening", { address: metricsListener.address, port: metricsListener.port });
    }
    listener = await serveWebSocketHttp({
      ...listen,
      tls,
      upgradePath: SWITCH_PATH,
      maxPayloadBytes: MAX_FRAME_BYTES,
      fetch: (req, env) => server.fetch(req, env),
      open: (peer, address) => server.open(peer, address),
    });
  } catch (err) {
    await metricsListener?.stop();
    server.close();
    db.close();
    throw err;
  }
  log("info", "switch.listening", { address: listener.address, port: listener.port, tls: tls !== undefined, public_url: s.public_url });
  await stopped;
  server.close();
  await listener.stop();
  await metricsListener?.stop();
  db.close();
  log("info", "server.stopped");
}
