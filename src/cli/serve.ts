// `portcullis serve`: the composition root of the running appliance (store → engine → RADIUS server).

import { cpus } from "node:os";
import { AuditBus, logSink } from "../audit/events.ts";
import { log, setLogLevel } from "../audit/log.ts";
import { auditCounters, collectRADIUS, createMetrics, requestSeconds, type PortcullisMetrics } from "../audit/metrics.ts";
import { Engine, type PhoneServices } from "../auth/engine.ts";
import { configWarnings, endpointProfiles, ldapProfiles, type Config } from "../config/index.ts";
import { createLdapDirectory } from "../directory/ldap/index.ts";
import { Directories } from "../directory/registry.ts";
import { RADIUSServer } from "../radius/server/server.ts";
import { runtimeName } from "../runtime/info.ts";
import { setPasswordConcurrency, warmDummyHash } from "../runtime/password.ts";
import { CachedStore, type EpochStore } from "../store/cache.ts";
import { StoreHealth } from "../store/health.ts";
import { openStore, storeOptions } from "../store/open.ts";
import { adminEventsOf, type DeliveryRepos, type Store } from "../store/types.ts";
import { AdminEventTail } from "./admin-event-tail.ts";
import { reportUncaught } from "./uncaught.ts";

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
  // From here on, an error nothing catches is one JSON line, counted once the metrics exist.
  let metricsSoFar: PortcullisMetrics | undefined;
  const removeUncaughtHandlers = reportUncaught({ count: (origin) => metricsSoFar?.uncaughtErrors.inc({ origin }) });
  for (const warning of configWarnings(config)) log("warn", "config.warning", { detail: warning });
  setPasswordConcurrency(config.password.hash_concurrency || cpus().length);
  // Compute the dummy hash for unknown users now, on the hashing threads, while the rest starts:
  // a request that needs it before it is ready waits for this same computation.
  void warmDummyHash().catch(() => {});

  const opened = await openStore(storeOptions(config));
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
  metricsSoFar = metrics;
  audit.subscribe(auditCounters(metrics));

  let deliveryRepos: DeliveryRepos;
  let adminEvents: AdminEventTail;
  try {
    deliveryRepos = deliveryReposOf(opened);
    // Admin changes made with the CLI (recorded in the store with the change) become audit events
    // here; those recorded while no server ran are emitted now, before anything else happens.
    adminEvents = new AdminEventTail(adminEventsOf(opened), { emit: audit.emit, log, now: Date.now });
    await adminEvents.drain();
  } catch (err) {
    await directories.close();
    await store.close();
    throw err;
  }
  // Approvals and SMS codes need the delivery stack, which loads with the web surface after RADIUS
  // listens (start-up stays fast); a phone-type login that arrives first waits for it, no other does.
  let phoneReady!: (services: PhoneServices) => void;
  let phoneFailed!: (err: unknown) => void;
  const phone = new Promise<PhoneServices>((resolve, reject) => {
    phoneReady = resolve;
    phoneFailed = reject;
  });
  phone.catch(() => {}); // a failed start stops the server; the engine sees "no phone services" meanwhile
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
        passwordIdentityCap: config.lockout.password_identity_cap,
        codeIdentityCap: config.lockout.code_identity_cap,
        knownSourceMs: config.lockout.known_source_days * 86_400_000,
        knownSourcesPerUser: config.lockout.known_sources_per_user,
      },
      directories,
      phone,
    },
    audit.emit,
  );

  // Status-Server and /readyz answer from a write probe repeated every 250 ms on PostgreSQL (so that a
  // node whose database cannot be written stops answering within a second, and answers again when it
  // can), every second on SQLite.
  const health = new StoreHealth(store, { intervalMs: storeOptions(config).driver === "postgres" ? 250 : 1000 });
  await health.start();
  const listen = (ctx.flags?.radiusListen?.length ? ctx.flags.radiusListen : config.radius.listen).map(splitListen);
  const radius = new RADIUSServer(store, engine, {
    health,
    idempotencyRecords: config.store.idempotency_records,
    listen,
    recvBufferBytes: config.radius.recv_buffer_bytes,
    dedupeTtlMs: config.radius.dedupe_ttl_s * 1000,
    dropLogIntervalMs: config.radius.drop_log_interval_s * 1000,
    observe: requestSeconds(metrics),
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
    log("info", "radius.listening", { address: e.address, port: e.port, recv_buffer_bytes: granted, runtime: runtimeName() });
    if (granted > 0 && granted < config.radius.recv_buffer_bytes) {
      log("warn", "radius.recv_buffer_small", {
        requested: config.radius.recv_buffer_bytes,
        granted,
        detail: "raise net.core.rmem_max so bursts are not dropped by the kernel",
      });
    }
  }

  // The web surface (Magic Link, delivery, admin API) is loaded only now, so that RADIUS answers as
  // early as possible after exec; a failure here still stops the start.
  let web: Awaited<ReturnType<typeof import("./serve-http.ts").startWeb>>;
  try {
    const { startWeb } = await import("./serve-http.ts");
    web = await startWeb(ctx, { store, engine, audit, metrics, deliveryRepos, radiusBound: () => endpoints.length > 0, health, phoneReady });
  } catch (err) {
    phoneFailed(err);
    await radius.stop();
    await directories.close();
    await store.close();
    throw err;
  }

  // Challenge states expire on their own, stale lockout counters would restart from zero anyway,
  // and expired known sources count for nothing: purge them now and then so no table grows without bound.
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
    void store.lockouts.forgetSources(now - config.lockout.known_source_days * 86_400_000).catch(() => {});
    // Answered and expired approvals are kept a day, so a late tap still gets a clear page; SMS codes go at expiry.
    void store.approvals.purgeExpired(now - 86_400_000).catch(() => {});
    void store.smsCodes.purgeExpired(now).catch(() => {});
    // Expired enrolment codes, and signature records whose time has left the 60 s window.
    void store.devices.purgeExpired(now).catch(() => {});
    void store.approvalBlocks.purgeExpired(now - 3_600_000).catch(() => {});
    // Idempotency records outlive the retransmission window by nothing.
    void opened.radiusReplies?.purgeExpired(now).catch(() => {});
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
  web.magicLink.hub.closeAll();
  await Promise.all(web.listeners.map((l) => l.stop()));
  await radius.stop();
  health.stop();
  await directories.close();
  await store.close();
  log("info", "server.stopped");
  removeUncaughtHandlers();
}

/** The delivery repositories of an opened store (SqliteStore has them). Throws TypeError when it lacks them. */
function deliveryReposOf(store: Store): DeliveryRepos {
  const r = store as Store & Partial<DeliveryRepos>;
  if (!r.rateLimits || !r.deliveryLog) throw new TypeError("store: this back-end has no rate-limit counters or delivery log");
  return { rateLimits: r.rateLimits, deliveryLog: r.deliveryLog };
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
