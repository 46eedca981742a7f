// RADIUS login benchmarks against FreeRADIUS 3.2, same users, same load generator, alternating rounds.
//   --workload otp (default): FreeRADIUS + rlm_totp versus the compiled Portcullis binary on OTP logins; also
//     the binary's idle RSS and its exec-to-first-Status-Server time.
//   --store postgres: the OTP workload on Portcullis with SQLite versus Portcullis with PostgreSQL
//     (bench-store.ts; Debian package postgresql), CPU per login of the server and of the database;
//     [--nodes 1 | 1,2,3] PostgreSQL configurations of N nodes on one database, logins spread
//     round-robin; [--workers 1,2] `[radius] workers` per server (SQLite and PostgreSQL; without it
//     the environment's PORTCULLIS_RADIUS_WORKERS or the product's default); [--spread request|user]
//     round-robin per login (default) or each user always on one node; [--replays 64] accepted
//     codes per round replayed to another node after the last round, all of which must be refused (the run fails on a
//     lost or doubly accepted code).
//   --workload ldap: PAP password logins against one slapd, FreeRADIUS + rlm_ldap versus Portcullis with an
//     [[ldap]] profile (bench-ldap.ts).
//
// Usage: scripts/bench-radius [--workload otp|ldap] [--users 20000|2000] [--rounds 3] [--warmup 1] [--concurrency 128|32]
//          [--requests N (ldap: logins per round, default 3 × users)] [--fr-pool 32 (ldap)] [--bin dist/portcullis] [--keep]
//          otp only: [--workers 1 | 1,2] one Portcullis server per `[radius] workers` value, each measured in every round
//          (CPU per login summed over the supervisor and its workers; the load generator's one socket is
//          spread over the workers by the RADIUS Identifier)
//          ldap: [--workers 0 | 1,0] likewise, where 0 (the default) is the product's default `[radius] workers`
//          (the number of CPUs, at most 8)
//          ldap: [--baseline-bin PATH] another build (e.g. main's) measured in the same run, once per worker count
//          ldap only, Portcullis's profile: [--ldap-pool 4] [--ldap-pipeline 8] [--ldap-bind-pool 32] (defaults: the product's)
// Needs `freeradius` (Debian package) and a built binary (`bun run build`); the ldap workload also
// `freeradius-ldap`, `slapd`, `ldap-utils` and `openssl`. Installs nothing.
// Each server first gets `--warmup` unmeasured rounds of the OTP workload (the same load), so that neither
// is measured while it starts up: Portcullis's JIT compiles its hot path during its first ~20k requests,
// and a 20k-user round lasts under a second.

