// `serve`'s web surface: delivery, approvals and Magic Link calls, and the public and admin HTTP listeners.
// Loaded by serve.ts once RADIUS is listening (the HTTP stack and its dependencies cost start-up time).

import { randomBytes } from "node:crypto";
import { magicLinkAuditLog, type AuditBus } from "../audit/events.ts";
import { log } from "../audit/log.ts";
import type { createMetrics } from "../audit/metrics.ts";
import { ConfigError, type Config } from "../config/index.ts";
import { allowListFromConfig, channelsFromConfig, deliveryWarnings, limitsFromConfig } from "../delivery/index.ts";
import { buildAdminApp, buildPublicApp } from "../http/app.ts";
import { certificateNames, loadOrCreateTLS } from "../http/tls.ts";
import type { HttpDeps } from "../http/types.ts";
import { AppRequests, appSettings } from "../approvals/app.ts";
import { ApprovalService } from "../approvals/service.ts";
import { SmsCodes, smsCodeSettings } from "../approvals/sms-codes.ts";
import type { PhoneServices } from "../auth/engine.ts";
import { dispatcherPool, KnownNumbers, MagicLinkService } from "../magiclink/index.ts";
import { RateLimitedLog } from "../audit/log.ts";
import { BODY_LIMITS } from "../http/middleware.ts";
import { PushHosts } from "../push/hosts.ts";
import { PushSender } from "../push/sender.ts";
import { effectivePushSubject, loadVapidKeys } from "../push/vapid.ts";
import { openFileLimit, serveHttp, type HttpLimits, type HttpListener, type ListenerEvent } from "../runtime/http.ts";
import { contains, parseAddress, parseCIDR } from "../util/cidr.ts";
import type { DeliveryRepos, PasswordResetRepo, Store } from "../store/types.ts";
import { Directories } from "../directory/registry.ts";
import { PasswordResetService } from "../reset/service.ts";
import { hashPassword } from "../runtime/password.ts";
import { splitListen, type ServeContext } from "./serve-context.ts";
import { readFileSync } from "node:fs";
import type { Channel } from "../delivery/types.ts";
import { createSwitchChannels, remoteSwitchChannels, remoteSwitchPushFetch, SWITCH_LINK_PLACEHOLDER, switchCallHandler, switchIdentity, switchPushFetch, type SwitchCall } from "../switch/appliance.ts";
import { SwitchClient, type TunnelRequest, type TunnelResponse } from "../switch/client.ts";

/**
 * Builds delivery and the Magic Link service and starts both listeners. Throws ConfigError (a
 * delivery password or CA file), StoreError (the server secret), or a bind error of a configured
 * listener; nothing stays bound then.
 */
