// serve's listener limits: [http] and [admin] caps and deadlines, and the public cap lowered when
// the open-file limit cannot hold both listeners plus a reserve.

import { describe, expect, test } from "bun:test";
import { listenerLimits } from "../../../src/cli/serve-http.ts";
import type { Config } from "../../../src/config/index.ts";
import { testConfig } from "../http/helpers.ts";

const config = (patch: (c: Config) => void = () => {}) => testConfig("/nonexistent-portcullis-test", patch);

describe("listenerLimits", () => {
  test("the defaults: public 4096 / 128 per address, admin 128 / 32; header, body and response deadlines", () => {
    const l = listenerLimits(config(), 65_536);
    expect(l.lowered).toBeUndefined();
    expect(l.public).toEqual({ maxConnections: 4096, maxConnectionsPerAddress: 128, headerTimeoutMs: 10_000, bodyTimeoutMs: 5_000, responseTimeoutMs: 30_000, maxRequestBodySize: 65_536 });
    expect(l.admin).toEqual({ maxConnections: 128, maxConnectionsPerAddress: 32, headerTimeoutMs: 10_000, bodyTimeoutMs: 60_000, responseTimeoutMs: 60_000, maxRequestBodySize: 8 * 1024 * 1024 });
  });

  test.each([
    { fileLimit: 1024, expected: 1024 - 128 - 256 },
    { fileLimit: 4096 + 128 + 256, expected: 4096 },
    { fileLimit: 4096 + 128 + 255, expected: 4095 },
    { fileLimit: 100, expected: 16 },
  ])("open-file limit $fileLimit → public cap $expected", ({ fileLimit, expected }) => {
    const l = listenerLimits(config(), fileLimit);
    expect(l.public.maxConnections).toBe(expected);
    expect(l.public.maxConnectionsPerAddress).toBe(Math.min(128, expected));
    expect(l.lowered === undefined).toBe(expected === 4096);
  });

  test("an unknown open-file limit leaves the configured caps", () => {
    const l = listenerLimits(config((c) => {
        c.http.max_connections = 20_000;
        c.http.max_connections_per_address = 20_000;
      }), undefined);
    expect(l.public.maxConnections).toBe(20_000);
    expect(l.public.maxConnectionsPerAddress).toBe(20_000);
  });
});
