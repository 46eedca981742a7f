// The engine against a real SQLite store: every flow and the security defaults DESIGN names
// (State binding, high-water mark, normalised lockout, equal work for unknown users).
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AuditEvent } from "../../../src/audit/events.ts";
import { Engine, type Attempt, type Channel, type EngineOptions, type PasswordVerifier } from "../../../src/auth/engine.ts";
import { DEFAULT_LOCKOUT } from "../../../src/auth/lockout.ts";
import type { AuthType } from "../../../src/domain/auth-types.ts";
import { generateTOTP } from "../../../src/otp/index.ts";
import { openStore } from "../../../src/store/open.ts";
import type { Store, Token } from "../../../src/store/types.ts";

const SEED = new TextEncoder().encode("12345678901234567890");
const T0 = 1_800_000_000_000; // a fixed instant, on a 30 s boundary
const STEP = 30_000;

/** Plaintext "hashes" keep these tests fast; the real argon2id verifier is tested in runtime/. */
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

let dir: string;
let store: Store;
let verifier: CountingVerifier;
let events: AuditEvent[];

const options = (over: Partial<EngineOptions> = {}): EngineOptions => ({
  realms: "strip",
  window: 1,
  hotpLookAhead: 10,
  challengeTtlMs: 120_000,
  challengeMaxFailures: 3,
  otpPrompt: "Enter your verification code",
  retryPrompt: "Wrong code, try again",
  lockout: { ...DEFAULT_LOCKOUT, passwordThreshold: 3, codeThreshold: 3 },
  passwords: verifier,
  ...over,
});

const challengeClient: Channel = { kind: "radius", name: "vpn", firstFactor: "password", otpMode: "challenge", allowPasswordOnly: false, directories: null };
const concatClient: Channel = { ...challengeClient, name: "fw", otpMode: "concat" };
const codeOnlyClient: Channel = { ...challengeClient, name: "nas2", firstFactor: "none" };
const passwordClient: Channel = { ...challengeClient, name: "legacy", allowPasswordOnly: true };

async function addUser(name: string, type: AuthType = "totp", extra: { disabled?: boolean; expiresAt?: number | null; password?: string | null } = {}) {
  const user = await store.users.add({
    username: name,
    passwordHash: extra.password === null ? null : `plain:${extra.password ?? "correct horse"}`,
    type,
    phone: null,
    email: null,
    disabled: extra.disabled ?? false,
    expiresAt: extra.expiresAt ?? null,
    directory: null,
    externalId: null,
    directoryPhone: null,
  });
  const token = await store.tokens.add({ serial: `T-${name}`, userId: user.id, kind: "totp", secret: SEED, algorithm: "SHA1", digits: 6, period: 30, state: "active" });
  return { user, token };
}

const code = (now: number, token?: Pick<Token, "secret" | "algorithm" | "digits" | "period">) =>
  generateTOTP(token ?? { secret: SEED, algorithm: "SHA1", digits: 6, period: 30 }, { now });

const attempt = (channel: Channel, username: string, secret: string | undefined, now: number, state?: Uint8Array): Attempt => {
  const a: Attempt = { channel, username, method: "pap", now };
  if (secret !== undefined) a.secret = secret;
  if (state) a.state = state;
  return a;
};

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "portcullis-engine-"));
  store = await openStore({ driver: "sqlite", path: join(dir, "portcullis.db"), dataDir: dir });
  verifier = new CountingVerifier();
  events = [];
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const engine = (over: Partial<EngineOptions> = {}) => new Engine(store, options(over), (e) => events.push(e));

