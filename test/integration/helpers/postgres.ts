// A throwaway PostgreSQL server for tests: Debian's `postgresql` binaries, a cluster initialised in
// a temporary folder, listening only on 127.0.0.1 at a free high port, which a test can stop and
// start again. As root the server runs as the `postgres` user (PostgreSQL refuses to run as root).

import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { openPostgres } from "../../../src/runtime/postgres.ts";

const CANDIDATE_BIN_DIRS = ["/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"];

/** The directory holding initdb and pg_ctl, or undefined when PostgreSQL is not installed. */
export function postgresBinDir(): string | undefined {
  const fromEnv = process.env.PORTCULLIS_TEST_PG_BIN;
  if (fromEnv && fs.existsSync(path.join(fromEnv, "pg_ctl"))) return fromEnv;
  return CANDIDATE_BIN_DIRS.find((d) => fs.existsSync(path.join(d, "initdb")) && fs.existsSync(path.join(d, "pg_ctl")));
}

/** Why PostgreSQL tests are skipped here, or undefined when they can run. */
export const POSTGRES_SKIP_REASON: string | undefined = postgresBinDir()
  ? undefined
  : "PostgreSQL binaries not found (install Debian's `postgresql` package: /usr/lib/postgresql/<version>/bin/initdb)";

if (POSTGRES_SKIP_REASON) console.warn(`skipping PostgreSQL tests: ${POSTGRES_SKIP_REASON}`);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface PostgresServer {
  port: number;
  /** A URL for the superuser on the default database. */
  url: string;
  /** Creates a fresh, empty database and returns its URL. */
  createDatabase(name?: string): Promise<string>;
  stop(): void;
  start(): void;
  /** Stops the server and removes its folder. */
  destroy(): void;
}

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

function run(bin: string, args: string[], opts: { cwd?: string } = {}): void {
  const cmd = isRoot ? "runuser" : bin;
  const argv = isRoot ? ["-u", "postgres", "--", bin, ...args] : args;
  const r = spawnSync(cmd, argv, { encoding: "utf8", timeout: 60_000, cwd: opts.cwd ?? os.tmpdir() });
  if (r.status !== 0) throw new Error(`${path.basename(bin)} ${args[0] ?? ""} failed (${r.status}): ${(r.stderr || r.stdout || String(r.error)).trim().slice(0, 2000)}`);
}

let dbCounter = 0;

/**
 * Initialises and starts a cluster. Throws when the binaries are missing (check POSTGRES_SKIP_REASON
 * first). `durable` keeps fsync on (benchmarks); tests turn it off, as nothing needs to survive a power loss.
 * `maxConnections`: PostgreSQL's max_connections (several benchmark nodes with workers need more than 200).
 */
export async function startPostgres({ durable = false, maxConnections = 200 }: { durable?: boolean; maxConnections?: number } = {}): Promise<PostgresServer & { postmasterPid(): number }> {
  const bin = postgresBinDir();
  if (!bin) throw new Error(POSTGRES_SKIP_REASON);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-pg-"));
  const data = path.join(dir, "data");
  const password = "test-password";
  fs.writeFileSync(path.join(dir, "pwfile"), `${password}\n`);
  if (isRoot) {
    spawnSync("chown", ["-R", "postgres:postgres", dir]);
  }
  fs.chmodSync(dir, 0o700);
  run(path.join(bin, "initdb"), ["-D", data, "-U", "postgres", "--pwfile", path.join(dir, "pwfile"), "-A", "scram-sha-256", "-E", "UTF8", "--no-sync", "--no-instructions"]);
  const port = await freePort();
  const pgctl = path.join(bin, "pg_ctl");
  // fsync off: a test cluster never needs to survive a power loss, and the machine is shared.
  // synchronous_commit=off in both cases: like SQLite's synchronous=NORMAL, a commit is not flushed
  // to disk before it is acknowledged.
  const durability = durable ? "-c synchronous_commit=off" : "-c fsync=off -c synchronous_commit=off -c full_page_writes=off";
  const options = `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} ${durability} -c max_connections=${maxConnections}`;
  const start = () => run(pgctl, ["-D", data, "-l", path.join(dir, "log"), "-o", options, "-w", "-t", "60", "start"]);
  const stop = () => run(pgctl, ["-D", data, "-m", "fast", "-w", "-t", "60", "stop"]);
  start();
  // A watcher stops the server and removes its folder once this process is gone, however it ends
  // (bun test runs no exit handlers): a test run never leaves a server behind.
  const stopCmd = `${isRoot ? "runuser -u postgres -- " : ""}'${pgctl}' -D '${data}' -m immediate stop`;
  const watcher = spawn("sh", ["-c", `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; ${stopCmd} >/dev/null 2>&1; rm -rf '${dir}'`], {
    detached: true,
    stdio: "ignore",
  });
  watcher.unref();
  const base = `postgres://postgres:${password}@127.0.0.1:${port}`;
  const server = {
    postmasterPid: () => Number(fs.readFileSync(path.join(data, "postmaster.pid"), "utf8").split("\n")[0]),
    port,
    url: `${base}/postgres`,
    async createDatabase(name?: string) {
      const db = name ?? `t${process.pid}_${++dbCounter}_${Math.floor(Math.random() * 1e6)}`;
      // The runtime's own client (Bun's SQL, or the postgres package under Deno).
      const admin = openPostgres(`${base}/postgres`, { max: 1 });
      try {
        await admin.exec(`CREATE DATABASE "${db}"`);
      } finally {
        await admin.close();
      }
      return `${base}/${db}`;
    },
    stop,
    start,
    destroy() {
      try {
        stop();
      } catch {
        // already stopped
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}
