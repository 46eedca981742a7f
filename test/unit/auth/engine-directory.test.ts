// The engine with LDAP/AD profiles (issue 3): source order, unavailable profiles, hybrid records,
// status in every flow, groups and reply attributes, and the expired-password change over RADIUS.
import { beforeEach, describe, expect, test } from "bun:test";
import type { AuditEvent } from "../../../src/audit/events.ts";
import { openChangeSecrets } from "../../../src/auth/challenge-secrets.ts";
import { Engine, stateId, type Attempt, type Channel, type Decision, type EngineOptions, type PasswordVerifier } from "../../../src/auth/engine.ts";
import { DEFAULT_LOCKOUT } from "../../../src/auth/lockout.ts";
import { CHANGE_PROMPTS, PROVEN_PASSWORD_MESSAGES } from "../../../src/auth/messages.ts";
import type { AuthType } from "../../../src/domain/auth-types.ts";
import { Directories } from "../../../src/directory/registry.ts";
import type { LdapProfile } from "../../../src/directory/types.ts";
import { generateTOTP } from "../../../src/otp/index.ts";
import { FakeDirectory } from "./fake-directory.ts";
import { MemoryStore } from "./memory-store.ts";

const SEED = new TextEncoder().encode("12345678901234567890");
const T0 = 1_800_000_000_000;
const STEP = 30_000;
const ADMINS = "CN=VPN Admins,OU=Groups,DC=corp,DC=example";
const USERS = "CN=VPN Users,OU=Groups,DC=corp,DC=example";
const OTHERS = "CN=Other,OU=Groups,DC=corp,DC=example";

class CountingVerifier implements PasswordVerifier {
  calls = 0;
  async verify(plain: string, hash: string) {
    this.calls++;
    return hash === `plain:${plain}`;
  }
  async dummy() {
    this.calls++;
  }
}

let store: MemoryStore;
let verifier: CountingVerifier;
let events: AuditEvent[];
let corp: FakeDirectory;
let branch: FakeDirectory;

const client: Channel = { kind: "radius", name: "vpn", firstFactor: "password", otpMode: "challenge", allowPasswordOnly: false, directories: null };
const concatClient: Channel = { ...client, name: "fw", otpMode: "concat" };
const codeOnlyClient: Channel = { ...client, name: "nas2", firstFactor: "none" };
const passwordClient: Channel = { ...client, name: "legacy", allowPasswordOnly: true };

const engine = (over: Partial<EngineOptions> = {}, list = [corp, branch]) =>
  new Engine(
    store,
    {
      realms: "strip",
      window: 1,
      hotpLookAhead: 10,
      challengeTtlMs: 120_000,
      challengeMaxFailures: 3,
      otpPrompt: "Enter your verification code",
      retryPrompt: "Wrong code, try again",
      lockout: { ...DEFAULT_LOCKOUT, passwordThreshold: 3, codeThreshold: 3 },
      passwords: verifier,
      directories: new Directories(list),
      ...over,
    },
    (e) => events.push(e),
  );

const attempt = (channel: Channel, username: string, secret: string, now: number, state?: Uint8Array): Attempt => {
  const a: Attempt = { channel, username, method: "pap", now, secret };
  if (state) a.state = state;
  return a;
};
const code = (now: number) => generateTOTP({ secret: SEED, algorithm: "SHA1", digits: 6, period: 30 }, { now });

/** The store record a directory user gets on first sight, with a TOTP token on it. */
async function giveToken(username: string) {
  const user = await store.users.findByName(username);
  if (!user) throw new Error(`no record for ${username}`);
  return store.tokens.add({ serial: `T-${username}-${user.id}`, userId: user.id, kind: "totp", secret: SEED, algorithm: "SHA1", digits: 6, period: 30, state: "active" });
}

/** First contact creates the shadow record (the attempt itself is refused: no token yet); then a token. */
async function enrol(e: Engine, username: string, password = "dir-pass-1") {
  await e.authenticate(attempt(client, username, password, T0 - 10 * STEP));
  await giveToken(username);
}