describe("challenge flow (type totp)", () => {
  test("password → Access-Challenge → code → accept; the same code again is a replay", async () => {
    await addUser("alice");
    const e = engine();
    const first = await e.authenticate(attempt(challengeClient, "alice", "correct horse", T0));
    expect(first.kind).toBe("challenge");
    if (first.kind !== "challenge") return;
    expect(first.state.length).toBeGreaterThanOrEqual(16);
    expect(first.prompt).toBe("Enter your verification code");
    expect(await e.authenticate(attempt(challengeClient, "alice", code(T0), T0 + 1000, first.state))).toEqual({ kind: "accept", user: "alice" });

    const again = await e.authenticate(attempt(challengeClient, "alice", "correct horse", T0 + 2000));
    if (again.kind !== "challenge") throw new Error("expected a challenge");
    // a replayed code ends the flow at once (a wrong code would get another try)
    expect(await e.authenticate(attempt(challengeClient, "alice", code(T0), T0 + 3000, again.state))).toEqual({ kind: "reject", reason: "replayed_code" });
  });

  test("an older step inside the window is a replay once a newer step was accepted", async () => {
    await addUser("alice");
    const e = engine({ lockout: DEFAULT_LOCKOUT });
    const codeOnly = (c: string, now: number) => e.authenticate(attempt(codeOnlyClient, "alice", c, now));
    expect((await codeOnly(code(T0), T0)).kind).toBe("accept");
    // the previous step is still inside ±1 but below the high-water mark
    expect(await codeOnly(code(T0 - STEP), T0)).toEqual({ kind: "reject", reason: "replayed_code" });
    // a clock running one step fast is accepted and learned as drift; the step before it is then a replay
    expect((await codeOnly(code(T0 + STEP), T0 + 1000)).kind).toBe("accept");
    expect(await codeOnly(code(T0), T0 + 2000)).toEqual({ kind: "reject", reason: "replayed_code" });
  });

  test("State is single-use", async () => {
    await addUser("alice");
    const e = engine();
    const first = await e.authenticate(attempt(challengeClient, "alice", "correct horse", T0));
    if (first.kind !== "challenge") throw new Error("expected a challenge");
    expect((await e.authenticate(attempt(challengeClient, "alice", code(T0), T0, first.state))).kind).toBe("accept");
    expect(await e.authenticate(attempt(challengeClient, "alice", code(T0 + STEP), T0 + STEP, first.state))).toEqual({ kind: "reject", reason: "state_unknown" });
  });

  test("State is bound to the user: another User-Name is rejected and the State is spent", async () => {
    await addUser("alice");
    await addUser("mallory");
    const e = engine();
    const first = await e.authenticate(attempt(challengeClient, "alice", "correct horse", T0));
    if (first.kind !== "challenge") throw new Error("expected a challenge");
    expect(await e.authenticate(attempt(challengeClient, "mallory", code(T0), T0, first.state))).toEqual({ kind: "reject", reason: "state_mismatch" });
    expect(await e.authenticate(attempt(challengeClient, "alice", code(T0), T0, first.state))).toEqual({ kind: "reject", reason: "state_unknown" });
  });

  test("State is bound to the client", async () => {
    await addUser("alice");
    const e = engine();
    const first = await e.authenticate(attempt(challengeClient, "alice", "correct horse", T0));
    if (first.kind !== "challenge") throw new Error("expected a challenge");
    expect(await e.authenticate(attempt({ ...challengeClient, name: "other" }, "alice", code(T0), T0, first.state))).toEqual({ kind: "reject", reason: "state_mismatch" });
  });

  test("State expires", async () => {
    await addUser("alice");
    const e = engine();
    const first = await e.authenticate(attempt(challengeClient, "alice", "correct horse", T0));
    if (first.kind !== "challenge") throw new Error("expected a challenge");
    const late = T0 + 120_001;
    expect(await e.authenticate(attempt(challengeClient, "alice", code(late), late, first.state))).toEqual({ kind: "reject", reason: "state_unknown" });
  });

  test("a few wrong codes invalidate the flow; each retry gets a fresh State", async () => {
    await addUser("alice");
    const e = engine({ lockout: DEFAULT_LOCKOUT });
    let d = await e.authenticate(attempt(challengeClient, "alice", "correct horse", T0));
    const states: string[] = [];
    for (let i = 0; i < 2; i++) {
      if (d.kind !== "challenge") throw new Error("expected a challenge");
      states.push(Buffer.from(d.state).toString("hex"));
      d = await e.authenticate(attempt(challengeClient, "alice", "000000", T0, d.state));
      expect(d.kind).toBe("challenge");
      if (d.kind === "challenge") expect(d.prompt).toBe("Wrong code, try again");
    }
    if (d.kind !== "challenge") throw new Error("expected a challenge");
    expect(new Set([...states, Buffer.from(d.state).toString("hex")]).size).toBe(3);
    expect(await e.authenticate(attempt(challengeClient, "alice", "000000", T0, d.state))).toEqual({ kind: "reject", reason: "too_many_codes" });
  });

  test("wrong password and unknown user give the same decision shape", async () => {
    await addUser("alice");
    const e = engine();
    const wrong = await e.authenticate(attempt(challengeClient, "alice", "nope", T0));
    const unknown = await e.authenticate(attempt(challengeClient, "nobody", "nope", T0));
    expect(wrong.kind).toBe("reject");
    expect(unknown.kind).toBe("reject");
    const failure = events.find((ev) => ev.type === "auth.failure" && ev.reason === "unknown_user");
    expect(failure && "userHash" in failure && failure.userHash).toMatch(/^[0-9a-f]{12}$/);
    expect(JSON.stringify(events)).not.toContain("nobody");
  });
});

