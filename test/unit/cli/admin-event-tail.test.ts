// The server's tail of CLI admin events: typed events on the bus, each once, in order; bad records skipped.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { AuditEvent } from "../../../src/audit/events.ts";
import { AdminEventTail, adminEventOf } from "../../../src/cli/admin-event-tail.ts";
import type { SqliteStore } from "../../../src/store/sqlite/store.ts";
import type { AdminEventRecord, AdminEventRepo } from "../../../src/store/types.ts";
import { cleanup, openIn, tempDir } from "../store/helpers.ts";

const T0 = 1_700_000_000_000;
const record = (type: string, fields: Record<string, unknown>, id = 1): AdminEventRecord => ({ id, at: T0, actor: "cli:alice", type, fields });

describe("adminEventOf", () => {
  test.each([
    [record("admin.user_added", { user: "bob" }), { type: "admin.user_added", user: "bob", by: "cli:alice" }],
    [record("admin.token_state", { token: 7, state: "disabled" }), { type: "admin.token_state", token: 7, state: "disabled", by: "cli:alice" }],
    [record("admin.key_rotated", { keyId: "k2", resealed: 3 }), { type: "admin.key_rotated", keyId: "k2", resealed: 3, by: "cli:alice" }],
    // a stored type or by cannot override the record's own
    [record("admin.user_removed", { user: "bob", type: "auth.success", by: "root-key" }), { type: "admin.user_removed", user: "bob", by: "cli:alice" }],
    [record("auth.success", { user: "bob" }), null],
    [record("admin.nonsense", {}), null],
    [record("toString", {}), null],
  ])("%o → %o", (input, expected) => {
    expect(adminEventOf(input)).toEqual(expected as never);
  });
});

describe("AdminEventTail over the SQLite store", () => {
  let dir: string;
  let store: SqliteStore;
  let cli: SqliteStore;
  beforeEach(async () => {
    dir = tempDir();
    store = await openIn(dir);
    cli = await openIn(dir); // the CLI's own connection
  });
  afterEach(async () => {
    await cli.close();
    await store.close();
    cleanup(dir);
  });

  function tail(batch?: number) {
    const events: AuditEvent[] = [];
    const lines: { event: string; fields?: Record<string, unknown> }[] = [];
    const t = new AdminEventTail(store.adminEvents, { emit: (e) => events.push(e), log: (_l, event, fields) => lines.push({ event, fields }), now: () => T0, ...(batch ? { batch } : {}) });
    return { t, events, lines };
  }

  test("emits each record once, in the order written, across batches and drains", async () => {
    for (let i = 1; i <= 7; i++) await cli.adminEvents.append({ at: T0 + i, actor: "cli:alice", type: "admin.token_removed", fields: { token: i } });
    const { t, events } = tail(3);
    expect(await t.drain()).toBe(7);
    expect(await t.drain()).toBe(0);
    await cli.adminEvents.append({ at: T0 + 8, actor: "cli:bob", type: "admin.user_added", fields: { user: "eve" } });
    expect(await t.drain()).toBe(1);
    expect(events).toEqual([
      ...[1, 2, 3, 4, 5, 6, 7].map((i) => ({ type: "admin.token_removed", token: i, by: "cli:alice" })),
      { type: "admin.user_added", user: "eve", by: "cli:bob" },
    ] as AuditEvent[]);
  });

  test("a second server (or a restart) does not emit them again", async () => {
    await cli.adminEvents.append({ at: T0, actor: "cli:alice", type: "admin.client_removed", fields: { client: "fw" } });
    const first = tail();
    await first.t.drain();
    const second = tail();
    expect(await second.t.drain()).toBe(0);
    expect(first.events.length + second.events.length).toBe(1);
  });

  test("concurrent drains never emit a record twice, and a call during a pass is not lost", async () => {
    const { t, events } = tail(2);
    for (let i = 1; i <= 5; i++) await cli.adminEvents.append({ at: T0, actor: "cli:a", type: "admin.token_removed", fields: { token: i } });
    const a = t.drain();
    await cli.adminEvents.append({ at: T0, actor: "cli:a", type: "admin.token_removed", fields: { token: 6 } });
    const b = t.drain();
    const c = t.drain();
    await Promise.all([a, b, c]);
    expect(events.map((e) => (e as { token: number }).token)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  test("an unknown type is skipped with a warning naming only its ID", async () => {
    await cli.adminEvents.append({ at: T0, actor: "cli:a", type: "admin.bogus", fields: { secret: "hunter2" } });
    await cli.adminEvents.append({ at: T0, actor: "cli:a", type: "admin.user_removed", fields: { user: "bob" } });
    const { t, events, lines } = tail();
    expect(await t.drain()).toBe(1);
    expect(events).toEqual([{ type: "admin.user_removed", user: "bob", by: "cli:a" }]);
    expect(lines).toEqual([{ event: "admin_events.unreadable", fields: { id: 1 } }]);
  });

  test("purge keeps records younger than the retention", async () => {
    await cli.adminEvents.append({ at: T0 - 10_000, actor: "cli:a", type: "admin.user_removed", fields: { user: "old" } });
    await cli.adminEvents.append({ at: T0 - 10, actor: "cli:a", type: "admin.user_removed", fields: { user: "new" } });
    const { t } = tail();
    await t.drain();
    expect(await t.purge(1000)).toBe(1);
    expect(await t.purge(1)).toBe(1);
  });
});

test("a store failure is logged once per drain and the records stay pending", async () => {
  let fail = true;
  const pending = [record("admin.user_added", { user: "bob" })];
  const repo: AdminEventRepo = {
    recordWith: () => Promise.reject(new Error("unused")),
    append: () => Promise.reject(new Error("unused")),
    purgeBefore: async () => 0,
    claimPending: async () => {
      if (fail) throw Object.assign(new Error("database is locked"), { name: "StoreError", code: "unavailable" });
      return pending.splice(0);
    },
  };
  const events: AuditEvent[] = [];
  const lines: unknown[] = [];
  const t = new AdminEventTail(repo, { emit: (e) => events.push(e), log: (level, event, fields) => lines.push({ level, event, fields }), now: () => T0 });
  expect(await t.drain()).toBe(0);
  expect(lines).toEqual([{ level: "error", event: "admin_events.tail_failed", fields: { error: "StoreError", code: "unavailable" } }]);
  fail = false;
  expect(await t.drain()).toBe(1);
  expect(events).toEqual([{ type: "admin.user_added", user: "bob", by: "cli:alice" }]);
});
