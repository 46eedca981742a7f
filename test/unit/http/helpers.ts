// Test helpers for the HTTP layer: a real SQLite store in a temp dir and HttpDeps with a frozen clock.

import { createMetrics } from "../../../src/audit/metrics.ts";
import type { Engine } from "../../../src/auth/engine.ts";
import { loadConfig, type Config } from "../../../src/config/index.ts";
import type { HttpDeps, Readiness } from "../../../src/http/types.ts";
import type { SqliteStore } from "../../../src/store/sqlite/store.ts";
import { openIn, tempDir } from "../store/helpers.ts";

/** Config with built-in defaults plus `overrides` applied to sections (no file, empty env). */
export function testConfig(dataDir: string, patch: (c: Config) => void = () => {}): Config {
  const { config } = loadConfig({ env: {}, dataDir, systemFile: `${dataDir}/none.toml` });
  patch(config);
  return config;
}

/** A counter-based "random" source: distinct, predictable bytes. */
export function countingRandom(): (n: number) => Uint8Array {
  let i = 0;
  return (n) => new Uint8Array(n).map(() => i++ & 0xff);
}

export async function testDeps(patch: Partial<HttpDeps> & { configPatch?: (c: Config) => void } = {}): Promise<{ deps: HttpDeps; store: SqliteStore; dir: string; logs: unknown[][] }> {
  const dir = tempDir();
  const store = await openIn(dir);
  const logs: unknown[][] = [];
  const { configPatch, ...rest } = patch;
  const deps: HttpDeps = {
    config: testConfig(dir, configPatch),
    store,
    engine: {} as Engine,
    audit: () => {},
    metrics: createMetrics(),
    now: () => 1_700_000_000_000,
    random: countingRandom(),
    log: (...args) => void logs.push(args),
    ready: async (): Promise<Readiness> => ({ ok: true, checks: { store_writable: true } }),
    tls: true,
    ...rest,
  };
  return { deps, store, dir, logs };
}