function challenged(d: Decision): Extract<Decision, { kind: "challenge" }> {
  if (d.kind !== "challenge") throw new Error(`expected a challenge, got ${JSON.stringify(d)}`);
  return d;
}

beforeEach(() => {
  store = new MemoryStore();
  verifier = new CountingVerifier();
  events = [];
  corp = new FakeDirectory("corp");
  branch = new FakeDirectory("branch");
});

describe("source order", () => {
  test("null directories: every profile in config order, then local", async () => {
    corp.add({ id: "c-1", username: "alice", password: "corp-pass" });
    branch.add({ id: "b-1", username: "alice", password: "branch-pass" });
    const e = engine();
    await enrol(e, "alice", "corp-pass");
    expect(challenged(await e.authenticate(attempt(client, "alice", "corp-pass", T0))).prompt).toBe("Enter your verification code");
    expect(await e.authenticate(attempt(client, "alice", "branch-pass", T0))).toMatchObject({ kind: "reject", reason: "bad_password" });
    expect(branch.calls).toEqual([]);
  });

  test("a client's own order is followed", async () => {
    corp.add({ id: "c-1", username: "alice", password: "corp-pass" });
    branch.add({ id: "b-1", username: "alice", password: "branch-pass" });
    const e = engine();
    const d = await e.authenticate(attempt({ ...client, directories: ["branch", "corp"] }, "alice", "branch-pass", T0));
    expect(d).toMatchObject({ kind: "reject", reason: "no_token" }); // found and proven in branch, no token yet
    expect((await store.users.findByName("alice"))?.directory).toBe("branch");
    expect(corp.calls).toEqual([]);
  });

  test("not found in a profile: the next source is tried (local users after the profiles)", async () => {
    await store.users.add({ username: "lena", passwordHash: "plain:local-pass", type: "totp", phone: null, email: null, disabled: false, expiresAt: null, directory: null, externalId: null, directoryPhone: null });
    await giveToken("lena");
    const d = await engine().authenticate(attempt(client, "lena", "local-pass", T0));
    expect(d.kind).toBe("challenge");
    expect(corp.calls).toEqual(["findUser:lena"]);
    expect(branch.calls).toEqual(["findUser:lena"]);
  });

  test("an unavailable profile stops the attempt: the next profile is never asked", async () => {
    branch.add({ id: "b-1", username: "bob", password: "branch-pass" });
    corp.unavailable = true;
    expect(await engine().authenticate(attempt(client, "bob", "branch-pass", T0))).toEqual({ kind: "reject", reason: "directory_unavailable" });
    expect(branch.calls).toEqual([]);
    expect(await store.lockouts.get("bob", "password")).toBeUndefined();
    const failure = events.find((ev) => ev.type === "auth.failure" && ev.reason === "directory_unavailable");
    expect(failure && "detail" in failure ? failure.detail : "").toContain("corp");
  });

  test("a linked record is not a local user: a client limited to local does not reach it", async () => {
    corp.add({ id: "c-1", username: "alice", password: "corp-pass" });
    const e = engine();
    await enrol(e, "alice", "corp-pass");
    expect(await e.authenticate(attempt({ ...client, directories: ["local"] }, "alice", "corp-pass", T0))).toEqual({ kind: "reject", reason: "unknown_user" });
  });

  test("unknown in every source: one dummy bind on the first profile of the order, no argon2", async () => {
    const d = await engine().authenticate(attempt({ ...client, directories: ["local", "branch", "corp"] }, "ghost", "whatever", T0));
    expect(d).toEqual({ kind: "reject", reason: "unknown_user" });
    expect(branch.calls).toEqual(["findUser:ghost", "dummyBind"]);
    expect(corp.calls).toEqual(["findUser:ghost"]);
    expect(verifier.calls).toBe(0);
    expect((await store.lockouts.get("ghost", "password"))?.failures).toBe(1);
  });

  test("unknown with only local users: the argon2 dummy", async () => {
    await engine().authenticate(attempt({ ...client, directories: ["local"] }, "ghost", "whatever", T0));
    expect(verifier.calls).toBe(1);
    expect(corp.calls).toEqual([]);
  });
});

