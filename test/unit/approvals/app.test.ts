// The approver app's side of approvals over a real SQLite store: answers (owner, ended, number
// matching), the back-off after rejections (doubling, capped, reset by an approval and by time), the
// lock after a report, the per-minute count, the challenge-mode code, and the event hub's bounds.

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { APP_PROTOCOL_KINDS, AppEvents, AppRequests, DEFAULT_APP_SETTINGS, STREAK_DECAY_MS, visibleIn, type AppProtocolVersion, type AppRequestView, type AppSettings, type EventSink } from "../../../src/approvals/app.ts";
import { defaultApprovalTexts } from "../../../src/approvals/texts.ts";
import type { AuditEvent } from "../../../src/audit/events.ts";
import { APPROVAL_KINDS, type Approval, type ApprovalKind, type Device } from "../../../src/store/types.ts";
import { approvalHarness, cleanup, tempDir, type ApprovalHarness } from "./helpers.ts";

let dir: string;
let h: ApprovalHarness;
let audit: AuditEvent[];

const device = (id: string): Device => ({ id, userId: 1, name: "phone", publicKey: { kty: "EC", crv: "P-256", x: "", y: "" }, push: null, createdAt: 0, lastSeenAt: null, removedAt: null });
const D1 = device("dev-1");

function service(settings: Partial<AppSettings> = {}): AppRequests {
  return new AppRequests({
    store: h.store,
    rateLimits: h.store.rateLimits,
    approvals: h.service,
    secret: h.secret,
    settings: { ...DEFAULT_APP_SETTINGS, ...settings },
    now: () => h.clock.t,
    audit: (e) => void audit.push(e),
    log: () => {},
  });
}

async function open(user: string, client = "vpn", numberMatch: number | null = null, kind: ApprovalKind = "radius"): Promise<Approval> {
  const r = await h.service.open({ kind, user, client, source: null, texts: defaultApprovalTexts(), lifetimeMs: 60_000, numberMatch });
  if (r.kind !== "created") throw new Error(`expected a new approval, got ${r.kind}`);
  return r.approval;
}

beforeEach(async () => {
  dir = tempDir();
  h = await approvalHarness({ dir });
  audit = [];
});

afterEach(async () => {
  await h.close();
  cleanup(dir);
});

describe("answers", () => {
  test("only the request's own user answers it, once; a wrong pick rejects", async () => {
    const app = service();
    const a = await open("alice", "vpn", 42);
    expect(await app.answer(D1, { username: "bob" }, a.id, "approve", 42, 2)).toEqual({ ok: false, status: 403, reason: "not_your_request" });
    expect(await app.answer(D1, { username: "alice" }, "nope", "approve", undefined, 2)).toMatchObject({ status: 404 });
    const waiting = h.service.wait(a);
    expect(await app.answer(D1, { username: "alice" }, a.id, "approve", 41, 2)).toEqual({ ok: true, status: "rejected" });
    expect(await waiting).toBe("rejected");
    expect(await app.answer(D1, { username: "alice" }, a.id, "approve", 42, 2)).toEqual({ ok: false, status: 409, reason: "ended" });
    expect(audit).toContainEqual(expect.objectContaining({ type: "approval.app_answered", wrong_number: true, state: "rejected", device: "dev-1" }));
  });

  test("the list shows the user's pending requests with choices; the code only for an app request of a challenge-mode client", async () => {
    const app = service();
    const a = await open("alice", "vpn", 42);
    await open("bob");
    const [v] = await app.list("alice", 2);
    expect(v).toMatchObject({ id: a.id, kind: "radius", user: "alice", service: "vpn", source: null });
    expect(v!.choices).toHaveLength(3);
    expect(v!.choices).toContain(42);
    // Not a known client in challenge mode, and not sent to the app: no code.
    expect(v!.code).toBeUndefined();
    expect(app.codeFor(a.id)).toMatch(/^\d{6}$/);
    expect(app.codeFor(a.id)).toBe(app.codeFor(a.id));
  });

  test("a wrong code rejects the approval; the right one approves another", async () => {
    const app = service();
    const a = await open("alice");
    const wrong = app.codeFor(a.id) === "000000" ? "111111" : "000000";
    expect(await app.answerByCode(a, wrong)).toBe("wrong");
    expect((await h.store.approvals.get(a.id))!.state).toBe("rejected");
    h.clock.t += 1000;
    const b = await open("alice");
    expect(await app.answerByCode(b, app.codeFor(b.id))).toBe("approved");
    expect(await app.answerByCode(b, app.codeFor(b.id))).toBe("ended");
  });
});

