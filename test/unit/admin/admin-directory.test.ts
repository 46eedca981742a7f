// Sign-in to the admin web UI by directory group: the role mapping (highest role wins, DNs without
// case), and the refusals (unknown name, wrong password, no role group, no TOTP token, wrong and
// replayed codes, lockout), local accounts winning a name clash, and the account row that stands for
// the directory user following its role. The directory here is an in-memory stand-in of the
// Directory port; the real slapd runs in test/integration/admin-ui-ldap.test.ts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { addAdminAccount, removeAdminAccount } from "../../../src/admin/admin-accounts.ts";
import { checkUiSignIn, directoryAccountName, isDirectoryAccount, roleFromGroups, roleGroups, type SignInDeps } from "../../../src/admin/admin-directory.ts";
import type { AdminContext } from "../../../src/admin/context.ts";
import { DEFAULT_LOCKOUT } from "../../../src/auth/lockout.ts";
import { setLogSink } from "../../../src/audit/log.ts";
import { Directories } from "../../../src/directory/registry.ts";
import { DirectoryUnavailableError, type Directory, type DirectoryUser } from "../../../src/directory/types.ts";
import { generateTOTP } from "../../../src/otp/index.ts";
import type { SqliteStore } from "../../../src/store/sqlite/store.ts";
import { adminAccountsOf } from "../../../src/store/types.ts";
import { testConfig } from "../http/helpers.ts";
import { cleanup, openIn, tempDir } from "../store/helpers.ts";

setLogSink(() => {});

const ROOT = "cn=Portcullis Root,ou=groups,dc=example,dc=org";
const ADMINS = "cn=Portcullis Admins,ou=groups,dc=example,dc=org";
const OPS = "cn=Portcullis Operators,ou=groups,dc=example,dc=org";
const UI = { ldap_profile: "corp", root_group: ROOT, admin_group: ADMINS, operator_group: OPS };
const SECRET = new Uint8Array(20).fill(7);

/** An in-memory directory: users with a password and groups; `down` makes every call fail as an unreachable profile. */
class FakeDirectory implements Directory {
  readonly name = "corp";
  readonly profile = {} as Directory["profile"];
  down = false;
  binds = 0;
  readonly users = new Map<string, { password: string; groups: string[] }>();
  private check(): void {
    if (this.down) throw new DirectoryUnavailableError("corp", "every URL down");
  }
  async findUser(username: string): Promise<DirectoryUser | undefined> {
    this.check();
    if (!this.users.has(username)) return undefined;
    return { profile: "corp", id: `id-${username}`, dn: `uid=${username},dc=example,dc=org`, username, phone: null, rawPhone: null, email: null, type: null, tokenSerial: null, status: "ok" };
  }
  async verifyPassword(user: DirectoryUser, password: string) {
    this.binds++;
    return this.users.get(user.username)?.password === password ? ({ ok: true } as const) : ({ ok: false, reason: "bad_credentials", detail: "49" } as const);
  }
  async dummyBind(): Promise<void> {
    this.binds++;
  }
  async memberOf(user: DirectoryUser, groupDNs: string[]): Promise<Set<string>> {
    const mine = (this.users.get(user.username)?.groups ?? []).map((g) => g.toLowerCase());
    return new Set(groupDNs.filter((g) => mine.includes(g.toLowerCase())));
  }
  async changePassword() {
    return { ok: false, reason: "not_permitted", detail: "" } as const;
  }
  async close(): Promise<void> {}
}

let now = 1_700_000_000_000;
let dir: string;
let ctx: AdminContext;
let store: SqliteStore;
const directory = new FakeDirectory();
const deps = (ui = UI): SignInDeps => ({ store, now: () => now, lockout: DEFAULT_LOCKOUT, window: 1, random: (n) => crypto.getRandomValues(new Uint8Array(n)), ui, directories: new Directories([directory]) });
const code = (t = now) => generateTOTP({ secret: SECRET, algorithm: "SHA1", digits: 6, period: 30 }, { now: t });
const other = (c: string) => (c === "000000" ? "111111" : "000000");

