// RADIUS workers: `[radius] workers = N` (N > 1) runs N processes of this same executable that each
// bind every RADIUS listen address with SO_REUSEPORT and open the same store. The `serve` process
// that starts them is their supervisor:
//
// - it binds each address exclusively first and releases it (a second server on the address fails
//   to start, as with one process; port 0 becomes one concrete port for every worker);
// - it runs the HTTP listeners, the admin-event tail and the periodic purges, which therefore run
//   once per host however many workers there are; the workers answer RADIUS only;
// - it hands each worker its configuration over the IPC channel (a restarted worker runs with the
//   configuration the service started with, not a file edited since);
// - it restarts a worker that exits, after 0.5 s doubling up to 30 s while the worker keeps failing
//   within a minute of its start; a worker that fails before it ever listened stops the start;
// - it forwards SIGTERM/SIGINT and waits for the workers (SIGKILL after 10 s);
// - /metrics and the `radius.stats` line add up the workers' counters, fetched over IPC;
// - it makes the calls a worker cannot make itself (`call`): with a switch relay, the one
//   connection to it is the supervisor's, so a worker's messages and pushes for the relay go
//   through the supervisor.
//
// A worker exits when its supervisor goes: the IPC channel closes (also when the supervisor was
// killed), or its parent process changes.
//
// Retransmissions: Linux picks the socket of a SO_REUSEPORT group by a hash of the datagram's
// source and destination address and port, so every retransmission of a request (same source
// address and port) reaches the worker that has the original in its retransmission cache, while
// the group is unchanged. When a worker restarts the group changes and a retransmission in flight
// may reach another worker, which decides it afresh: a consumed TOTP/HOTP code is refused by the
// store's conditional update, so the NAS sees Access-Reject, never a second Access-Accept.

import type { RegistryDump } from "../audit/metrics.ts";
import { log } from "../audit/log.ts";
import type { RADIUSStats } from "../radius/server/server.ts";
import type { ServeContext } from "./serve-context.ts";

/** The environment variable that makes `serve` a worker (its value is the worker's number). Internal. */
export const WORKER_ENV = "PORTCULLIS_INTERNAL_WORKER";

/**
 * Runtime options every worker starts with, unless the operator's environment sets them: no JSC
 * MarkedBlock warm-up thread (JSCWarmUp). That thread faults fresh garbage-collector blocks in ahead
 * of the allocator, which saves the JavaScript thread a page fault now and then but costs CPU of its
 * own: about a tenth of a worker's CPU under the LDAP login benchmark, more than it saved (the
 * workers' CPU per login fell in each of three same-run comparisons; docs/ldap.md, "Performance").
 */
export const WORKER_RUNTIME_ENV: Readonly<Record<string, string>> = { BUN_JSC_useWarmUpMarkedBlocks: "false" };

/** A worker's environment: the runtime options, then the supervisor's own (which wins), then its number. */
export function workerEnv(env: Record<string, string | undefined>, id: number, runtime: Readonly<Record<string, string>> = WORKER_RUNTIME_ENV): Record<string, string | undefined> {
  return { ...runtime, ...env, [WORKER_ENV]: String(id) };
}

let acceptedEnv: Readonly<Record<string, string>> | undefined;

/**
 * WORKER_RUNTIME_ENV when this runtime accepts it, else nothing. Bun refuses to start at all with a
 * BUN_JSC_ option it does not know, and these options may change between Bun releases, so the
 * supervisor runs its own executable once (`--version`) with them before giving them to a worker.
 */
export function acceptedRuntimeEnv(): Readonly<Record<string, string>> {
  if (acceptedEnv !== undefined) return acceptedEnv;
  // The compiled binary's --version runs its JavaScript; `bun --version` would not start the engine.
  const compiled = typeof Bun !== "undefined" && isCompiled(Bun.main);
  const ok = runtimeAccepts(compiled ? [process.execPath, "--version"] : [process.execPath, "-e", "0"], WORKER_RUNTIME_ENV);
  acceptedEnv = ok ? WORKER_RUNTIME_ENV : {};
  if (!ok) log("warn", "radius.worker_runtime_option_refused", { options: Object.keys(WORKER_RUNTIME_ENV) });
  return acceptedEnv;
}

