// BoundedPool mechanics with in-memory sessions and a frozen clock: the bound, waiting, reuse, and lifetime limits.
import { describe, expect, test } from "bun:test";
import { setTimeout as sleep } from "node:timers/promises";
import { BoundedPool, type PoolLimits } from "../../../../src/directory/ldap/bounded-pool.ts";

type Session = { id: number; gone: boolean; closed: boolean };

function fixture(limits: Partial<PoolLimits> = {}, { failOpen = false, openDelayMs = 0, realClock = false } = {}) {
  let now = 1_000_000;
  let next = 0;
  const sessions: Session[] = [];
  const pool = new BoundedPool<Session>(
    {
      open: async () => {
        if (openDelayMs > 0) await sleep(openDelayMs);
        if (failOpen) throw new Error("ECONNREFUSED");
        const s = { id: ++next, gone: false, closed: false };
        sessions.push(s);
        return s;
      },
      alive: (s) => !s.gone,
      close: async (s) => {
        s.closed = true;
      },
      unavailable: (why) => Object.assign(new Error(`unavailable: ${why}`), { code: "directory_unavailable" }),
    },
    { max: 2, maxUses: 1000, maxAgeMs: 300_000, maxIdleMs: 60_000, waitMs: 200, sweep: false, ...limits },
    realClock ? Date.now : () => now,
  );
  return { pool, sessions, advance: (ms: number) => (now += ms) };
}