describe("hybrid records", () => {
  test("token_attribute: an unassigned imported token named by the entry is assigned and works; another user's token is never moved", async () => {
    const hw = await store.tokens.add({ serial: "HW-0001", userId: null, kind: "totp", secret: SEED, algorithm: "SHA1", digits: 6, period: 30, state: "active" });
    corp.add({ id: "guid-hw", username: "hanna", password: "corp-pass", tokenSerial: "HW-0001" });
    const e = engine();
    const first = challenged(await e.authenticate(attempt(client, "hanna", "corp-pass", T0)));
    const hanna = (await store.users.findByName("hanna"))!;
    expect((await store.tokens.findById(hw.id))?.userId).toBe(hanna.id);
    expect(events.some((ev) => ev.type === "directory.token_assigned")).toBe(true);
    expect((await e.authenticate(attempt(client, "hanna", code(T0), T0, first.state))).kind).toBe("accept");

    // Another entry naming the same serial: refused and audited, the token stays with hanna.
    corp.add({ id: "guid-hw2", username: "mallory", password: "corp-pass", tokenSerial: "HW-0001" });
    expect((await e.authenticate(attempt(client, "mallory", "corp-pass", T0))).kind).toBe("reject");
    expect((await store.tokens.findById(hw.id))?.userId).toBe(hanna.id);
    expect(events.some((ev) => ev.type === "directory.token_refused" && ev.user === "mallory")).toBe(true);
  });

  test("first sight creates a shadow record: no local password, type as the directory says", async () => {
    corp.add({ id: "guid-1", username: "alice", password: "corp-pass", rawPhone: "070-123 45 67" });
    await engine().authenticate(attempt(client, "alice", "corp-pass", T0));
    const { id: _id, createdAt: _c, ...record } = (await store.users.findByName("alice"))!;
    expect(record).toEqual({ username: "alice", passwordHash: null, type: null, phone: null, email: null, disabled: false, expiresAt: null, directory: "corp", externalId: "guid-1", directoryPhone: "070-123 45 67" });
    expect(events.some((ev) => ev.type === "directory.phone_changed")).toBe(false);
  });

  test("an unlinked record of that profile and name is linked, and its tokens are used", async () => {
    corp.add({ id: "guid-2", username: "bob", password: "corp-pass" });
    const pre = await store.users.add({ username: "bob", passwordHash: null, type: null, phone: null, email: null, disabled: false, expiresAt: null, directory: "corp", externalId: null, directoryPhone: null });
    await giveToken("bob");
    const first = challenged(await engine().authenticate(attempt(client, "bob", "corp-pass", T0)));
    expect((await store.users.findById(pre.id))?.externalId).toBe("guid-2");
    expect((await engine().authenticate(attempt(client, "bob", code(T0), T0, first.state))).kind).toBe("accept");
  });

  test("a rename in the directory renames the record; the tokens survive", async () => {
    corp.add({ id: "guid-3", username: "carol", password: "corp-pass" });
    const e = engine();
    await enrol(e, "carol", "corp-pass");
    const before = (await store.users.findByName("carol"))!;
    corp.users.get("guid-3")!.username = "carol.smith";
    const first = challenged(await e.authenticate(attempt(client, "carol.smith", "corp-pass", T0)));
    expect(await store.users.findByName("carol")).toBeUndefined();
    expect((await store.users.findByName("carol.smith"))?.id).toBe(before.id);
    expect(await e.authenticate(attempt(client, "carol.smith", code(T0), T0, first.state))).toEqual({ kind: "accept", user: "carol.smith" });
  });

  test("a local user holding the name of a directory user is a conflict, not a takeover", async () => {
    corp.add({ id: "guid-4", username: "dave", password: "corp-pass" });
    await store.users.add({ username: "dave", passwordHash: "plain:local", type: "totp", phone: null, email: null, disabled: false, expiresAt: null, directory: null, externalId: null, directoryPhone: null });
    expect(await engine().authenticate(attempt(client, "dave", "corp-pass", T0))).toEqual({ kind: "reject", reason: "identity_conflict" });
    expect(corp.calls).not.toContain("verifyPassword:dave");
  });

  test("a phone change in the directory is audited, masked, and remembered", async () => {
    corp.add({ id: "guid-5", username: "erin", password: "corp-pass", rawPhone: "+46701234567" });
    const e = engine();
    await enrol(e, "erin", "corp-pass");
    corp.users.get("guid-5")!.rawPhone = "+46709999988";
    await e.authenticate(attempt(client, "erin", "corp-pass", T0));
    await e.authenticate(attempt(client, "erin", "corp-pass", T0 + 1));
    const changes = events.filter((ev) => ev.type === "directory.phone_changed");
    expect(changes).toEqual([{ type: "directory.phone_changed", directory: "corp", user: "erin", from: "…67", to: "…88" }]);
    expect(JSON.stringify(events)).not.toContain("1234567");
    expect((await store.users.findByName("erin"))?.directoryPhone).toBe("+46709999988");
  });
});