describe("limits against fatigue", () => {
  test("rejections back off 30 s, 60 s, 120 s … capped; an approval ends the streak", async () => {
    const app = service({ perMinute: 0, perHour: 0, rejectBackoffMs: 30_000, maxBackoffMs: 100_000 });
    const expected = [30_000, 60_000, 100_000];
    for (const ms of expected) {
      const a = await open("alice");
      await app.answer(D1, { username: "alice" }, a.id, "reject", undefined, 2);
      expect(await app.admit("alice")).toMatchObject({ ok: false, reason: "backoff", until: h.clock.t + ms });
      h.clock.t += ms - 1;
      expect((await app.admit("alice")).ok).toBe(false);
      h.clock.t += 1;
      expect((await app.admit("alice")).ok).toBe(true);
    }
    expect(audit.filter((e) => e.type === "approval.backoff").map((e) => (e as { strikes: number }).strikes)).toEqual([1, 2, 3]);
    const ok = await open("alice");
    await app.answer(D1, { username: "alice" }, ok.id, "approve", undefined, 2);
    expect(await h.store.approvalBlocks.get("alice")).toBeUndefined();
  });

  test("the streak decays after an hour without rejections", async () => {
    const app = service({ perMinute: 0, perHour: 0 });
    const a = await open("alice");
    await app.answer(D1, { username: "alice" }, a.id, "reject", undefined, 2);
    h.clock.t += STREAK_DECAY_MS;
    const b = await open("alice");
    await app.answer(D1, { username: "alice" }, b.id, "reject", undefined, 2);
    expect((await h.store.approvalBlocks.get("alice"))!.strikes).toBe(1);
  });

  test("a report locks for report_lock_s and is audited with the source; other users are not affected", async () => {
    const app = service({ reportLockMs: 600_000 });
    const a = await open("alice");
    expect(await app.answer(D1, { username: "alice" }, a.id, "report", undefined, 2)).toEqual({ ok: true, status: "reported" });
    expect(await app.admit("alice")).toMatchObject({ ok: false, reason: "locked", until: h.clock.t + 600_000 });
    expect((await app.admit("bob")).ok).toBe(true);
    expect(audit).toContainEqual(expect.objectContaining({ type: "approval.reported", user: "alice", device: "dev-1", until: new Date(h.clock.t + 600_000).toISOString() }));
    // A rejection later in the lock (a request already pending) does not shorten it.
    const until = h.clock.t + 600_000;
    h.clock.t += 1000;
    const b = await open("alice", "other");
    await app.answer(D1, { username: "alice" }, b.id, "reject", undefined, 2);
    expect(await h.store.approvalBlocks.get("alice")).toMatchObject({ reason: "reported", blockedUntil: until, strikes: 2 });
    h.clock.t = until;
    expect((await app.admit("alice")).ok).toBe(true);
  });

  test("report_lock_s = 0 and reject_backoff_s = 0 leave no block (the report is still audited)", async () => {
    const app = service({ reportLockMs: 0, rejectBackoffMs: 0 });
    const a = await open("alice");
    await app.answer(D1, { username: "alice" }, a.id, "report", undefined, 2);
    expect(await h.store.approvalBlocks.get("alice")).toBeUndefined();
    expect(audit).toContainEqual(expect.objectContaining({ type: "approval.reported", until: null }));
  });

  test("requests_per_minute and requests_per_hour count admitted requests per user", async () => {
    const app = service({ perMinute: 2, perHour: 3 });
    expect((await app.admit("alice")).ok).toBe(true);
    expect((await app.admit("alice")).ok).toBe(true);
    expect(await app.admit("alice")).toEqual({ ok: false, reason: "rate_limited" });
    expect((await app.admit("bob")).ok).toBe(true);
    h.clock.t += 61_000; // a minute and its one-second slot
    expect((await app.admit("alice")).ok).toBe(true);
    h.clock.t += 61_000;
    expect(await app.admit("alice")).toEqual({ ok: false, reason: "rate_limited" });
  });
});