export async function startWeb(
  ctx: ServeContext,
  parts: Pick<HttpDeps, "store" | "engine" | "metrics"> & {
    audit: AuditBus;
    deliveryRepos: DeliveryRepos;
    radiusBound: () => boolean;
    /** The bound RADIUS sockets (the admin web UI's test authentication sends to one). */
    radiusListeners?: ReadonlyArray<{ address: string; port: number }>;
    /** The store's probed health (the last write probe's result), for /readyz. */
    health: { readonly ok: boolean };
    /** Hands the engine its approvals and SMS codes as soon as they exist (before the listeners start). */
    phoneReady?: (services: PhoneServices) => void;
    /** False in a RADIUS worker: delivery and approvals only, no HTTP listener (its supervisor runs them). Default true. */
    listen?: boolean;
    /** A RADIUS worker's calls to its supervisor, which holds the one switch connection (with `[switch]`). */
    switchCall?: SwitchCall;
    /** The LDAP/AD profiles (password-reset portals change passwords there). */
    directories?: Directories;
    /** Password-reset sessions; absent → no portal is served. */
    passwordResets?: PasswordResetRepo;
  },
): Promise<{ listeners: HttpListener[]; magicLink: MagicLinkService; push: PushSender; switchClient?: SwitchClient; switchCalls?: SwitchCall }> {
  const { config } = ctx;
  // Delivery (SMS gateways, SMTP) behind the SMS-pumping defences, and the Magic Link sessions.
  for (const warning of deliveryWarnings(config.delivery)) log("warn", "delivery.warning", { detail: warning });
  // The switch: one outbound connection to a relay, which answers the approval pages through the public app.
  let tunnel: ((req: TunnelRequest) => Promise<TunnelResponse>) | undefined;
  let tunnelRaw: ((req: TunnelRequest) => Promise<Response>) | undefined;
  // A RADIUS worker opens no connection of its own (the relay keeps one per appliance): its
  // messages and pushes for the relay go through its supervisor's.
  const remote = parts.listen === false && config.switch.urls.length > 0 ? parts.switchCall : undefined;
  const switchClient = parts.listen === false ? undefined : await createSwitchClient(
    config,
    parts.store,
    parts.audit.emit,
    (req) => (tunnel ? tunnel(req) : Promise.resolve({ status: 503, headers: {}, body: "" })),
    (req) => (tunnelRaw ? tunnelRaw(req) : Promise.resolve(new Response(null, { status: 503 }))),
  );
  const viaSwitch = switchClient
    ? { channels: (linkBase: string) => createSwitchChannels(switchClient, linkBase), pushFetch: switchPushFetch(switchClient) }
    : remote
      ? { channels: () => remoteSwitchChannels(remote), pushFetch: remoteSwitchPushFetch(remote) }
      : undefined;
  const push = await createPush(config, parts.store, parts.audit.emit, viaSwitch?.pushFetch);
  const { magicLink, delivery, phone, app, secret, approvals, smsCodes } = await createMagicLink(config, parts.store, parts.deliveryRepos, parts.metrics, parts.audit.emit, push, viaSwitch?.channels);
  parts.phoneReady?.(phone);
  const passwordReset = parts.passwordResets && config.password_reset.length > 0 ? createPasswordReset(config, parts, { approvals, smsCodes }, app, parts.passwordResets, secret) : undefined;
  // On a store that several nodes share, an answer given on another node wakes this node's waiters
  // (held RADIUS requests, Magic Link calls) at once; the hub's poll stays as the safety net.
  if (parts.store.watchApprovals) {
    try {
      await parts.store.watchApprovals((id, state) => void magicLink.hub.notify(id, state));
    } catch (err) {
      log("error", "approval.watch_failed", { error: (err as Error)?.name ?? "error", detail: "answers given on other nodes are seen through the poll only" });
    }
  }
  // Custom SMS text is off by default; a profile that turns it on (in the file, or stored through the
  // admin API, also by a build whose default was on) is named at every start.
  for (const p of await parts.store.endpoints.list()) {
    if (p.allowCustomSmsText) {
      log("warn", "endpoint.custom_sms_text_allowed", { endpoint: p.name, detail: "allow_custom_sms_text is true: this endpoint's API keys may send their own SMS text under the sender ID" });
    }
  }
  if (parts.listen === false) return { listeners: [], magicLink, push };
  try {
    const { listeners, publicFetch } = await startHttp(ctx, { store: parts.store, engine: parts.engine, audit: parts.audit.emit, metrics: parts.metrics, magicLink, delivery, push, app, ...(parts.radiusListeners ? { radiusListeners: parts.radiusListeners } : {}), passwordReset, ...(parts.directories ? { directories: parts.directories } : {}), rateLimits: parts.deliveryRepos.rateLimits, radiusBound: parts.radiusBound, health: parts.health, switchClient });
    tunnelRaw = async (req) => {
      const init: RequestInit = { method: req.method, headers: { ...req.headers, ...(req.contentType ? { "content-type": req.contentType } : {}) } };
      if (req.method !== "GET" && req.method !== "HEAD" && req.body !== "") init.body = req.body;
      return publicFetch(new Request(`http://switch.invalid${req.path}`, init), { remoteAddress: req.address || undefined });
    };
    tunnel = async (req) => {
      const res = await tunnelRaw!(req);
      const headers: Record<string, string> = {};
      res.headers.forEach((v, k) => (headers[k] = v));
      return { status: res.status, headers, body: await res.text() };
    };
    if (switchClient) {
      const gauge = parts.metrics.registry.gauge("portcullis_switch_connected", "1 while the appliance is connected to a switch relay (label: its URL), else 0.", ["url"]);
      const connects = parts.metrics.registry.counter("portcullis_switch_connects_total", "Connections to a switch relay that authenticated.");
      parts.metrics.registry.onCollect(() => {
        for (const url of config.switch.urls) gauge.set({ url }, switchClient.url === url ? 1 : 0);
        connects.setTotal({}, switchClient.connects);
      });
      switchClient.start();
    }
    return { listeners, magicLink, push, ...(switchClient ? { switchClient, switchCalls: switchCallHandler(switchClient, config.http.public_url || SWITCH_LINK_PLACEHOLDER) } : {}) };
  } catch (err) {
    magicLink.hub.closeAll();
    switchClient?.stop();
    throw err;
  }
}