describe("type precedence", () => {
  test.each<[string, AuthType | null, AuthType | null, boolean, Channel, Decision["kind"]]>([
    ["directory type password refused by default → default_type totp", null, "password", false, passwordClient, "challenge"],
    ["directory type password where the profile allows it", null, "password", true, passwordClient, "accept"],
    ["record override password beats the directory's totp", "password", "totp", false, passwordClient, "accept"],
    ["record override totp beats the directory's password", "totp", "password", true, passwordClient, "challenge"],
    ["no type anywhere → profile default", null, null, false, client, "challenge"],
  ])("%s", async (_label, recordType, dirType, allow, channel, kind) => {
    corp = new FakeDirectory("corp", { allowTypePassword: allow });
    corp.add({ id: "g", username: "finn", password: "corp-pass", type: dirType });
    const e = engine();
    await enrol(e, "finn", "corp-pass");
    const rec = (await store.users.findByName("finn"))!;
    await store.users.update(rec.id, { type: recordType });
    expect((await e.authenticate(attempt(channel, "finn", "corp-pass", T0))).kind).toBe(kind);
  });

  test("a directory that fails to filter type password is still refused by the engine", async () => {
    corp.filterTypes = false;
    corp.add({ id: "g", username: "finn", password: "corp-pass", type: "password" });
    const e = engine();
    await enrol(e, "finn", "corp-pass");
    expect((await e.authenticate(attempt(passwordClient, "finn", "corp-pass", T0))).kind).toBe("challenge");
  });
});

