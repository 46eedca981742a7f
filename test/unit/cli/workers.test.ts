// cli/workers.ts: how many workers, how a worker is started, and how their counters add up.

import { expect, test } from "bun:test";
import { createMetrics } from "../../../src/audit/metrics.ts";
import { acceptedRuntimeEnv, DEFAULT_MAX_WORKERS, runtimeAccepts, selfCommand, sumDumps, sumSnapshots, WORKER_ENV, workerCount, workerEnv, type RADIUSSnapshot } from "../../../src/cli/workers.ts";

test("workerCount: an explicit number wins; 0 means the CPUs, at least 1 and at most 8", () => {
  expect(workerCount(3, 16)).toBe(3);
  expect(workerCount(64, 2)).toBe(64);
  expect(workerCount(0, 2)).toBe(2);
  expect(workerCount(0, 1)).toBe(1);
  expect(workerCount(0, 0)).toBe(1);
  expect(workerCount(0, 32)).toBe(DEFAULT_MAX_WORKERS);
  expect(DEFAULT_MAX_WORKERS).toBe(8);
});

test("workerEnv: the warm-up thread off unless the operator set it, the supervisor's environment, the worker's number", () => {
  expect(workerEnv({ PATH: "/bin" }, 2)).toEqual({ BUN_JSC_useWarmUpMarkedBlocks: "false", PATH: "/bin", [WORKER_ENV]: "2" });
  expect(workerEnv({ BUN_JSC_useWarmUpMarkedBlocks: "true" }, 1).BUN_JSC_useWarmUpMarkedBlocks).toBe("true");
  expect(workerEnv({ [WORKER_ENV]: "9" }, 1)[WORKER_ENV]).toBe("1");
});

test("acceptedRuntimeEnv: this runtime accepts the workers' options (Bun refuses to start with an unknown BUN_JSC_ option)", () => {
  // Under Bun the check runs this executable with the options; elsewhere (Deno) workers do not run.
  if (typeof Bun !== "undefined") {
    expect(acceptedRuntimeEnv()).toEqual({ BUN_JSC_useWarmUpMarkedBlocks: "false" });
    // An option this Bun does not know is detected, not passed on.
    expect(runtimeAccepts([process.execPath, "-e", "0"], { BUN_JSC_portcullisNoSuchOption: "false" })).toBe(false);
    expect(runtimeAccepts([process.execPath, "-e", "0"], { BUN_JSC_useWarmUpMarkedBlocks: "false" })).toBe(true);
  } else {
    expect(acceptedRuntimeEnv()).toEqual({});
  }
});

test("selfCommand: the compiled binary with the same arguments, or the runtime with the script", () => {
  expect(selfCommand(["bun", "/$bunfs/root/portcullis", "--data-dir", "/d", "serve"], "/usr/local/bin/portcullis", "/$bunfs/root/portcullis")).toEqual([
    "/usr/local/bin/portcullis",
    "--data-dir",
    "/d",
    "serve",
  ]);
  expect(selfCommand(["/usr/bin/bun", "/src/main.ts", "serve"], "/usr/bin/bun", "/src/main.ts")).toEqual(["/usr/bin/bun", "/src/main.ts", "serve"]);
});

const snapshot = (n: number, dropped: RADIUSSnapshot["dropped"] = {}): RADIUSSnapshot => ({
  received: n,
  accepted: n,
  rejected: 0,
  challenged: 0,
  statusServer: 1,
  duplicates: 2 * n,
  dropped,
  rcvbufDrops: 0,
  dedupeEntries: n,
});

test("sumSnapshots adds every counter and each drop reason", () => {
  const s = sumSnapshots([snapshot(1, { malformed: 1 }), snapshot(2, { malformed: 2, unknown_client: 5 })]);
  expect(s).toEqual({ received: 3, accepted: 3, rejected: 0, challenged: 0, statusServer: 2, duplicates: 6, dropped: { malformed: 3, unknown_client: 5 }, rcvbufDrops: 0, dedupeEntries: 3 });
});

test("sumDumps adds series of the same label set, counters and histograms alike", () => {
  const a = createMetrics();
  const b = createMetrics();
  a.deliveries.inc({ channel: "sms", result: "ok" }, 2);
  b.deliveries.inc({ channel: "sms", result: "ok" }, 3);
  b.deliveries.inc({ channel: "email", result: "ok" });
  a.radiusRequestSeconds.observe({ result: "accept" }, 0.002);
  b.radiusRequestSeconds.observe({ result: "accept" }, 0.2);
  const merged = createMetrics();
  const text = merged.registry.render([sumDumps([a.registry.dump(), b.registry.dump()])]);
  expect(text).toContain('portcullis_deliveries_total{channel="sms",result="ok"} 5');
  expect(text).toContain('portcullis_deliveries_total{channel="email",result="ok"} 1');
  expect(text).toContain('portcullis_radius_request_duration_seconds_count{result="accept"} 2');
  expect(text).toContain('portcullis_radius_request_duration_seconds_bucket{result="accept",le="0.0025"} 1');
});
