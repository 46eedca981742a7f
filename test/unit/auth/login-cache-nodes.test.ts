// The PostgreSQL login cache across nodes: node B remembers a user and its tokens after a login,
// then node A (another store on the same database, as another appliance or the admin CLI) changes
// something that decides the next login. B must honour it at once, on the very next login, with no
// notification: every input B takes from memory is revalidated by the write that consumes the code.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setLogSink } from "../../../src/audit/log.ts";
import { Engine, type Attempt, type Channel, type Decision, type EngineOptions } from "../../../src/auth/engine.ts";
import { DEFAULT_LOCKOUT } from "../../../src/auth/lockout.ts";
import { generateTOTP } from "../../../src/otp/index.ts";
import { openPgStore, type PgStore } from "../../../src/store/postgres/store.ts";
import { POSTGRES_SKIP_REASON } from "../../integration/helpers/postgres.ts";
import { postgresServer } from "../store/helpers.ts";

setLogSink(() => {});

const SEED = new TextEncoder().encode("12345678901234567890");
const NEW_SEED = new TextEncoder().encode("abcdefghijabcdefghij");
const T0 = 1_800_000_000_000; // on a 30 s boundary
const STEP = 30_000;
const KEY = Buffer.alloc(32, 7).toString("base64");
const SOURCE = "csid:198.51.100.7";

const codeOnly: Channel = { kind: "radius", name: "nas", firstFactor: "none", otpMode: "challenge", allowPasswordOnly: false, directories: null };
const options: EngineOptions = {
  realms: "strip",
  window: 1,
  hotpLookAhead: 10,
  challengeTtlMs: 120_000,
  challengeMaxFailures: 3,
  otpPrompt: "Code",
  retryPrompt: "Again",
  lockout: { ...DEFAULT_LOCKOUT, passwordThreshold: 3, codeThreshold: 3 },
  passwords: { verify: async () => false, dummy: async () => {} },
};
const code = (now: number, seed = SEED) => generateTOTP({ secret: seed, algorithm: "SHA1", digits: 6, period: 30 }, { now });
const at = (username: string, secret: string, now: number): Attempt => ({ channel: codeOnly, username, method: "pap", now, secret, source: SOURCE });
const outcome = (d: Decision) => ("reason" in d ? d.reason : d.kind);