/**
 * The connection to the switch relays of `[switch] urls`, not yet started; undefined without a
 * switch, or (logged) before `switch join`. Throws ConfigError when ca_file is missing or unreadable.
 */
async function createSwitchClient(config: Config, store: Store, audit: AuditBus["emit"], handleHttp: (req: TunnelRequest) => Promise<TunnelResponse>, openStream: (req: TunnelRequest) => Promise<Response>): Promise<SwitchClient | undefined> {
  if (config.switch.urls.length === 0) return undefined;
  // Only Bun's WebSocket client can pin the relay's CA per connection; elsewhere the pin would be ignored.
  if (typeof Bun === "undefined") throw new ConfigError("config: switch.urls needs the Bun build of portcullis (the relay's certificate could not be pinned here)");
  if (config.switch.ca_file === "") throw new ConfigError("config: switch.ca_file must be set when switch.urls is");
  let ca: string;
  try {
    ca = readFileSync(config.switch.ca_file, "utf8");
  } catch (err) {
    throw new ConfigError(`config: switch.ca_file cannot be read (${(err as NodeJS.ErrnoException).code ?? "unreadable"})`);
  }
  const id = await switchIdentity(store.serverSecrets);
  if (!id) {
    log("error", "switch.not_joined", { detail: "switch.urls is set but this appliance has not joined a switch: run portcullis switch join URL TOKEN" });
    return undefined;
  }
  return new SwitchClient({ urls: config.switch.urls, ca, name: id.name, privateKey: id.privateKey, handleHttp, openStream, audit, log, primaryRetryMs: config.switch.primary_retry_s * 1000, enrolments: () => store.devices.liveEnrolments(Date.now(), 200) });
}

/**
 * The delivery dispatcher(s) from [delivery] and the Magic Link service over them, with metrics on
 * every delivery attempt and refusal. The CSRF/number-matching secret is the store's sealed server
 * secret (created on first start), shared by every process on the store and kept across restarts.
 * Throws ConfigError when a password or CA file cannot be read, StoreError when the secret cannot be
 * read or stored.
 */