import { parseArgs } from "node:util";
import { mkdtempSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { writeFreeRADIUSConfig } from "./freeradius.ts";
import { encodeBase32 } from "./radius-wire.ts";
import { runLoad, type LoadResult, type LoadUser } from "../loadgen.ts";
import { freePort, median, portcullisCLI, treeCpuMs, treeRss, waitStatusServer as waitStatusServerOn } from "./harness.ts";
import { runLdapBenchmark } from "./bench-ldap.ts";

const root = resolve(import.meta.dir, "../..");
const { values: a } = parseArgs({
  options: {
    workload: { type: "string", default: "otp" },
    users: { type: "string" },
    rounds: { type: "string", default: "3" },
    warmup: { type: "string", default: "1" },
    concurrency: { type: "string" },
    requests: { type: "string" },
    "fr-pool": { type: "string" },
    "ldap-pool": { type: "string" },
    "ldap-pipeline": { type: "string" },
    "ldap-bind-pool": { type: "string" },
    "baseline-bin": { type: "string" },
    bin: { type: "string", default: join(root, "dist/portcullis") },
    "startup-runs": { type: "string", default: "5" },
    workers: { type: "string" },
    keep: { type: "boolean", default: false },
    store: { type: "string" },
    nodes: { type: "string" },
    replays: { type: "string" },
    spread: { type: "string" },
  },
});
if (a.store !== undefined && a.store !== "postgres") {
  process.stderr.write("bench: --store must be postgres\n");
  process.exit(2);
}
if (a.workload !== "otp" && a.workload !== "ldap") {
  process.stderr.write("bench: --workload must be otp or ldap\n");
  process.exit(2);
}
if ((a.nodes !== undefined || a.replays !== undefined || a.spread !== undefined) && a.store !== "postgres") {
  process.stderr.write("bench: --nodes, --replays and --spread need --store postgres\n");
  process.exit(2);
}
const nodeCounts = (a.nodes ?? "1").split(",").map((n) => Number(n.trim()));
if (nodeCounts.some((n) => !Number.isInteger(n) || n < 1 || n > 8)) {
  process.stderr.write("bench: --nodes must be a comma-separated list of 1..8\n");
  process.exit(2);
}
const replays = Number(a.replays ?? 64);
if (!Number.isInteger(replays) || replays < 0 || replays > 10_000) {
  process.stderr.write("bench: --replays must be 0..10000\n");
  process.exit(2);
}
if (a.spread !== undefined && a.spread !== "request" && a.spread !== "user") {
  process.stderr.write("bench: --spread must be request or user\n");
  process.exit(2);
}
const ldap = a.workload === "ldap";
const nUsers = Number(a.users ?? (ldap ? 2000 : 20000));
const rounds = Number(a.rounds);
const warmupRounds = Number(a.warmup);
const concurrency = Number(a.concurrency ?? (ldap ? 32 : 128));
const bin = resolve(a.bin!);
// otp: one process unless asked; ldap: the product's default (0: the number of CPUs, at most 8).
const workerCounts = (a.workers ?? (ldap ? "0" : "1")).split(",").map((w) => Number(w.trim()));
if (workerCounts.some((w) => !Number.isInteger(w) || w < (ldap ? 0 : 1) || w > 64)) {
  process.stderr.write(`bench: --workers must be a comma-separated list of ${ldap ? "0" : "1"}..64\n`);
  process.exit(2);
}
const secret = encodeBase32(randomBytes(20)); // shared secret for both servers, never printed
const work = mkdtempSync(join(tmpdir(), "portcullis-bench-"));
const children: Bun.Subprocess[] = [];
/** Synchronous clean-ups of peers that are not Bun subprocesses (the ldap workload's slapd). */
const exitHooks: Array<() => void> = [];
const info = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

function cleanup() {
  for (const h of exitHooks.splice(0)) h();
  for (const c of children) if (c.exitCode === null && !c.killed) c.kill("SIGTERM");
  if (!a.keep) rmSync(work, { recursive: true, force: true });
}
process.on("SIGINT", () => {
  cleanup();
  process.exit(130);
});

const waitStatusServer = (port: number, opts?: { timeoutMs?: number; everyMs?: number }) => waitStatusServerOn(port, secret, opts);
const cli = (dataDir: string, args: string[], env: Record<string, string>, stdin?: string) =>
  portcullisCLI(bin, dataDir, args, env, stdin === undefined ? {} : { stdin });

async function main() {
  if (!existsSync(bin)) throw new Error(`${bin} not found: run \`bun run build\` first`);
  if (!Bun.which("freeradius")) throw new Error("freeradius not found: apt-get install freeradius");
  const key = randomBytes(32).toString("base64");
  const env = { PORTCULLIS_KEY: key };

  // Users with random 160-bit seeds (RFC 4226 §4 R6 recommends 160 bits).
  info(`generating ${nUsers} users in ${work}`);
  const users: LoadUser[] = [];
  const b32: string[] = [];
  for (let i = 0; i < nUsers; i++) {
    const k = randomBytes(20);
    users.push({ username: `bench${String(i).padStart(6, "0")}`, key: k, params: { algorithm: "SHA1", digits: 6, period: 30 } });
    b32.push(encodeBase32(k));
  }
  const csvPath = join(work, "users.csv");
  writeFileSync(
    csvPath,
    "username,password,type,phone,email,totp_secret,totp_algorithm,totp_digits,totp_period\n" +
      users.map((u, i) => `${u.username},,totp,,,${b32[i]},SHA1,6,30\n`).join(""),
    { mode: 0o600 },
  );

  // FreeRADIUS.
  const frDir = join(work, "freeradius");
  const frPort = await freePort();
  writeFreeRADIUSConfig({ dir: frDir, port: frPort, secret, users: users.map((u, i) => ({ username: u.username, base32Secret: b32[i]! })) });
  info(`starting FreeRADIUS on 127.0.0.1:${frPort}`);
  const fr = Bun.spawn(["freeradius", "-f", "-d", frDir], { stdout: "ignore", stderr: "pipe" });
  children.push(fr);
  await waitStatusServer(frPort, { timeoutMs: 60_000, everyMs: 50 });

  // Portcullis: same users, a --first-factor none client (User-Password = code alone, like the FreeRADIUS policy).
  // One server per worker count, each on its own data directory (another server's commits would
  // empty its cache), started together so that every round measures each of them.
  const servers: { name: string; port: number; proc: Bun.Subprocess }[] = [];
  for (const w of workerCounts) {
    const pDir = join(work, `portcullis-w${w}`);
    info(`importing users into Portcullis (workers = ${w})`);
    const t0 = performance.now();
    await cli(pDir, ["user", "import", csvPath], env);
    info(`user import: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    await cli(pDir, ["client", "add", "bench", "--address", "127.0.0.1/32", "--secret-stdin", "--first-factor", "none"], env, secret + "\n");
    const port = await freePort();
    const proc = Bun.spawn([bin, "--data-dir", pDir, "serve", "--radius-listen", `127.0.0.1:${port}`, "--http-listen", "127.0.0.1:0"], {
      env: { ...process.env, ...env, PORTCULLIS_RADIUS_WORKERS: String(w), PORTCULLIS_ADMIN_LISTEN: "127.0.0.1:0" },
      stdout: "ignore",
      stderr: "inherit",
    });
    children.push(proc);
    await waitStatusServer(port, { timeoutMs: 60_000, everyMs: 50 });
    servers.push({ name: `portcullis-w${w}`, port, proc });
  }

  // Alternating rounds; each loadgen run waits for a new TOTP step, so every round uses fresh codes.
  const names = ["freeradius", ...servers.map((x) => x.name)];
  const results: Record<string, LoadResult[]> = Object.fromEntries(names.map((n) => [n, []]));
  type CPU = { server_us_per_req: number; loadgen_us_per_req: number };
  const cpus: Record<string, CPU[]> = Object.fromEntries(names.map((n) => [n, []]));
  let cpu0 = { server: 0, loadgen: process.cpuUsage() };
  for (let r = 1 - warmupRounds; r <= rounds; r++) {
    for (const [name, port, pid] of [["freeradius", frPort, fr.pid] as const, ...servers.map((x) => [x.name, x.port, x.proc.pid] as const)]) {
      const label = r < 1 ? `warm-up ${r + warmupRounds}/${warmupRounds}` : `round ${r}/${rounds}`;
      info(`${label}: ${name} (waiting for the next TOTP step)`);
      // CPU per answered request, server (all threads) and this process (the load generator), sampled
      // after the step wait so that only the timed phase counts (±10 ms clock ticks).
      const res = await runLoad(users, {
        host: "127.0.0.1",
        port,
        secret,
        concurrency,
        timeoutMs: 5000,
        maxSeconds: 25,
        onStart: () => void (cpu0 = { server: treeCpuMs(pid), loadgen: process.cpuUsage() }),
      });
      const lu = process.cpuUsage(cpu0.loadgen);
      const per = (ms: number) => Math.round((ms * 1000) / Math.max(1, res.accepts + res.rejects));
      const cpu = { server_us_per_req: per(treeCpuMs(pid) - cpu0.server), loadgen_us_per_req: per((lu.user + lu.system) / 1000) };
      info(`  ${JSON.stringify({ ...res, ...cpu })}`);
      if (r >= 1) {
        results[name]!.push(res);
        cpus[name]!.push(cpu);
      }
    }
  }
  for (const x of servers) x.proc.kill("SIGTERM");
  fr.kill("SIGTERM");
  await Promise.all([...servers.map((x) => x.proc.exited), fr.exited]);

  // Idle RSS and time from exec to the first answered Status-Server (compiled binary, fresh data dir).
  // Per worker count: the RSS of the supervisor and its workers together.
  const startupMsBy: Record<string, number[]> = {};
  const rssKBBy: Record<string, number[]> = {};
  const sDir = join(work, "startup");
  await cli(sDir, ["client", "add", "probe", "--address", "127.0.0.1/32", "--secret-stdin"], env, secret + "\n");
  for (const w of workerCounts) {
    const startupMs: number[] = (startupMsBy[`portcullis-w${w}`] = []);
    const rssKB: number[] = (rssKBBy[`portcullis-w${w}`] = []);
    for (let i = 0; i < Number(a["startup-runs"]); i++) {
      const port = await freePort();
      const tStart = performance.now();
      const p = Bun.spawn([bin, "--data-dir", sDir, "serve", "--radius-listen", `127.0.0.1:${port}`, "--http-listen", "127.0.0.1:0"], {
        env: { ...process.env, ...env, PORTCULLIS_RADIUS_WORKERS: String(w), PORTCULLIS_ADMIN_LISTEN: "127.0.0.1:0" },
        stdout: "ignore",
        stderr: "ignore",
      });
      children.push(p);
      try {
        const tAnswer = await waitStatusServer(port, { timeoutMs: 15_000, everyMs: 2 });
        startupMs.push(tAnswer - tStart);
        await Bun.sleep(1000 + 500 * w); // let start-up garbage settle (and every worker start) before reading the idle RSS
        rssKB.push(treeRss(p.pid));
      } finally {
        p.kill("SIGTERM");
        await p.exited;
      }
    }
  }

  const summary = (xs: LoadResult[]) => ({
    rps: median(xs.map((x) => x.rps)),
    p50_ms: median(xs.map((x) => x.p50_ms)),
    p99_ms: median(xs.map((x) => x.p99_ms)),
    accepts: xs.map((x) => x.accepts),
    rejects: xs.map((x) => x.rejects),
    timeouts: xs.map((x) => x.timeouts),
    invalid: xs.map((x) => x.invalid),
    reply_ma_missing: xs.map((x) => x.reply_ma_missing),
  });
  const fs = summary(results.freeradius!);
  const pad = (s: string, n: number) => s.padStart(n);
  const row = (name: string, s: ReturnType<typeof summary>) =>
    `${name.padEnd(24)}${pad(String(s.rps), 10)}${pad(s.p50_ms.toFixed(2), 10)}${pad(s.p99_ms.toFixed(2), 10)}   accepts ${s.accepts.join("/")}, rejects ${s.rejects.join("/")}, timeouts ${s.timeouts.join("/")}, invalid ${s.invalid.join("/")}, replies without MA ${s.reply_ma_missing.join("/")}`;
  const cpuOf = (n: string) => ({ server: median(cpus[n]!.map((c) => c.server_us_per_req)), loadgen: median(cpus[n]!.map((c) => c.loadgen_us_per_req)) });
  const byWorkers = servers.map((x) => ({ name: x.name, workers: Number(x.name.slice("portcullis-w".length)), s: summary(results[x.name]!), cpu: cpuOf(x.name) }));
  const out = [
    "",
    `OTP logins, ${nUsers} users, ${concurrency} in flight, ${rounds} rounds each after ${warmupRounds} warm-up (medians), 127.0.0.1`,
    `${"server".padEnd(24)}${pad("req/s", 10)}${pad("p50 ms", 10)}${pad("p99 ms", 10)}`,
    row("FreeRADIUS (rlm_totp)", fs),
    ...byWorkers.map((x) => row(`Portcullis workers=${x.workers}`, x.s)),
    ...byWorkers.map((x) => `ratio Portcullis (workers=${x.workers})/FreeRADIUS (req/s): ${(x.s.rps / fs.rps).toFixed(2)}`),
    `CPU per request (medians; server = all its threads and processes, load generator = this process): ` +
      [`freeradius ${cpuOf("freeradius").server} µs + load generator ${cpuOf("freeradius").loadgen} µs`, ...byWorkers.map((x) => `portcullis workers=${x.workers} ${x.cpu.server} µs + load generator ${x.cpu.loadgen} µs`)].join("; "),
    ...byWorkers.map((x) => {
      const rssKB = rssKBBy[x.name]!;
      const startupMs = startupMsBy[x.name]!;
      return (
        `Portcullis workers=${x.workers}: idle RSS ${(median(rssKB) / 1024).toFixed(1)} MiB, all processes (median of ${rssKB.length}: ${rssKB.map((k) => (k / 1024).toFixed(1)).join(", ")}); ` +
        `exec -> first Status-Server answer ${median(startupMs).toFixed(0)} ms (median of ${startupMs.length}: ${startupMs.map((t) => t.toFixed(0)).join(", ")})`
      );
    }),
    "",
  ];
  process.stdout.write(out.join("\n"));
  process.stdout.write(
    JSON.stringify({
      users: nUsers,
      concurrency,
      rounds,
      warmup: warmupRounds,
      freeradius: { ...fs, cpu_us_per_req: cpuOf("freeradius").server },
      portcullis: Object.fromEntries(
        byWorkers.map((x) => [
          `workers_${x.workers}`,
          { ...x.s, cpu_us_per_req: x.cpu.server, ratio_rps: x.s.rps / fs.rps, idle_rss_kb: median(rssKBBy[x.name]!), startup_ms: median(startupMsBy[x.name]!) },
        ]),
      ),
    }) + "\n",
  );
}

// Bound the whole run: generous for 20k-user imports plus 2×rounds TOTP steps.
const guard = setTimeout(() => {
  info("timed out");
  cleanup();
  process.exit(1);
}, 30 * 60_000);
try {
  if (ldap) {
    const requests = Number(a.requests ?? nUsers * 3);
    const portcullis = {
      ...(a["ldap-pool"] ? { poolSize: Number(a["ldap-pool"]) } : {}),
      ...(a["ldap-pipeline"] ? { pipeline: Number(a["ldap-pipeline"]) } : {}),
      ...(a["ldap-bind-pool"] ? { bindPoolSize: Number(a["ldap-bind-pool"]) } : {}),
    };
    await runLdapBenchmark({ bin, work, secret, users: nUsers, rounds, concurrency, requests, children, exitHooks, info, portcullis, workers: workerCounts, ...(a["baseline-bin"] ? { baselineBin: resolve(a["baseline-bin"]) } : {}), ...(a["fr-pool"] ? { freeradiusPool: Number(a["fr-pool"]) } : {}) });
  } else if (a.store === "postgres") {
    const { runStoreBenchmark } = await import("./bench-store.ts");
    // Without --workers the servers get the environment's PORTCULLIS_RADIUS_WORKERS, or the product's default.
    const workers = a.workers === undefined ? [undefined] : workerCounts;
    await runStoreBenchmark({ bin, work, secret, users: nUsers, rounds, warmup: warmupRounds, concurrency, nodes: nodeCounts, workers, replays, spread: a.spread as "request" | "user" | undefined, children, exitHooks, info });
  } else await main();
} catch (err) {
  info(`failed: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  clearTimeout(guard);
  cleanup();
}
