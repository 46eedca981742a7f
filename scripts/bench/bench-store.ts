// `scripts/bench-radius --store postgres [--nodes 1,2,3] [--workers 1,2]`: the same OTP workload as the
// default benchmark against the compiled Portcullis binary on SQLite (the default store, with its read
// cache) and on PostgreSQL (a throwaway server from Debian's `postgresql` package, started here), in
// alternating rounds.
//
// One configuration per (store, nodes, workers): SQLite is always one node; PostgreSQL runs N `serve`
// processes on one database (same key, same URL, each its own data directory), each with
// `[radius] workers` = W (PORTCULLIS_RADIUS_WORKERS; not set when --workers is not given). Each
// PostgreSQL configuration has its own database in the one PostgreSQL server, so that one
// configuration's logins never make another's login caches stale. While one configuration is
// measured every other server is paused (SIGSTOP of its whole process tree, SIGCONT before its own
// round), so that their periodic work (store probes, change-counter reads) loads neither the machine
// nor PostgreSQL.
//
// The load generator spreads a round's logins over the configuration's nodes like a NAS load
// balancer, round-robin per request, shifted by one node each round: a user's consecutive logins land
// on different nodes (no sticky sessions; the worst case for a node's login cache). With
// `--spread user` each user always goes to the same node instead (each NAS with its own primary).
//
// Reports logins/s, p99 and the CPU per login of the servers (every node's process tree, RADIUS
// workers included) and of PostgreSQL (the postmaster and all its backends, including exited ones).
//
// The check, in every round (warm-up included): each login uses a fresh code (a new TOTP step per
// round), so each must be accepted exactly once. The load generator retransmits an unanswered
// request twice, 5 s apart, like a NAS (the same packet, which a node answers from its retransmission
// cache when it already decided it); a login rejected, still unanswered or never sent is a lost code. Then a sample of the accepted codes is replayed (same user, same code, a new Access-Request
// with a new Identifier and Request Authenticator, sent to a different node than the one that
// accepted it when there are several) and every replay must be rejected: one accepted is a code
// accepted twice. Any lost code, double accept or unanswered replay fails the run (exit status 1).