async function createMagicLink(
  config: Config,
  store: Store,
  repos: DeliveryRepos,
  metrics: ReturnType<typeof createMetrics>,
  audit: AuditBus["emit"],
  push: PushSender,
  /** The `switch` channels for links built on `linkBase` (absent: no switch). */
  switchChannels?: (linkBase: string) => Channel[],
): Promise<{ magicLink: MagicLinkService; delivery: NonNullable<HttpDeps["delivery"]>; phone: PhoneServices; app: AppRequests; secret: Uint8Array; approvals: ApprovalService; smsCodes: SmsCodes }> {
  const known = new KnownNumbers(store, config.region);
  // Links are built from [http] public_url; an appliance reachable only through its switch builds
  // them on a placeholder that the switch channel rewrites to the relay's public_url.
  const publicUrl = config.http.public_url || (switchChannels ? SWITCH_LINK_PLACEHOLDER : "");
  const built = channelsFromConfig(config.delivery);
  const channels: Channel[] = config.delivery.channels.flatMap((n) => (n === "switch" ? (switchChannels ? switchChannels(publicUrl) : []) : built.filter((c) => c.name === n)));
  const dispatcherFor = dispatcherPool(channels, {
    region: config.region,
    allowList: allowListFromConfig(config.delivery),
    limits: limitsFromConfig(config.delivery),
    rateLimits: repos.rateLimits,
    deliveryLog: repos.deliveryLog,
    isKnownNumber: (e164) => known.isKnown(e164),
    onDelivered: (channel, result, country) => {
      metrics.deliveries.inc({ channel, result: result === "ok" ? "ok" : result });
      if (result === "ok" && country) metrics.smsMessages.inc({ country });
    },
    onRefused: (reason) => metrics.deliveries.inc({ channel: "none", result: reason }),
    audit,
  });
  const secret = await store.approvals.serverSecret(() => new Uint8Array(randomBytes(32)));
  const random = (n: number) => new Uint8Array(randomBytes(n));
  const emailFor = (e164: string) => known.emailFor(e164);
  // One approval service (and one waiter hub) for every kind of approval on this process.
  const approvals = new ApprovalService({
    approvals: store.approvals,
    dispatcherFor,
    publicUrl,
    smsMaxLength: config.delivery.sms_max_length,
    emailSubject: config.delivery.email_subject,
    smsTemplate: config.delivery.sms_template,
    secret,
    emailFor,
    now: Date.now,
    random,
    log,
    audit,
    onOutcome: (kind, outcome) => metrics.approvals.inc({ kind, outcome }),
  });
  // The approver app: users with a live device get app requests (RADIUS and Magic Link alike).
  const app = new AppRequests({
    store,
    rateLimits: repos.rateLimits,
    approvals,
    push,
    userForNumber: (e164) => known.userFor(e164),
    secret,
    settings: appSettings(config.app),
    now: Date.now,
    audit,
    log,
  });
  const magicLink = new MagicLinkService({
    store,
    rateLimits: repos.rateLimits,
    dispatcherFor,
    publicUrl,
    region: config.region,
    smsMaxLength: config.delivery.sms_max_length,
    emailSubject: config.delivery.email_subject,
    secret,
    emailFor,
    now: Date.now,
    random,
    log: magicLinkAuditLog(audit, log),
    onOutcome: (code) => metrics.magiclinkOutcomes.inc({ code }),
    approvals,
    app,
  });
  // SMS one-time codes for RADIUS (types mobile and touch-mobile), over the same dispatchers and secret.
  const smsCodes = new SmsCodes({
    codes: store.smsCodes,
    dispatcherFor,
    emailFor,
    emailSubject: config.delivery.email_subject,
    secret,
    now: Date.now,
    random,
    region: config.region,
    ...smsCodeSettings(config.delivery),
    audit,
    onResult: (result) => metrics.smsCodes.inc({ result }),
  });
  const phone: PhoneServices = { approvals, smsCodes, app, onHold: (outcome, seconds) => metrics.approvalHoldSeconds.observe({ outcome }, seconds) };
  // The admin API's delivery test goes through every configured channel in the default order.
  return { magicLink, delivery: { dispatcher: dispatcherFor([]), log: repos.deliveryLog }, phone, app, secret, approvals, smsCodes };
}

/** The password-reset portals over the same approvals, app requests, SMS codes and rate-limit counters. */
function createPasswordReset(
  config: Config,
  parts: { store: Store; audit: AuditBus; deliveryRepos: DeliveryRepos; directories?: Directories },
  phone: { approvals: ApprovalService; smsCodes: SmsCodes },
  app: AppRequests,
  sessions: PasswordResetRepo,
  secret: Uint8Array,
): PasswordResetService {
  for (const p of config.password_reset) log("info", "password_reset.portal", { portal: p.name, directory: p.directory, path: `/password-reset/${p.name}` });
  return new PasswordResetService({
    portals: config.password_reset,
    store: parts.store,
    sessions,
    rateLimits: parts.deliveryRepos.rateLimits,
    approvals: phone.approvals,
    app,
    smsCodes: phone.smsCodes,
    directories: parts.directories ?? new Directories([]),
    smsCodeMaxFailures: config.delivery.sms_code_max_failures,
    secret,
    hashPassword,
    now: Date.now,
    random: (n: number) => new Uint8Array(randomBytes(n)),
    sleep: (ms: number) => new Promise((resolve) => setTimeout(resolve, ms)),
    audit: parts.audit.emit,
    log,
  });
}

/**
 * The Web Push sender for approver devices: the store's VAPID key pair (made on first start, sealed,
 * shared by every process on the store), `[push] allowed_hosts` and the VAPID subject. Throws
 * StoreError when the key cannot be read or stored.
 */