describe("equal work for unknown users", () => {
  test.each([
    ["unknown user", async () => {}, "ghost"],
    ["user without a local password", () => addUser("nopw", "totp", { password: null }), "nopw"],
    ["disabled user", () => addUser("off", "totp", { disabled: true }), "off"],
    ["existing user, wrong password", () => addUser("alice"), "alice"],
  ])("%s costs exactly one password verification", async (_label, setup, name) => {
    await setup();
    verifier.calls = 0;
    const d = await engine().authenticate(attempt(challengeClient, name, "wrong password", T0));
    expect(d.kind).toBe("reject");
    expect(verifier.calls).toBe(1);
  });

  test("an empty password is rejected before any verification", async () => {
    await addUser("alice");
    verifier.calls = 0;
    expect(await engine().authenticate(attempt(challengeClient, "alice", "", T0))).toEqual({ kind: "reject", reason: "empty_password" });
    expect(verifier.calls).toBe(0);
  });
});

describe("lockout", () => {
  test("alice, Alice@corp and CORP\\alice share one counter; the right password is then refused until unlock", async () => {
    await addUser("alice");
    const e = engine();
    for (const name of ["Alice", "alice@corp", "CORP\\alice"]) {
      expect((await e.authenticate(attempt(challengeClient, name, "wrong", T0))).kind).toBe("reject");
    }
    verifier.calls = 0;
    expect(await e.authenticate(attempt(challengeClient, "alice", "correct horse", T0 + 1))).toEqual({ kind: "reject", reason: "locked_out" });
    expect(verifier.calls).toBe(0); // checked before any expensive work
    expect(await store.lockouts.clear("alice")).toBe(true);
    expect((await e.authenticate(attempt(challengeClient, "alice", "correct horse", T0 + 2))).kind).toBe("challenge");
  });

  test("back-off ends by itself", async () => {
    await addUser("alice");
    const e = engine();
    for (let i = 0; i < 3; i++) await e.authenticate(attempt(challengeClient, "alice", "wrong", T0));
    expect((await e.authenticate(attempt(challengeClient, "alice", "correct horse", T0 + 1000))).kind).toBe("reject");
    expect((await e.authenticate(attempt(challengeClient, "alice", "correct horse", T0 + 2001))).kind).toBe("challenge");
  });

  test("password and code failures are counted separately", async () => {
    await addUser("alice");
    const e = engine();
    for (let i = 0; i < 3; i++) await e.authenticate(attempt(codeOnlyClient, "alice", "000000", T0));
    expect(await e.authenticate(attempt(codeOnlyClient, "alice", code(T0), T0))).toEqual({ kind: "reject", reason: "locked_out" });
    expect((await e.authenticate(attempt(challengeClient, "alice", "correct horse", T0))).kind).toBe("challenge");
  });
});

