// The approval service over a real store and a recording SMS channel: a held request from creation to
// answer, joins (same source) and refusals (another source), two services racing to create one
// approval, holds, expiry, cancellation, delivery failures, the page's view and answer, and the
// typed events and outcomes each step reports.

import { afterEach, describe, expect, test } from "bun:test";
import { setTimeout as sleep } from "node:timers/promises";
import { hashLinkToken } from "../../../src/magiclink/tokens.ts";
import { defaultApprovalTexts } from "../../../src/approvals/texts.ts";
import type { ApprovalRequest, LinkTarget } from "../../../src/approvals/service.ts";
import { csrfOf, harness, post, type Harness } from "../magiclink/helpers.ts";
import { approvalHarness, cleanup, tempDir, type ApprovalHarness } from "./helpers.ts";

let dirs: string[] = [];
let open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const h of open.splice(0)) await h.close();
  for (const d of dirs.splice(0)) cleanup(d);
});

async function setup(opts: Parameters<typeof approvalHarness>[0] = {}): Promise<ApprovalHarness> {
  const dir = opts.dir ?? tempDir();
  if (!opts.dir) dirs.push(dir);
  const h = await approvalHarness({ ...opts, dir });
  open.push(h);
  return h;
}

const req = (patch: Partial<ApprovalRequest> = {}): ApprovalRequest => ({
  kind: "radius",
  user: "alice",
  client: "vpn",
  source: "203.0.113.7",
  texts: defaultApprovalTexts(),
  lifetimeMs: 60_000,
  ...patch,
});
const TO: LinkTarget = { msisdn: "+46701234567", email: null, endpoint: "radius:vpn", rateKey: "radius:vpn" };

/** The link token of message `n`, once the service has recorded its delivery (the channel is set after the send). */
async function delivered(h: ApprovalHarness, n = 1): Promise<string> {
  const token = await h.sms.nextLink(n);
  for (let i = 0; i < 200 && (await h.store.approvals.findByLink(hashLinkToken(token)))?.channel == null; i++) await sleep(5);
  return token;
}

/** Answers the approval behind `token` through the page's model, as a POST would. */
async function answerPage(h: ApprovalHarness, token: string, action: "approve" | "reject", pick?: string) {
  const view = await h.service.view(token);
  if (view.kind !== "pending") throw new Error(`expected a pending page, got ${view.kind}`);
  return h.service.answer(token, { csrf: view.csrf, action, pick });
}

