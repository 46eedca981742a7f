// Admin web UI accounts: creation (argon2id, sealed TOTP secret, audited), the sign-in check
// (password, TOTP above the high-water mark, lockout back-off, unknown names), sessions in the
// store, and removal ending the sessions.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { addAdminAccount, changeAdminPassword, checkAdminSignIn, listAdminAccounts, removeAdminAccount, resetAdminTotp } from "../../../src/admin/admin-accounts.ts";
import type { AdminEventBody } from "../../../src/admin/audit.ts";
import type { AdminContext } from "../../../src/admin/context.ts";
import { AdminError } from "../../../src/admin/errors.ts";
import { DEFAULT_LOCKOUT } from "../../../src/auth/lockout.ts";
import { setLogSink } from "../../../src/audit/log.ts";
import { decodeBase32, generateTOTP } from "../../../src/otp/index.ts";
import type { SqliteStore } from "../../../src/store/sqlite/store.ts";
import { testConfig } from "../http/helpers.ts";
import { cleanup, openIn, tempDir } from "../store/helpers.ts";

setLogSink(() => {});

const PASSWORD = "a long admin password";
let now = 1_700_000_000_000;
let dir: string;
let store: SqliteStore;
let ctx: AdminContext;
const recorded: Array<AdminEventBody & { by: string }> = [];
let secret: Uint8Array;

const deps = () => ({ store, now: () => now, lockout: DEFAULT_LOCKOUT, window: 1 });
const codeAt = (t: number) => generateTOTP({ secret, algorithm: "SHA1", digits: 6, period: 30 }, { now: t });

beforeAll(async () => {
  dir = tempDir();
  store = await openIn(dir);
  ctx = {
    config: testConfig(dir),
    store,
    audit: {
      actor: { name: "cli:test", role: "root" },
      async change(change, describe) {
        const r = await change();
        const e = describe(r);
        if (e) recorded.push({ ...e, by: "cli:test" });
        return r;
      },
      async note(e) {
        recorded.push({ ...e, by: "cli:test" });
      },
    },
    now: () => now,
    random: (n) => crypto.getRandomValues(new Uint8Array(n)),
  };
  const { account, uri } = await addAdminAccount(ctx, { name: "ops", role: "admin", password: PASSWORD });
  expect(account).toMatchObject({ name: "ops", role: "admin", lastSignInAt: null });
  secret = decodeBase32(/secret=([A-Z2-7]+)/.exec(uri)![1]!);
});
afterAll(async () => {
  await store.close();
  cleanup(dir);
});