describe("lockout by source", () => {
  // Per-source back-off from 3 failures, a cap of 4 across sources, known sources for 30 days.
  const HOME = "csid:198.51.100.20";
  const STORM = "csid:203.0.113.66";
  const HOTEL = "csid:192.0.2.99";
  const from = (a: Attempt, source: string): Attempt => ({ ...a, source });
  const password = (name: string, typed: string, source: string, now = T0) => from(attempt(challengeClient, name, typed, now), source);

  /** A complete password + code login of `name` from `source` at `now` (its source becomes known). */
  async function login(e: Engine, name: string, source: string, now: number): Promise<string> {
    const first = await e.authenticate(password(name, "correct horse", source, now));
    if (first.kind !== "challenge") return first.kind === "reject" ? first.reason : first.kind;
    const second = await e.authenticate(from(attempt(challengeClient, name, code(now), now, first.state), source));
    return second.kind === "reject" ? second.reason : second.kind;
  }

  test("a storm of wrong passwords from one station keeps that station out, not the user on a known one", async () => {
    await addUser("bob");
    const e = engine();
    expect(await login(e, "bob", HOME, T0)).toBe("accept");
    for (let i = 0; i < 12; i++) await e.authenticate(password("bob", `guess-${i}`, STORM, T0 + STEP + i * 250));
    verifier.calls = 0;
    // the storm's station: refused before any verification, even with the right password
    expect(await e.authenticate(password("bob", "correct horse", STORM, T0 + STEP + 5000))).toEqual({ kind: "reject", reason: "locked_out" });
    // a station bob never logged in from: the identity's cap refuses it, also before any verification
    expect(await e.authenticate(password("bob", "correct horse", HOTEL, T0 + STEP + 5000))).toEqual({ kind: "reject", reason: "locked_out" });
    expect(verifier.calls).toBe(0);
    // bob at home gets in, during the storm and after it
    expect(await login(e, "bob", HOME, T0 + 2 * STEP)).toBe("accept");
    expect(verifier.calls).toBe(1);
  });

  test("the cap counts failures across sources: an attacker rotating stations gets `cap` guesses in all", async () => {
    await addUser("bob");
    const e = engine();
    const decisions = [];
    for (let i = 0; i < 8; i++) decisions.push(await e.authenticate(password("bob", "wrong", `csid:10.0.0.${i}`, T0 + i)));
    expect(decisions.map((d) => (d.kind === "reject" ? d.reason : d.kind))).toEqual(["bad_password", "bad_password", "bad_password", "bad_password", ...Array(4).fill("locked_out")]);
    expect(verifier.calls).toBe(4); // what reached the password check: below any directory threshold above 4
    expect((await store.lockouts.get("bob", "password"))!.failures).toBe(4);
    // the cap holds reset_after (900 s) after the last counted failure, then ends by itself
    expect((await e.authenticate(password("bob", "correct horse", "csid:10.0.0.99", T0 + 3 + 899_999))).kind).toBe("reject");
    expect((await e.authenticate(password("bob", "correct horse", "csid:10.0.0.99", T0 + 3 + 900_000))).kind).toBe("challenge");
  });

  test("a right password from a known source clears the cap, as a directory clears its count on a good logon", async () => {
    await addUser("bob");
    const e = engine();
    expect(await login(e, "bob", HOME, T0)).toBe("accept");
    for (let i = 0; i < 4; i++) await e.authenticate(password("bob", "wrong", `${STORM}${i % 2}`, T0 + 1));
    expect((await e.authenticate(password("bob", "correct horse", HOTEL, T0 + 2))).kind).toBe("reject");
    expect((await e.authenticate(password("bob", "correct horse", HOME, T0 + 3))).kind).toBe("challenge");
    expect(await store.lockouts.get("bob", "password")).toBeUndefined();
    expect((await e.authenticate(password("bob", "correct horse", HOTEL, T0 + 4))).kind).toBe("challenge");
    expect((await store.lockouts.get("bob", "password", `${STORM}0`))!.failures).toBe(2); // the storm's stations keep their own counters
  });

  test("a source is known for knownSourceMs after the last completed login, not after a password alone", async () => {
    await addUser("bob");
    const e = engine({ lockout: { ...DEFAULT_LOCKOUT, passwordThreshold: 3, codeThreshold: 3, knownSourceMs: 10 * 86_400_000 } });
    expect((await e.authenticate(password("bob", "correct horse", HOTEL, T0))).kind).toBe("challenge"); // no code: not a login
    expect(await login(e, "bob", HOME, T0)).toBe("accept");
    const storm = async (at: number) => {
      for (let i = 0; i < 4; i++) await e.authenticate(password("bob", "wrong", `${STORM}${i % 2}`, at));
    };
    await storm(T0 + STEP);
    expect((await e.authenticate(password("bob", "correct horse", HOTEL, T0 + STEP))).kind).toBe("reject");
    expect((await e.authenticate(password("bob", "correct horse", HOME, T0 + STEP))).kind).toBe("challenge");
    const later = T0 + 11 * 86_400_000;
    await storm(later);
    expect((await e.authenticate(password("bob", "correct horse", HOME, later))).kind).toBe("reject");
  });

  test("a known source has its own back-off: failures there still slow it down", async () => {
    await addUser("bob");
    const e = engine();
    expect(await login(e, "bob", HOME, T0)).toBe("accept");
    for (let i = 0; i < 3; i++) await e.authenticate(password("bob", "wrong", HOME, T0 + 1));
    expect(await e.authenticate(password("bob", "correct horse", HOME, T0 + 2))).toEqual({ kind: "reject", reason: "locked_out" });
    expect((await e.authenticate(password("bob", "correct horse", HOME, T0 + 1 + 2001))).kind).toBe("challenge");
  });

  test("an unknown name is counted and refused exactly like a name with no known source", async () => {
    await addUser("bob");
    const e = engine();
    const run = async (name: string) => {
      const out = [];
      for (let i = 0; i < 7; i++) out.push(await e.authenticate(password(name, "wrong", `csid:10.1.0.${i % 2}`, T0 + i)));
      return out.map((d) => d.kind === "reject" && d.reason === "locked_out");
    };
    expect(await run("ghost")).toEqual(await run("bob"));
  });

  test("audit: a refused known user is named, with the source and the counter that refused; an unknown name stays hashed", async () => {
    await addUser("bob");
    const e = engine();
    // three from the storm's station start its back-off, a fourth from elsewhere reaches the cap
    for (const name of ["Bob@corp", "ghost"]) {
      for (let i = 0; i < 3; i++) await e.authenticate(password(name, "wrong", STORM, T0));
      await e.authenticate(password(name, "wrong", "nas:elsewhere", T0));
    }
    events = [];
    await e.authenticate(password("BOB", "correct horse", STORM, T0 + 1));
    await e.authenticate(password("bob", "correct horse", HOTEL, T0 + 1));
    await e.authenticate(password("ghost", "whatever", HOTEL, T0 + 1));
    await e.authenticate(password("bob", "", HOTEL, T0 + 1));
    expect(events).toEqual([
      { type: "auth.failure", channel: "radius", client: "vpn", reason: "locked_out", user: "bob", source: STORM, detail: "password (source back-off)" },
      { type: "auth.failure", channel: "radius", client: "vpn", reason: "locked_out", user: "bob", source: HOTEL, detail: "password (identity cap, unknown source)" },
      { type: "auth.failure", channel: "radius", client: "vpn", reason: "locked_out", userHash: expect.stringMatching(/^[0-9a-f]{12}$/), source: HOTEL, detail: "password (identity cap, unknown source)" },
      { type: "auth.failure", channel: "radius", client: "vpn", reason: "empty_password", user: "bob", source: HOTEL },
    ]);
    expect(JSON.stringify(events)).not.toContain("ghost");
  });

  test("codes: each source backs off; the identity's cap refuses unknown sources; a known source still gets in", async () => {
    await addUser("bob");
    const e = engine();
    const codeFrom = (typed: string, source: string, now: number) => from(attempt(codeOnlyClient, "bob", typed, now), source);
    expect((await e.authenticate(codeFrom(code(T0), HOME, T0))).kind).toBe("accept");
    const wrong = String((Number(code(T0 + STEP)) + 1) % 1_000_000).padStart(6, "0");
    for (let i = 0; i < 3; i++) await e.authenticate(codeFrom(wrong, STORM, T0 + STEP));
    expect(await e.authenticate(codeFrom(code(T0 + STEP), STORM, T0 + STEP))).toEqual({ kind: "reject", reason: "locked_out" }); // source back-off
    for (let i = 0; i < 2; i++) await e.authenticate(codeFrom(wrong, `csid:10.2.0.${i}`, T0 + STEP));
    expect(await e.authenticate(codeFrom(code(T0 + STEP), HOTEL, T0 + STEP))).toEqual({ kind: "reject", reason: "locked_out" }); // cap of 5
    expect((await e.authenticate(codeFrom(code(T0 + STEP), HOME, T0 + STEP))).kind).toBe("accept");
  });

  test("without a Calling-Station-Id the client is the source", async () => {
    await addUser("bob");
    const e = engine();
    for (let i = 0; i < 3; i++) await e.authenticate(attempt(challengeClient, "bob", "wrong", T0));
    expect((await store.lockouts.get("bob", "password", "nas:vpn"))!.failures).toBe(3);
    expect((await e.authenticate(attempt(concatClient, "bob", "correct horse" + code(T0), T0))).kind).toBe("accept"); // another client: another source
    expect((await store.lockouts.knownSources("bob")).map((k) => k.source)).toEqual(["nas:fw"]);
  });

  test("a completed login writes its source only when it is new or its record is a day old", async () => {
    await addUser("bob");
    const e = engine();
    const writes: number[] = [];
    const recordSuccess = store.lockouts.recordSuccess.bind(store.lockouts);
    store.lockouts.recordSuccess = (key, source, now, bounds) => (writes.push(now), recordSuccess(key, source, now, bounds));
    const codeFrom = (now: number) => from(attempt(codeOnlyClient, "bob", code(now), now), HOME);
    for (const now of [T0, T0 + STEP, T0 + 2 * STEP, T0 + 86_400_000, T0 + 86_400_000 + STEP]) expect((await e.authenticate(codeFrom(now))).kind).toBe("accept");
    expect(writes).toEqual([T0, T0 + 86_400_000]);
  });

  test("known sources are bounded per user: the most recent are kept", async () => {
    await addUser("bob");
    const e = engine({ lockout: { ...DEFAULT_LOCKOUT, knownSourcesPerUser: 3 } });
    for (let i = 0; i < 5; i++) expect((await e.authenticate(from(attempt(codeOnlyClient, "bob", code(T0 + i * STEP), T0 + i * STEP), `csid:10.3.0.${i}`))).kind).toBe("accept");
    expect((await store.lockouts.knownSources("bob")).map((k) => k.source)).toEqual(["csid:10.3.0.4", "csid:10.3.0.3", "csid:10.3.0.2"]);
  });
});