import { readFileSync, readdirSync, mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { encodeBase32 } from "./radius-wire.ts";
import { OUTCOME, runLoad, type LoadRecord, type LoadResult, type LoadUser } from "../loadgen.ts";
import { freePort, median, portcullisCLI, processTree, summarize, treeCpuMs, waitStatusServer } from "./harness.ts";
import { POSTGRES_SKIP_REASON, startPostgres } from "../../test/integration/helpers/postgres.ts";

export interface StoreBenchOptions {
  bin: string;
  work: string;
  secret: string;
  users: number;
  rounds: number;
  warmup: number;
  concurrency: number;
  /** PostgreSQL node counts, one configuration each (default [1]). */
  nodes?: number[];
  /** `[radius] workers` per server, one configuration each; undefined: not set (the environment's or the product's default). */
  workers?: Array<number | undefined>;
  /** Accepted codes replayed per round and configuration (default 64). */
  replays?: number;
  /**
   * How logins go to the nodes: "request" (default) round-robin per request, shifted by one node
   * each round; "user": each user always to the same node (as when each NAS has its own primary).
   */
  spread?: "request" | "user";
  children: Bun.Subprocess[];
  exitHooks: Array<() => void>;
  info(msg: string): void;
}

/** CPU of the postmaster, its live children, and its exited children (cutime/cstime), in ms. */
export function postgresCpuMs(postmaster: number): number {
  let total = 0;
  try {
    const stat = readFileSync(`/proc/${postmaster}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    total += ((Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 1000) / 100;
  } catch {
    return NaN;
  }
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(f[1]) === postmaster) total += ((Number(f[11]) + Number(f[12])) * 1000) / 100;
    } catch {
      // the process ended between readdir and read
    }
  }
  return total;
}

/** A TCP port that was free a moment ago. */
function freeTcpPort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

/** Polls `/readyz` on the admin listener until it answers 200; throws after `timeoutMs`. */
async function waitReady(adminPort: number, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      const r = await fetch(`http://127.0.0.1:${adminPort}/readyz`, { signal: AbortSignal.timeout(2000) });
      await r.arrayBuffer();
      if (r.status === 200) return;
    } catch {
      // not listening yet
    }
    await Bun.sleep(100);
  }
  throw new Error(`no 200 from /readyz on 127.0.0.1:${adminPort} within ${timeoutMs} ms`);
}

/** Sends `signal` to a process and every descendant (SIGSTOP/SIGCONT of a server with its workers). */
function signalTree(pid: number, signal: "SIGSTOP" | "SIGCONT"): void {
  for (const p of processTree(pid)) {
    try {
      process.kill(p, signal);
    } catch {
      // the process ended
    }
  }
}

interface Config {
  store: "sqlite" | "postgres";
  nodes: number;
  workers: number | undefined;
  /** Label in progress lines. */
  name: string;
  ports: number[];
  procs: Bun.Subprocess[];
  pids: number[];
  dbCpu: () => number;
}

/** Result of one round's check. */
interface Check {
  lost: number;
  replays: number;
  replaysRejected: number;
  replaysAccepted: number;
  replaysUnanswered: number;
  /** Replays sent to another node than the one that accepted the code. */
  replaysElsewhere: number;
}

export async function runStoreBenchmark(o: StoreBenchOptions): Promise<void> {
  if (POSTGRES_SKIP_REASON) throw new Error(POSTGRES_SKIP_REASON);
  const nodeCounts = o.nodes ?? [1];
  const workerCounts = o.workers ?? [undefined];
  const replaysPerRound = o.replays ?? 64;
  const key = randomBytes(32).toString("base64");
  const env = { PORTCULLIS_KEY: key };
  const users: LoadUser[] = [];
  const b32: string[] = [];
  for (let i = 0; i < o.users; i++) {
    const k = randomBytes(20);
    users.push({ username: `bench${String(i).padStart(6, "0")}`, key: k, params: { algorithm: "SHA1", digits: 6, period: 30 } });
    b32.push(encodeBase32(k));
  }
  const csvPath = join(o.work, "users.csv");
  writeFileSync(
    csvPath,
    "username,password,type,phone,email,totp_secret,totp_algorithm,totp_digits,totp_period\n" + users.map((u, i) => `${u.username},,totp,,,${b32[i]},SHA1,6,30\n`).join(""),
    { mode: 0o600 },
  );

  o.info("starting PostgreSQL (fsync on, synchronous_commit off)");
  const pg = await startPostgres({ durable: true, maxConnections: 1000 });
  o.exitHooks.push(() => pg.destroy());
  const postmaster = pg.postmasterPid();

  const wLabel = (w: number | undefined) => (w === undefined ? "default" : String(w));
  const configs: Config[] = [];
  for (const w of workerCounts) {
    const workersEnv: Record<string, string> = w === undefined ? {} : { PORTCULLIS_RADIUS_WORKERS: String(w) };
    for (const [store, n] of [["sqlite", 1] as const, ...nodeCounts.map((n) => ["postgres", n] as const)]) {
      const name = store === "sqlite" ? `sqlite w=${wLabel(w)}` : `postgres n=${n} w=${wLabel(w)}`;
      const dir = join(o.work, store === "sqlite" ? `sqlite-w${wLabel(w)}` : `postgres-n${n}-w${wLabel(w)}`);
      let storeEnv: Record<string, string> = env;
      if (store === "postgres") storeEnv = { ...env, PORTCULLIS_STORE_URL: await pg.createDatabase(`bench_n${n}_w${wLabel(w)}`) };
      // Each node its own data directory; the store (and the key, from the environment) is what they share.
      const dirs = Array.from({ length: n }, (_, k) => (n === 1 ? dir : join(dir, `node${k + 1}`)));
      for (const d of dirs) mkdirSync(d, { recursive: true, mode: 0o700 });
      o.info(`importing ${o.users} users (${name})`);
      const t0 = performance.now();
      await portcullisCLI(o.bin, dirs[0]!, ["user", "import", csvPath], storeEnv);
      o.info(`user import (${name}): ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      await portcullisCLI(o.bin, dirs[0]!, ["client", "add", "bench", "--address", "127.0.0.1/32", "--secret-stdin", "--first-factor", "none"], storeEnv, { stdin: o.secret + "\n" });
      const ports: number[] = [];
      const procs: Bun.Subprocess[] = [];
      for (const d of dirs) {
        const port = await freePort();
        const adminPort = freeTcpPort();
        const srv = Bun.spawn([o.bin, "--data-dir", d, "serve", "--radius-listen", `127.0.0.1:${port}`, "--http-listen", "127.0.0.1:0"], {
          env: { ...process.env, ...storeEnv, ...workersEnv, PORTCULLIS_ADMIN_LISTEN: `127.0.0.1:${adminPort}` },
          stdout: "ignore",
          stderr: "inherit",
        });
        o.children.push(srv);
        // The supervisor opens its HTTP listeners after every RADIUS worker listens: a server is only
        // paused (SIGSTOP) once /readyz answers, never while it is still starting workers.
        await waitReady(adminPort, 90_000);
        await waitStatusServer(port, o.secret, { timeoutMs: 60_000, everyMs: 50 });
        ports.push(port);
        procs.push(srv);
      }
      configs.push({ store, nodes: n, workers: w, name, ports, procs, pids: procs.map((p) => p.pid), dbCpu: store === "postgres" ? () => postgresCpuMs(postmaster) : () => 0 });
    }
  }
  // Resumed again (SIGCONT) before the end, so that SIGTERM finds them running.
  o.exitHooks.unshift(() => {
    for (const c of configs) for (const pid of c.pids) signalTree(pid, "SIGCONT");
  });

  type CPU = { server_us: number; db_us: number };
  const results = new Map<Config, LoadResult[]>(configs.map((c) => [c, []]));
  const cpus = new Map<Config, CPU[]>(configs.map((c) => [c, []]));
  const checks = new Map<Config, Check[]>(configs.map((c) => [c, []]));
  const loads: number[] = [];
  for (let r = 1 - o.warmup; r <= o.rounds; r++) {
    for (const c of configs) {
      const label = r < 1 ? `warm-up ${r + o.warmup}/${o.warmup}` : `round ${r}/${o.rounds}`;
      if (c.procs.some((p) => p.exitCode !== null)) throw new Error(`${c.name}: a server exited`);
      for (const other of configs) if (other !== c) for (const pid of other.pids) signalTree(pid, "SIGSTOP");
      for (const pid of c.pids) signalTree(pid, "SIGCONT");
      for (const port of c.ports) await waitStatusServer(port, o.secret, { timeoutMs: 30_000, everyMs: 50 });
      o.info(`${label}: ${c.name} (waiting for the next TOTP step)`);
      let c0 = { server: 0, db: 0 };
      const sumServer = () => c.pids.reduce((s, pid) => s + treeCpuMs(pid), 0);
      const record: LoadRecord = {};
      const res = await runLoad(users, {
        host: "127.0.0.1",
        port: c.ports[0]!,
        ports: c.ports,
        portOffset: o.spread === "user" ? 0 : r + o.warmup,
        secret: o.secret,
        concurrency: o.concurrency,
        timeoutMs: 5000,
        retries: 2,
        maxSeconds: 25,
        record,
        onStart: () => void (c0 = { server: sumServer(), db: c.dbCpu() }),
      });
      const n = Math.max(1, res.accepts + res.rejects);
      const cpu = { server_us: Math.round(((sumServer() - c0.server) * 1000) / n), db_us: Math.round(((c.dbCpu() - c0.db) * 1000) / n) };
      const load1 = loadavg()[0]!;
      // The replays run after the last round only (as many as `replaysPerRound` for every round):
      // each refused replay counts a code failure on its user, whose next login would then be
      // decided through the full path to clear it (about eight statements on PostgreSQL instead of
      // one row), a cost of the check that would otherwise fall into the next measured round.
      const check = await replayCheck(c, record, users, r === o.rounds ? replaysPerRound * (o.rounds + o.warmup) : 0, r, o);
      o.info(`  ${JSON.stringify({ ...res, ...cpu, load1: Math.round(load1 * 10) / 10, ...check })}`);
      checks.get(c)!.push(check);
      if (r >= 1) {
        results.get(c)!.push(res);
        cpus.get(c)!.push(cpu);
        loads.push(load1);
      }
    }
  }
  for (const c of configs) for (const pid of c.pids) signalTree(pid, "SIGCONT");
  for (const c of o.children) if (c.exitCode === null) c.kill("SIGTERM");

  const rows = configs.map((c) => {
    const sum = summarize(results.get(c)!);
    const server = median(cpus.get(c)!.map((x) => x.server_us));
    const db = median(cpus.get(c)!.map((x) => x.db_us));
    const ch = checks.get(c)!;
    const total = (k: keyof Check) => ch.reduce((s, x) => s + x[k], 0);
    return {
      name: c.store,
      nodes: c.nodes,
      workers: c.workers ?? null,
      ...sum,
      server_cpu_us: server,
      db_cpu_us: db,
      total_cpu_us: server + db,
      ratio_cpu: 0,
      lost: total("lost"),
      replays: total("replays"),
      replays_rejected: total("replaysRejected"),
      replays_accepted: total("replaysAccepted"),
      replays_unanswered: total("replaysUnanswered"),
      replays_elsewhere: total("replaysElsewhere"),
    };
  });
  for (const row of rows) {
    const lite = rows.find((x) => x.name === "sqlite" && x.workers === row.workers)!;
    row.ratio_cpu = Math.round((row.total_cpu_us / lite.total_cpu_us) * 100) / 100;
  }
  const pad = (x: string, n: number) => x.padStart(n);
  const out = [
    "",
    `OTP logins, ${o.users} users, ${o.concurrency} in flight, ${o.rounds} rounds each after ${o.warmup} warm-up (medians), 127.0.0.1, ` +
      `PostgreSQL ${nodeCounts.join("/")} node(s), ${o.spread === "user" ? "each user always on one node" : "logins spread round-robin, each round shifted"}; load average (1 min) at the end of the rounds: median ${median(loads).toFixed(1)}, ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)}`,
    `${"store".padEnd(10)}${pad("nodes", 6)}${pad("workers", 8)}${pad("logins/s", 10)}${pad("p99 ms", 9)}${pad("server µs", 11)}${pad("db µs", 8)}${pad("total µs", 10)}${pad("ratio", 7)}   per login (CPU); ratio: total to SQLite's with the same workers`,
    ...rows.map(
      (r) =>
        `${r.name.padEnd(10)}${pad(String(r.nodes), 6)}${pad(r.workers === null ? "default" : String(r.workers), 8)}${pad(String(r.rps), 10)}${pad(r.p99_ms.toFixed(2), 9)}${pad(String(r.server_cpu_us), 11)}${pad(String(r.db_cpu_us), 8)}${pad(String(r.total_cpu_us), 10)}${pad(r.ratio_cpu.toFixed(2), 7)}` +
        `   accepts ${r.accepts.join("/")}, rejects ${r.rejects.join("/")}, timeouts ${r.timeouts.join("/")}, retransmissions ${r.retransmissions.join("/")}`,
    ),
    `Check: in every round (warm-up included) ${o.users} fresh codes, each to be accepted once; after the last round, a sample of its accepted codes (--replays per round, for every round) replayed as new requests${nodeCounts.some((n) => n > 1) ? " to another node" : ""}, each to be refused`,
    ...rows.map(
      (r) =>
        `${r.name.padEnd(10)}${pad(String(r.nodes), 6)}${pad(r.workers === null ? "default" : String(r.workers), 8)}   lost ${r.lost}, replays ${r.replays}: rejected ${r.replays_rejected}, accepted twice ${r.replays_accepted}, unanswered ${r.replays_unanswered}` +
        (r.nodes > 1 ? ` (all to another node: ${r.replays_elsewhere === r.replays ? "yes" : "no"})` : ""),
    ),
  ];
  // The line of the one-node run that earlier reports quote: PostgreSQL's first one-node row against SQLite.
  const pg1 = rows.find((x) => x.name === "postgres" && x.nodes === 1) ?? rows.find((x) => x.name === "postgres")!;
  const lite1 = rows.find((x) => x.name === "sqlite" && x.workers === pg1.workers)!;
  out.push(`CPU per login, PostgreSQL / SQLite: ${(pg1.total_cpu_us / lite1.total_cpu_us).toFixed(2)} (server alone: ${(pg1.server_cpu_us / lite1.server_cpu_us).toFixed(2)})${pg1.nodes === 1 ? "" : ` (${pg1.nodes} nodes)`}`, "");
  const failed = rows.filter((r) => r.lost > 0 || r.replays_accepted > 0 || r.replays_unanswered > 0 || r.replays_rejected !== r.replays);
  process.stdout.write(out.join("\n"));
  process.stdout.write(
    JSON.stringify({
      users: o.users,
      concurrency: o.concurrency,
      rounds: o.rounds,
      warmup: o.warmup,
      load_average_median: median(loads),
      stores: rows,
      ratio_cpu: pg1.total_cpu_us / lite1.total_cpu_us,
      check_passed: failed.length === 0,
    }) + "\n",
  );
  if (failed.length > 0) {
    throw new Error(
      `check failed: ${failed.map((r) => `${r.name} nodes=${r.nodes} workers=${r.workers ?? "default"}: lost ${r.lost}, accepted twice ${r.replays_accepted}, replays unanswered ${r.replays_unanswered}`).join("; ")}`,
    );
  }
}

/**
 * The round's check: counts its lost codes (fresh logins not accepted), then replays up to `count`
 * accepted codes (after the last round only), spread over the round, each as a new Access-Request
 * to the next node after the one that accepted it, and counts how each was answered.
 */
async function replayCheck(c: Config, record: LoadRecord, users: readonly LoadUser[], count: number, round: number, o: StoreBenchOptions): Promise<Check> {
  const outcome = record.outcome!;
  const sentTo = record.port!;
  let lost = 0;
  const accepted: number[] = [];
  for (let i = 0; i < users.length; i++) {
    if (outcome[i] === OUTCOME.accept) accepted.push(i);
    else lost++;
  }
  const check: Check = { lost, replays: 0, replaysRejected: 0, replaysAccepted: 0, replaysUnanswered: 0, replaysElsewhere: 0 };
  if (count <= 0 || accepted.length === 0) return check;
  const stride = Math.max(1, Math.floor(accepted.length / count));
  const sample: number[] = [];
  for (let k = round & 0xffff; sample.length < count && sample.length < accepted.length; k += stride) sample.push(accepted[((k % accepted.length) + accepted.length) % accepted.length]!);
  // Grouped by target node; each group is one load-generator run with the round's code time.
  const byTarget = new Map<number, LoadUser[]>();
  for (const i of sample) {
    const from = c.ports.indexOf(sentTo[i]!);
    const target = c.ports[(from + 1) % c.ports.length]!;
    if (target !== sentTo[i]) check.replaysElsewhere++;
    byTarget.set(target, [...(byTarget.get(target) ?? []), users[i]!]);
  }
  for (const [port, group] of byTarget) {
    const res = await runLoad(group, { host: "127.0.0.1", port, secret: o.secret, concurrency: 32, timeoutMs: 5000, retries: 2, maxSeconds: 20, waitForStep: false, now: () => record.codeAt! });
    check.replays += group.length;
    check.replaysRejected += res.rejects;
    check.replaysAccepted += res.accepts;
    check.replaysUnanswered += group.length - res.rejects - res.accepts;
  }
  return check;
}
