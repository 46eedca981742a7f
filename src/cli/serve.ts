// `portcullis serve`: the composition root of the running appliance (store → engine → RADIUS server).

import { cpus, hostname } from "node:os";
import { AuditBus, logSink } from "../audit/events.ts";
import { log, setLogLevel, setLogWorker } from "../audit/log.ts";
import { AuditStoreSink } from "../audit/store-sink.ts";
import { auditCounters, collectRADIUS, createMetrics, requestSeconds, type PortcullisMetrics } from "../audit/metrics.ts";
import { Engine, type PhoneServices } from "../auth/engine.ts";
import { configWarnings, endpointProfiles, ldapProfiles, type Config } from "../config/index.ts";
import { createLdapDirectory } from "../directory/ldap/index.ts";
import { Directories } from "../directory/registry.ts";
import { RADIUSServer } from "../radius/server/server.ts";
import { runtimeName } from "../runtime/info.ts";
import { kernelDropsOn, probeUDP } from "../runtime/udp.ts";
import { setPasswordConcurrency, warmDummyHash } from "../runtime/password.ts";
import { CachedStore, type EpochStore } from "../store/cache.ts";
import { StoreHealth } from "../store/health.ts";
import { openStore, storeOptions } from "../store/open.ts";
import { adminEventsOf, auditLogOf, type DeliveryRepos, type PasswordResetRepo, type Store } from "../store/types.ts";
import { AdminEventTail } from "./admin-event-tail.ts";
import { splitListen, type ServeContext } from "./serve-context.ts";
import { reportUncaught } from "./uncaught.ts";
import { sumSnapshots, workerChannel, workerCount, WorkerPool, type RADIUSSnapshot, type WorkerChannel } from "./workers.ts";

/** How often `serve` looks whether another process committed (PRAGMA data_version) to emit CLI admin events. */
const ADMIN_EVENT_POLL_MS = 1000;
/** A worker's message or push through its supervisor's switch connection waits this long (the relay's own answer waits 15 s). */
const SWITCH_CALL_TIMEOUT_MS = 20_000;
/** Emitted CLI admin-event records are kept this long in the store (the log line is the audit trail). */
export const ADMIN_EVENT_RETENTION_DAYS = 90;

/**
 * A RADIUS worker started by a supervisor (cli/workers.ts): it waits for its configuration over
 * IPC, then serves RADIUS only, until SIGTERM or until the supervisor is gone.
 */
export async function serveWorker(id: number): Promise<void> {
  setLogWorker(id);
  const channel = workerChannel();
  // Signals first (see serve): the start message may take a moment.
  const stopped = stopSignals(channel);
  const start = await channel.start;
  await serve(start.ctx, { id, channel, listen: start.listen, workers: start.workers, stopped });
}