describe("concatenated", () => {
  test("password+code in one field on a concat client", async () => {
    await addUser("alice");
    expect(await engine().authenticate(attempt(concatClient, "alice", "correct horse" + code(T0), T0))).toEqual({ kind: "accept", user: "alice" });
  });

  test("type concatenated appends the code on a challenge client too", async () => {
    await addUser("carol", "concatenated");
    expect((await engine().authenticate(attempt(challengeClient, "carol", "correct horse" + code(T0), T0))).kind).toBe("accept");
  });

  test("a right code with a wrong password is not consumed", async () => {
    await addUser("alice");
    const e = engine();
    expect(await e.authenticate(attempt(concatClient, "alice", "wrong" + code(T0), T0))).toEqual({ kind: "reject", reason: "bad_password" });
    expect((await e.authenticate(attempt(concatClient, "alice", "correct horse" + code(T0), T0))).kind).toBe("accept");
  });

  test("right password, wrong code is rejected", async () => {
    await addUser("alice");
    expect(await engine().authenticate(attempt(concatClient, "alice", "correct horse000000", T0))).toEqual({ kind: "reject", reason: "bad_code" });
  });
});

describe("code only (--first-factor none)", () => {
  test("the code alone is accepted, once", async () => {
    await addUser("alice");
    const e = engine();
    expect((await e.authenticate(attempt(codeOnlyClient, "alice", code(T0), T0))).kind).toBe("accept");
    expect(await e.authenticate(attempt(codeOnlyClient, "alice", code(T0), T0))).toEqual({ kind: "reject", reason: "replayed_code" });
  });

  test.each([
    ["disabled", { disabled: true }, "account_disabled"],
    ["expired", { expiresAt: T0 - 1 }, "account_expired"],
  ])("a %s account is refused even with a valid code", async (_l, extra, reason) => {
    await addUser("alice", "totp", extra);
    expect(await engine().authenticate(attempt(codeOnlyClient, "alice", code(T0), T0))).toEqual({ kind: "reject", reason: reason as "account_disabled" });
  });
});