describe("bind results and account status", () => {
  test.each<[string, Parameters<FakeDirectory["add"]>[0], string, string, string | undefined, number]>([
    ["52e wrong password: generic, counted", { id: "g", username: "gus", password: "right" }, "wrong", "bad_password", undefined, 1],
    ["530 logon hours: clear text", { id: "g", username: "gus", password: "right", bindFailure: "not_permitted_time" }, "right", "not_permitted", PROVEN_PASSWORD_MESSAGES.not_permitted, 0],
    ["531 workstation: clear text", { id: "g", username: "gus", password: "right", bindFailure: "not_permitted_workstation" }, "right", "not_permitted", PROVEN_PASSWORD_MESSAGES.not_permitted, 0],
    ["533 disabled: clear text", { id: "g", username: "gus", password: "right", status: "disabled" }, "right", "account_disabled", PROVEN_PASSWORD_MESSAGES.account_disabled, 0],
    ["533 with a wrong password: generic (52e wins)", { id: "g", username: "gus", password: "right", status: "disabled" }, "wrong", "bad_password", undefined, 1],
    ["701 account expired: clear text", { id: "g", username: "gus", password: "right", status: "account_expired" }, "right", "account_expired", PROVEN_PASSWORD_MESSAGES.account_expired, 0],
    ["775 locked, right password: generic, not counted", { id: "g", username: "gus", password: "right", status: "locked" }, "right", "account_locked", undefined, 0],
    ["775 locked, wrong password: generic, not counted", { id: "g", username: "gus", password: "right", status: "locked" }, "wrong", "account_locked", undefined, 0],
  ])("%s", async (_label, user, typed, reason, message, counted) => {
    corp.add(user);
    const d = await engine().authenticate(attempt(client, "gus", typed, T0));
    expect(d).toEqual(message ? { kind: "reject", reason: reason as "bad_password", message } : { kind: "reject", reason: reason as "bad_password" });
    expect((await store.lockouts.get("gus", "password"))?.failures ?? 0).toBe(counted);
  });

  test.each<[string, "disabled" | "locked" | "account_expired" | "must_change" | "password_expired", string]>([
    ["disabled", "disabled", "account_disabled"],
    ["locked", "locked", "account_locked"],
    ["expired account", "account_expired", "account_expired"],
    ["must change", "must_change", "must_change"],
    ["expired password", "password_expired", "password_expired"],
  ])("code-only: a %s directory account is refused before the code, with the generic text", async (_l, status, reason) => {
    corp.add({ id: "g", username: "hal", password: "right" });
    const e = engine();
    await enrol(e, "hal", "right");
    corp.users.get("g")!.status = status;
    expect(await e.authenticate(attempt(codeOnlyClient, "hal", code(T0), T0))).toEqual({ kind: "reject", reason: reason as "account_locked" });
    // the code was not consumed
    corp.users.get("g")!.status = "ok";
    expect((await e.authenticate(attempt(codeOnlyClient, "hal", code(T0), T0))).kind).toBe("accept");
  });

  test("second leg: the user is read again, and a disabled account is refused", async () => {
    corp.add({ id: "g", username: "ivy", password: "right" });
    const e = engine();
    await enrol(e, "ivy", "right");
    const first = challenged(await e.authenticate(attempt(client, "ivy", "right", T0)));
    corp.users.get("g")!.status = "disabled";
    expect(await e.authenticate(attempt(client, "ivy", code(T0), T0, first.state))).toEqual({ kind: "reject", reason: "account_disabled" });
    expect(corp.calls.filter((c) => c === "findUser:ivy").length).toBe(3);
  });

  test("a record disabled locally refuses the directory user too", async () => {
    corp.add({ id: "g", username: "jo", password: "right" });
    const e = engine();
    await enrol(e, "jo", "right");
    await store.users.update((await store.users.findByName("jo"))!.id, { disabled: true });
    expect((await e.authenticate(attempt(client, "jo", "right", T0))).kind).toBe("reject");
    expect((await e.authenticate(attempt(codeOnlyClient, "jo", code(T0), T0))).kind).toBe("reject");
  });
});

describe("groups and reply attributes", () => {
  const reply: LdapProfile["reply"] = [
    { group: USERS, attributes: { Class: "users", "Filter-Id": "user-acl" } },
    { group: ADMINS, attributes: { "Fortinet-Group-Name": "vpn-admins", "Session-Timeout": 3600 } },
    { group: OTHERS, attributes: { Class: "others" } },
  ];

  test("missing a required group is refused after the password, with one memberOf call", async () => {
    corp = new FakeDirectory("corp", { requiredGroups: [USERS], reply });
    corp.add({ id: "g", username: "kim", password: "right", groups: [OTHERS] });
    expect(await engine().authenticate(attempt(client, "kim", "right", T0))).toEqual({ kind: "reject", reason: "not_in_group", message: PROVEN_PASSWORD_MESSAGES.not_in_group! });
    expect(corp.calls.filter((c) => c.startsWith("memberOf")).length).toBe(1);
  });

  test("reply attributes of every matching group, in order, survive the challenge to the final accept", async () => {
    corp = new FakeDirectory("corp", { requiredGroups: [USERS], reply });
    corp.add({ id: "g", username: "lou", password: "right", groups: [ADMINS.toUpperCase(), USERS] });
    const e = engine();
    await enrol(e, "lou", "right");
    const first = challenged(await e.authenticate(attempt(client, "lou", "right", T0)));
    expect(await e.authenticate(attempt(client, "lou", code(T0), T0, first.state))).toEqual({
      kind: "accept",
      user: "lou",
      attributes: [
        { name: "Class", value: "users" },
        { name: "Filter-Id", value: "user-acl" },
        { name: "Fortinet-Group-Name", value: "vpn-admins" },
        { name: "Session-Timeout", value: 3600 },
      ],
    });
  });

  test("code-only and concatenated logins get the attributes too; a required group gates code-only", async () => {
    corp = new FakeDirectory("corp", { requiredGroups: [USERS], reply });
    corp.add({ id: "g", username: "max", password: "right", groups: [USERS] });
    corp.add({ id: "h", username: "ned", password: "right", groups: [OTHERS] });
    const e = engine();
    await enrol(e, "max", "right");
    await enrol(e, "ned", "right");
    const expected = [{ name: "Class", value: "users" }, { name: "Filter-Id", value: "user-acl" }];
    expect(await e.authenticate(attempt(codeOnlyClient, "max", code(T0), T0))).toEqual({ kind: "accept", user: "max", attributes: expected });
    expect(await e.authenticate(attempt(concatClient, "max", "right" + code(T0 + STEP), T0 + STEP))).toEqual({ kind: "accept", user: "max", attributes: expected });
    expect(await e.authenticate(attempt(codeOnlyClient, "ned", code(T0), T0))).toEqual({ kind: "reject", reason: "not_in_group" });
  });
});

