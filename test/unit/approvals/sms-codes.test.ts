// The SMS code service over a real store and a recording SMS channel: sent with the template (never
// the username), stored only as a keyed hash, accepted once, wrong codes counted to invalidation,
// bound to State, client and user, expired, replaced by a resend, removed when not delivered, and
// checkable by another process on the same store.

import { afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import * as path from "node:path";
import { SmsCodes } from "../../../src/approvals/sms-codes.ts";
import type { TextTarget } from "../../../src/approvals/send.ts";
import { approvalHarness, cleanup, tempDir, type ApprovalHarness } from "./helpers.ts";

let dirs: string[] = [];
let open: ApprovalHarness[] = [];
afterEach(async () => {
  for (const h of open.splice(0)) await h.close();
  for (const d of dirs.splice(0)) cleanup(d);
});

async function setup(dir?: string): Promise<ApprovalHarness> {
  const d = dir ?? tempDir();
  if (!dir) dirs.push(d);
  const h = await approvalHarness({ dir: d });
  open.push(h);
  return h;
}

const STATE = "5".repeat(64);
const B = { state: STATE, client: "vpn", user: "alice" };
const TO: TextTarget = { msisdn: "+46701234567", email: null, endpoint: "radius:vpn", rateKey: "radius:vpn" };

/** Sends a code and reads it back out of the message. */
async function sent(h: ApprovalHarness, binding = B): Promise<string> {
  const r = await h.codes.send(binding, TO, { clientLabel: "Corp VPN" });
  if (!r.ok) throw new Error(`not sent: ${r.reason}`);
  const m = /^(\d{6}) is your Corp VPN code$/.exec(h.sms.sent.at(-1)!.text);
  if (!m) throw new Error(`unexpected message ${h.sms.sent.at(-1)!.text}`);
  return m[1]!;
}

/** Another code than `code` of the same format. */
const other = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, "0");

describe("sending", () => {
  test("the message is the template with the code and the client label; the store holds only a keyed hash", async () => {
    const h = await setup();
    const code = await sent(h);
    expect(h.sms.sent[0]!.to).toBe("+46701234567");
    expect(h.sms.sent[0]!.text).not.toContain("alice");
    const db = new Database(path.join(dirs[0]!, "portcullis.db"));
    const rows = db.prepare("SELECT * FROM sms_codes").all() as Array<Record<string, unknown>>;
    db.close();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ state: STATE, client: "vpn", username: "alice", created_at: h.clock.t, expires_at: h.clock.t + 300_000, failures: 0 });
    expect(JSON.stringify(rows)).not.toContain(code);
    expect(h.events).toEqual([{ type: "sms_code.sent", client: "vpn", user: "alice", channel: "sms", to: "+46…67", expires_in_s: 300 }]);
    expect(JSON.stringify(h.events)).not.toContain(code);
  });

  test("not delivered: the code is removed again and the refusal returned", async () => {
    const h = await setup();
    h.sms.script = [{ ok: false, reason: "gateway_error", detail: "HTTP 500" }];
    const r = await h.codes.send(B, TO);
    expect(r).toMatchObject({ ok: false, reason: "all_channels_failed" });
    const code = /(\d{6})/.exec(h.sms.sent[0]!.text)![1]!;
    expect(await h.codes.verify(B, code)).toEqual({ result: "unknown" });
    expect(h.events).toEqual([{ type: "sms_code.not_delivered", client: "vpn", user: "alice", to: "+46…67", reason: "all_channels_failed" }]);
    expect(h.codeResults).toEqual(["issued", "not_delivered", "unknown"]);
  });
});