describe("a held request", () => {
  test("created → link sent → approved on the page: the waiter wakes, events and outcome once", async () => {
    const h = await setup();
    const result = h.service.request(req(), TO);
    const token = await delivered(h);
    expect(h.sms.sent[0]!.text).toBe(`Approve your VPN sign-in: https://mfa.example.com/ml/${token}`);
    const a = (await h.store.approvals.findByLink(hashLinkToken(token)))!;
    expect(a).toMatchObject({ kind: "radius", user: "alice", client: "vpn", source: "203.0.113.7", state: "pending", channel: "sms-link" });
    expect(await answerPage(h, token, "approve")).toMatchObject({ kind: "done", state: "approved", wrongNumber: false });
    expect(await result).toMatchObject({ kind: "ended", outcome: "approved", joined: false });
    expect(h.events).toEqual([
      { type: "approval.created", id: a.id, kind: "radius", client: "vpn", user: "alice", source: "203.0.113.7", expires_in_s: 60, number_match: false },
      { type: "approval.delivered", id: a.id, kind: "radius", client: "vpn", channel: "sms-link", via: "sms" },
      { type: "approval.answered", id: a.id, kind: "radius", client: "vpn", user: "alice", state: "approved", wrong_number: false },
    ]);
    expect(h.outcomes).toEqual([["radius", "approved"]]);
    expect(JSON.stringify(h.events)).not.toContain(token);
  });

  test("a second request from the same source joins: no second message, both get the answer", async () => {
    const h = await setup();
    const first = h.service.request(req(), TO);
    const token = await delivered(h);
    const second = h.service.request(req(), TO);
    await sleep(5);
    expect(h.hub.size).toBe(2);
    expect(h.sms.sent).toHaveLength(1);
    await answerPage(h, token, "reject");
    expect(await first).toMatchObject({ kind: "ended", outcome: "rejected", joined: false });
    expect(await second).toMatchObject({ kind: "ended", outcome: "rejected", joined: true });
    expect(h.events.map((e) => e.type)).toEqual(["approval.created", "approval.delivered", "approval.joined", "approval.answered"]);
    expect(h.outcomes).toEqual([["radius", "rejected"]]);
  });

  test("a request from another source is not joined (busy) unless joinAnySource", async () => {
    const h = await setup();
    const first = await h.service.open(req());
    const other = await h.service.open(req({ source: "198.51.100.9" }));
    expect(other).toEqual({ kind: "busy", approval: first.approval });
    expect(h.events.at(-1)).toMatchObject({ type: "approval.join_refused", source: "198.51.100.9", pending_source: "203.0.113.7" });
    const lax = await setup({ joinAnySource: true });
    await lax.service.open(req());
    expect((await lax.service.open(req({ source: "198.51.100.9" }))).kind).toBe("joined");
  });

  test("two services on one store creating at once: one approval, one message, the other joins", async () => {
    const dir = tempDir();
    dirs.push(dir);
    const a = await setup({ dir });
    const b = await setup({ dir });
    const [ra, rb] = [a.service.request(req(), TO), b.service.request(req(), TO)];
    for (let i = 0; i < 200 && a.sms.sent.length + b.sms.sent.length === 0; i++) await sleep(5);
    const winner = a.sms.sent.length > 0 ? a : b;
    const token = await winner.sms.nextLink(1);
    expect(a.sms.sent.length + b.sms.sent.length).toBe(1);
    await answerPage(winner, token, "approve");
    // The loser's process learns of the answer from the store (its hub's poll).
    const loser = winner === a ? b : a;
    loser.clock.t += 2_000;
    await loser.hub.tick();
    const results = await Promise.all([ra, rb]);
    expect(results.map((r) => r.kind === "ended" && r.outcome)).toEqual(["approved", "approved"]);
    expect(results.map((r) => r.kind === "ended" && r.joined).sort()).toEqual([false, true]);
  });

  test("a hold that ends first: timeout, the approval stays pending and a later request joins it", async () => {
    const h = await setup();
    const held = h.service.request(req(), TO, { holdUntil: h.clock.t + 25_000 });
    const token = await h.sms.nextLink(1);
    h.clock.t += 25_000;
    await h.hub.tick();
    expect(await held).toMatchObject({ kind: "ended", outcome: "timeout" });
    const again = h.service.request(req(), TO);
    await sleep(5);
    expect(h.sms.sent).toHaveLength(1);
    await answerPage(h, token, "approve");
    expect(await again).toMatchObject({ kind: "ended", outcome: "approved", joined: true });
  });

  test("nobody answers: expired at the deadline, reported once", async () => {
    const h = await setup();
    const result = h.service.request(req({ lifetimeMs: 20_000 }), TO);
    const token = await delivered(h);
    h.clock.t += 20_000;
    await h.hub.tick();
    expect(await result).toMatchObject({ kind: "ended", outcome: "expired" });
    const id = (await h.store.approvals.findByLink(hashLinkToken(token)))!.id;
    expect(h.events.at(-1)).toEqual({ type: "approval.expired", id, kind: "radius" });
    expect(h.outcomes).toEqual([["radius", "expired"]]);
    expect(await h.service.view(token)).toEqual({ kind: "invalid" });
  });

  test("the waiter goes away: the approval is cancelled and a late tap refused", async () => {
    const h = await setup();
    const ctrl = new AbortController();
    const result = h.service.request(req(), TO, { signal: ctrl.signal });
    const token = await h.sms.nextLink(1);
    const view = await h.service.view(token);
    ctrl.abort();
    expect(await result).toMatchObject({ kind: "ended", outcome: "cancelled" });
    expect(h.events.at(-1)).toMatchObject({ type: "approval.cancelled", kind: "radius" });
    expect(await h.service.answer(token, { csrf: view.kind === "pending" ? view.csrf : "", action: "approve" })).toEqual({ kind: "invalid" });
  });

  test.each([
    ["a failing gateway", {}, "all_channels_failed"],
    ["no public_url", { publicUrl: "" }, "no_public_url"],
  ] as const)("%s: not delivered, the approval is closed as failed", async (_what, opts, reason) => {
    const h = await setup(opts);
    h.sms.script = [{ ok: false, reason: "gateway_error", detail: "HTTP 500" }];
    const r = await h.service.request(req(), TO);
    expect(r).toMatchObject({ kind: "not_delivered", reason });
    expect((await h.store.approvals.get(r.approval.id))!.state).toBe("failed");
    expect(h.outcomes).toEqual([["radius", "failed"]]);
    if (reason === "all_channels_failed") expect(h.events.at(-1)).toEqual({ type: "approval.not_delivered", id: r.approval.id, kind: "radius", client: "vpn", reason });
    // Failed: the next request creates a new approval rather than joining a dead one.
    expect((await h.service.open(req())).kind).toBe("created");
  });
});

