// The password-reset flow over a real SQLite store with recording stand-ins for the SMS codes and
// approvals: the three start limits (username, address, portal) refuse independently, a known and
// an unknown user both wait a delay drawn the same way, an unknown user's codes all fail in the same
// number of tries, and the CSRF token belongs to one token only.

import { afterEach, describe, expect, test } from "bun:test";
import type { ApprovalService } from "../../../src/approvals/service.ts";
import type { SmsCodes } from "../../../src/approvals/sms-codes.ts";
import type { AuditEvent } from "../../../src/audit/events.ts";
import { Directories } from "../../../src/directory/registry.ts";
import { PasswordResetService, START_DELAY_MS, type ResetPortal } from "../../../src/reset/service.ts";
import type { SqliteStore } from "../../../src/store/sqlite/store.ts";
import { cleanup, newUser, openIn, tempDir } from "../store/helpers.ts";

let dir: string | undefined;
let store: SqliteStore | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
  cleanup(dir);
  dir = undefined;
});

const PORTAL: ResetPortal = {
  name: "default",
  directory: "local",
  approvers: ["helpdesk1"],
  approver_groups: [],
  approver_role: "your helpdesk",
  approval_timeout_s: 600,
  session_ttl_s: 1800,
  min_password_length: 12,
  per_user_per_hour: 3,
  per_address_per_hour: 4,
  overall_per_hour: 6,
};

async function setup() {
  dir = tempDir();
  store = await openIn(dir);
  await store.users.add(newUser("alice", { phone: "+46701234567" }));
  const events: AuditEvent[] = [];
  const sleeps: number[] = [];
  const sent: string[] = [];
  let t = 1_000_000;
  let byte = 0;
  const smsCodes = {
    send: async (binding: { user: string }) => {
      sent.push(binding.user);
      return { ok: true, channel: "sms", expiresAt: t + 300_000, to: "+46…67" };
    },
    verify: async () => ({ result: "wrong", remaining: 1 }),
  } as unknown as SmsCodes;
  const service = new PasswordResetService({
    portals: [PORTAL],
    store,
    sessions: store.passwordResets,
    rateLimits: store.rateLimits,
    approvals: {} as ApprovalService,
    smsCodes,
    directories: new Directories([]),
    smsCodeMaxFailures: 3,
    secret: new Uint8Array(32).fill(7),
    hashPassword: async (p) => `hashed:${p.length}`,
    now: () => t,
    // The delay's byte, then token bytes.
    random: (n) => (n === 1 ? new Uint8Array([byte]) : crypto.getRandomValues(new Uint8Array(n))),
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    audit: (e) => events.push(e),
    log: () => {},
  });
  return { service, events, sleeps, sent, setByte: (b: number) => (byte = b), tick: (ms: number) => (t += ms) };
}

describe("PasswordResetService.start", () => {
  test("per username, per address and per portal limits refuse independently, counted per hour", async () => {
    const { service, events } = await setup();
    // username: 3 an hour
    for (let i = 0; i < 3; i++) expect(await service.start(PORTAL, "alice", `10.0.0.${i}`)).toBeString();
    expect(await service.start(PORTAL, "Alice", "10.0.0.9")).toBeUndefined();
    // address: 4 an hour (10.0.1.1 has 0 so far)
    for (let i = 0; i < 2; i++) expect(await service.start(PORTAL, `u${i}`, "10.0.1.1")).toBeString();
    // portal: 6 an hour in all (3 alice + 2 = 5 counted; the refused one counted nothing)
    expect(await service.start(PORTAL, "u9", "10.0.2.1")).toBeString();
    expect(await service.start(PORTAL, "u10", "10.0.3.1")).toBeUndefined();
    const limited = events.filter((e) => e.type === "password_reset.limited").map((e) => (e as { limit: string }).limit);
    expect(limited).toEqual(["user", "portal"]);
  });

  test("the address limit alone", async () => {
    const { service, events } = await setup();
    for (let i = 0; i < 4; i++) expect(await service.start(PORTAL, `v${i}`, "192.0.2.1")).toBeString();
    expect(await service.start(PORTAL, "v9", "192.0.2.1")).toBeUndefined();
    expect(events.at(-1)).toMatchObject({ type: "password_reset.limited", limit: "address", source: "192.0.2.1" });
  });

  test("known and unknown users wait the same drawn delay; only the known one gets a code; the unknown name is logged hashed", async () => {
    const { service, events, sleeps, sent, setByte } = await setup();
    setByte(255);
    await service.start(PORTAL, "alice", "10.0.0.1");
    await service.start(PORTAL, "nobody", "10.0.0.1");
    expect(sleeps).toEqual([START_DELAY_MS.max, START_DELAY_MS.max]);
    setByte(0);
    await service.start(PORTAL, "nobody", "10.0.0.1");
    expect(sleeps.at(-1)).toBe(START_DELAY_MS.min);
    await Bun.sleep(10);
    expect(sent).toEqual(["alice"]);
    const started = events.filter((e) => e.type === "password_reset.started") as Array<{ user: string; known: boolean }>;
    expect(started.map((e) => e.known)).toEqual([true, false, false]);
    expect(started[1]!.user).toMatch(/^[0-9a-f]{12}$/);
  });

  test("an unknown user's codes fail like a known user's: the same results in the same number of tries", async () => {
    const { service } = await setup();
    const known = (await service.start(PORTAL, "alice", "10.0.0.1"))!;
    const unknown = (await service.start(PORTAL, "nobody", "10.0.0.1"))!;
    const results = async (token: string) => {
      const out: string[] = [];
      for (let i = 0; i < 4; i++) out.push((await service.submitCode(PORTAL, token, "123456")).kind);
      return out;
    };
    // The stand-in SMS code answers "wrong" for alice; the store counts the unknown user's tries.
    const a = await results(known);
    const b = await results(unknown);
    expect(b).toEqual(["wrong", "wrong", "failed", "failed"]);
    expect(a.slice(0, 2)).toEqual(["wrong", "wrong"]);
    expect((await service.view(PORTAL, unknown)).kind).toBe("failed");
  });

  test("the CSRF token belongs to one token", async () => {
    const { service } = await setup();
    const a = service.newToken();
    const b = service.newToken();
    expect(service.checkCsrf(a, service.csrf(a))).toBe(true);
    expect(service.checkCsrf(b, service.csrf(a))).toBe(false);
    expect(service.checkCsrf(undefined, service.csrf(a))).toBe(false);
    expect(service.checkCsrf(a, undefined)).toBe(false);
  });
});