describe.skipIf(POSTGRES_SKIP_REASON !== undefined)("PostgreSQL login cache: a change on node A is honoured by node B's next login", () => {
  let dir: string;
  let a: PgStore;
  let b: PgStore;
  let engineA: Engine;
  let engineB: Engine;
  let n = 0;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "portcullis-login-cache-"));
    const url = await (await postgresServer()).createDatabase();
    a = await openPgStore({ url, dataDir: dir, env: { PORTCULLIS_KEY: KEY }, poolSize: 2 });
    b = await openPgStore({ url, dataDir: dir, env: { PORTCULLIS_KEY: KEY }, poolSize: 2 });
    b.enableLoginCache();
    engineA = new Engine(a, options, () => {});
    engineB = new Engine(b, options, () => {});
  }, 120_000);
  afterAll(async () => {
    await a?.close();
    await b?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A user with one token, and node B's cache warmed by an accepted login at T0 (checked). */
  async function warmUser(): Promise<{ name: string; userId: number; tokenId: number }> {
    const name = `user${++n}`;
    const user = await a.users.add({ username: name, passwordHash: null, type: "totp", phone: null, email: null, disabled: false, expiresAt: null, directory: null, externalId: null, directoryPhone: null });
    const token = await a.tokens.add({ serial: `${name}-0`, userId: user.id, kind: "totp", secret: SEED, algorithm: "SHA1", digits: 6, period: 30, state: "active" });
    expect(outcome(await engineB.authenticate(at(name, code(T0), T0)))).toBe("accept");
    expect(b.cachedLogin(name, SOURCE)).toBeDefined();
    return { name, userId: user.id, tokenId: token.id };
  }

  test("with nothing changed, the next login is decided from memory (and accepted once)", async () => {
    const u = await warmUser();
    let reads = 0;
    const loginReads = b.loginReads.bind(b);
    b.loginReads = (k, s) => (reads++, loginReads(k, s));
    try {
      expect(outcome(await engineB.authenticate(at(u.name, code(T0 + STEP), T0 + STEP)))).toBe("accept");
      expect(reads).toBe(0);
      // the same code again, on A and on B: refused on both (the mark is in the database)
      expect(outcome(await engineA.authenticate(at(u.name, code(T0 + STEP), T0 + STEP)))).toBe("replayed_code");
      expect(outcome(await engineB.authenticate(at(u.name, code(T0 + STEP), T0 + STEP + 1)))).toBe("replayed_code");
    } finally {
      b.loginReads = loginReads;
    }
  });

  test("a code accepted on node A is refused on node B, whose memory still has the older mark", async () => {
    const u = await warmUser();
    expect(outcome(await engineA.authenticate(at(u.name, code(T0 + STEP), T0 + STEP)))).toBe("accept");
    expect(outcome(await engineB.authenticate(at(u.name, code(T0 + STEP), T0 + STEP)))).toBe("replayed_code");
  });

  test("a token disabled on node A", async () => {
    const u = await warmUser();
    await a.tokens.setState(u.tokenId, "disabled");
    expect(outcome(await engineB.authenticate(at(u.name, code(T0 + STEP), T0 + STEP)))).toBe("no_token");
  });

  test("a token removed on node A, and a new one with another seed added", async () => {
    const u = await warmUser();
    await a.tokens.remove(u.tokenId);
    await a.tokens.add({ serial: `${u.name}-1`, userId: u.userId, kind: "totp", secret: NEW_SEED, algorithm: "SHA1", digits: 6, period: 30, state: "active" });
    expect(outcome(await engineB.authenticate(at(u.name, code(T0 + STEP), T0 + STEP)))).toBe("bad_code");
    expect(outcome(await engineB.authenticate(at(u.name, code(T0 + 2 * STEP, NEW_SEED), T0 + 2 * STEP)))).toBe("accept");
  });

  test("a user disabled on node A", async () => {
    const u = await warmUser();
    await a.users.update(u.userId, { disabled: true });
    expect(outcome(await engineB.authenticate(at(u.name, code(T0 + STEP), T0 + STEP)))).toBe("account_disabled");
  });

  test("a user given an expiry in the past on node A", async () => {
    const u = await warmUser();
    await a.users.update(u.userId, { expiresAt: T0 });
    expect(outcome(await engineB.authenticate(at(u.name, code(T0 + STEP), T0 + STEP)))).toBe("account_expired");
  });

  test("a user's type changed on node A", async () => {
    const u = await warmUser();
    await a.users.update(u.userId, { type: "password" });
    expect(outcome(await engineB.authenticate(at(u.name, code(T0 + STEP), T0 + STEP)))).toBe("type_not_allowed");
  });

  test("a user removed on node A, and another created with the same name and seed", async () => {
    const u = await warmUser();
    await a.users.remove(u.name);
    expect(outcome(await engineB.authenticate(at(u.name, code(T0 + STEP), T0 + STEP)))).toBe("unknown_user");
    const again = await a.users.add({ username: u.name, passwordHash: null, type: "totp", phone: null, email: null, disabled: false, expiresAt: null, directory: null, externalId: null, directoryPhone: null });
    await a.tokens.assign(u.tokenId, again.id);
    // the token moved to the new record: B's memory (the old record) no longer holds; fresh reads accept
    expect(outcome(await engineB.authenticate(at(u.name, code(T0 + 2 * STEP), T0 + 2 * STEP)))).toBe("accept");
  });

  test("a lockout from wrong codes on node A holds on node B for this source", async () => {
    const u = await warmUser();
    const wrong = code(T0 + STEP, NEW_SEED);
    for (let i = 0; i < 3; i++) expect(outcome(await engineA.authenticate(at(u.name, wrong, T0 + STEP)))).toBe("bad_code");
    expect(outcome(await engineB.authenticate(at(u.name, code(T0 + STEP), T0 + STEP)))).toBe("locked_out");
    // the right code was not consumed by the refused login: once the back-off is over it is accepted
    const later = T0 + STEP + DEFAULT_LOCKOUT.baseDelayMs + 1;
    expect(outcome(await engineB.authenticate(at(u.name, code(T0 + STEP), later)))).toBe("accept");
  });

  test("one failure counted on node A: node B's next login clears it (the full path), as without memory", async () => {
    const u = await warmUser();
    expect(outcome(await engineA.authenticate(at(u.name, code(T0 + STEP, NEW_SEED), T0 + STEP)))).toBe("bad_code");
    expect((await a.lockouts.list()).filter((c) => c.key === u.name)).toHaveLength(2);
    expect(outcome(await engineB.authenticate(at(u.name, code(T0 + STEP), T0 + STEP)))).toBe("accept");
    expect((await a.lockouts.list()).filter((c) => c.key === u.name)).toHaveLength(0);
  });

  test("a drift set on node A (resync) is not overridden by node B's remembered drift", async () => {
    const u = await warmUser();
    await a.tokens.resync(u.tokenId, { drift: 5 });
    // B remembers drift 0, by which this code would be in the window; with drift 5 it is not
    expect(outcome(await engineB.authenticate(at(u.name, code(T0 + STEP), T0 + STEP)))).toBe("bad_code");
    expect((await a.tokens.findById(u.tokenId))!.drift).toBe(5);
  });
});