describe("types and methods", () => {
  test("type password only on clients that allow it", async () => {
    await addUser("pat", "password");
    expect(await engine().authenticate(attempt(challengeClient, "pat", "correct horse", T0))).toEqual({ kind: "reject", reason: "type_not_allowed" });
    expect(await engine().authenticate(attempt(passwordClient, "pat", "correct horse", T0))).toEqual({ kind: "accept", user: "pat" });
    expect(await engine().authenticate(attempt(codeOnlyClient, "pat", code(T0), T0))).toEqual({ kind: "reject", reason: "type_not_allowed" });
  });

  test.each(["token", "plus", "assisted", "shared"] as AuthType[])("type %s is not implemented and never lets anyone in", async (type) => {
    await addUser("u", type);
    expect(await engine().authenticate(attempt(challengeClient, "u", "correct horse", T0))).toEqual({ kind: "reject", reason: "type_not_implemented" });
  });

  test("CHAP is refused", async () => {
    await addUser("alice");
    expect(await engine().authenticate({ channel: challengeClient, username: "alice", method: "chap", now: T0 })).toEqual({ kind: "reject", reason: "chap_unsupported" });
  });

  test.each([
    ["a challenge client, the right password", challengeClient, () => "correct horse"],
    ["a code-only client, the right code", codeOnlyClient, () => code(T0)],
  ])("EAP (RFC 3579) is refused before any check, %s: no verification, no lockout counter, no code consumed", async (_name, channel, typed) => {
    await addUser("alice");
    verifier.calls = 0;
    events = [];
    const eap: Attempt = { ...attempt(channel, "alice", typed(), T0), method: "eap" };
    for (let i = 0; i < 5; i++) expect(await engine().authenticate(eap)).toEqual({ kind: "reject", reason: "eap_unsupported" });
    expect(verifier.calls).toBe(0);
    expect(await store.lockouts.list()).toEqual([]);
    expect(events.map((e) => e.type === "auth.failure" && e.reason)).toEqual(Array(5).fill("eap_unsupported"));
    // the same factor without EAP-Message is still good: nothing was consumed or counted
    expect((await engine().authenticate(attempt(channel, "alice", typed(), T0))).kind).toBe(channel === codeOnlyClient ? "accept" : "challenge");
  });

  test("a user without an active token is refused after the password", async () => {
    const { token } = await addUser("alice");
    await store.tokens.setState(token.id, "disabled");
    expect(await engine().authenticate(attempt(challengeClient, "alice", "correct horse", T0))).toEqual({ kind: "reject", reason: "no_token" });
  });

  test("a code from any active token counts", async () => {
    const { user } = await addUser("alice");
    const other = new TextEncoder().encode("abcdefghijabcdefghij");
    await store.tokens.add({ serial: "HW-1", userId: user.id, kind: "totp", secret: other, algorithm: "SHA1", digits: 6, period: 30, state: "active" });
    const c = code(T0, { secret: other, algorithm: "SHA1", digits: 6, period: 30 });
    expect((await engine().authenticate(attempt(codeOnlyClient, "alice", c, T0))).kind).toBe("accept");
  });
});

