// The waiter hub with a manual clock and schedule: notify, deadline, abort, and the store poll for
// answers committed elsewhere; one shared timer, stopped when nobody waits.

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { WaiterHub } from "../../../src/magiclink/waiters.ts";
import type { SqliteStore } from "../../../src/store/sqlite/store.ts";
import type { MagicLinkSession } from "../../../src/store/types.ts";
import { cleanup, openIn, tempDir } from "../store/helpers.ts";

const T0 = 1_700_000_000_000;
let dir: string;
let store: SqliteStore;
let clock: number;
let timers: number;
let hub: WaiterHub;

beforeEach(async () => {
  dir = tempDir();
  store = await openIn(dir);
  clock = T0;
  timers = 0;
  hub = new WaiterHub(store.magicLinks, {
    now: () => clock,
    pollMs: 1000,
    schedule: () => {
      timers++;
      return () => timers--;
    },
  });
});
afterEach(async () => {
  await store.close();
  cleanup(dir);
});

async function session(id: string, ttlMs = 60_000): Promise<void> {
  const s: MagicLinkSession = { id, linkHash: `h-${id}`, msisdn: "+46701234567", endpoint: "default", apiKeyId: 1, status: "pending", texts: "{}", numberMatch: null, createdAt: clock, expiresAt: clock + ttlMs, answeredAt: null };
  await store.magicLinks.create(s);
}

describe("waiter hub", () => {
  test("notify wakes the waiter with the committed status; one timer for many waiters, stopped when empty", async () => {
    await session("a");
    await session("b");
    const a = hub.wait("a", clock + 60_000);
    const b = hub.wait("b", clock + 60_000);
    expect(timers).toBe(1);
    expect(hub.notify("a", "accepted")).toBe(true);
    expect(await a).toBe("accepted");
    expect(timers).toBe(1);
    hub.notify("b", "rejected");
    expect(await b).toBe("rejected");
    expect(timers).toBe(0);
    expect(hub.notify("b", "accepted")).toBe(false);
  });

  test("a second waiter for one session is a programming error", async () => {
    await session("a");
    void hub.wait("a", clock + 1000);
    expect(() => hub.wait("a", clock + 1000)).toThrow(TypeError);
    hub.closeAll();
  });

  test("the deadline expires the session in the store", async () => {
    await session("a", 15_000);
    const a = hub.wait("a", clock + 15_000);
    clock += 14_999;
    await hub.tick();
    expect(hub.size).toBe(1);
    clock += 1;
    await hub.tick();
    expect(await a).toBe("expired");
    expect((await store.magicLinks.get("a"))!.status).toBe("expired");
  });

  test("an answer committed by another process is found by the poll", async () => {
    await session("a");
    const a = hub.wait("a", clock + 60_000);
    expect(await store.magicLinks.answer("a", "accepted", clock)).toBe(true);
    clock += 1000;
    await hub.tick();
    expect(await a).toBe("accepted");
  });

  test("an abort answers the session cancelled, unless an answer was committed first", async () => {
    await session("a");
    await session("b");
    const ca = new AbortController();
    const cb = new AbortController();
    const a = hub.wait("a", clock + 60_000, ca.signal);
    const b = hub.wait("b", clock + 60_000, cb.signal);
    await store.magicLinks.answer("b", "accepted", clock);
    ca.abort();
    cb.abort();
    expect(await a).toBe("cancelled");
    expect(await b).toBe("accepted");
    expect((await store.magicLinks.get("a"))!.status).toBe("cancelled");
  });

  test("an already aborted signal cancels at once", async () => {
    await session("a");
    const c = new AbortController();
    c.abort();
    expect(await hub.wait("a", clock + 60_000, c.signal)).toBe("cancelled");
  });
});
