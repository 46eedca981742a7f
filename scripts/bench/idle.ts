// Idle cost of one `serve` node: CPU of the server and of PostgreSQL over a window with no traffic,
// and (with --log) which statements the node sent meanwhile (log_statement=all on the throwaway server).
// bun scripts/bench/idle.ts [--seconds 30] [--log] [--bin dist/portcullis]
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { randomBytes } from "node:crypto";
import { freePort, portcullisCLI, treeCpuMs, waitStatusServer } from "./harness.ts";
import { postgresCpuMs } from "./bench-store.ts";
import { startPostgres } from "../../test/integration/helpers/postgres.ts";
import { openPostgres } from "../../src/runtime/postgres.ts";

const args = process.argv.slice(2);
const seconds = Number(args[args.indexOf("--seconds") + 1] || 30) || 30;
const withLog = args.includes("--log");
const bin = args.includes("--bin") ? args[args.indexOf("--bin") + 1]! : "dist/portcullis";
const secret = "idle-secret";
const work = mkdtempSync(join(tmpdir(), "portcullis-idle-"));
const pg = await startPostgres({ durable: true });
const children: Bun.Subprocess[] = [];
try {
  const url = await pg.createDatabase("idle");
  const results: string[] = [];
  for (const store of ["sqlite", "postgres"] as const) {
    const env: Record<string, string> = { PORTCULLIS_KEY: randomBytes(32).toString("base64"), ...(store === "postgres" ? { PORTCULLIS_STORE_URL: url } : {}) };
    const dir = join(work, store);
    await portcullisCLI(bin, dir, ["client", "add", "bench", "--address", "127.0.0.1/32", "--secret-stdin", "--first-factor", "none"], env, { stdin: secret + "\n" });
    const port = await freePort();
    const srv = Bun.spawn([bin, "--data-dir", dir, "serve", "--radius-listen", `127.0.0.1:${port}`, "--http-listen", "127.0.0.1:0"], {
      env: { ...process.env, ...env, PORTCULLIS_ADMIN_LISTEN: "127.0.0.1:0" },
      stdout: "ignore",
      stderr: "ignore",
    });
    children.push(srv);
    await waitStatusServer(port, secret, { timeoutMs: 60_000, everyMs: 50 });
    await Bun.sleep(3000);
    const admin = openPostgres(pg.url, { max: 1 });
    let logFile = "";
    let logStart = 0;
    if (withLog && store === "postgres") {
      const { rows } = await admin.query<{ data_directory: string }>("SHOW data_directory");
      logFile = join(dirname(rows[0]!.data_directory), "log");
      await admin.exec("ALTER SYSTEM SET log_statement = 'all'");
      await admin.exec("SELECT pg_reload_conf()");
      await Bun.sleep(500);
      logStart = readFileSync(logFile).length;
    }
    const postmaster = pg.postmasterPid();
    const s0 = treeCpuMs(srv.pid);
    const d0 = postgresCpuMs(postmaster);
    await Bun.sleep(seconds * 1000);
    const server = (treeCpuMs(srv.pid) - s0) / seconds;
    const db = store === "postgres" ? (postgresCpuMs(postmaster) - d0) / seconds : 0;
    results.push(`${store.padEnd(9)} server ${server.toFixed(1)} ms/s  postgres ${db.toFixed(1)} ms/s  (idle, ${seconds} s)`);
    if (logFile) {
      await admin.exec("ALTER SYSTEM RESET log_statement");
      await admin.exec("SELECT pg_reload_conf()");
      const text = readFileSync(logFile).subarray(logStart).toString("utf8");
      const counts = new Map<string, number>();
      for (const m of text.matchAll(/(?:statement|execute [^:]*): (.*)/g)) {
        const k = m[1]!.slice(0, 90);
        counts.set(k, (counts.get(k) ?? 0) + 1);
      }
      for (const [k, n] of [...counts].sort((a, b) => b[1] - a[1])) results.push(`  ${(n / seconds).toFixed(2).padStart(7)}/s  ${k}`);
    }
    await admin.close();
    srv.kill("SIGTERM");
    await srv.exited;
  }
  console.log(results.join("\n"));
} finally {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  pg.destroy();
  rmSync(work, { recursive: true, force: true });
}