describe("admin accounts", () => {
  test("created audited, listed without secrets; bad input and a taken name refused with the field", async () => {
    expect(recorded).toContainEqual({ type: "admin.account_added", account: "ops", role: "admin", by: "cli:test" });
    expect(await listAdminAccounts(ctx)).toEqual([{ name: "ops", role: "admin", createdAt: expect.any(String), lastSignInAt: null }]);
    const refused = async (input: { name: string; role: string; password: string }) => {
      try {
        await addAdminAccount(ctx, input);
      } catch (e) {
        return e as AdminError;
      }
      throw new Error("accepted");
    };
    expect((await refused({ name: "ops", role: "admin", password: PASSWORD })).code).toBe("conflict");
    expect((await refused({ name: "x y", role: "admin", password: PASSWORD })).field).toBe("name");
    expect((await refused({ name: "new", role: "god", password: PASSWORD })).field).toBe("role");
    expect((await refused({ name: "new", role: "root", password: "short" })).field).toBe("password");
    // The secret is sealed at rest: the raw column is not the base32 secret.
    const raw = (store as unknown as { db: { prepare(s: string): { get(): { totp_secret: string } } } }).db.prepare("SELECT totp_secret FROM admin_accounts").get();
    expect(raw.totp_secret.startsWith("v1.")).toBe(true);
  });

  test("sign-in: wrong password, wrong code and unknown name fail; a good code once; the same step again is a replay", async () => {
    const source = "ui:127.0.0.1";
    expect(await checkAdminSignIn(deps(), { name: "ops", password: "wrong", code: codeAt(now), source })).toMatchObject({ ok: false, reason: "bad_password", account: "ops" });
    expect(await checkAdminSignIn(deps(), { name: "ops", password: PASSWORD, code: "000000" === codeAt(now) ? "111111" : "000000", source })).toMatchObject({ ok: false, reason: "bad_code" });
    const unknown = await checkAdminSignIn(deps(), { name: "ghost", password: PASSWORD, code: codeAt(now), source });
    expect(unknown).toMatchObject({ ok: false, reason: "unknown_account" });
    expect(unknown.ok === false && unknown.account).toBeFalsy();
    const ok = await checkAdminSignIn(deps(), { name: "ops", password: PASSWORD, code: codeAt(now), source });
    expect(ok.ok).toBe(true);
    // The counters of the account are cleared by the success.
    expect(await store.lockouts.list("admin-ui:ops")).toEqual([]);
    expect(await checkAdminSignIn(deps(), { name: "ops", password: PASSWORD, code: codeAt(now), source })).toMatchObject({ ok: false, reason: "replayed_code" });
    now += 30_000;
    expect((await checkAdminSignIn(deps(), { name: "ops", password: PASSWORD, code: codeAt(now), source })).ok).toBe(true);
  });

  test("lockout: after the threshold of wrong passwords the source backs off, even for the right password", async () => {
    now += 3_600_000;
    const source = "ui:192.0.2.9";
    for (let i = 0; i < DEFAULT_LOCKOUT.passwordThreshold; i++) await checkAdminSignIn(deps(), { name: "ops", password: "wrong", code: "123456", source });
    expect(await checkAdminSignIn(deps(), { name: "ops", password: PASSWORD, code: codeAt(now), source })).toMatchObject({ ok: false, reason: "locked_out" });
    await store.lockouts.clear("admin-ui:ops");
    expect((await checkAdminSignIn(deps(), { name: "ops", password: PASSWORD, code: codeAt(now), source })).ok).toBe(true);
  });

  test("own password change: the rules first (no code used), then the current password and a fresh code; other sessions end, the named one stays", async () => {
    now += 3_600_000;
    const repo = store.adminAccounts;
    const account = (await repo.get("ops"))!;
    const check = { lockout: DEFAULT_LOCKOUT, window: 1 };
    const change = (over: Partial<Parameters<typeof changeAdminPassword>[2]>) =>
      changeAdminPassword(ctx, check, { name: "ops", current: PASSWORD, code: codeAt(now), password: "the next long password", again: "the next long password", source: "ui:127.0.0.1", keepSession: "mine", ...over });
    const refusal = async (p: Promise<unknown>) => {
      try {
        await p;
      } catch (e) {
        return e as AdminError;
      }
      throw new Error("accepted");
    };
    expect((await refusal(change({ again: "something else entirely" }))).field).toBe("again");
    expect((await refusal(change({ password: "short", again: "short" }))).field).toBe("password");
    expect(await change({ current: "wrong" })).toEqual({ ok: false, reason: "bad_password" });
    recorded.length = 0;
    await repo.createSession({ tokenHash: "mine", accountId: account.id, csrf: "c", createdAt: now, lastSeenAt: now, expiresAt: now + 60_000 });
    await repo.createSession({ tokenHash: "theirs", accountId: account.id, csrf: "c", createdAt: now, lastSeenAt: now, expiresAt: now + 60_000 });
    // The rule checks above used no code: this one is still fresh.
    expect(await change({})).toEqual({ ok: true, sessionsKept: true });
    expect(await repo.getSession("mine")).toBeDefined();
    expect(await repo.getSession("theirs")).toBeUndefined();
    expect(recorded).toEqual([{ type: "admin.account_password_changed", account: "ops", by: "cli:test" }]);
    // The same code again is a replay; the new password signs in with the next one.
    expect(await change({ current: "the next long password", password: PASSWORD, again: PASSWORD })).toEqual({ ok: false, reason: "replayed_code" });
    now += 30_000;
    expect((await checkAdminSignIn(deps(), { name: "ops", password: "the next long password", code: codeAt(now), source: "ui:x" })).ok).toBe(true);
    now += 30_000;
    expect(await change({ current: "the next long password", password: PASSWORD, again: PASSWORD })).toEqual({ ok: true, sessionsKept: true });
    await repo.deleteSession("mine");
    recorded.length = 0;
  });

  test("reset-totp replaces the secret and ends sessions; remove ends them too", async () => {
    const repo = store.adminAccounts;
    const account = (await repo.get("ops"))!;
    await repo.createSession({ tokenHash: "h1", accountId: account.id, csrf: "c", createdAt: now, lastSeenAt: now, expiresAt: now + 1000 });
    const uri = await resetAdminTotp(ctx, "ops");
    expect(await repo.getSession("h1")).toBeUndefined();
    expect((await repo.get("ops"))!.totpLastStep).toBe(0);
    secret = decodeBase32(/secret=([A-Z2-7]+)/.exec(uri)![1]!);
    now += 60_000;
    expect((await checkAdminSignIn(deps(), { name: "ops", password: PASSWORD, code: codeAt(now), source: "ui:x" })).ok).toBe(true);
    await repo.createSession({ tokenHash: "h2", accountId: account.id, csrf: "c", createdAt: now, lastSeenAt: now, expiresAt: now + 1000 });
    expect(await repo.purgeSessions(now + 500, 100)).toBe(1);
    await repo.createSession({ tokenHash: "h3", accountId: account.id, csrf: "c", createdAt: now, lastSeenAt: now, expiresAt: now + 1000 });
    expect(await removeAdminAccount(ctx, "ops")).toBe("ops");
    expect(await repo.getSession("h3")).toBeUndefined();
    expect(recorded.map((e) => e.type)).toEqual(["admin.account_totp_reset", "admin.account_removed"]);
    let err: unknown;
    try {
      await removeAdminAccount(ctx, "ops");
    } catch (e) {
      err = e;
    }
    expect((err as AdminError).code).toBe("not_found");
  });
});