describe("overload", () => {
  test("a full password queue drops the request instead of failing the password", async () => {
    const { PasswordOverloadedError } = await import("../../../src/runtime/password.ts");
    await addUser("alice");
    const e = new Engine(store, options({ passwords: { verify: async () => { throw new PasswordOverloadedError(); }, dummy: async () => {} } }), (ev) => events.push(ev));
    expect(await e.authenticate(attempt(challengeClient, "alice", "correct horse", T0))).toEqual({ kind: "drop", reason: "overloaded" });
    expect(await store.lockouts.get("alice", "password")).toBeUndefined();
  });
});

describe("password and code given apart (self-service sign-in)", () => {
  const portal: Channel = { kind: "self-service", name: "self-service", firstFactor: "password", otpMode: "concat", allowPasswordOnly: false, directories: null };
  const at = (username: string, now: number): Attempt => ({ channel: portal, username, method: "pap", now, source: "web:192.0.2.7" });

  test("accepted once for any type with an active token; the code is then a replay", async () => {
    await addUser("alice");
    await addUser("tess", "touch");
    const e = engine();
    expect(await e.passwordAndCode(at("Alice", T0), "correct horse", code(T0))).toEqual({ kind: "accept", user: "alice" });
    expect(await e.passwordAndCode(at("alice", T0), "correct horse", code(T0))).toEqual({ kind: "reject", reason: "replayed_code" });
    // A phone type signs in with its token here: no approval is started.
    expect(await e.passwordAndCode(at("tess", T0), "correct horse", code(T0))).toEqual({ kind: "accept", user: "tess" });
    expect(events.filter((ev) => ev.type === "auth.success").map((ev) => (ev as { channel: string }).channel)).toEqual(["self-service", "self-service"]);
  });

  test("a wrong password does not consume the code, and counts on the password counter of the attempt's source", async () => {
    await addUser("alice");
    const e = engine();
    expect(await e.passwordAndCode(at("alice", T0), "wrong", code(T0))).toEqual({ kind: "reject", reason: "bad_password" });
    expect((await store.lockouts.get("alice", "password", "web:192.0.2.7"))?.failures).toBe(1);
    expect((await e.passwordAndCode(at("alice", T0), "correct horse", code(T0))).kind).toBe("accept");
  });

  test("an unknown user costs one dummy check and counts; a wrong code counts on the code counter", async () => {
    await addUser("alice");
    const e = engine();
    const before = verifier.calls;
    expect(await e.passwordAndCode(at("nobody", T0), "correct horse", code(T0))).toEqual({ kind: "reject", reason: "unknown_user" });
    expect(verifier.calls).toBe(before + 1);
    expect((await store.lockouts.get("nobody", "password", "web:192.0.2.7"))?.failures).toBe(1);
    expect(await e.passwordAndCode(at("alice", T0), "correct horse", "000000")).toEqual({ kind: "reject", reason: "bad_code" });
    expect((await store.lockouts.get("alice", "code", "web:192.0.2.7"))?.failures).toBe(1);
  });

  test("a user without an active token is refused after the password; the lockout refuses before any check", async () => {
    const { token } = await addUser("alice");
    await store.tokens.setState(token.id, "disabled");
    const e = engine();
    expect(await e.passwordAndCode(at("alice", T0), "correct horse", code(T0))).toEqual({ kind: "reject", reason: "no_token" });
    await addUser("bob");
    for (let i = 0; i < 3; i++) await e.passwordAndCode(at("bob", T0), "wrong", code(T0));
    const before = verifier.calls;
    expect(await e.passwordAndCode(at("bob", T0 + 1000), "correct horse", code(T0))).toEqual({ kind: "reject", reason: "locked_out" });
    expect(verifier.calls).toBe(before);
  });
});
