// Outside attack driver (run through scripts/attack-http, which raises the fd limit).
//
// Starts the compiled appliance with its default HTTP limits (HTTPS with the generated certificate
// on 127.0.0.1), then runs each unauthenticated flood of scripts/attack/http-floods.ts against the
// public listener while the admin listener's /healthz is probed every 100 ms and the server's RSS is
// sampled. Prints one line per flood and a JSON report. Every flood is bounded in connections and
// time; nothing leaves loopback.

import { spawn } from "bun";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { randomBytes } from "node:crypto";
import { heldConnections, memoryOf, peakRSSWhile, probeWhile, stalledBodies, trickledBodies, type FloodOutcome, type Target } from "./attack/http-floods.ts";

const { values } = parseArgs({
  options: {
    connections: { type: "string", default: "1000" },
    hold: { type: "string", default: "15" },
    bin: { type: "string", default: "dist/portcullis" },
  },
});
const N = Number(values.connections);
const holdMs = Number(values.hold) * 1000;
if (!(N >= 1 && N <= 10_000)) throw new Error("--connections must be 1-10000");
if (!(holdMs >= 1000 && holdMs <= 120_000)) throw new Error("--hold must be 1-120 seconds");
const root = resolve(import.meta.dir, "..");
const bin = resolve(root, values.bin!);
if (!existsSync(bin)) throw new Error(`${bin} is missing: run bun run build first`);

const dataDir = mkdtempSync(join(tmpdir(), "portcullis-attack-"));
// One RADIUS process (comparable with the figures measured before `[radius] workers`); the environment may ask for more.
const env: Record<string, string | undefined> = { PORTCULLIS_RADIUS_WORKERS: "1", ...process.env, PORTCULLIS_KEY: randomBytes(32).toString("base64"), PORTCULLIS_ADMIN_LISTEN: "127.0.0.1:0" };
delete env.PORTCULLIS_CONFIG;
delete env.PORTCULLIS_DATA_DIR;
const server = spawn([bin, "--data-dir", dataDir, "serve", "--radius-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"], { env, stdout: "pipe", stderr: "inherit" });

/** The ports from the server's http.listening lines. */
async function ports(): Promise<{ pub: number; admin: number }> {
  const found: Record<string, number> = {};
  const decoder = new TextDecoder();
  let buffer = "";
  const end = Date.now() + 30_000;
  const reader = server.stdout.getReader();
  while (!(found.public && found.admin)) {
    if (Date.now() > end) throw new Error("the server did not start listening within 30 s");
    const { value, done } = await reader.read();
    if (done) throw new Error("the server exited");
    buffer += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      try {
        const j = JSON.parse(line);
        if (j.event === "http.listening") found[j.listener] = j.port;
      } catch {}
    }
  }
  // Keep draining stdout so the server never blocks on a full pipe.
  void (async () => {
    for (;;) if ((await reader.read()).done) break;
  })();
  return { pub: found.public!, admin: found.admin! };
}

const report: Record<string, unknown> = {};
try {
  const { pub, admin } = await ports();
  const target: Target = { host: "127.0.0.1", port: pub, tls: true };
  const adminUrl = `http://127.0.0.1:${admin}/healthz`;
  await Bun.sleep(500);
  const idle = memoryOf(server.pid);
  const calm = await probeWhile(adminUrl, Bun.sleep(2000));
  report.idle = { rssMiB: idle.rssMiB, adminP50Ms: calm.p50Ms, adminMaxMs: calm.maxMs };
  console.log(`idle: RSS ${idle.rssMiB} MiB, admin /healthz p50 ${calm.p50Ms} ms, max ${calm.maxMs} ms`);

  const floods: Array<[string, () => Promise<FloodOutcome>]> = [
    [`stalled bodies (${N} × POST /ml/x, 1,000,000 declared, 999,000 sent)`, () => stalledBodies(target, { connections: N, holdMs })],
    [`held connections (${N * 2} × TLS + half a request head)`, () => heldConnections(target, { connections: N * 2, holdMs })],
    [`trickled bodies (${Math.min(N, 300)} × 1 byte a second)`, () => trickledBodies(target, { connections: Math.min(N, 300), holdMs })],
  ];
  const results: Record<string, unknown>[] = [];
  for (const [name, run] of floods) {
    const probed = await probeWhile(adminUrl, peakRSSWhile(server.pid, run()));
    await Bun.sleep(1000);
    const after = memoryOf(server.pid);
    const r = {
      flood: name,
      ...probed.result.result,
      peakRssMiB: probed.result.peakRssMiB,
      rssAfterMiB: after.rssMiB,
      adminProbes: probed.samples,
      adminFailures: probed.failures,
      adminP50Ms: probed.p50Ms,
      adminMaxMs: probed.maxMs,
    };
    results.push(r);
    console.log(
      `${name}: established ${r.established}/${r.attempted}, closed by the server ${r.closedByServer} (p50 ${r.closeMsP50} ms, max ${r.closeMsMax} ms), answers ${JSON.stringify(r.statuses)}; ` +
        `peak RSS ${r.peakRssMiB} MiB (after ${r.rssAfterMiB}); admin /healthz ${r.adminProbes - r.adminFailures}/${r.adminProbes} answered, p50 ${r.adminP50Ms} ms, max ${r.adminMaxMs} ms`,
    );
  }
  report.floods = results;
  const metrics = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
  report.closedByReason = Object.fromEntries(
    [...metrics.matchAll(/^portcullis_http_connections_closed_total\{listener="(\w+)",reason="(\w+)"\} (\d+)$/gm)].map((m) => [`${m[1]}/${m[2]}`, Number(m[3])]),
  );
  report.peakOverallMiB = memoryOf(server.pid).peakMiB;
  console.log(JSON.stringify(report, null, 2));
} finally {
  server.kill("SIGTERM");
  await server.exited;
  rmSync(dataDir, { recursive: true, force: true });
}