describe("checking", () => {
  test("the right code is accepted once", async () => {
    const h = await setup();
    const code = await sent(h);
    expect(await h.codes.verify(B, code)).toEqual({ result: "accepted" });
    expect(await h.codes.verify(B, code)).toEqual({ result: "unknown" });
    expect(h.codeResults).toEqual(["issued", "accepted", "unknown"]);
  });

  test("spaces and hyphens typed around the digits do not matter", async () => {
    const h = await setup();
    const code = await sent(h);
    expect(await h.codes.verify(B, ` ${code.slice(0, 3)}-${code.slice(3)} `)).toEqual({ result: "accepted" });
  });

  test("wrong codes count down; the third invalidates it, and then even the right one is refused", async () => {
    const h = await setup();
    const code = await sent(h);
    expect(await h.codes.verify(B, other(code))).toEqual({ result: "wrong", remaining: 2 });
    expect(await h.codes.verify(B, "")).toEqual({ result: "wrong", remaining: 1 });
    expect(await h.codes.verify(B, other(code))).toEqual({ result: "invalidated" });
    expect(await h.codes.verify(B, code)).toEqual({ result: "unknown" });
    expect(h.events.at(-1)).toEqual({ type: "sms_code.invalidated", client: "vpn", user: "alice", failures: 3 });
  });

  test.each([
    ["another user", { ...B, user: "mallory" }],
    ["another client", { ...B, client: "wifi" }],
  ])("the State's code presented for %s: mismatch, counted against the code", async (_what, binding) => {
    const h = await setup();
    const code = await sent(h);
    expect(await h.codes.verify(binding, code)).toEqual({ result: "mismatch" });
    expect((await h.store.smsCodes.find(STATE, h.clock.t))!.failures).toBe(1);
    expect(await h.codes.verify(B, code)).toEqual({ result: "accepted" });
  });

  test("another State's code is unknown here", async () => {
    const h = await setup();
    const code = await sent(h);
    expect(await h.codes.verify({ ...B, state: "6".repeat(64) }, code)).toEqual({ result: "unknown" });
  });

  test("after its lifetime the code is unknown", async () => {
    const h = await setup();
    const code = await sent(h);
    h.clock.t += 300_000;
    expect(await h.codes.verify(B, code)).toEqual({ result: "unknown" });
  });

  test("a resend replaces the code: the old one no longer works, the failure count starts again", async () => {
    const h = await setup();
    const first = await sent(h);
    await h.codes.verify(B, other(first));
    const second = await sent(h);
    if (second === first) return; // one in a million: nothing to compare
    expect(await h.codes.verify(B, first)).toEqual({ result: "wrong", remaining: 2 });
    expect(await h.codes.verify(B, second)).toEqual({ result: "accepted" });
  });

  test("revoke removes it", async () => {
    const h = await setup();
    const code = await sent(h);
    expect(await h.codes.revoke(STATE)).toBe(true);
    expect(await h.codes.verify(B, code)).toEqual({ result: "unknown" });
  });

  test("another process on the same store checks it (the secret is the store's); another secret cannot", async () => {
    const dir = tempDir();
    dirs.push(dir);
    const a = await setup(dir);
    const b = await setup(dir);
    const code = await sent(a);
    const stranger = new SmsCodes({ codes: b.store.smsCodes, secret: new Uint8Array(32).fill(1), now: () => b.clock.t, random: () => new Uint8Array(0), dispatcherFor: () => ({ deliver: async () => ({ ok: true, channel: "sms" }) }), emailSubject: "" });
    expect(await stranger.verify(B, code)).toEqual({ result: "wrong", remaining: 2 });
    expect(await b.codes.verify(B, code)).toEqual({ result: "accepted" });
    expect(await a.codes.verify(B, code)).toEqual({ result: "unknown" });
  });

  test("bad limits are refused at construction", async () => {
    const h = await setup();
    const base = { codes: h.store.smsCodes, secret: h.secret, now: () => 0, random: () => new Uint8Array(0), dispatcherFor: () => ({ deliver: async () => ({ ok: true as const, channel: "sms" }) }), emailSubject: "" };
    expect(() => new SmsCodes({ ...base, lifetimeMs: 0 })).toThrow(TypeError);
    expect(() => new SmsCodes({ ...base, maxFailures: 0 })).toThrow(TypeError);
  });
});
