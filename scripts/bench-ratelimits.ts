// Rate-limit counter benchmark: the cost of one RateLimitRepo.consume() with the dispatcher's six
// buckets (per number and per key, minute and hour, overall minute and hour), on SQLite and (when its
// binaries are installed) a throwaway PostgreSQL. Run: `bun scripts/bench-ratelimits.ts [--calls 4000]`.
//
// Two phases per back-end, each timed per call on one connection, under an injected clock that
// moves 15 ms a call (a sustained 66 requests/s, so slots fill as in production):
//   allowed: 1000 numbers round-robin, limits that never refuse;
//   refused: the overall hour limit (1000) full, so every call reads the full overall buckets and is
//            refused; this is the cost an attacker pays per request and must not grow with the limit.
// Prints a JSON report with the median and p99 µs per call. The machine may be shared: quote the
// load average beside the figures.

import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { setLogSink } from "../src/audit/log.ts";
import { openPgStore } from "../src/store/postgres/store.ts";
import { openSqliteStore } from "../src/store/sqlite/store.ts";
import type { RateBucket, RateLimitRepo } from "../src/store/types.ts";
import { POSTGRES_SKIP_REASON, startPostgres } from "../test/integration/helpers/postgres.ts";

setLogSink(() => {});
const { values } = parseArgs({ options: { calls: { type: "string", default: "4000" } } });
const CALLS = Number(values.calls);

function buckets(i: number, overallPerHour: number): RateBucket[] {
  const n = `n${i % 1000}`;
  return [
    { key: `number:${n}:m`, windowMs: 60_000, limit: 1_000_000 },
    { key: `number:${n}:h`, windowMs: 3_600_000, limit: 1_000_000 },
    { key: "key:k:m", windowMs: 60_000, limit: 1_000_000 },
    { key: "key:k:h", windowMs: 3_600_000, limit: 1_000_000 },
    { key: "all:all:m", windowMs: 60_000, limit: 1_000_000 },
    { key: "all:all:h", windowMs: 3_600_000, limit: overallPerHour },
  ];
}

function stats(us: number[]) {
  const s = [...us].sort((a, b) => a - b);
  return { median_us: Math.round(s[Math.floor(s.length / 2)]!), p99_us: Math.round(s[Math.floor(s.length * 0.99)]!) };
}

async function phases(rl: RateLimitRepo) {
  let now = 1_700_000_000_000;
  const allowed: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const t = performance.now();
    const d = await rl.consume(buckets(i, 1_000_000), (now += 15));
    allowed.push((performance.now() - t) * 1000);
    if (!d.allowed) throw new Error("allowed phase refused a call");
  }
  // Fill the overall hour to 1000 from a fresh clock hour later, then time refusals.
  now += 7_200_000;
  for (let i = 0; i < 1000; i++) if (!(await rl.consume(buckets(i, 1000), (now += 15))).allowed) throw new Error("fill refused");
  const refused: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const t = performance.now();
    const d = await rl.consume(buckets(i, 1000), (now += 15));
    refused.push((performance.now() - t) * 1000);
    if (d.allowed) throw new Error("refused phase allowed a call");
  }
  return { allowed: stats(allowed), refused: stats(refused) };
}

const report: Record<string, unknown> = { calls: CALLS, loadavg_1m: loadavg()[0] };
const dir = mkdtempSync(join(tmpdir(), "portcullis-bench-rl-"));
try {
  const sqlite = await openSqliteStore({ path: join(dir, "portcullis.db"), dataDir: dir, env: {} });
  report.sqlite = await phases(sqlite.rateLimits);
  await sqlite.close();
  if (POSTGRES_SKIP_REASON) {
    report.postgres = `skipped: ${POSTGRES_SKIP_REASON}`;
  } else {
    const pg = await startPostgres();
    try {
      const store = await openPgStore({ url: await pg.createDatabase(), dataDir: dir, env: {}, poolSize: 4 });
      report.postgres = await phases(store.rateLimits);
      await store.close();
    } finally {
      pg.destroy();
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
report.loadavg_1m_after = loadavg()[0];
console.log(JSON.stringify(report, null, 2));
