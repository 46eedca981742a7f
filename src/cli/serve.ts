// `portcullis serve`: the composition root of the running appliance (store → engine → RADIUS server).

import { cpus } from "node:os";
import { AuditBus, logSink } from "../audit/events.ts";
import { log, setLogLevel } from "../audit/log.ts";
import { Engine } from "../auth/engine.ts";
import { configWarnings, ldapProfiles, type Config } from "../config/index.ts";
import { createLdapDirectory } from "../directory/ldap/index.ts";
import { Directories } from "../directory/registry.ts";
import { RADIUSServer } from "../radius/server/server.ts";
import { setPasswordConcurrency, warmDummyHash } from "../runtime/password.ts";
import { CachedStore, type EpochStore } from "../store/cache.ts";
import { openStore } from "../store/open.ts";
import type { Store } from "../store/types.ts";

export interface ServeContext {
  config: Config;
  flags?: { radiusListen?: string[]; httpListen?: string };
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

  // LDAP/AD profiles, in config order; nothing connects until the first lookup.
  const directories = new Directories(ldapProfiles(config).map((profile) => createLdapDirectory(profile, { log })));
  for (const name of directories.names()) log("info", "ldap.profile", { profile: name });

  const audit = new AuditBus();
  audit.subscribe(logSink);
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
  });
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
  log("info", "http.not_started", { detail: "the HTTP listeners (Magic Link API, admin API) are not part of this release" });

  // Challenge states expire on their own, and stale lockout counters would restart from zero
  // anyway: purge both now and then so neither table grows without bound.
  const resetAfterMs = config.lockout.reset_after_s * 1000;
  const purge = setInterval(() => {
    const now = Date.now();
    void store.challenges.purgeExpired(now).catch(() => {});
    void store.lockouts.purgeStale(now - resetAfterMs, now).catch(() => {});
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
  clearInterval(purge);
  if (statsTimer) clearInterval(statsTimer);
  process.off("SIGUSR1", statsLine);
  statsLine();
  await radius.stop();
  await directories.close();
  await store.close();
  log("info", "server.stopped");
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
