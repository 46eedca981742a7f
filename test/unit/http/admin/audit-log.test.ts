// GET /api/admin/v1/audit: the stored audit log for operator keys and up (not Magic Link keys),
// newest first, filtered (time, event or prefix, actor, user, client, outcome) and paged; a bad
// filter is a 400 naming the field, never echoing it.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { auditLogOf, type NewAuditRecord } from "../../../../src/store/types.ts";
import { cleanup } from "../../store/helpers.ts";
import { adminFixture } from "./helpers.ts";

const T0 = Date.parse("2026-12-03T10:00:00Z");
let f: Awaited<ReturnType<typeof adminFixture>>;

beforeAll(async () => {
  f = await adminFixture();
  const rec = (i: number, patch: Partial<NewAuditRecord>): NewAuditRecord => ({ at: T0 + i * 60_000, event: "auth.failure", actor: null, user: "dave", client: "vpn", outcome: "reject", node: "h:2/w1", fields: { reason: "bad_password" }, ...patch });
  await auditLogOf(f.store)!.append([
    rec(0, {}),
    rec(1, {}),
    rec(2, { event: "admin.user_unlocked", actor: "k-operator", outcome: null, client: null, fields: { user: "dave", cleared: true, by: "k-operator" } }),
    rec(3, { event: "ui.signed_in", actor: "root1", user: null, client: "127.0.0.1", outcome: "ok", fields: { account: "root1" } }),
  ]);
});
afterAll(() => cleanup(f.dir));

const get = async (query: string, key = f.keys.operator) => {
  const r = await f.call("GET", `/audit${query}`, { key });
  return { status: r.status, body: (await r.json()) as any };
};

describe("GET /audit", () => {
  test("operators read it; Magic Link keys may not", async () => {
    expect((await get("")).status).toBe(200);
    expect((await get("", f.keys.magiclink)).status).toBe(403);
    expect((await f.call("GET", "/audit")).status).toBe(401);
  });

  test("newest first, with the columns and fields", async () => {
    const { body } = await get("");
    expect(body.events.map((e: any) => e.event)).toEqual(["ui.signed_in", "admin.user_unlocked", "auth.failure", "auth.failure"]);
    expect(body.events[2]).toEqual({ id: expect.any(Number), at: "2026-12-03T10:01:00.000Z", event: "auth.failure", actor: null, user: "dave", client: "vpn", outcome: "reject", node: "h:2/w1", fields: { reason: "bad_password" } });
    expect(body.next).toBeNull();
  });

  test.each([
    ["?event=admin.", ["admin.user_unlocked"]],
    ["?event=auth.failure&user=dave", ["auth.failure", "auth.failure"]],
    ["?actor=root1", ["ui.signed_in"]],
    ["?outcome=ok", ["ui.signed_in"]],
    ["?client=127.0.0.1", ["ui.signed_in"]],
    ["?from=2026-12-03T10:01&to=2026-12-03T10:03:00Z", ["admin.user_unlocked", "auth.failure"]],
    ["?from=2026-12-04", []],
  ])("%s", async (query, events) => {
    expect((await get(query)).body.events.map((e: any) => e.event)).toEqual(events);
  });

  test("paging: limit and the next cursor walk every event once", async () => {
    const first = await get("?limit=3");
    expect(first.body.events).toHaveLength(3);
    expect(first.body.next).toMatch(/^\d+-\d+$/);
    const second = await get(`?limit=3&before=${first.body.next}`);
    expect(second.body.events.map((e: any) => e.event)).toEqual(["auth.failure"]);
    expect(second.body.next).toBeNull();
  });

  test.each(["?from=yesterday", "?event=Auth%20failure", "?before=12", "?limit=0", "?outcome=NOT%20ONE"])("a bad filter %s is a 400 that does not echo it", async (query) => {
    const { status, body } = await get(query);
    expect(status).toBe(400);
    const text = JSON.stringify(body);
    for (const bad of ["yesterday", "Auth failure", "NOT ONE"]) expect(text).not.toContain(bad);
  });
});
