// The store health probe behind Status-Server and /readyz: it answers from the last write probe,
// flips when a write fails and back when one succeeds, logs each transition once, and never
// overlaps a probe still running.

import { describe, expect, test } from "bun:test";
import { StoreHealth } from "../../../src/store/health.ts";

function fakeStore() {
  const s = {
    ok: true as boolean | "throw",
    calls: 0,
    gate: undefined as Promise<void> | undefined,
    async writable() {
      s.calls++;
      if (s.gate) await s.gate;
      if (s.ok === "throw") throw new Error("down");
      return s.ok;
    },
  };
  return s;
}

describe("StoreHealth", () => {
  test("ok follows the last probe; each transition is logged once; a healthy start logs nothing", async () => {
    const store = fakeStore();
    const lines: string[] = [];
    const h = new StoreHealth(store, { intervalMs: 60_000, log: (_level, event) => lines.push(event) });
    expect(h.ok).toBe(false);
    await h.start();
    expect(h.ok).toBe(true);
    expect(lines).toEqual([]);
    store.ok = false;
    expect(await h.probe()).toBe(false);
    expect(h.ok).toBe(false);
    store.ok = "throw";
    expect(await h.probe()).toBe(false);
    store.ok = true;
    expect(await h.probe()).toBe(true);
    expect(h.ok).toBe(true);
    expect(lines).toEqual(["store.unwritable", "store.writable"]);
    h.stop();
  });

  test("an unwritable store at start is logged; a probe in flight is not overlapped", async () => {
    const store = fakeStore();
    store.ok = false;
    const lines: string[] = [];
    const h = new StoreHealth(store, { intervalMs: 60_000, log: (_level, event) => lines.push(event) });
    await h.start();
    expect(lines).toEqual(["store.unwritable"]);
    let open!: () => void;
    store.gate = new Promise<void>((r) => (open = r));
    store.ok = true;
    const first = h.probe();
    expect(await h.probe()).toBe(false); // the running probe is not doubled: the last result stands
    expect(store.calls).toBe(2);
    open();
    expect(await first).toBe(true);
    expect(h.ok).toBe(true);
    h.stop();
  });
});