describe("challenge mode and control", () => {
  test("current(): pending until its expiry, then closed as expired (once)", async () => {
    const h = await setup();
    const o = await h.service.open(req({ lifetimeMs: 15_000 }));
    expect((await h.service.current(o.approval.id))!.state).toBe("pending");
    h.clock.t += 15_000;
    expect((await h.service.current(o.approval.id))!.state).toBe("expired");
    expect((await h.service.current(o.approval.id))!.state).toBe("expired");
    expect(h.outcomes).toEqual([["radius", "expired"]]);
    expect(await h.service.current("nope")).toBeUndefined();
  });

  test("cancel(): once; waiters get cancelled", async () => {
    const h = await setup();
    const o = await h.service.open(req());
    const waiting = h.service.wait(o.approval);
    expect(await h.service.cancel(o.approval.id)).toBe(true);
    expect(await h.service.cancel(o.approval.id)).toBe(false);
    expect(await waiting).toBe("cancelled");
    expect(h.outcomes).toEqual([["radius", "cancelled"]]);
  });

  test("a joined wait on an approval that ended meanwhile returns at once", async () => {
    const h = await setup();
    const o = await h.service.open(req());
    await h.store.approvals.answer(o.approval.id, "approved", h.clock.t);
    expect(await h.service.wait(o.approval, {}, true)).toBe("approved");
  });

  test("misuse throws TypeError", async () => {
    const h = await setup();
    await expect(h.service.open(req({ lifetimeMs: 0 }))).rejects.toThrow(TypeError);
    await expect(h.service.open(req({ numberMatch: 100 }))).rejects.toThrow(TypeError);
  });
});

describe("the page", () => {
  test("a RADIUS approval carries its context; a Magic Link one none, and no approval.* events", async () => {
    const h = await setup();
    const r = await h.service.open(req());
    const ml = await h.service.open(req({ kind: "magic-link", user: null, client: "default", source: "192.0.2.1" }));
    if (r.kind !== "created" || ml.kind !== "created") throw new Error("expected created");
    expect(await h.service.view(r.token)).toMatchObject({ kind: "pending", context: { client: "vpn", source: "203.0.113.7", createdAt: h.clock.t } });
    expect(await h.service.view(ml.token)).toMatchObject({ kind: "pending", context: null });
    const before = h.events.length;
    await answerPage(h, ml.token, "approve");
    expect(h.events.length).toBe(before);
    expect(h.outcomes).toEqual([["magic-link", "approved"]]);
  });

  test("number matching: a wrong pick rejects", async () => {
    const h = await setup();
    const o = await h.service.open(req({ numberMatch: 42 }));
    if (o.kind !== "created") throw new Error("expected created");
    const view = await h.service.view(o.token);
    if (view.kind !== "pending") throw new Error("expected pending");
    const wrong = String(view.choices!.find((n) => n !== 42));
    expect(await h.service.answer(o.token, { csrf: view.csrf, action: "approve", pick: wrong })).toMatchObject({ kind: "done", state: "rejected", wrongNumber: true });
    expect(h.events.at(-1)).toMatchObject({ type: "approval.answered", state: "rejected", wrong_number: true });
  });

  test("a bad CSRF token changes nothing; an answered link says so", async () => {
    const h = await setup();
    const o = await h.service.open(req());
    if (o.kind !== "created") throw new Error("expected created");
    expect(await h.service.answer(o.token, { csrf: "A".repeat(43), action: "approve" })).toEqual({ kind: "bad_csrf" });
    expect((await h.store.approvals.get(o.approval.id))!.state).toBe("pending");
    await answerPage(h, o.token, "approve");
    expect(await h.service.view(o.token)).toMatchObject({ kind: "answered", state: "approved" });
  });
});

describe("the approval page over HTTP", () => {
  let x: Harness | undefined;
  afterEach(async () => {
    x?.hub.closeAll();
    await x?.store.close();
    cleanup(x?.dir);
    x = undefined;
  });

  test("a RADIUS approval shows client, source and time, cleaned and escaped", async () => {
    x = await harness();
    const o = await x.service.approvals.open(req({ client: "vpn-gw", source: "<b>evil</b>\u202e" + "9".repeat(100) }));
    if (o.kind !== "created") throw new Error("expected created");
    const html = await (await x.app.request(`/ml/${o.token}`)).text();
    expect(html).toContain('<dd id="context-client">vpn-gw</dd>');
    expect(html).toContain(`<dd id="context-source">&lt;b&gt;evil&lt;/b&gt;${"9".repeat(52)}…</dd>`);
    expect(html).toContain(`<time datetime="${new Date(x.clock.t).toISOString()}">${new Date(x.clock.t).toISOString().slice(0, 19).replace("T", " ")} UTC</time>`);
    expect(html).not.toContain("<b>evil");
    expect(html).not.toMatch(/\u202e/);
    const r = await post(x.app, o.token, { csrf: csrfOf(html), action: "approve" });
    expect(r.status).toBe(200);
    expect((await x.store.approvals.get(o.approval.id))!.state).toBe("approved");
  });

  test("a Magic Link call's page has no context block", async () => {
    x = await harness();
    const key = await x.key("k");
    const response = x.call("msisdn=%2B46701234567", key);
    const token = await x.sms.nextLink(1);
    const html = await (await x.app.request(`/ml/${token}`)).text();
    expect(html).not.toContain('id="context"');
    await post(x.app, token, { csrf: csrfOf(html), action: "approve" });
    expect((await response).body).toBe('{"code":"TOUCH_ACCEPTED"}');
  });
});