async function createPush(config: Config, store: Store, audit: AuditBus["emit"], viaSwitch?: typeof fetch): Promise<PushSender> {
  const vapid = await loadVapidKeys(store.serverSecrets);
  const subject = effectivePushSubject(config.push.subject, config.http.public_url);
  if (!subject) log("warn", "push.subject_missing", { detail: "neither push.subject nor an https: http.public_url is set: no push notification can be sent" });
  return new PushSender({ devices: store.devices, vapid, subject, hosts: new PushHosts(config.push.allowed_hosts), timeoutMs: config.push.timeout_ms, audit, ...(viaSwitch ? { fetch: viaSwitch } : {}) });
}

const isLoopback = (address: string) => address === "::1" || address.startsWith("127.");

/** File descriptors kept free for everything but the two listeners: RADIUS sockets, the store, LDAP and SMTP connections, gateways. */
const RESERVED_FDS = 256;

/**
 * Each listener's connection caps and deadlines from [http] and [admin]. The public cap is lowered,
 * with a warning, when the open-file limit cannot hold both listeners at their caps plus a reserve:
 * a flood of the public listener must never leave the admin listener unable to accept.
 */
export function listenerLimits(config: Config, fileLimit: number | undefined): { public: HttpLimits; admin: HttpLimits; lowered?: { from: number; to: number; fileLimit: number } } {
  const admin: HttpLimits = {
    maxConnections: config.admin.max_connections,
    maxConnectionsPerAddress: config.admin.max_connections_per_address,
    headerTimeoutMs: config.http.header_timeout_s * 1000,
    bodyTimeoutMs: config.admin.body_timeout_s * 1000,
    responseTimeoutMs: 60_000,
    maxRequestBodySize: BODY_LIMITS.adminImport,
  };
  let publicMax = config.http.max_connections;
  let lowered: { from: number; to: number; fileLimit: number } | undefined;
  if (fileLimit !== undefined) {
    const room = Math.max(16, fileLimit - admin.maxConnections - RESERVED_FDS);
    if (publicMax > room) {
      lowered = { from: publicMax, to: room, fileLimit };
      publicMax = room;
    }
  }
  return {
    public: {
      maxConnections: publicMax,
      maxConnectionsPerAddress: Math.min(config.http.max_connections_per_address, publicMax),
      headerTimeoutMs: config.http.header_timeout_s * 1000,
      bodyTimeoutMs: config.http.body_timeout_s * 1000,
      responseTimeoutMs: 30_000,
      maxRequestBodySize: BODY_LIMITS.public,
    },
    admin,
    ...(lowered ? { lowered } : {}),
  };
}

/**
 * Starts the public listener (HTTPS unless `http.tls = false`; a generated self-signed certificate
 * when no files are configured) and the admin listener (plain HTTP, loopback by default). Throws
 * when an address cannot be bound or the TLS files cannot be read; nothing stays bound then.
 */
