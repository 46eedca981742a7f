// `portcullis serve`: the composition root of the running appliance (store → engine → RADIUS server).

import { randomBytes } from "node:crypto";
import { cpus } from "node:os";
import { AuditBus, logSink, magicLinkAuditLog } from "../audit/events.ts";
import { log, setLogLevel } from "../audit/log.ts";
import { auditCounters, collectRADIUS, createMetrics } from "../audit/metrics.ts";
import { Engine } from "../auth/engine.ts";
import { configWarnings, endpointProfiles, ldapProfiles, type Config } from "../config/index.ts";
import { createLdapDirectory } from "../directory/ldap/index.ts";
import { Directories } from "../directory/registry.ts";
import { buildAdminApp, buildPublicApp } from "../http/app.ts";
import { certificateNames, loadOrCreateTLS } from "../http/tls.ts";
import type { HttpDeps } from "../http/types.ts";
import { serveHttp, type HttpListener } from "../runtime/http.ts";
import { RADIUSServer } from "../radius/server/server.ts";
import { setPasswordConcurrency, warmDummyHash } from "../runtime/password.ts";
import { CachedStore, type EpochStore } from "../store/cache.ts";
import { openStore } from "../store/open.ts";
import { adminEventsOf, type DeliveryRepos, type Store } from "../store/types.ts";
import { AdminEventTail } from "./admin-event-tail.ts";
import { allowListFromConfig, channelsFromConfig, deliveryWarnings, limitsFromConfig } from "../delivery/index.ts";
import { dispatcherPool, KnownNumbers, MagicLinkService } from "../magiclink/index.ts";

/** How often `serve` looks whether another process committed (PRAGMA data_version) to emit CLI admin events. */
const ADMIN_EVENT_POLL_MS = 1000;
/** Emitted CLI admin-event records are kept this long in the store (the log line is the audit trail). */
export const ADMIN_EVENT_RETENTION_DAYS = 90;

export interface ServeContext {
  config: Config;
  flags?: { radiusListen?: string[]; httpListen?: string };
  /**
   * Which HTTP listeners the administrator set (file, environment or flag). A listener left at its
   * built-in default that cannot be bound is logged as an error and skipped, so that the offline
   * appliance (RADIUS + TOTP) still starts on its defaults; an explicit one that cannot be bound
   * stops the start. Omitted: both count as explicit.
   */
  explicitListeners?: { http: boolean; admin: boolean };
}