describe("BoundedPool", () => {
  test("a released session is reused; reused is reported", async () => {
    const { pool } = fixture();
    const a = await pool.acquire();
    expect(a.reused).toBe(false);
    pool.release(a.conn);
    const b = await pool.acquire();
    expect(b).toEqual({ conn: a.conn, reused: true });
    pool.release(b.conn);
    expect(pool.stat()).toEqual({ opened: 1, discarded: 0, leases: 2, idle: 1, busy: 0, inFlight: 0 });
  });

  test("never more than max sessions: a third caller waits for a release", async () => {
    const { pool } = fixture({ max: 2 });
    const a = await pool.acquire();
    const b = await pool.acquire();
    let got: Session | undefined;
    const waiting = pool.acquire().then((l) => (got = l.conn));
    await sleep(10);
    expect(got).toBeUndefined();
    pool.release(a.conn);
    await waiting;
    expect(got).toBe(a.conn);
    expect(pool.stat()).toMatchObject({ opened: 2, busy: 2, idle: 0 });
    pool.release(b.conn);
    pool.release(a.conn);
  });

  test("a waiter gives up after waitMs with the pool's unavailable error", async () => {
    const { pool } = fixture({ max: 1, waitMs: 50 });
    const a = await pool.acquire();
    await expect(pool.acquire()).rejects.toThrow("unavailable: busy");
    pool.release(a.conn);
    // The session that came back after the waiter gave up is idle, not lost.
    expect(pool.stat()).toMatchObject({ idle: 1, busy: 0 });
  });

  test("a session opened for a waiter that gave up meanwhile stays in the pool", async () => {
    const { pool } = fixture({ max: 1, waitMs: 20 }, { openDelayMs: 80 });
    const a = await pool.acquire();
    const waiting = pool.acquire();
    pool.drop(a.conn); // starts opening a replacement for the waiter, which gives up first
    await expect(waiting).rejects.toThrow("unavailable: busy");
    for (let i = 0; i < 50 && pool.stat().idle === 0; i++) await sleep(10);
    expect(pool.stat()).toMatchObject({ opened: 2, discarded: 1, idle: 1, busy: 0 });
  });

  test("a dropped session is closed and a waiter gets a new one", async () => {
    const { pool, sessions } = fixture({ max: 1 });
    const a = await pool.acquire();
    const waiting = pool.acquire();
    pool.drop(a.conn);
    const b = await waiting;
    expect(b.conn).not.toBe(a.conn);
    expect(b.reused).toBe(false);
    expect(sessions[0]!.closed).toBe(true);
    expect(pool.stat()).toMatchObject({ opened: 2, discarded: 1, busy: 1 });
  });

  test("a session the server closed is discarded on acquire, never handed out", async () => {
    const { pool } = fixture();
    const a = await pool.acquire();
    pool.release(a.conn);
    a.conn.gone = true;
    const b = await pool.acquire();
    expect(b.conn).not.toBe(a.conn);
    expect(a.conn.closed).toBe(true);
  });

  test.each([
    ["maxUses", { maxUses: 3 }, 0, 3],
    ["maxAgeMs", { maxAgeMs: 1000 }, 1000, 1],
    ["maxIdleMs", { maxIdleMs: 500 }, 500, 1],
  ] as const)("%s retires a session", async (_name, limits, wait, leasesBeforeRetired) => {
    const { pool, advance } = fixture(limits);
    const first = (await pool.acquire()).conn;
    pool.release(first);
    for (let i = 1; i < leasesBeforeRetired; i++) {
      const l = await pool.acquire();
      expect(l.conn).toBe(first);
      pool.release(l.conn);
    }
    advance(wait);
    const next = await pool.acquire();
    expect(next.conn).not.toBe(first);
    expect(first.closed).toBe(true);
    expect(pool.stat()).toMatchObject({ opened: 2, discarded: 1 });
  });

  test("a session just under its limits is reused", async () => {
    const { pool, advance } = fixture({ maxAgeMs: 1000, maxIdleMs: 500 });
    const first = (await pool.acquire()).conn;
    pool.release(first);
    advance(499);
    expect((await pool.acquire()).conn).toBe(first);
  });

  test("an open failure reaches the caller and leaves no slot taken", async () => {
    const { pool } = fixture({ max: 1 }, { failOpen: true });
    await expect(pool.acquire()).rejects.toThrow("ECONNREFUSED");
    await expect(pool.acquire()).rejects.toThrow("ECONNREFUSED");
    expect(pool.stat()).toEqual({ opened: 0, discarded: 0, leases: 0, idle: 0, busy: 0, inFlight: 0 });
  });

  test("close fails waiters, closes every session, and refuses later callers", async () => {
    const { pool, sessions } = fixture({ max: 1 });
    const a = await pool.acquire();
    const waiting = pool.acquire();
    await pool.close();
    await expect(waiting).rejects.toThrow("unavailable: closed");
    await expect(pool.acquire()).rejects.toThrow("unavailable: closed");
    expect(sessions.every((s) => s.closed)).toBe(true);
    pool.release(a.conn); // harmless after close
  });

  test("max below 1 is a programmer error", () => {
    expect(() => fixture({ max: 0 })).toThrow(TypeError);
  });

  test("pipelined: callers share the fullest session with room, a new session only when all are full", async () => {
    const { pool } = fixture({ max: 2, maxLeases: 3 });
    const ls = [await pool.acquire(), await pool.acquire(), await pool.acquire()];
    expect(new Set(ls.map((l) => l.conn)).size).toBe(1);
    expect(ls.map((l) => l.reused)).toEqual([false, true, true]);
    expect(pool.stat()).toMatchObject({ opened: 1, busy: 1, inFlight: 3 });
    const fourth = await pool.acquire();
    expect(fourth.conn).not.toBe(ls[0]!.conn);
    pool.release(ls[0]!.conn);
    // Both sessions have room: the fuller one (2 of 3) is chosen over the emptier one (1 of 3).
    expect((await pool.acquire()).conn).toBe(ls[0]!.conn);
    expect(pool.stat()).toMatchObject({ opened: 2, busy: 2, inFlight: 4 });
  });

  test("pipelined: a burst waits for the first session and then fills it up to maxLeases", async () => {
    const { pool } = fixture({ max: 1, maxLeases: 4 }, { openDelayMs: 20 });
    const all = await Promise.all(Array.from({ length: 4 }, () => pool.acquire()));
    expect(new Set(all.map((l) => l.conn)).size).toBe(1);
    expect(pool.stat()).toMatchObject({ opened: 1, inFlight: 4 });
    let fifth: Session | undefined;
    const waiting = pool.acquire().then((l) => (fifth = l.conn));
    await sleep(10);
    expect(fifth).toBeUndefined();
    pool.release(all[0]!.conn);
    await waiting;
    expect(fifth).toBe(all[0]!.conn);
    expect(pool.stat()).toMatchObject({ opened: 1, inFlight: 4 });
  });

  test("pipelined: a dropped session is closed once, the other operations' release and drop are no-ops", async () => {
    const { pool, sessions } = fixture({ max: 1, maxLeases: 3 });
    const [a, b, c] = [await pool.acquire(), await pool.acquire(), await pool.acquire()];
    pool.drop(a.conn);
    expect(sessions[0]!.closed).toBe(true);
    pool.drop(b.conn);
    pool.release(c.conn);
    expect(pool.stat()).toMatchObject({ opened: 1, discarded: 1, idle: 0, busy: 0, inFlight: 0 });
    const next = await pool.acquire();
    expect(next.conn).not.toBe(a.conn);
    expect(next.reused).toBe(false);
  });

  test("pipelined: a worn-out session takes no new operation and is closed when its last one is back", async () => {
    const { pool } = fixture({ max: 2, maxLeases: 4, maxUses: 2 });
    const [a, b] = [await pool.acquire(), await pool.acquire()];
    const c = await pool.acquire();
    expect(c.conn).not.toBe(a.conn);
    pool.release(a.conn);
    expect(a.conn.closed).toBe(false);
    pool.release(b.conn);
    expect(a.conn.closed).toBe(true);
    expect(pool.stat()).toMatchObject({ discarded: 1, busy: 1, inFlight: 1 });
  });

  test("a released lease goes to a waiter even while the session still carries others", async () => {
    const { pool } = fixture({ max: 1, maxLeases: 2, waitMs: 1000 });
    const [a] = [await pool.acquire(), await pool.acquire()];
    const waiting = pool.acquire();
    pool.release(a.conn);
    expect((await waiting).conn).toBe(a.conn);
    expect(pool.stat()).toMatchObject({ inFlight: 2, idle: 0 });
  });

  test("sweep closes sessions idle for maxIdleMs and keeps the others", async () => {
    const { pool, sessions, advance } = fixture({ max: 3, maxIdleMs: 500 });
    const [a, b, c] = [await pool.acquire(), await pool.acquire(), await pool.acquire()];
    pool.release(a.conn);
    advance(300);
    pool.release(b.conn);
    expect(pool.sweep()).toBe(0);
    advance(200);
    expect(pool.sweep()).toBe(1); // a: idle 500 ms; b: 200 ms; c: busy
    expect(sessions.map((s) => s.closed)).toEqual([true, false, false]);
    expect(pool.stat()).toMatchObject({ discarded: 1, idle: 1, busy: 1 });
    pool.release(c.conn);
  });

  test("the sweep timer closes an idle session without any further call", async () => {
    const { pool, sessions } = fixture({ max: 1, maxIdleMs: 50, sweep: true }, { realClock: true });
    pool.release((await pool.acquire()).conn);
    // The sweep runs every max(1 s, maxIdleMs / 4).
    for (let i = 0; i < 60 && !sessions[0]!.closed; i++) await sleep(50);
    expect(sessions[0]!.closed).toBe(true);
    expect(pool.stat()).toMatchObject({ opened: 1, discarded: 1, idle: 0 });
    await pool.close();
  });

  test("maxLeases below 1 is a programmer error", () => {
    expect(() => fixture({ maxLeases: 0 })).toThrow(TypeError);
  });
});
