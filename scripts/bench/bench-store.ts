// `scripts/bench-radius --store postgres`: the same OTP workload as the default benchmark against the
// compiled Portcullis binary on SQLite (the default store, with its read cache) and on PostgreSQL
// (a throwaway server from Debian's `postgresql` package, started here), alternating rounds.
// Reports logins/s, p99 and the CPU per login of the server (with its RADIUS workers) and of PostgreSQL (the postmaster
// and all its backends, including exited ones), the figure that says what sharing the state costs.

import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { encodeBase32 } from "./radius-wire.ts";
import { runLoad, type LoadResult, type LoadUser } from "../loadgen.ts";
import { freePort, median, portcullisCLI, summarize, treeCpuMs, waitStatusServer } from "./harness.ts";
import { POSTGRES_SKIP_REASON, startPostgres } from "../../test/integration/helpers/postgres.ts";

export interface StoreBenchOptions {
  bin: string;
  work: string;
  secret: string;
  users: number;
  rounds: number;
  warmup: number;
  concurrency: number;
  children: Bun.Subprocess[];
  exitHooks: Array<() => void>;
  info(msg: string): void;
}

/** CPU of the postmaster, its live children, and its exited children (cutime/cstime), in ms. */
function postgresCpuMs(postmaster: number): number {
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

export async function runStoreBenchmark(o: StoreBenchOptions): Promise<void> {
  if (POSTGRES_SKIP_REASON) throw new Error(POSTGRES_SKIP_REASON);
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
  const pg = await startPostgres({ durable: true });
  o.exitHooks.push(() => pg.destroy());
  const url = await pg.createDatabase("bench");

  const servers: Array<{ name: string; port: number; pid: number; dbCpu: () => number }> = [];
  for (const store of ["sqlite", "postgres"] as const) {
    const dir = join(o.work, store);
    const storeEnv: Record<string, string> = store === "postgres" ? { ...env, PORTCULLIS_STORE_URL: url } : env;
    o.info(`importing ${o.users} users (${store})`);
    const t0 = performance.now();
    await portcullisCLI(o.bin, dir, ["user", "import", csvPath], storeEnv);
    o.info(`user import (${store}): ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    await portcullisCLI(o.bin, dir, ["client", "add", "bench", "--address", "127.0.0.1/32", "--secret-stdin", "--first-factor", "none"], storeEnv, { stdin: o.secret + "\n" });
    const port = await freePort();
    const srv = Bun.spawn([o.bin, "--data-dir", dir, "serve", "--radius-listen", `127.0.0.1:${port}`, "--http-listen", "127.0.0.1:0"], {
      env: { ...process.env, ...storeEnv, PORTCULLIS_ADMIN_LISTEN: "127.0.0.1:0" },
      stdout: "ignore",
      stderr: "inherit",
    });
    o.children.push(srv);
    await waitStatusServer(port, o.secret, { timeoutMs: 60_000, everyMs: 50 });
    const postmaster = pg.postmasterPid();
    servers.push({ name: store, port, pid: srv.pid, dbCpu: store === "postgres" ? () => postgresCpuMs(postmaster) : () => 0 });
  }

  type CPU = { server_us: number; db_us: number };
  const results = new Map<string, LoadResult[]>(servers.map((s) => [s.name, []]));
  const cpus = new Map<string, CPU[]>(servers.map((s) => [s.name, []]));
  for (let r = 1 - o.warmup; r <= o.rounds; r++) {
    for (const s of servers) {
      const label = r < 1 ? `warm-up ${r + o.warmup}/${o.warmup}` : `round ${r}/${o.rounds}`;
      o.info(`${label}: ${s.name} (waiting for the next TOTP step)`);
      let c0 = { server: 0, db: 0 };
      const res = await runLoad(users, {
        host: "127.0.0.1",
        port: s.port,
        secret: o.secret,
        concurrency: o.concurrency,
        timeoutMs: 5000,
        maxSeconds: 25,
        onStart: () => void (c0 = { server: treeCpuMs(s.pid), db: s.dbCpu() }),
      });
      const n = Math.max(1, res.accepts + res.rejects);
      const cpu = { server_us: Math.round(((treeCpuMs(s.pid) - c0.server) * 1000) / n), db_us: Math.round(((s.dbCpu() - c0.db) * 1000) / n) };
      o.info(`  ${JSON.stringify({ ...res, ...cpu })}`);
      if (r >= 1) {
        results.get(s.name)!.push(res);
        cpus.get(s.name)!.push(cpu);
      }
    }
  }
  for (const c of o.children) if (c.exitCode === null) c.kill("SIGTERM");

  const rows = servers.map((s) => {
    const sum = summarize(results.get(s.name)!);
    const server = median(cpus.get(s.name)!.map((c) => c.server_us));
    const db = median(cpus.get(s.name)!.map((c) => c.db_us));
    return { name: s.name, ...sum, server_cpu_us: server, db_cpu_us: db, total_cpu_us: server + db };
  });
  const [lite, pgRow] = rows as [(typeof rows)[0], (typeof rows)[0]];
  const pad = (x: string, n: number) => x.padStart(n);
  const out = [
    "",
    `OTP logins, ${o.users} users, ${o.concurrency} in flight, ${o.rounds} rounds each after ${o.warmup} warm-up (medians), 127.0.0.1, one node`,
    `${"store".padEnd(12)}${pad("logins/s", 10)}${pad("p99 ms", 9)}${pad("server µs", 11)}${pad("db µs", 8)}${pad("total µs", 10)}   per login (CPU)`,
    ...rows.map(
      (r) =>
        `${r.name.padEnd(12)}${pad(String(r.rps), 10)}${pad(r.p99_ms.toFixed(2), 9)}${pad(String(r.server_cpu_us), 11)}${pad(String(r.db_cpu_us), 8)}${pad(String(r.total_cpu_us), 10)}   accepts ${r.accepts.join("/")}, rejects ${r.rejects.join("/")}, timeouts ${r.timeouts.join("/")}`,
    ),
    `CPU per login, PostgreSQL / SQLite: ${(pgRow.total_cpu_us / lite.total_cpu_us).toFixed(2)} (server alone: ${(pgRow.server_cpu_us / lite.server_cpu_us).toFixed(2)})`,
    "",
  ];
  process.stdout.write(out.join("\n"));
  process.stdout.write(JSON.stringify({ users: o.users, concurrency: o.concurrency, rounds: o.rounds, stores: rows, ratio_cpu: pgRow.total_cpu_us / lite.total_cpu_us }) + "\n");
}