/** Splits "192.0.2.1:1812" / "[::1]:1812" (already validated by the config schema). */
export function splitListen(text: string): { address: string; port: number } {
  const m = /^\[(.+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  if (!m) throw new TypeError(`radius.listen: "${text}" is not ADDR:PORT`);
  return { address: m[1]!, port: Number(m[2]) };
}

/**
 * Starts the appliance and resolves when it has been stopped by SIGTERM/SIGINT.
 * Throws (the CLI prints one line) when the store cannot be opened or an address cannot be bound.
 */
export async function serve(ctx: ServeContext): Promise<void> {
  const { config } = ctx;
  // Signal handlers first: a SIGTERM that arrives while starting must still stop cleanly.
  const stopped = new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log("info", "server.stopping", { signal });
      resolve();
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  setLogLevel(config.log_level);
  for (const warning of configWarnings(config)) log("warn", "config.warning", { detail: warning });
  setPasswordConcurrency(config.password.hash_concurrency || cpus().length);
  // Compute the dummy hash for unknown users now, on the hashing threads, while the rest starts:
  // a request that needs it before it is ready waits for this same computation.
  void warmDummyHash().catch(() => {});

  const opened = await openStore({
    driver: "sqlite",
    path: config.store.path,
    dataDir: config.data_dir,
    keyFile: config.keys.key_file,
    synchronous: config.store.synchronous,
    busyTimeoutMs: config.store.busy_timeout_ms,
  });
  const store = config.store.cache && opened.changeEpoch ? new CachedStore(opened as EpochStore) : opened;
  if (store instanceof CachedStore) {
    const loaded = await store.preload();
    log("info", "store.cache_loaded", { users: loaded });
  }
  await warnAboutClients(store);
  // [[endpoint]] profiles from the file replace stored ones of the same name (the file wins).
  for (const profile of endpointProfiles(config)) {
    await store.endpoints.put(profile);
    log("info", "endpoint.seeded", { endpoint: profile.name });
  }

  // LDAP/AD profiles, in config order; nothing connects until the first lookup.
  const directories = new Directories(ldapProfiles(config).map((profile) => createLdapDirectory(profile, { log })));
  for (const name of directories.names()) log("info", "ldap.profile", { profile: name });

  const audit = new AuditBus();
  audit.subscribe(logSink);
  const metrics = createMetrics();
  audit.subscribe(auditCounters(metrics));

  // Delivery (SMS gateway, SMTP) behind the SMS-pumping defences, and the Magic Link sessions.
  let magicLink: MagicLinkService;
  let delivery: NonNullable<HttpDeps["delivery"]>;
  let deliveryRepos: DeliveryRepos;
  let adminEvents: AdminEventTail;
  try {
    deliveryRepos = deliveryReposOf(opened);
    // Admin changes made with the CLI (recorded in the store with the change) become audit events
    // here; those recorded while no server ran are emitted now, before anything else happens.
    adminEvents = new AdminEventTail(adminEventsOf(opened), { emit: audit.emit, log, now: Date.now });
    await adminEvents.drain();
    for (const warning of deliveryWarnings(config.delivery)) log("warn", "delivery.warning", { detail: warning });
    ({ magicLink, delivery } = await createMagicLink(config, store, deliveryRepos, metrics, audit.emit));
  } catch (err) {
    await directories.close();
    await store.close();
    throw err;
  }
  const engine = new Engine(
    store,
    {
      realms: config.radius.realms,
      window: config.otp.window,
      hotpLookAhead: config.otp.hotp_look_ahead,
      challengeTtlMs: config.radius.challenge_ttl_s * 1000,
      challengeMaxFailures: config.radius.challenge_max_failures,
      otpPrompt: config.radius.otp_prompt,
      retryPrompt: "Wrong code, try again",
      lockout: {
        passwordThreshold: config.lockout.password_threshold,
        codeThreshold: config.lockout.code_threshold,
        baseDelayMs: config.lockout.base_delay_s * 1000,
        maxDelayMs: config.lockout.max_delay_s * 1000,
        resetAfterMs: config.lockout.reset_after_s * 1000,
      },
      directories,
    },
    audit.emit,
  );

  const listen = (ctx.flags?.radiusListen?.length ? ctx.flags.radiusListen : config.radius.listen).map(splitListen);
  const radius = new RADIUSServer(store, engine, {
    listen,
    recvBufferBytes: config.radius.recv_buffer_bytes,
    dedupeTtlMs: config.radius.dedupe_ttl_s * 1000,
    dropLogIntervalMs: config.radius.drop_log_interval_s * 1000,
    observe: (result, seconds) => metrics.radiusRequestSeconds.observe({ result }, seconds),
  });
  collectRADIUS(metrics, () => radius.snapshot());
  let endpoints;
  try {
    endpoints = await radius.start();
  } catch (err) {
    await directories.close();
    await store.close();
    throw err;
  }
  for (const e of endpoints) {
    const granted = e.receiveBufferSize();
    log("info", "radius.listening", { address: e.address, port: e.port, recv_buffer_bytes: granted });
    if (granted > 0 && granted < config.radius.recv_buffer_bytes) {
      log("warn", "radius.recv_buffer_small", {
        requested: config.radius.recv_buffer_bytes,
        granted,
        detail: "raise net.core.rmem_max so bursts are not dropped by the kernel",
      });
    }
  }

  let listeners: HttpListener[];
  try {
    listeners = await startHttp(ctx, { store, engine, audit: audit.emit, metrics, magicLink, delivery, radiusBound: () => endpoints.length > 0 });
  } catch (err) {
    await radius.stop();
    await directories.close();
    await store.close();
    throw err;
  }

  // Challenge states expire on their own, and stale lockout counters would restart from zero
  // anyway: purge both now and then so neither table grows without bound.
  const resetAfterMs = config.lockout.reset_after_s * 1000;
  // CLI admin events: emitted as soon as another process's commit is seen, and on the 60 s timer.
  // undefined at first: the first tick drains whatever was committed since the start-up drain.
  let seenEpoch: number | undefined;
  const adminEventPoll = setInterval(() => {
    let epoch: number | undefined;
    try {
      epoch = opened.changeEpoch?.();
    } catch {
      epoch = undefined; // the store is failing: let drain() try and log it
    }
    if (epoch !== undefined && epoch === seenEpoch) return;
    seenEpoch = epoch;
    void adminEvents.drain();
  }, ADMIN_EVENT_POLL_MS);
  const purge = setInterval(() => {
    const now = Date.now();
    void adminEvents.drain().then(() => adminEvents.purge(ADMIN_EVENT_RETENTION_DAYS * 86_400_000));
    void store.challenges.purgeExpired(now).catch(() => {});
    void store.lockouts.purgeStale(now - resetAfterMs, now).catch(() => {});
    // Answered and expired Magic Link sessions are kept a day, so a late tap still gets a clear page.
    void store.magicLinks.purgeExpired(now - 86_400_000).catch(() => {});
    // Ended rate-limit windows, and delivery-log rows past [delivery] log_retention_days.
    void deliveryRepos.rateLimits.purgeExpired(now).catch(() => {});
    void deliveryRepos.deliveryLog.purgeBefore(now - config.delivery.log_retention_days * 86_400_000).catch(() => {});
  }, 60_000);
  const statsLine = () => {
    const s = radius.snapshot();
    log("info", "radius.stats", {
      received: s.received,
      accepted: s.accepted,
      rejected: s.rejected,
      challenged: s.challenged,
      status_server: s.statusServer,
      duplicates: s.duplicates,
      dropped: s.dropped,
      rcvbuf_drops: s.rcvbufDrops,
    });
  };
  const statsTimer = config.radius.stats_interval_s > 0 ? setInterval(statsLine, config.radius.stats_interval_s * 1000) : undefined;
  process.on("SIGUSR1", statsLine);

  await stopped;
  clearInterval(adminEventPoll);
  clearInterval(purge);
  if (statsTimer) clearInterval(statsTimer);
  process.off("SIGUSR1", statsLine);
  statsLine();
  // Blocked Magic Link calls end now (their connections close with the listeners).
  magicLink.hub.closeAll();
  await Promise.all(listeners.map((l) => l.stop()));
  await radius.stop();
  await directories.close();
  await store.close();
  log("info", "server.stopped");
}

/** The delivery repositories of an opened store (SqliteStore has them). Throws TypeError when it lacks them. */
function deliveryReposOf(store: Store): DeliveryRepos {
  const r = store as Store & Partial<DeliveryRepos>;
  if (!r.rateLimits || !r.deliveryLog) throw new TypeError("store: this back-end has no rate-limit counters or delivery log");
  return { rateLimits: r.rateLimits, deliveryLog: r.deliveryLog };
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
): Promise<{ magicLink: MagicLinkService; delivery: NonNullable<HttpDeps["delivery"]> }> {
  const known = new KnownNumbers(store, config.region);
  const dispatcherFor = dispatcherPool(channelsFromConfig(config.delivery), {
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
  const magicLink = new MagicLinkService({
    store,
    rateLimits: repos.rateLimits,
    dispatcherFor,
    publicUrl: config.http.public_url,
    region: config.region,
    smsMaxLength: config.delivery.sms_max_length,
    emailSubject: config.delivery.email_subject,
    secret: await store.magicLinks.serverSecret(() => new Uint8Array(randomBytes(32))),
    emailFor: (e164) => known.emailFor(e164),
    now: Date.now,
    random: (n) => new Uint8Array(randomBytes(n)),
    log: magicLinkAuditLog(audit, log),
    onOutcome: (code) => metrics.magiclinkOutcomes.inc({ code }),
  });
  // The admin API's delivery test goes through every configured channel in the default order.
  return { magicLink, delivery: { dispatcher: dispatcherFor([]), log: repos.deliveryLog } };
}

const isLoopback = (address: string) => address === "::1" || address.startsWith("127.");

/**
 * Starts the public listener (HTTPS unless `http.tls = false`; a generated self-signed certificate
 * when no files are configured) and the admin listener (plain HTTP, loopback by default). Throws
 * when an address cannot be bound or the TLS files cannot be read; nothing stays bound then.
 */
async function startHttp(
  ctx: ServeContext,
  parts: Pick<HttpDeps, "store" | "engine" | "audit" | "metrics" | "magicLink" | "delivery"> & { radiusBound: () => boolean },
): Promise<HttpListener[]> {
  const { config } = ctx;
  let stopping = false;
  const base = {
    ...parts,
    config,
    now: Date.now,
    random: (n: number) => new Uint8Array(randomBytes(n)),
    log,
    ready: async () => {
      const checks = { store_writable: await parts.store.writable().catch(() => false), radius_bound: parts.radiusBound(), running: !stopping };
      return { ok: Object.values(checks).every(Boolean), checks };
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
  if (!config.http.public_url) log("warn", "http.public_url_missing", { detail: "http.public_url is empty: no approval link can be sent" });
  if (!isLoopback(adm.address)) log("warn", "http.admin_not_loopback", { address: adm.address, detail: "the admin listener speaks plain HTTP; keep it on a management network" });

  const publicApp = buildPublicApp({ ...base, tls: tls !== undefined });
  const adminApp = buildAdminApp({ ...base, tls: false });
  const listeners: HttpListener[] = [];
  const explicit = ctx.explicitListeners ?? { http: true, admin: true };
  /** Binds one listener; a default one that cannot be bound is skipped with an error line. */
  const bind = (listener: "public" | "admin", start: () => HttpListener, isExplicit: boolean, tlsOn: boolean) => {
    try {
      const l = start();
      listeners.push(l);
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
    bind("public", () => serveHttp({ ...pub, tls: tls && { cert: tls.cert, key: tls.key }, fetch: (req, env) => publicApp.fetch(req, env) }), explicit.http, tls !== undefined);
    bind("admin", () => serveHttp({ ...adm, fetch: (req, env) => adminApp.fetch(req, env) }), explicit.admin, false);
  } catch (err) {
    await Promise.all(listeners.map((l) => l.stop()));
    throw err;
  }
  return listeners.map((l) => ({
    ...l,
    stop: () => {
      stopping = true;
      return l.stop();
    },
  }));
}

/** Start-up warnings for weakened clients: each disabled default is logged (DESIGN, security defaults). */
async function warnAboutClients(store: Store): Promise<void> {
  for (const client of await store.clients.list()) {
    if (client.secret.length < 16) {
      log("warn", "radius.client_weak_secret", { client: client.name, detail: "shared secret is shorter than 16 characters" });
    }
    if (!client.requireMessageAuthenticator) {
      log("warn", "radius.client_message_authenticator_optional", {
        client: client.name,
        detail: "Access-Requests without Message-Authenticator are accepted from this client (Blast-RADIUS exposure)",
      });
    }
  }
}