describe("event hub", () => {
  const view = (id: string): AppRequestView => ({ id, kind: "radius", user: "alice", service: "vpn", source: null, created: "", expires: "" });
  function sink(device: string, version: AppProtocolVersion = 2) {
    const got: Array<[string, unknown]> = [];
    let closed = false;
    const s: EventSink & { got: typeof got; closed: () => boolean } = {
      device,
      version,
      sent: new Set(),
      send: (e, d) => void got.push([e, d]),
      close: () => void (closed = true),
      got,
      closed: () => closed,
    };
    return s;
  }

  test("a request is sent once per stream; gone only to the streams that showed it", () => {
    const hub = new AppEvents(4);
    const a = sink("d1");
    const b = sink("d2");
    hub.attach("alice", a);
    hub.publish("alice", view("r1"));
    hub.attach("alice", b);
    hub.publish("alice", view("r1"));
    hub.publish("alice", view("r2"));
    hub.publish("bob", view("r3"));
    hub.ended("r1");
    expect(a.got).toEqual([
      ["request", view("r1")],
      ["request", view("r2")],
      ["gone", { id: "r1" }],
    ]);
    expect(b.got).toEqual([
      ["request", view("r1")],
      ["request", view("r2")],
      ["gone", { id: "r1" }],
    ]);
    hub.detach("alice", a);
    hub.ended("r2");
    expect(a.got).toHaveLength(3);
    expect(b.got.at(-1)).toEqual(["gone", { id: "r2" }]);
  });

  test("per device at most 2 streams (a third closes the oldest); per user at most the limit", () => {
    const hub = new AppEvents(3);
    const s = [sink("d1"), sink("d1"), sink("d1")];
    for (const x of s) expect(hub.attach("alice", x)).toBe(true);
    expect(s[0]!.closed()).toBe(true);
    expect(hub.size).toBe(2);
    expect(hub.attach("alice", sink("d2"))).toBe(true);
    expect(hub.attach("alice", sink("d3"))).toBe(false);
    expect(hub.size).toBe(3);
  });
});

describe("protocol versions", () => {
  test("v1 shows exactly the three kinds its contract names; v2 every kind", () => {
    expect([...APP_PROTOCOL_KINDS[1]].sort()).toEqual(["magic-link", "password-reset", "radius"]);
    expect([...APP_PROTOCOL_KINDS[2]].sort()).toEqual([...APPROVAL_KINDS].sort());
    expect(visibleIn(1, "self-service")).toBe(false);
    expect(visibleIn(2, "self-service")).toBe(true);
  });

  test("a self-service request is listed for v2 only; the other kinds for both", async () => {
    const app = service();
    const r = await open("alice", "vpn");
    h.clock.t += 1000;
    const ss = await open("alice", "self-service", null, "self-service");
    expect((await app.list("alice", 1)).map((v) => v.id)).toEqual([r.id]);
    expect((await app.list("alice", 2)).map((v) => [v.id, v.kind])).toEqual([
      [r.id, "radius"],
      [ss.id, "self-service"],
    ]);
  });

  test("a v1 answer to a self-service request is refused as unknown, even for its own user; v2 answers it", async () => {
    const app = service();
    const ss = await open("alice", "self-service", null, "self-service");
    expect(await app.answer(D1, { username: "alice" }, ss.id, "approve", undefined, 1)).toEqual({ ok: false, status: 404, reason: "unknown_request" });
    expect(await app.answer(D1, { username: "bob" }, ss.id, "approve", undefined, 1)).toEqual({ ok: false, status: 404, reason: "unknown_request" });
    expect((await h.store.approvals.get(ss.id))!.state).toBe("pending");
    expect(audit.some((e) => e.type === "approval.app_answered")).toBe(false);
    expect(await app.answer(D1, { username: "alice" }, ss.id, "approve", undefined, 2)).toEqual({ ok: true, status: "approved" });
  });

  test("the event hub never sends a v1 stream a self-service request, nor its gone", () => {
    const hub = new AppEvents(4);
    const got: Record<number, Array<[string, unknown]>> = { 1: [], 2: [] };
    const mk = (version: AppProtocolVersion): EventSink => ({ device: `d${version}`, version, sent: new Set(), send: (e, d) => void got[version]!.push([e, d]), close: () => {} });
    hub.attach("alice", mk(1));
    hub.attach("alice", mk(2));
    const v = (id: string, kind: ApprovalKind): AppRequestView => ({ id, kind, user: "alice", service: "x", source: null, created: "", expires: "" });
    hub.publish("alice", v("ss", "self-service"));
    hub.publish("alice", v("r", "radius"));
    hub.ended("ss");
    hub.ended("r");
    expect(got[1]).toEqual([
      ["request", v("r", "radius")],
      ["gone", { id: "r" }],
    ]);
    expect(got[2]).toEqual([
      ["request", v("ss", "self-service")],
      ["request", v("r", "radius")],
      ["gone", { id: "ss" }],
      ["gone", { id: "r" }],
    ]);
  });
});