/** Resolves on SIGTERM/SIGINT (or, for a worker, when its supervisor is gone), after the `server.stopping` line. */
function stopSignals(channel?: WorkerChannel): Promise<void> {
  return new Promise<void>((resolve) => {
    let done = false;
    const stop = (signal: string) => {
      if (done) return;
      done = true;
      log("info", "server.stopping", { signal });
      resolve();
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
    channel?.onOrphaned(() => stop("supervisor_gone"));
  });
}

/** How `serve` runs when it is a RADIUS worker (absent: a single process, or a supervisor of workers). */
interface WorkerRole {
  id: number;
  channel: WorkerChannel;
  listen: { address: string; port: number }[];
  workers: number;
  stopped: Promise<void>;
}

/**
 * Starts the appliance and resolves when it has been stopped by SIGTERM/SIGINT.
 * Throws (the CLI prints one line) when the store cannot be opened or an address cannot be bound.
 *
 * With `[radius] workers` above 1 (under Bun) this process supervises that many RADIUS workers
 * (cli/workers.ts) and keeps the HTTP listeners and periodic jobs; `worker` is set in a worker.
 */
export async function serve(ctx: ServeContext, worker?: WorkerRole): Promise<void> {
  const { config } = ctx;
  // Signal handlers first: a SIGTERM that arrives while starting must still stop cleanly.
  const stopped = worker?.stopped ?? stopSignals();
  setLogLevel(config.log_level);
  const workers = worker ? worker.workers : typeof Bun !== "undefined" ? workerCount(config.radius.workers, cpus().length) : 1;
  const supervising = !worker && workers > 1;
  if (!worker && workers === 1 && config.radius.workers > 1) {
    log("warn", "radius.workers_unsupported", { requested: config.radius.workers, runtime: runtimeName(), detail: "RADIUS workers need Bun; one process serves" });
  }
  // From here on, an error nothing catches is one JSON line, counted once the metrics exist.
  let metricsSoFar: PortcullisMetrics | undefined;
  const removeUncaughtHandlers = reportUncaught({ count: (origin) => metricsSoFar?.uncaughtErrors.inc({ origin }) });
  // Once per host: a worker runs with the configuration its supervisor already checked.
  if (!worker) for (const warning of configWarnings(config)) log("warn", "config.warning", { detail: warning });
  // The hashing threads are shared out between the processes of this host (workers and supervisor).
  const hashThreads = config.password.hash_concurrency || cpus().length;
  setPasswordConcurrency(workers > 1 ? Math.max(1, Math.ceil(hashThreads / workers)) : hashThreads);
  // Compute the dummy hash for unknown users now, on the hashing threads, while the rest starts:
  // a request that needs it before it is ready waits for this same computation.
  void warmDummyHash().catch(() => {});

  const opened = await openStore(storeOptions(config));
  const store = config.store.cache && opened.changeEpoch ? new CachedStore(opened as EpochStore) : opened;
  if (store instanceof CachedStore) {
    const loaded = await store.preload();
    log("info", "store.cache_loaded", { users: loaded });
  } else if (config.store.cache && "enableLoginCache" in opened) {
    // PostgreSQL: users and tokens remembered per login, each use revalidated by its write (store/postgres/login-reads.ts)
    (opened as { enableLoginCache(): void }).enableLoginCache();
  }
  // Once per host: the supervisor (or the single process) does it before any worker starts.
  if (!worker) {
    await warnAboutClients(store);
    // [[endpoint]] profiles from the file replace stored ones of the same name (the file wins).
    for (const profile of endpointProfiles(config)) {
      await store.endpoints.put(profile);
      log("info", "endpoint.seeded", { endpoint: profile.name });
    }
  }

  // LDAP/AD profiles, in config order; nothing connects until the first lookup.
  const directories = new Directories(ldapProfiles(config).map((profile) => createLdapDirectory(profile, { log })));
  for (const name of directories.names()) log("info", "ldap.profile", { profile: name });

  const audit = new AuditBus();
  audit.subscribe(logSink);
  const metrics = createMetrics();
  metricsSoFar = metrics;
  audit.subscribe(auditCounters(metrics));
  // Every process stores the events it emits itself (a worker its logins, the supervisor the web's).
  const auditStore = storedAudit(config, opened, metrics, worker?.id);
  if (auditStore) audit.subscribe(auditStore.push);

  let deliveryRepos: DeliveryRepos;
  let adminEvents: AdminEventTail | undefined;
  try {
    deliveryRepos = deliveryReposOf(opened);
    // Admin changes made with the CLI (recorded in the store with the change) become audit events
    // here; those recorded while no server ran are emitted now, before anything else happens.
    // Workers leave this to their supervisor, so that each change is one event.
    if (!worker) {
      adminEvents = new AdminEventTail(adminEventsOf(opened), { emit: audit.emit, log, now: Date.now });
      await adminEvents.drain();
    }
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
  // can), every second on SQLite. Each process probes for itself: a worker for its Status-Server
  // answers, the supervisor for /readyz.
  const health = new StoreHealth(store, { intervalMs: storeOptions(config).driver === "postgres" ? 250 : 1000 });
  await health.start();
  const configured = (ctx.flags?.radiusListen?.length ? ctx.flags.radiusListen : config.radius.listen).map(splitListen);
  if (supervising) {
    const pool = await startWorkers(ctx, configured, workers, metrics).catch(async (err: unknown) => {
      health.stop();
      await directories.close();
      await store.close();
      throw err;
    });
    return supervise({ ctx, store, opened, engine, audit, metrics, deliveryRepos, adminEvents: adminEvents!, auditStore, directories, health, phoneReady, phoneFailed, pool, stopped, removeUncaughtHandlers });
  }
  const listen = worker ? worker.listen : configured;
  const radius = new RADIUSServer(store, engine, {
    health,
    idempotencyRecords: config.store.idempotency_records,
    listen,
    recvBufferBytes: config.radius.recv_buffer_bytes,
    dedupeTtlMs: config.radius.dedupe_ttl_s * 1000,
    dropLogIntervalMs: config.radius.drop_log_interval_s * 1000,
    observe: requestSeconds(metrics),
    reusePort: worker !== undefined,
    steerGroup: worker?.workers,
  });
  // A worker's sockets share their ports with the other workers', whose kernel drops /proc reports
  // under the same port: the supervisor counts those once, for the host.
  collectRADIUS(metrics, worker ? () => ({ ...radius.snapshot(), rcvbufDrops: 0 }) : () => radius.snapshot());
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
    log("info", "radius.listening", { address: e.address, port: e.port, recv_buffer_bytes: granted, runtime: runtimeName(), ...(worker ? { steering: e.steering } : {}) });
    if (granted > 0 && granted < config.radius.recv_buffer_bytes) {
      log("warn", "radius.recv_buffer_small", {
        requested: config.radius.recv_buffer_bytes,
        granted,
        detail: "raise net.core.rmem_max so bursts are not dropped by the kernel",
      });
    }
  }

  // The web surface (Magic Link, delivery, admin API) is loaded only now, so that RADIUS answers as
  // early as possible after exec; a failure here still stops the start. A worker builds only the
  // phone services (approvals, SMS codes) its logins need; its supervisor runs the listeners.
  let web: Awaited<ReturnType<typeof import("./serve-http.ts").startWeb>>;
  try {
    const { startWeb } = await import("./serve-http.ts");
    web = await startWeb(ctx, {
      store,
      engine,
      audit,
      metrics,
      deliveryRepos,
      radiusBound: () => endpoints.length > 0,
      radiusListeners: endpoints.map((e) => ({ address: e.address, port: e.port })),
      health,
      phoneReady,
      directories,
      passwordResets: (opened as Store & { passwordResets?: PasswordResetRepo }).passwordResets,
      listen: !worker,
      // One connection to a switch relay serves the whole appliance: the supervisor's.
      ...(worker ? { switchCall: (op: string, args: unknown) => worker.channel.call(op, args, SWITCH_CALL_TIMEOUT_MS) } : {}),
    });
  } catch (err) {
    phoneFailed(err);
    await radius.stop();
    await directories.close();
    await store.close();
    throw err;
  }

  const stopJobs = adminEvents ? periodicJobs(config, opened, store, deliveryRepos, adminEvents) : () => {};
  const statsLine = () => logStats(radius.snapshot());
  const statsTimer = config.radius.stats_interval_s > 0 && !worker ? setInterval(statsLine, config.radius.stats_interval_s * 1000) : undefined;
  process.on("SIGUSR1", statsLine);
  if (worker) {
    worker.channel.answerDumps(() => ({ metrics: metrics.registry.dump(), radius: radius.snapshot() }));
    worker.channel.ready();
  }

  await stopped;
  stopJobs();
  if (statsTimer) clearInterval(statsTimer);
  process.off("SIGUSR1", statsLine);
  // A worker's counters reach the supervisor's stats line; its own last word is server.stopped.
  if (!worker) statsLine();
  // Blocked Magic Link calls end now (their connections close with the listeners).
  web.magicLink.hub.closeAll();
  await Promise.all(web.listeners.map((l) => l.stop()));
  await radius.stop();
  health.stop();
  await directories.close();
  await auditStore?.stop();
  await store.close();
  log("info", "server.stopped");
  worker?.channel.close();
  removeUncaughtHandlers();
}

/** The `radius.stats` line. */
function logStats(s: RADIUSSnapshot, workers?: number): void {
  log("info", "radius.stats", {
    received: s.received,
    accepted: s.accepted,
    rejected: s.rejected,
    challenged: s.challenged,
    status_server: s.statusServer,
    duplicates: s.duplicates,
    dropped: s.dropped,
    rcvbuf_drops: s.rcvbufDrops,
    ...(workers !== undefined ? { workers } : {}),
  });
}

/**
 * The jobs that run once per host (in the single process, or in the supervisor of workers): CLI
 * admin events, and purges of what expired. Returns the function that stops them.
 */
function periodicJobs(config: Config, opened: Store, store: Store, deliveryRepos: DeliveryRepos, adminEvents: AdminEventTail): () => void {
  // Challenge states expire on their own, stale lockout counters would restart from zero anyway,
  // and expired known sources count for nothing: purge them now and then so no table grows without bound.
  const resetAfterMs = config.lockout.reset_after_s * 1000;
  // CLI admin events: emitted as soon as another process's commit is seen, and on the 60 s timer.
  // undefined at first: the first tick drains whatever was committed since the start-up drain.
  let seenEpoch: number | undefined;
  const changeEpoch = (opened as Store & { changeEpoch?: () => number }).changeEpoch?.bind(opened);
  const adminEventPoll = setInterval(() => {
    let epoch: number | undefined;
    try {
      epoch = changeEpoch?.();
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
    void (opened as Store & { passwordResets?: PasswordResetRepo }).passwordResets?.purgeExpired(now).catch(() => {});
    // Idempotency records outlive the retransmission window by nothing.
    void opened.radiusReplies?.purgeExpired(now).catch(() => {});
    // Ended rate-limit windows, and delivery-log rows past [delivery] log_retention_days.
    void deliveryRepos.rateLimits.purgeExpired(now).catch(() => {});
    void deliveryRepos.deliveryLog.purgeBefore(now - config.delivery.log_retention_days * 86_400_000).catch(() => {});
    // The stored audit log: past [audit] retention_days, and the oldest beyond max_rows.
    void pruneAudit(config, opened, now).catch(() => {});
  }, 60_000);
  return () => {
    clearInterval(adminEventPoll);
    clearInterval(purge);
  };
}

/**
 * Binds each RADIUS address exclusively and releases it (EADDRINUSE while another server holds
 * it; port 0 resolved once for all), then starts the workers on the concrete addresses and waits
 * until all listen. Also registers the host's kernel drop counter and the worker gauges.
 */
async function startWorkers(ctx: ServeContext, configured: { address: string; port: number }[], count: number, metrics: PortcullisMetrics): Promise<WorkerPool> {
  const listen: { address: string; port: number }[] = [];
  for (const { address, port } of configured) listen.push({ address, port: await probeUDP(address, port) });
  const restarts = metrics.registry.counter("portcullis_radius_worker_restarts_total", "RADIUS worker processes restarted by the supervisor after they exited.");
  const pool = new WorkerPool({ count, ctx, listen, onRestart: () => restarts.inc() });
  log("info", "radius.workers", { workers: count, listen: listen.map((l) => `${l.address.includes(":") ? `[${l.address}]` : l.address}:${l.port}`) });
  await pool.start();
  const running = metrics.registry.gauge("portcullis_radius_workers", "RADIUS worker processes listening now.");
  const kernel = metrics.registry.counter("portcullis_radius_kernel_drops_total", "Datagrams the kernel dropped because a socket receive buffer was full.");
  metrics.registry.onCollect(() => {
    running.set({}, pool.running());
    kernel.setTotal({}, kernelDropsOn(listen));
  });
  return pool;
}

/** The supervisor's part once the workers listen: the web surface, the periodic jobs, the host's stats, and the stop. */
async function supervise(parts: {
  ctx: ServeContext;
  store: Store;
  opened: Store;
  engine: Engine;
  audit: AuditBus;
  metrics: PortcullisMetrics;
  deliveryRepos: DeliveryRepos;
  adminEvents: AdminEventTail;
  auditStore: AuditStoreSink | undefined;
  directories: Directories;
  health: StoreHealth;
  phoneReady: (services: PhoneServices) => void;
  phoneFailed: (err: unknown) => void;
  pool: WorkerPool;
  stopped: Promise<void>;
  removeUncaughtHandlers: () => void;
}): Promise<void> {
  const { ctx, store, engine, audit, metrics, deliveryRepos, pool } = parts;
  const { config } = ctx;
  metrics.others = async () => (await pool.dumps()).metrics;
  const closeAll = async () => {
    await pool.stop();
    parts.health.stop();
    await parts.directories.close();
    await parts.auditStore?.stop();
    await store.close();
  };
  let web: Awaited<ReturnType<typeof import("./serve-http.ts").startWeb>>;
  try {
    const { startWeb } = await import("./serve-http.ts");
    web = await startWeb(ctx, {
      store,
      engine,
      audit,
      metrics,
      deliveryRepos,
      radiusBound: () => pool.running() > 0,
      radiusListeners: pool.listen,
      health: parts.health,
      phoneReady: parts.phoneReady,
      directories: parts.directories,
      passwordResets: (parts.opened as Store & { passwordResets?: PasswordResetRepo }).passwordResets,
    });
  } catch (err) {
    parts.phoneFailed(err);
    await closeAll();
    throw err;
  }
  // The workers' messages and pushes for the switch relay go over this process's connection.
  if (web.switchCalls) pool.onCall = web.switchCalls;
  const stopJobs = periodicJobs(config, parts.opened, store, deliveryRepos, parts.adminEvents);
  // The workers' counters added up (also those of workers that exited), plus the host's kernel drops.
  const statsLine = async () => {
    const { radius } = await pool.dumps();
    logStats({ ...sumSnapshots(radius), rcvbufDrops: kernelDropsOn(pool.listen) }, pool.running());
  };
  const statsNow = () => void statsLine().catch(() => {});
  const statsTimer = config.radius.stats_interval_s > 0 ? setInterval(statsNow, config.radius.stats_interval_s * 1000) : undefined;
  process.on("SIGUSR1", statsNow);

  await parts.stopped;
  stopJobs();
  if (statsTimer) clearInterval(statsTimer);
  process.off("SIGUSR1", statsNow);
  await statsLine().catch(() => {});
  web.magicLink.hub.closeAll();
  web.switchClient?.stop();
  await Promise.all(web.listeners.map((l) => l.stop()));
  await closeAll();
  log("info", "server.stopped");
  parts.removeUncaughtHandlers();
}

/**
 * The store subscriber of this process's audit bus ([audit] store), started; undefined when off or
 * when the back-end keeps no audit log. `portcullis_audit_unstored_total` counts what it could not store.
 */
function storedAudit(config: Config, opened: Store, metrics: PortcullisMetrics, worker: number | undefined): AuditStoreSink | undefined {
  const repo = config.audit.store ? auditLogOf(opened) : undefined;
  if (!repo) return undefined;
  const unstored = metrics.registry.counter("portcullis_audit_unstored_total", "Audit events written to standard output but not to the store's audit log, by reason: rate ([audit] max_per_second), queue (the store too slow), store (the write failed).", ["reason"]);
  const sink = new AuditStoreSink({
    repo,
    node: `${hostname()}:${process.pid}${worker !== undefined ? `/w${worker}` : ""}`,
    exclude: config.audit.exclude,
    maxPerSecond: config.audit.max_per_second,
    onUnstored: (reason, n) => unstored.inc({ reason }, n),
    onError: (err) => log("warn", "audit.store_failed", { error: err instanceof Error ? err.name : "error", ...(typeof (err as { code?: unknown })?.code === "string" ? { code: (err as { code: string }).code } : {}) }),
  });
  sink.start();
  return sink;
}

/**
 * Prunes the stored audit log: at most 50 batches of 2,000 rows a minute, each after the event loop
 * had a turn (a SQLite delete holds the thread: RADIUS packets are read in between).
 */
async function pruneAudit(config: Config, opened: Store, now: number): Promise<void> {
  const repo = auditLogOf(opened);
  if (!repo) return;
  for (let i = 0; i < 50; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    if ((await repo.prune(now - config.audit.retention_days * 86_400_000, config.audit.max_rows, 2000)) < 2000) return;
  }
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