describe("expired or must-change password over RADIUS", () => {
  async function setup(status: "password_expired" | "must_change" = "password_expired", type: AuthType | null = null) {
    corp = new FakeDirectory("corp", { reply: [{ group: ADMINS, attributes: { "Fortinet-Group-Name": "vpn-admins" } }], allowTypePassword: true });
    corp.add({ id: "g", username: "olga", password: "old-pass-1", groups: [ADMINS], type });
    const e = engine();
    await enrol(e, "olga", "old-pass-1");
    corp.users.get("g")!.status = status;
    corp.calls = [];
    return e;
  }
  const leg = (e: Engine, typed: string, state: Uint8Array, now = T0) => e.authenticate(attempt(client, "olga", typed, now, state));

  test.each(["password_expired", "must_change"] as const)("%s: new password twice (a mismatch starts over), then the code, then the change, then accept with the attributes", async (status) => {
    const e = await setup(status);
    let d = challenged(await e.authenticate(attempt(client, "olga", "old-pass-1", T0)));
    expect(d.prompt).toBe(CHANGE_PROMPTS.newPassword);
    d = challenged(await leg(e, "new-pass-22", d.state));
    expect(d.prompt).toBe(CHANGE_PROMPTS.confirm);
    d = challenged(await leg(e, "new-pass-23", d.state));
    expect(d.prompt).toBe(CHANGE_PROMPTS.mismatch);
    d = challenged(await leg(e, "new-pass-22", d.state));
    d = challenged(await leg(e, "new-pass-22", d.state));
    expect(d.prompt).toBe("Enter your verification code");
    expect(corp.calls.some((c) => c.startsWith("changePassword"))).toBe(false); // never before the code
    expect(await leg(e, code(T0), d.state)).toEqual({ kind: "accept", user: "olga", attributes: [{ name: "Fortinet-Group-Name", value: "vpn-admins" }] });
    expect(corp.users.get("g")!.password).toBe("new-pass-22");
    expect(events.some((ev) => ev.type === "auth.password_changed")).toBe(true);
    // the high-water mark was committed: the same code cannot be used again
    expect((await e.authenticate(attempt(codeOnlyClient, "olga", code(T0), T0))).kind).toBe("reject");
  });

  test("a wrong code follows the normal rules and changes nothing; the right code then changes it", async () => {
    const e = await setup();
    let d = challenged(await e.authenticate(attempt(client, "olga", "old-pass-1", T0)));
    d = challenged(await leg(e, "new-pass-22", d.state));
    d = challenged(await leg(e, "new-pass-22", d.state));
    d = challenged(await leg(e, "000000", d.state));
    expect(d.prompt).toBe("Wrong code, try again");
    expect(corp.users.get("g")!.password).toBe("old-pass-1");
    d = challenged(await leg(e, "000001", d.state));
    expect(await leg(e, "000002", d.state)).toEqual({ kind: "reject", reason: "too_many_codes" });
    expect(corp.users.get("g")!.password).toBe("old-pass-1");
    expect(corp.calls.some((c) => c.startsWith("changePassword"))).toBe(false);
  });

  test("a policy refusal shows the directory's message; the retry goes straight to the change (code already done)", async () => {
    const e = await setup();
    let d = challenged(await e.authenticate(attempt(client, "olga", "old-pass-1", T0)));
    d = challenged(await leg(e, "old-pass-1", d.state)); // in the history
    d = challenged(await leg(e, "old-pass-1", d.state));
    d = challenged(await leg(e, code(T0), d.state));
    expect(d.prompt).toBe("The password was used before. Enter a new password.");
    d = challenged(await leg(e, "fresh-pass-3", d.state));
    expect(d.prompt).toBe(CHANGE_PROMPTS.confirm);
    expect((await leg(e, "fresh-pass-3", d.state)).kind).toBe("accept");
    expect(corp.users.get("g")!.password).toBe("fresh-pass-3");
    expect(corp.calls.filter((c) => c.startsWith("changePassword")).length).toBe(2);
  });

  test("type password (on a client that allows it): the change follows the confirmation", async () => {
    const e = await setup("must_change", "password");
    const p = (typed: string, state?: Uint8Array) => e.authenticate(attempt(passwordClient, "olga", typed, T0, state));
    let d = challenged(await p("old-pass-1"));
    d = challenged(await p("new-pass-22", d.state));
    expect((await p("new-pass-22", d.state)).kind).toBe("accept");
    expect(corp.users.get("g")!.password).toBe("new-pass-22");
  });

  test("both passwords are sealed in the store; another State cannot open them", async () => {
    const e = await setup();
    let d = challenged(await e.authenticate(attempt(client, "olga", "old-pass-1", T0)));
    d = challenged(await leg(e, "new-pass-22", d.state));
    d = challenged(await leg(e, "new-pass-22", d.state));
    const rows = store.challenges.written;
    const all = JSON.stringify(rows);
    for (const secret of ["old-pass-1", "new-pass-22"]) {
      expect(all).not.toContain(secret);
      expect(all).not.toContain(Buffer.from(secret).toString("base64").slice(0, 12));
      expect(all).not.toContain(Buffer.from(secret).toString("hex"));
    }
    const row = store.challenges.rows.get(stateId(d.state))!;
    const sealed = (JSON.parse(row.data) as { change: { sealed: string } }).change.sealed;
    const binding = `vpn\0${row.userId}`;
    expect(openChangeSecrets(d.state, binding, sealed)).toEqual({ old: "old-pass-1", new: "new-pass-22" });
    const other = Uint8Array.from(d.state);
    other[0]! ^= 1;
    expect(openChangeSecrets(other, binding, sealed)).toBeUndefined();
    expect(openChangeSecrets(d.state, `other\0${row.userId}`, sealed)).toBeUndefined();
  });

  test("the change-flow State is single-use and bound to the client", async () => {
    const e = await setup();
    const d = challenged(await e.authenticate(attempt(client, "olga", "old-pass-1", T0)));
    expect(await e.authenticate(attempt({ ...client, name: "other" }, "olga", "new-pass-22", T0, d.state))).toMatchObject({ kind: "reject", reason: "state_mismatch" });
    expect(await leg(e, "new-pass-22", d.state)).toMatchObject({ kind: "reject", reason: "state_unknown" });
  });

  test("a wrong old password never starts the flow", async () => {
    const e = await setup();
    expect(await e.authenticate(attempt(client, "olga", "wrong", T0))).toEqual({ kind: "reject", reason: "bad_password" });
  });

  test("a concatenated login with an expired password is refused with a clear text", async () => {
    const e = await setup();
    expect(await e.authenticate(attempt(concatClient, "olga", "old-pass-1" + code(T0), T0))).toEqual({
      kind: "reject",
      reason: "password_expired",
      message: PROVEN_PASSWORD_MESSAGES.password_expired!,
    });
  });
});