/** True when `command` (a quick run of the runtime's engine) exits 0 with `options` added to this environment (false outside Bun). */
export function runtimeAccepts(command: string[], options: Readonly<Record<string, string>>): boolean {
  if (typeof Bun === "undefined") return false;
  try {
    return Bun.spawnSync(command, { env: { ...process.env, ...options }, stdout: "ignore", stderr: "ignore", timeout: 10_000 }).exitCode === 0;
  } catch {
    return false;
  }
}

/** The most workers the default (0: the number of CPUs) asks for. */
export const DEFAULT_MAX_WORKERS = 8;

/** The RADIUS server's counters as its snapshot() gives them. */
export type RADIUSSnapshot = RADIUSStats & { rcvbufDrops: number; dedupeEntries: number };

/** What the supervisor tells a worker once it said hello. */
export interface WorkerStart {
  t: "start";
  ctx: ServeContext;
  /** The concrete addresses to bind (port 0 already resolved by the supervisor). */
  listen: { address: string; port: number }[];
  /** How many workers run (to share out the password-hash threads). */
  workers: number;
}

type ToWorker = WorkerStart | { t: "dump"; id: number } | { t: "call-res"; id: number; result: unknown };
type FromWorker = { t: "hello" } | { t: "ready" } | { t: "dump"; id: number; metrics: RegistryDump; radius: RADIUSSnapshot } | { t: "call"; id: number; op: string; args: unknown };

/** The supervisor's answer to a worker's call (undefined: it cannot make that call now). */
export type WorkerCallHandler = (op: string, args: unknown) => Promise<unknown>;

/** The number of workers for `[radius] workers` (0: the CPUs, at most 8). */
export function workerCount(configured: number, cpus: number): number {
  if (configured > 0) return configured;
  return Math.max(1, Math.min(DEFAULT_MAX_WORKERS, cpus));
}

/**
 * The command that starts another `serve` of this executable: the compiled binary itself, or the
 * runtime with the script, each followed by the same arguments.
 */
export function selfCommand(argv: readonly string[] = process.argv, execPath = process.execPath, main = typeof Bun !== "undefined" ? Bun.main : argv[1]): string[] {
  const compiled = main === undefined || isCompiled(main);
  return compiled ? [execPath, ...argv.slice(2)] : [execPath, main, ...argv.slice(2)];
}

/** True for the entry point of a compiled executable (Bun's embedded file system). */
function isCompiled(main: string): boolean {
  return main.startsWith("/$bunfs/") || main.startsWith("B:\\~BUN\\");
}

const RESTART_MIN_MS = 500;
const RESTART_MAX_MS = 30_000;
/** A worker that ran this long before it exited is restarted after the shortest delay again. */
const HEALTHY_AFTER_MS = 60_000;
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
/** How long a scrape or a stats line waits for a worker's counters before using its last ones. */
const DUMP_TIMEOUT_MS = 1000;

interface Slot {
  id: number;
  proc: Bun.Subprocess | undefined;
  ready: boolean;
  startedAt: number;
  /** Consecutive quick failures (reset once a worker ran HEALTHY_AFTER_MS). */
  failures: number;
  restartTimer: ReturnType<typeof setTimeout> | undefined;
  lastDump: { metrics: RegistryDump; radius: RADIUSSnapshot } | undefined;
  pending: Map<number, (dump: { metrics: RegistryDump; radius: RADIUSSnapshot } | undefined) => void>;
  /** Set while the start-up waits for this worker. */
  onReady?: () => void;
  onEarlyExit?: (code: number | null, signal: string | null) => void;
}

export interface WorkerPoolOptions {
  count: number;
  ctx: ServeContext;
  listen: { address: string; port: number }[];
  command?: string[];
  /** Counts a restart (metrics). */
  onRestart?: () => void;
}

/** The supervisor's side: starts, watches, restarts and stops the workers. */
export class WorkerPool {
  private readonly slots: Slot[] = [];
  private stopping = false;
  private nextDumpId = 1;
  /** Counters and histograms of workers that exited, so that the host's totals never go down. */
  private retired: { metrics: RegistryDump[]; radius: RADIUSSnapshot[] } = { metrics: [], radius: [] };
  private readonly command: string[];
  /** Answers the workers' calls; set once the supervisor's web surface (and switch) runs. Until then a call gets undefined. */
  onCall?: WorkerCallHandler;

  constructor(private readonly options: WorkerPoolOptions) {
    this.command = options.command ?? selfCommand();
    for (let id = 1; id <= options.count; id++) {
      this.slots.push({ id, proc: undefined, ready: false, startedAt: 0, failures: 0, restartTimer: undefined, lastDump: undefined, pending: new Map() });
    }
  }