async function directoryUser(name: string, groups: string[], token = true): Promise<void> {
  directory.users.set(name, { password: `${name} password`, groups });
  const user = await store.users.add({ username: name, passwordHash: null, type: null, phone: null, email: null, disabled: false, expiresAt: null, directory: "corp", externalId: `id-${name}`, directoryPhone: null });
  if (token) await store.tokens.add({ serial: `T-${name}`, userId: user.id, kind: "totp", secret: SECRET, algorithm: "SHA1", digits: 6, period: 30, state: "active" });
}

beforeAll(async () => {
  dir = tempDir();
  store = await openIn(dir);
  await directoryUser("dora", [ADMINS, OPS]);
  await directoryUser("otto", [OPS.toUpperCase()]);
  await directoryUser("rita", [ROOT, OPS]);
  await directoryUser("nina", []);
  await directoryUser("tom", [ADMINS], false);
  await directoryUser("ops", [ROOT]);
  ctx = {
    config: testConfig(dir),
    store,
    audit: { actor: { name: "cli:test", role: "root" }, change: async (f) => f(), note: async () => {} },
    now: () => now,
    random: (n) => crypto.getRandomValues(new Uint8Array(n)),
  };
  await addAdminAccount(ctx, { name: "ops", role: "operator", password: "a long admin password" });
});
afterAll(async () => {
  await store.close();
  cleanup(dir);
});

describe("role mapping", () => {
  test("the highest role whose group holds the user wins; DNs compared without case; empty groups left out", () => {
    const groups = roleGroups(UI);
    expect(roleFromGroups(groups, [OPS, ADMINS])).toBe("admin");
    expect(roleFromGroups(groups, [OPS, ROOT.toLowerCase()])).toBe("root");
    expect(roleFromGroups(groups, [OPS.toUpperCase()])).toBe("operator");
    expect(roleFromGroups(groups, ["cn=other,dc=example,dc=org"])).toBeUndefined();
    expect(roleGroups({ root_group: "", admin_group: ` ${ADMINS} `, operator_group: "" })).toEqual([{ role: "admin", group: ADMINS }]);
    expect(roleFromGroups(roleGroups({ root_group: "", admin_group: ADMINS, operator_group: "" }), [ROOT, OPS])).toBeUndefined();
  });
});

