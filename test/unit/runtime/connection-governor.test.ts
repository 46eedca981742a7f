// ConnectionGovernor: admission caps (overall, per address, proxies exempt) and phase deadlines.

import { describe, expect, test } from "bun:test";
import { ConnectionGovernor, type ConnectionLimits } from "../../../src/runtime/connection-governor.ts";

const limits: ConnectionLimits = { maxConnections: 4, maxConnectionsPerAddress: 2, headerTimeoutMs: 10_000, bodyTimeoutMs: 5_000, responseTimeoutMs: 30_000 };

function admitted(g: ConnectionGovernor, address: string, now = 0, exempt = false): number {
  const r = g.admit(address, now, { exempt });
  if (!("id" in r)) throw new Error(`refused: ${r.refused}`);
  return r.id;
}

describe("admission", () => {
  test("per address first, then overall; a released slot is free again", () => {
    const g = new ConnectionGovernor(limits);
    const a1 = admitted(g, "192.0.2.1");
    admitted(g, "192.0.2.1");
    expect(g.admit("192.0.2.1", 0)).toEqual({ refused: "per_address" });
    admitted(g, "192.0.2.2");
    admitted(g, "192.0.2.3");
    expect(g.size).toBe(4);
    expect(g.admit("192.0.2.9", 0)).toEqual({ refused: "overall" });
    g.release(a1);
    g.release(a1); // twice is harmless
    expect(g.countFrom("192.0.2.1")).toBe(1);
    expect(g.size).toBe(3);
    admitted(g, "192.0.2.1");
    expect(g.countFrom("192.0.2.1")).toBe(2);
  });

  test("an exempt peer (a trusted proxy) passes the per-address cap but not the overall one", () => {
    const g = new ConnectionGovernor(limits);
    for (let i = 0; i < 4; i++) admitted(g, "10.0.0.1", 0, true);
    expect(g.admit("10.0.0.1", 0, { exempt: true })).toEqual({ refused: "overall" });
  });

  test.each([
    { maxConnections: 0, maxConnectionsPerAddress: 1 },
    { maxConnections: 1, maxConnectionsPerAddress: 0 },
  ])("limits below 1 are a programming error: %o", (bad) => {
    expect(() => new ConnectionGovernor({ ...limits, ...bad })).toThrow(TypeError);
  });
});

describe("deadlines", () => {
  test("header deadline from accept; body and response phases have their own; handler and stream have none", () => {
    const g = new ConnectionGovernor(limits);
    const id = admitted(g, "192.0.2.1", 1000);
    expect(g.sweep(10_999)).toEqual([]);
    expect(g.sweep(11_000)).toEqual([{ id, phase: "header", address: "192.0.2.1" }]);
    g.enter(id, "body", 11_000);
    expect(g.sweep(15_999)).toEqual([]);
    expect(g.sweep(16_000)).toEqual([{ id, phase: "body", address: "192.0.2.1" }]);
    g.enter(id, "handler", 16_000);
    expect(g.sweep(16_000 + 3_600_000)).toEqual([]);
    g.enter(id, "response", 20_000);
    expect(g.sweep(49_999)).toEqual([]);
    expect(g.sweep(50_000)).toEqual([{ id, phase: "response", address: "192.0.2.1" }]);
    g.enter(id, "stream", 50_000);
    expect(g.sweep(1e12)).toEqual([]);
    expect(g.phaseOf(id)).toBe("stream");
    g.release(id);
    expect(g.phaseOf(id)).toBeUndefined();
    g.enter(id, "header", 0); // a released ID is ignored
    expect(g.sweep(1e12)).toEqual([]);
  });
});