  /** Starts every worker and resolves once all listen. Rejects (with every worker stopped) when one exits first or none is ready in 30 s. */
  async start(): Promise<void> {
    try {
      await Promise.all(
        this.slots.map(
          (slot) =>
            new Promise<void>((resolve, reject) => {
              const timer = setTimeout(() => reject(new Error(`radius: worker ${slot.id} did not start within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
              slot.onReady = () => {
                clearTimeout(timer);
                resolve();
              };
              slot.onEarlyExit = (code, signal) => {
                clearTimeout(timer);
                reject(new Error(`radius: worker ${slot.id} exited during start-up (${signal ?? `code ${code}`}); its log lines say why`));
              };
              this.spawn(slot);
            }),
        ),
      );
    } catch (err) {
      await this.stop();
      throw err;
    }
    for (const slot of this.slots) {
      slot.onReady = undefined;
      slot.onEarlyExit = undefined;
    }
  }

  /** The addresses the workers bind. */
  get listen(): readonly { address: string; port: number }[] {
    return this.options.listen;
  }

  /** Workers listening now. */
  running(): number {
    return this.slots.filter((s) => s.ready).length;
  }

  /** Process ids of the workers running now (tests and the stats line). */
  pids(): number[] {
    return this.slots.flatMap((s) => (s.proc && s.proc.exitCode === null && s.proc.signalCode === null ? [s.proc.pid] : []));
  }

  private spawn(slot: Slot): void {
    slot.ready = false;
    slot.startedAt = Date.now();
    const proc: Bun.Subprocess = Bun.spawn(this.command, {
      env: workerEnv(process.env, slot.id, acceptedRuntimeEnv()),
      stdin: "ignore",
      stdout: "inherit",
      stderr: "inherit",
      serialization: "advanced",
      ipc: (message: FromWorker) => this.onMessage(slot, proc, message),
      onExit: (_p, code, signal): void => this.onExit(slot, proc, code, signal === null ? null : String(signal)),
    });
    slot.proc = proc;
    log("info", "radius.worker_started", { worker: slot.id, pid: proc.pid });
  }

  private onMessage(slot: Slot, proc: Bun.Subprocess, message: FromWorker): void {
    if (slot.proc !== proc || typeof message !== "object" || message === null) return;
    if (message.t === "hello") {
      const start: WorkerStart = { t: "start", ctx: this.options.ctx, listen: this.options.listen, workers: this.options.count };
      this.send(proc, start);
    } else if (message.t === "ready") {
      slot.ready = true;
      slot.onReady?.();
    } else if (message.t === "dump") {
      const dump = { metrics: message.metrics, radius: message.radius };
      slot.lastDump = dump;
      const waiter = slot.pending.get(message.id);
      slot.pending.delete(message.id);
      waiter?.(dump);
    } else if (message.t === "call" && typeof message.id === "number" && typeof message.op === "string") {
      const handler = this.onCall;
      void (handler ? handler(message.op, message.args) : Promise.resolve(undefined))
        .catch(() => undefined)
        .then((result) => {
          if (slot.proc === proc) this.send(proc, { t: "call-res", id: message.id, result });
        });
    }
  }

  private send(proc: Bun.Subprocess, message: ToWorker): void {
    try {
      proc.send(message);
    } catch {
      // the worker is exiting; its exit is handled in onExit
    }
  }

  private onExit(slot: Slot, proc: Bun.Subprocess, code: number | null, signal: string | null): void {
    if (slot.proc !== proc) return;
    slot.proc = undefined;
    const wasReady = slot.ready;
    slot.ready = false;
    // Its last counters join the retired ones first; a request still waiting for it then counts
    // nothing for it (so that nothing is counted twice).
    if (slot.lastDump) {
      this.retired.metrics.push(countersOnly(slot.lastDump.metrics));
      this.retired.radius.push({ ...slot.lastDump.radius, dedupeEntries: 0 });
      this.retired = { metrics: [sumDumps(this.retired.metrics)], radius: [sumSnapshots(this.retired.radius)] };
      slot.lastDump = undefined;
    }
    for (const waiter of slot.pending.values()) waiter(undefined);
    slot.pending.clear();
    if (this.stopping) return;
    if (!wasReady && slot.onEarlyExit) return slot.onEarlyExit(code, signal);
    const ranMs = Date.now() - slot.startedAt;
    slot.failures = ranMs >= HEALTHY_AFTER_MS ? 0 : slot.failures + 1;
    const delay = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** Math.max(0, slot.failures - 1));
    log(code === 0 && signal === null ? "warn" : "error", "radius.worker_exited", { worker: slot.id, code, signal, restart_in_ms: delay });
    this.options.onRestart?.();
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (!this.stopping) this.spawn(slot);
    }, delay);
  }

  /**
   * The workers' metric registries and RADIUS counters, plus those of workers that exited (their
   * counters only). A worker that does not answer within a second counts with its last answer.
   */
  async dumps(): Promise<{ metrics: RegistryDump[]; radius: RADIUSSnapshot[] }> {
    const answers = await Promise.all(
      this.slots.map((slot) => {
        const proc = slot.proc;
        if (!proc || !slot.ready) return Promise.resolve(slot.lastDump);
        const id = this.nextDumpId++;
        return new Promise<{ metrics: RegistryDump; radius: RADIUSSnapshot } | undefined>((resolve) => {
          const timer = setTimeout(() => {
            slot.pending.delete(id);
            resolve(slot.lastDump);
          }, DUMP_TIMEOUT_MS);
          slot.pending.set(id, (dump) => {
            clearTimeout(timer);
            resolve(dump);
          });
          this.send(proc, { t: "dump", id });
        });
      }),
    );
    const live = answers.filter((a): a is { metrics: RegistryDump; radius: RADIUSSnapshot } => a !== undefined);
    return { metrics: [...live.map((a) => a.metrics), ...this.retired.metrics], radius: [...live.map((a) => a.radius), ...this.retired.radius] };
  }

  /** SIGTERM to every worker; resolves when all exited (SIGKILL after 10 s). No restarts from now on. */
  async stop(): Promise<void> {
    this.stopping = true;
    const exits: Promise<unknown>[] = [];
    for (const slot of this.slots) {
      if (slot.restartTimer) clearTimeout(slot.restartTimer);
      const proc = slot.proc;
      if (!proc) continue;
      try {
        proc.kill("SIGTERM");
      } catch {
        // already gone
      }
      const killer = setTimeout(() => {
        try {
          proc.kill("SIGKILL");
        } catch {
          // already gone
        }
      }, STOP_TIMEOUT_MS);
      exits.push(proc.exited.finally(() => clearTimeout(killer)));
    }
    await Promise.all(exits);
  }
}

/** A dump without its gauges (a gauge of a process that exited is no longer true). */
function countersOnly(dump: RegistryDump): RegistryDump {
  const metrics: RegistryDump["metrics"] = {};
  for (const [name, m] of Object.entries(dump.metrics)) if (m.kind !== "gauge") metrics[name] = m;
  return { metrics, seriesDropped: dump.seriesDropped };
}

/** Several dumps added into one (series summed per label set). */
export function sumDumps(dumps: readonly RegistryDump[]): RegistryDump {
  const out: RegistryDump = { metrics: {}, seriesDropped: 0 };
  for (const dump of dumps) {
    out.seriesDropped += dump.seriesDropped;
    for (const [name, m] of Object.entries(dump.metrics)) {
      const into = (out.metrics[name] ??= { ...m, series: [] });
      if (into.kind !== m.kind || into.labelNames.join() !== m.labelNames.join()) continue;
      for (const s of m.series) {
        const key = s.values.join("\u0000");
        const same = into.series.find((x) => x.values.join("\u0000") === key);
        if (!same) {
          into.series.push(structuredClone(s));
        } else if ("v" in same.state && "v" in s.state) {
          same.state.v += s.state.v;
        } else if ("counts" in same.state && "counts" in s.state) {
          const target = same.state;
          s.state.counts.forEach((n, i) => (target.counts[i] = (target.counts[i] ?? 0) + n));
          target.sum += s.state.sum;
          target.count += s.state.count;
        }
      }
    }
  }
  return out;
}

/** Several RADIUS snapshots added into one. */
export function sumSnapshots(snapshots: readonly RADIUSSnapshot[]): RADIUSSnapshot {
  const out: RADIUSSnapshot = { received: 0, accepted: 0, rejected: 0, challenged: 0, statusServer: 0, duplicates: 0, dropped: {}, rcvbufDrops: 0, dedupeEntries: 0 };
  for (const s of snapshots) {
    out.received += s.received;
    out.accepted += s.accepted;
    out.rejected += s.rejected;
    out.challenged += s.challenged;
    out.statusServer += s.statusServer;
    out.duplicates += s.duplicates;
    out.rcvbufDrops += s.rcvbufDrops;
    out.dedupeEntries += s.dedupeEntries;
    for (const [reason, n] of Object.entries(s.dropped)) {
      const key = reason as keyof RADIUSStats["dropped"];
      out.dropped[key] = (out.dropped[key] ?? 0) + (n ?? 0);
    }
  }
  return out;
}

/** The worker's side of the IPC channel. */
export interface WorkerChannel {
  /** The start message (configuration and addresses); rejects when the supervisor sends none in 30 s. */
  start: Promise<WorkerStart>;
  /** Tells the supervisor the sockets are bound. */
  ready(): void;
  /** Answers the supervisor's counter requests with `dump()`. */
  answerDumps(dump: () => { metrics: RegistryDump; radius: RADIUSSnapshot }): void;
  /** Calls `fn` once when the supervisor is gone (IPC closed, or this process was re-parented). */
  onOrphaned(fn: () => void): void;
  /** Asks the supervisor to make a call (WorkerPool.onCall); undefined when it has no answer within `timeoutMs` or is gone. */
  call(op: string, args: unknown, timeoutMs: number): Promise<unknown>;
  close(): void;
}

/** Opens the worker's side: says hello and waits for the start message. Throws when there is no IPC channel. */
export function workerChannel(): WorkerChannel {
  const send = process.send?.bind(process);
  if (!send) throw new Error(`${WORKER_ENV} is set but this process has no IPC channel to a supervisor`);
  let dumper: (() => { metrics: RegistryDump; radius: RADIUSSnapshot }) | undefined;
  let resolveStart!: (s: WorkerStart) => void;
  let rejectStart!: (err: Error) => void;
  const start = new Promise<WorkerStart>((resolve, reject) => {
    resolveStart = resolve;
    rejectStart = reject;
  });
  const startTimer = setTimeout(() => rejectStart(new Error("radius worker: no start message from the supervisor")), START_TIMEOUT_MS);
  const calls = new Map<number, (result: unknown) => void>();
  let nextCall = 1;
  const onMessage = (message: ToWorker) => {
    if (typeof message !== "object" || message === null) return;
    if (message.t === "call-res") {
      const done = calls.get(message.id);
      calls.delete(message.id);
      done?.(message.result);
    } else if (message.t === "start") {
      clearTimeout(startTimer);
      resolveStart(message);
    } else if (message.t === "dump" && dumper) {
      try {
        send({ t: "dump", id: message.id, ...dumper() } satisfies FromWorker);
      } catch {
        // the supervisor is gone; onOrphaned ends this process
      }
    }
  };
  process.on("message", onMessage);
  const orphanedFns: (() => void)[] = [];
  let orphaned = false;
  const orphan = () => {
    if (orphaned) return;
    orphaned = true;
    clearTimeout(startTimer);
    rejectStart(new Error("radius worker: the supervisor is gone"));
    for (const done of calls.values()) done(undefined);
    calls.clear();
    for (const fn of orphanedFns) fn();
  };
  process.on("disconnect", orphan);
  const parent = process.ppid;
  const parentWatch = setInterval(() => {
    if (process.ppid !== parent) orphan();
  }, 1000);
  parentWatch.unref?.();
  send({ t: "hello" } satisfies FromWorker);
  return {
    start,
    ready: () => {
      try {
        send({ t: "ready" } satisfies FromWorker);
      } catch {
        // the supervisor is gone
      }
    },
    answerDumps: (fn) => {
      dumper = fn;
    },
    onOrphaned: (fn) => {
      if (orphaned) fn();
      else orphanedFns.push(fn);
    },
    call: (op, args, timeoutMs) =>
      new Promise<unknown>((resolve) => {
        if (orphaned) return resolve(undefined);
        const id = nextCall++;
        const timer = setTimeout(() => {
          calls.delete(id);
          resolve(undefined);
        }, timeoutMs);
        calls.set(id, (result) => {
          clearTimeout(timer);
          resolve(result);
        });
        try {
          send({ t: "call", id, op, args } satisfies FromWorker);
        } catch {
          clearTimeout(timer);
          calls.delete(id);
          resolve(undefined);
        }
      }),
    close: () => {
      clearInterval(parentWatch);
      process.off("message", onMessage);
      process.off("disconnect", orphan);
      try {
        process.disconnect?.();
      } catch {
        // already closed
      }
    },
  };
}