describe("sign-in by directory group", () => {
  const source = "ui:127.0.0.1";

  test("password, group and a code of the user's TOTP token sign in with the group's role, once per code", async () => {
    now += 60_000;
    const first = await checkUiSignIn(deps(), { name: "dora", password: "dora password", code: code(), source });
    expect(first).toMatchObject({ ok: true, source: "ldap", account: { name: directoryAccountName("corp", "dora"), role: "admin" } });
    expect(first.ok && isDirectoryAccount(first.account)).toBe(true);
    // The same code again: the token's high-water mark refuses it.
    expect(await checkUiSignIn(deps(), { name: "dora", password: "dora password", code: code(), source })).toMatchObject({ ok: false, reason: "replayed_code" });
    expect(await checkUiSignIn(deps(), { name: "rita", password: "rita password", code: code(), source: "ui:127.0.0.2" })).toMatchObject({ ok: true, account: { role: "root" } });
    expect(await checkUiSignIn(deps(), { name: "otto", password: "otto password", code: code(), source: "ui:127.0.0.3" })).toMatchObject({ ok: true, account: { role: "operator" } });
  });

  test("refusals: unknown name, wrong password, no role group, no token, wrong code, directory down", async () => {
    now += 60_000;
    const s = (n: number) => `ui:10.0.0.${n}`;
    expect(await checkUiSignIn(deps(), { name: "ghost", password: "x", code: code(), source: s(1) })).toMatchObject({ ok: false, reason: "unknown_account" });
    expect(await checkUiSignIn(deps(), { name: "dora", password: "wrong", code: code(), source: s(2) })).toMatchObject({ ok: false, reason: "bad_password" });
    expect(await checkUiSignIn(deps(), { name: "nina", password: "nina password", code: code(), source: s(3) })).toMatchObject({ ok: false, reason: "no_role" });
    expect(await checkUiSignIn(deps(), { name: "tom", password: "tom password", code: code(), source: s(4) })).toMatchObject({ ok: false, reason: "no_token" });
    expect(await checkUiSignIn(deps(), { name: "dora", password: "dora password", code: other(code()), source: s(5) })).toMatchObject({ ok: false, reason: "bad_code" });
    directory.down = true;
    try {
      expect(await checkUiSignIn(deps(), { name: "dora", password: "dora password", code: code(), source: s(6) })).toMatchObject({ ok: false, reason: "directory_unavailable" });
    } finally {
      directory.down = false;
    }
    // Without a profile, a name that is no local account is simply unknown, and no bind is made.
    const binds = directory.binds;
    expect(await checkUiSignIn(deps({ ...UI, ldap_profile: "" }), { name: "dora", password: "dora password", code: code(), source: s(7) })).toMatchObject({ ok: false, reason: "unknown_account" });
    expect(directory.binds).toBe(binds);
    // A name with characters an account name may not hold (the rows standing for directory users) is never looked up.
    expect(await checkUiSignIn(deps(), { name: directoryAccountName("corp", "dora"), password: "!directory", code: code(), source: s(8) })).toMatchObject({ ok: false, reason: "unknown_account" });
    expect(directory.binds).toBe(binds);
  });

  test("a local account wins a name clash: the directory is not asked", async () => {
    now += 60_000;
    const binds = directory.binds;
    expect(await checkUiSignIn(deps(), { name: "ops", password: "ops password", code: code(), source: "ui:10.1.0.1" })).toMatchObject({ ok: false, reason: "bad_password", account: "ops" });
    // Another spelling of the local name, which the directory would match, is not the directory's either.
    expect(await checkUiSignIn(deps(), { name: "OPS", password: "ops password", code: code(), source: "ui:10.1.0.2" })).toMatchObject({ ok: false, reason: "unknown_account" });
    expect(directory.binds).toBe(binds);
  });

  test("repeated failures lock the name out, before any bind", async () => {
    const source2 = "ui:10.2.0.1";
    let locked = false;
    for (let i = 0; i < 40 && !locked; i++) {
      const r = await checkUiSignIn(deps(), { name: "otto", password: "wrong", code: code(), source: source2 });
      locked = !r.ok && r.reason === "locked_out";
    }
    expect(locked).toBe(true);
    const binds = directory.binds;
    expect(await checkUiSignIn(deps(), { name: "otto", password: "otto password", code: code(), source: source2 })).toMatchObject({ ok: false, reason: "locked_out" });
    // Another spelling of the same directory name shares the counters.
    expect(await checkUiSignIn(deps(), { name: "OTTO", password: "otto password", code: code(), source: source2 })).toMatchObject({ ok: false, reason: "locked_out" });
    expect(directory.binds).toBe(binds);
  });

  test("the account row follows the role found at each sign-in; a changed role ends the old sessions", async () => {
    now += 60_000;
    const repo = adminAccountsOf(store);
    const name = directoryAccountName("corp", "rita");
    const before = (await repo.get(name))!;
    await repo.createSession({ tokenHash: "h-rita", accountId: before.id, csrf: "c", createdAt: now, lastSeenAt: now, expiresAt: now + 60_000 });
    directory.users.get("rita")!.groups = [OPS];
    const r = await checkUiSignIn(deps(), { name: "rita", password: "rita password", code: code(), source: "ui:10.3.0.1" });
    expect(r).toMatchObject({ ok: true, account: { name, role: "operator" } });
    expect(await repo.getSession("h-rita")).toBeUndefined();
    // The row's password can never be used to sign in.
    expect((await repo.get(name))!.passwordHash.startsWith("$argon2")).toBe(false);
  });

  test("admin remove takes a directory user's row: its sessions end", async () => {
    const repo = adminAccountsOf(store);
    const name = directoryAccountName("corp", "rita");
    const row = (await repo.get(name))!;
    await repo.createSession({ tokenHash: "h-rita-2", accountId: row.id, csrf: "c", createdAt: now, lastSeenAt: now, expiresAt: now + 60_000 });
    expect(await removeAdminAccount(ctx, name)).toBe(name);
    expect(await repo.getSession("h-rita-2")).toBeUndefined();
    await expect(removeAdminAccount(ctx, "ldap:corp")).rejects.toThrow("letters, digits");
  });
});
