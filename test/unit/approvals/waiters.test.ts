// The waiter hub with a manual clock and schedule: notify, deadline, abort, and the store poll for
// answers committed elsewhere; one shared timer, stopped when nobody waits; joined waiters and holds.

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { WaiterHub } from "../../../src/approvals/waiters.ts";
import type { SqliteStore } from "../../../src/store/sqlite/store.ts";
import type { Approval } from "../../../src/store/types.ts";
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
  hub = new WaiterHub(store.approvals, {
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
  const s: Approval = { id, kind: "magic-link", user: null, client: "default", source: null, msisdn: "+46701234567", apiKeyId: 1, state: "pending", channel: null, linkHash: `h-${id}`, texts: "{}", numberMatch: null, createdAt: clock, expiresAt: clock + ttlMs, answeredAt: null };
  await store.approvals.create(s);
}

describe("waiter hub", () => {
  test("notify wakes the waiter with the committed status; one timer for many waiters, stopped when empty", async () => {
    await session("a");
    await session("b");
    const a = hub.wait("a", clock + 60_000);
    const b = hub.wait("b", clock + 60_000);
    expect(timers).toBe(1);
    expect(hub.notify("a", "approved")).toBe(true);
    expect(await a).toBe("approved");
    expect(timers).toBe(1);
    hub.notify("b", "rejected");
    expect(await b).toBe("rejected");
    expect(timers).toBe(0);
    expect(hub.notify("b", "approved")).toBe(false);
  });

  test("a second waiter for one approval is a programming error (unless it joins)", async () => {
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
    expect((await store.approvals.get("a"))!.state).toBe("expired");
  });

  test("an answer committed by another process is found by the poll", async () => {
    await session("a");
    const a = hub.wait("a", clock + 60_000);
    expect(await store.approvals.answer("a", "approved", clock)).toBe(true);
    clock += 1000;
    await hub.tick();
    expect(await a).toBe("approved");
  });

  test("an abort answers the session cancelled, unless an answer was committed first", async () => {
    await session("a");
    await session("b");
    const ca = new AbortController();
    const cb = new AbortController();
    const a = hub.wait("a", clock + 60_000, ca.signal);
    const b = hub.wait("b", clock + 60_000, cb.signal);
    await store.approvals.answer("b", "approved", clock);
    ca.abort();
    cb.abort();
    expect(await a).toBe("cancelled");
    expect(await b).toBe("approved");
    expect((await store.approvals.get("a"))!.state).toBe("cancelled");
  });

  test("an already aborted signal cancels at once", async () => {
    await session("a");
    const c = new AbortController();
    c.abort();
    expect(await hub.wait("a", clock + 60_000, c.signal)).toBe("cancelled");
  });
});

describe("the poll for answers committed elsewhere", () => {
  /** The hub over a repo that counts reads, so a test can see what a poll pass costs. */
  function counted() {
    const reads = { get: 0, answeredSince: [] as number[] };
    const repo = Object.create(store.approvals) as typeof store.approvals;
    repo.get = (id) => {
      reads.get++;
      return store.approvals.get(id);
    };
    repo.answeredSince = (since) => {
      reads.answeredSince.push(since);
      return store.approvals.answeredSince(since);
    };
    const h = new WaiterHub(repo, { now: () => clock, pollMs: 1000, overlapMs: 2000, schedule: () => () => {} });
    return { h, reads };
  }

  test("one query per pass, however many wait: no read per waiter", async () => {
    const { h, reads } = counted();
    const ids = Array.from({ length: 200 }, (_, i) => `s${i}`);
    for (const id of ids) await session(id);
    const waits = ids.map((id) => h.wait(id, clock + 60_000));
    await store.approvals.answer("s7", "rejected", clock);
    for (let pass = 0; pass < 3; pass++) {
      clock += 1000;
      await h.tick();
    }
    expect(reads.answeredSince.length).toBe(3);
    expect(reads.get).toBe(0);
    expect(await waits[7]).toBe("rejected");
    expect(h.size).toBe(199);
    h.closeAll();
  });

  test("each pass reads from the previous pass minus the overlap; the first from when waiting began", async () => {
    const { h, reads } = counted();
    await session("a");
    const start = clock;
    const a = h.wait("a", clock + 60_000);
    clock += 1000;
    await h.tick();
    clock += 1000;
    await h.tick();
    expect(reads.answeredSince).toEqual([start - 2000, start + 1000 - 2000]);
    h.closeAll();
    expect(await a).toBe("cancelled");
    // Idle for an hour, then a new waiter: the read starts at the new wait, not an hour back.
    clock += 3_600_000;
    await session("b");
    const b = h.wait("b", clock + 60_000);
    clock += 1000;
    await h.tick();
    expect(reads.answeredSince.at(-1)).toBe(clock - 1000 - 2000);
    h.closeAll();
    await b;
  });

  test.each([
    ["an answer stamped by a clock 1.5 s behind is found by the poll", -1500, "approved", true],
    ["an answer stamped 3 s behind (past the overlap) is still reported at the deadline", -3000, "approved", false],
  ] as const)("%s", async (_name, skewMs, status, byPoll) => {
    await session("a", 10_000);
    const a = hub.wait("a", clock + 10_000);
    await store.approvals.answer("a", status, clock + skewMs);
    clock += 1000;
    await hub.tick();
    expect(hub.size).toBe(byPoll ? 0 : 1);
    clock += 9000;
    await hub.tick();
    expect(await a).toBe(status);
  });

  test("a store failure in the poll goes to onError and the waiter stays", async () => {
    const errors: unknown[] = [];
    const repo = Object.create(store.approvals) as typeof store.approvals;
    repo.answeredSince = async () => {
      throw new Error("disk gone");
    };
    const h2 = new WaiterHub(repo, { now: () => clock, pollMs: 1000, schedule: () => () => {}, onError: (e) => errors.push(e) });
    await session("a");
    const a = h2.wait("a", clock + 60_000);
    clock += 1000;
    await h2.tick();
    expect(errors.length).toBe(1);
    expect(h2.size).toBe(1);
    expect(h2.notify("a", "approved")).toBe(true);
    expect(await a).toBe("approved");
  });
});

test("a collection is hinted once per 1000 units of work (waits begun and ended, pages)", async () => {
  let hints = 0;
  const h2 = new WaiterHub(store.approvals, { now: () => clock, schedule: () => () => {}, gcHint: () => hints++ });
  for (let i = 0; i < 999; i++) h2.activity();
  expect(hints).toBe(0);
  await session("a");
  const a = h2.wait("a", clock + 60_000);
  expect(hints).toBe(1);
  for (let i = 0; i < 998; i++) h2.activity();
  expect(hints).toBe(1);
  h2.activity();
  h2.notify("a", "approved");
  expect(await a).toBe("approved");
  expect(hints).toBe(2);
});

describe("joined waiters and holds", () => {
  test("joined waiters all get the answer; without join a second waiter is refused", async () => {
    await session("a");
    const first = hub.wait("a", clock + 60_000);
    expect(() => hub.wait("a", clock + 60_000)).toThrow(TypeError);
    const second = hub.wait("a", clock + 60_000, undefined, { join: true });
    expect(hub.size).toBe(2);
    expect(timers).toBe(1);
    expect(hub.notify("a", "rejected")).toBe(true);
    expect([await first, await second]).toEqual(["rejected", "rejected"]);
    expect(hub.size).toBe(0);
    expect(timers).toBe(0);
  });

  test("the expiry ends every joined waiter with one store write and one listener call", async () => {
    const closed: unknown[] = [];
    hub.listen((id, outcome, tag) => closed.push([id, outcome, tag]));
    await session("a", 15_000);
    const waits = [hub.wait("a", clock + 15_000, undefined, { tag: "radius" }), hub.wait("a", clock + 15_000, undefined, { join: true, tag: "radius" })];
    clock += 15_000;
    await hub.tick();
    expect(await Promise.all(waits)).toEqual(["expired", "expired"]);
    expect(closed).toEqual([["a", "expired", "radius"]]);
    expect((await store.approvals.get("a"))!.state).toBe("expired");
  });

  test("a hold that ends first resolves timeout and leaves the approval pending for the others", async () => {
    await session("a", 60_000);
    const held = hub.wait("a", clock + 60_000, undefined, { holdUntil: clock + 25_000 });
    const other = hub.wait("a", clock + 60_000, undefined, { join: true });
    clock += 25_000;
    await hub.tick();
    expect(await held).toBe("timeout");
    expect(hub.size).toBe(1);
    expect((await store.approvals.get("a"))!.state).toBe("pending");
    expect(await store.approvals.answer("a", "approved", clock)).toBe(true);
    hub.notify("a", "approved");
    expect(await other).toBe("approved");
  });

  test("a hold past the approval's expiry changes nothing: the approval expires", async () => {
    await session("a", 10_000);
    const w = hub.wait("a", clock + 10_000, undefined, { holdUntil: clock + 25_000 });
    clock += 10_000;
    await hub.tick();
    expect(await w).toBe("expired");
  });

  test("one joined waiter leaving does not cancel the approval; the last one does, once", async () => {
    const closed: unknown[] = [];
    hub.listen((id, outcome, tag) => closed.push([id, outcome, tag]));
    await session("a");
    const ca = new AbortController();
    const cb = new AbortController();
    const a = hub.wait("a", clock + 60_000, ca.signal, { tag: "radius" });
    const b = hub.wait("a", clock + 60_000, cb.signal, { join: true, tag: "radius" });
    ca.abort();
    expect(await a).toBe("cancelled");
    expect(hub.size).toBe(1);
    expect((await store.approvals.get("a"))!.state).toBe("pending");
    expect(closed).toEqual([]);
    cb.abort();
    expect(await b).toBe("cancelled");
    expect((await store.approvals.get("a"))!.state).toBe("cancelled");
    expect(closed).toEqual([["a", "cancelled", "radius"]]);
  });

  test("an expiry closed by another process is not reported by this hub's listener", async () => {
    const closed: unknown[] = [];
    hub.listen((id, outcome) => closed.push([id, outcome]));
    await session("a", 15_000);
    const a = hub.wait("a", clock + 15_000);
    clock += 15_000;
    expect(await store.approvals.markExpired("a", clock)).toBe(true);
    await hub.tick();
    expect(await a).toBe("expired");
    expect(closed).toEqual([]);
  });
});
