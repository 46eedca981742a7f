// The engine against a real SQLite store: every flow and the security defaults DESIGN names
// (State binding, high-water mark, normalised lockout, equal work for unknown users).
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AuditEvent } from "../../../src/audit/events.ts";
import { Engine, type Attempt, type Channel, type EngineOptions, type PasswordVerifier } from "../../../src/auth/engine.ts";
import { DEFAULT_LOCKOUT } from "../../../src/auth/lockout.ts";
import type { AuthType } from "../../../src/auth/types.ts";
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

  test.each(["mobile", "touch", "shared"] as AuthType[])("type %s is not implemented and never lets anyone in", async (type) => {
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