async function startHttp(
  ctx: ServeContext,
  parts: Pick<HttpDeps, "store" | "engine" | "audit" | "metrics" | "magicLink" | "delivery" | "push" | "app" | "passwordReset" | "rateLimits" | "radiusListeners" | "directories"> & { radiusBound: () => boolean; health: { readonly ok: boolean }; switchClient?: SwitchClient },
): Promise<{ listeners: HttpListener[]; publicFetch: (req: Request, env: { remoteAddress?: string }) => Response | Promise<Response> }> {
  const { config } = ctx;
  let stopping = false;
  const base = {
    ...parts,
    config,
    now: Date.now,
    random: (n: number) => new Uint8Array(randomBytes(n)),
    log,
    ready: async () => {
      const checks = { store_writable: parts.health.ok, radius_bound: parts.radiusBound(), running: !stopping };
      const sw = parts.switchClient;
      return { ok: Object.values(checks).every(Boolean), checks, ...(sw ? { switch: { state: sw.state, url: sw.url ?? null } } : {}) };
    },
  };
  const pub = splitListen(ctx.flags?.httpListen ?? config.http.listen);
  const adm = splitListen(config.admin.listen);
  let tls: Awaited<ReturnType<typeof loadOrCreateTLS>> | undefined;
  if (config.http.tls) {
    tls = await loadOrCreateTLS({
      certFile: config.http.cert_file,
      keyFile: config.http.key_file,
      dataDir: config.data_dir,
      names: certificateNames(pub.address, config.http.public_url),
      now: Date.now(),
      random: base.random,
    });
    log(tls.source === "configured" ? "info" : "warn", "http.certificate", {
      source: tls.source,
      cert_file: tls.certFile,
      ...(tls.source === "configured" ? {} : { detail: "self-signed: phones will not trust links to this listener; configure http.cert_file and http.key_file" }),
    });
  } else {
    log("warn", "http.tls_disabled", { detail: "the public listener speaks plain HTTP; only run it behind a TLS-terminating reverse proxy" });
  }
  if (!config.http.public_url && config.switch.urls.length === 0) log("warn", "http.public_url_missing", { detail: "http.public_url is empty: no approval link can be sent" });
  if (!isLoopback(adm.address)) log("warn", "http.admin_not_loopback", { address: adm.address, detail: "the admin listener speaks plain HTTP; keep it on a management network" });

  const limits = listenerLimits(config, openFileLimit());
  if (limits.lowered) {
    log("warn", "http.max_connections_lowered", {
      from: limits.lowered.from,
      to: limits.lowered.to,
      open_file_limit: limits.lowered.fileLimit,
      detail: "the open-file limit cannot hold http.max_connections beside the admin listener; raise LimitNOFILE (the shipped unit sets 65536)",
    });
  }
  const proxies = config.http.trusted_proxies.map((t) => parseCIDR(t)).filter((n) => n !== undefined);
  const isProxy = (address: string) => {
    const parsed = parseAddress(address);
    return parsed !== undefined && proxies.some((net) => contains(net, parsed));
  };
  // Refusals and deadline closes are counted always and logged at most once per listener, reason and address a minute.
  const closeLog = new RateLimitedLog(60_000);
  const onEvent = (listener: "public" | "admin") => (event: ListenerEvent) => {
    if (event.kind === "error") {
      log("error", "http.listener_error", { listener, error: event.error });
      return;
    }
    const reason = event.kind === "refused" ? event.reason : event.phase;
    parts.metrics.httpConnectionsClosed.inc({ listener, reason });
    closeLog.log("warn", `${listener}|${reason}|${event.address}`, event.kind === "refused" ? "http.connection_refused" : "http.connection_timeout", { listener, reason, client: event.address });
  };

  const publicApp = buildPublicApp({ ...base, tls: tls !== undefined });
  const adminApp = buildAdminApp({ ...base, tls: false });
  const listeners: HttpListener[] = [];
  const names: Array<"public" | "admin"> = [];
  const explicit = ctx.explicitListeners ?? { http: true, admin: true };
  /** Binds one listener; a default one that cannot be bound is skipped with an error line. */
  const bind = async (listener: "public" | "admin", start: () => Promise<HttpListener>, isExplicit: boolean, tlsOn: boolean) => {
    try {
      const l = await start();
      listeners.push(l);
      names.push(listener);
      log("info", "http.listening", { listener, address: l.address, port: l.port, tls: tlsOn });
    } catch (err) {
      if (isExplicit) throw err;
      const key = listener === "public" ? "http.listen" : "admin.listen";
      log("error", "http.not_listening", {
        listener,
        detail: `the default ${key} address cannot be bound (${err instanceof Error ? (err as NodeJS.ErrnoException).code ?? err.name : "error"}); RADIUS keeps running; set ${key} to a free address`,
      });
    }
  };
  try {
    await bind(
      "public",
      () =>
        serveHttp({
          ...pub,
          tls: tls && { cert: tls.cert, key: tls.key },
          fetch: (req, env) => publicApp.fetch(req, env),
          limits: limits.public,
          isExempt: isProxy,
          onEvent: onEvent("public"),
        }),
      explicit.http,
      tls !== undefined,
    );
    await bind("admin", () => serveHttp({ ...adm, fetch: (req, env) => adminApp.fetch(req, env), limits: limits.admin, onEvent: onEvent("admin") }), explicit.admin, false);
  } catch (err) {
    await Promise.all(listeners.map((l) => l.stop()));
    throw err;
  }
  parts.metrics.registry.onCollect(() => {
    for (const [i, l] of listeners.entries()) parts.metrics.httpConnections.set({ listener: names[i]! }, l.connections());
  });
  return {
    publicFetch: (req, env) => publicApp.fetch(req, env),
    listeners: listeners.map((l) => ({
      ...l,
      stop: () => {
        stopping = true;
        return l.stop();
      },
    })),
  };
}

