// The audit bus's store subscriber: one append per event-loop turn, what is excluded is only
// counted per minute, the per-second cap and the bounded queue count what they leave out, a failing
// store never throws into the emitter, and the record's columns and fields (no secret field names).

import { describe, expect, test } from "bun:test";
import type { AuditEvent } from "../../../src/audit/events.ts";
import { AUDIT_QUEUE_MAX, auditRecordOf, AuditStoreSink, outcomeOf } from "../../../src/audit/store-sink.ts";
import type { AuditLogRepo, AuthMinute, NewAuditRecord } from "../../../src/store/types.ts";

const T0 = 1_700_000_000_000;

function fakeRepo(opts: { fail?: boolean; hold?: Promise<void> } = {}) {
  const batches: NewAuditRecord[][] = [];
  const counts: AuthMinute[][] = [];
  const repo: AuditLogRepo = {
    async append(records) {
      if (opts.hold) await opts.hold;
      if (opts.fail) throw new Error("down");
      batches.push([...records]);
    },
    async addCounts(c) {
      if (opts.fail) throw new Error("down");
      counts.push([...c]);
    },
    list: async () => [],
    minutes: async () => [],
    prune: async () => 0,
  };
  return { repo, batches, counts };
}

const failure = (user: string): AuditEvent => ({ type: "auth.failure", channel: "radius", client: "vpn", user, reason: "bad_password" });
const success = (user: string): AuditEvent => ({ type: "auth.success", channel: "radius", client: "vpn", user, factors: ["password"] });
const turn = () => new Promise((r) => setImmediate(r));

describe("AuditStoreSink", () => {
  test("the events of one turn are one append; auth.success is counted per minute, not stored", async () => {
    const { repo, batches, counts } = fakeRepo();
    const unstored: string[] = [];
    const sink = new AuditStoreSink({ repo, node: "h:1", exclude: ["auth.success", "auth.challenge"], maxPerSecond: 1000, now: () => T0, onUnstored: (r, n) => unstored.push(`${r}:${n}`) });
    for (let i = 0; i < 5; i++) sink.push(failure(`u${i}`));
    sink.push(success("carol"));
    sink.push(success("dave"));
    expect(batches).toHaveLength(0); // nothing is written in the emitting turn
    await turn();
    await turn();
    expect(batches).toHaveLength(1);
    expect(batches[0]!.map((r) => r.user)).toEqual(["u0", "u1", "u2", "u3", "u4"]);
    expect(batches[0]![0]).toEqual({ at: T0, event: "auth.failure", actor: null, user: "u0", client: "vpn", outcome: "reject", node: "h:1", fields: { channel: "radius", client: "vpn", user: "u0", reason: "bad_password" } });
    await sink.flushCounts();
    const minute = Math.floor(T0 / 60_000) * 60_000;
    expect(counts).toEqual([[{ minute, outcome: "accept", n: 2 }, { minute, outcome: "reject", n: 5 }]]);
    expect(unstored).toEqual([]);
  });

  test("beyond max_per_second only admin.* and ui.* are stored; the rest is counted as rate", async () => {
    const { repo, batches } = fakeRepo();
    const unstored: Record<string, number> = {};
    const sink = new AuditStoreSink({ repo, node: "h", exclude: [], maxPerSecond: 3, now: () => T0, onUnstored: (r, n) => void (unstored[r] = (unstored[r] ?? 0) + n) });
    for (let i = 0; i < 10; i++) sink.push(failure(`u${i}`));
    sink.push({ type: "admin.user_unlocked", user: "u1", cleared: true, by: "ops" });
    await sink.flush();
    expect(batches.flat().map((r) => r.event)).toEqual(["auth.failure", "auth.failure", "auth.failure", "admin.user_unlocked"]);
    expect(batches.flat().at(-1)).toMatchObject({ actor: "ops", user: "u1", outcome: null });
    expect(unstored).toEqual({ rate: 7 });
  });

  test("a store that is down: the emitter never throws, the batch is counted as store, the error reported once", async () => {
    const { repo } = fakeRepo({ fail: true });
    const unstored: Record<string, number> = {};
    const errors: unknown[] = [];
    const sink = new AuditStoreSink({ repo, node: "h", exclude: [], maxPerSecond: 1000, now: () => T0, onUnstored: (r, n) => void (unstored[r] = (unstored[r] ?? 0) + n), onError: (e) => errors.push(e) });
    for (let i = 0; i < 4; i++) expect(() => sink.push(failure("x"))).not.toThrow();
    await sink.flush();
    for (let i = 0; i < 2; i++) sink.push(failure("y"));
    await sink.flush();
    expect(unstored).toEqual({ store: 6 });
    expect(errors).toHaveLength(1);
  });

  test("a slow store: the queue is bounded, and what it cannot hold is counted as queue", async () => {
    let release!: () => void;
    const { repo, batches } = fakeRepo({ hold: new Promise<void>((r) => (release = r)) });
    const unstored: Record<string, number> = {};
    const sink = new AuditStoreSink({ repo, node: "h", exclude: [], maxPerSecond: 1_000_000, now: () => T0, onUnstored: (r, n) => void (unstored[r] = (unstored[r] ?? 0) + n) });
    sink.push(failure("first"));
    await turn(); // the first append is now waiting on the store
    for (let i = 0; i < AUDIT_QUEUE_MAX + 25; i++) sink.push(failure("x"));
    expect(unstored).toEqual({ queue: 25 });
    release();
    await sink.flush();
    expect(batches.flat()).toHaveLength(1 + AUDIT_QUEUE_MAX);
  });

  test("records: the actor of admin.*, ui.* and Magic Link events; outcomes; secret field names never stored", () => {
    expect(auditRecordOf({ type: "ui.signed_in", account: "root1", role: "root", client: "127.0.0.1" }, T0, "h")).toMatchObject({ actor: "root1", user: null, client: "127.0.0.1", outcome: "ok" });
    expect(auditRecordOf({ type: "magiclink.call", key: "web", endpoint: "default", client: "10.0.0.1", code: "OK" }, T0, "h")).toMatchObject({ actor: "web", client: "10.0.0.1" });
    expect(auditRecordOf({ type: "auth.failure", channel: "radius", client: "vpn", userHash: "ab12", reason: "unknown_user" }, T0, "h")).toMatchObject({ user: null, fields: { userHash: "ab12" } });
    const sneaky = { type: "admin.delivery_test", ok: true, by: "k", password: "hunter2", Secret: "s", seed: "x" } as unknown as AuditEvent;
    const r = auditRecordOf(sneaky, T0, "h");
    expect(r.fields).toEqual({ ok: true, by: "k" });
    expect(r.outcome).toBe("ok");
    expect(outcomeOf({ type: "approval.answered", id: "a", kind: "radius", client: "vpn", user: "u", state: "approved", wrong_number: false })).toBe("approved");
    expect(outcomeOf({ type: "admin.client_tested", client: "vpn", user: "u", outcome: "challenge", by: "k" })).toBe("challenge");
    expect(outcomeOf({ type: "auth.step", channel: "radius", client: "vpn", user: "u", factor: "sms", result: "skipped", reason: "no_phone" })).toBe("skipped");
  });
});
