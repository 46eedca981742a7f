// The warm code-only path (code-only.ts CodeOnly.warm, store.warm): every `--first-factor none` scenario
// is run twice with the same users and the same attempts, once against the plain SQLite store (the
// full asynchronous path) and once against the preloaded read cache (the warm path where it
// applies); the decisions and the audit events must be the same, and the warm path must really
// have answered the cases it claims. Where PostgreSQL is installed, each scenario also runs against
// a PostgreSQL store, whose warm path takes a login's reads in one statement (Store.loginReads):
// the same decisions, events and store contents, with the full path taken as often as on the cache.
import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AuditEvent } from "../../../src/audit/events.ts";
import { setLogSink } from "../../../src/audit/log.ts";
import { Engine, type Attempt, type Channel, type Decision, type EngineOptions } from "../../../src/auth/engine.ts";
import { DEFAULT_LOCKOUT } from "../../../src/auth/lockout.ts";
import type { AuthType } from "../../../src/domain/auth-types.ts";
import { Directories } from "../../../src/directory/registry.ts";
import { generateTOTP } from "../../../src/otp/index.ts";
import { CachedStore, type EpochStore } from "../../../src/store/cache.ts";
import { openStore } from "../../../src/store/open.ts";
import type { KnownSource, LockoutState, Store } from "../../../src/store/types.ts";
import { openPgStore, type PgStore } from "../../../src/store/postgres/store.ts";
import { BACKENDS, postgresServer } from "../store/helpers.ts";
import { FakeDirectory } from "./fake-directory.ts";

setLogSink(() => {}); // migration lines

const SEED = new TextEncoder().encode("12345678901234567890");
const OTHER_SEED = new TextEncoder().encode("abcdefghijabcdefghij");
const T0 = 1_800_000_000_000; // on a 30 s boundary
const STEP = 30_000;
const KEY = Buffer.alloc(32, 5).toString("base64");

const codeOnly: Channel = { kind: "radius", name: "nas", firstFactor: "none", otpMode: "challenge", allowPasswordOnly: false, directories: null };

const options = (over: Partial<EngineOptions> = {}): EngineOptions => ({
  realms: "strip",
  window: 1,
  hotpLookAhead: 10,
  challengeTtlMs: 120_000,
  challengeMaxFailures: 3,
  otpPrompt: "Code",
  retryPrompt: "Again",
  lockout: { ...DEFAULT_LOCKOUT, passwordThreshold: 3, codeThreshold: 3 },
  passwords: { verify: async () => false, dummy: async () => {} },
  ...over,
});

interface UserSpec {
  name: string;
  type?: AuthType;
  disabled?: boolean;
  expiresAt?: number | null;
  tokens?: { seed: Uint8Array; state?: "active" | "disabled" }[];
  directory?: string;
}

const dirs: string[] = [];
const open: Store[] = [];
// The throwaway PostgreSQL server starts once, before the first scenario (not inside its timeout).
beforeAll(async () => {
  if (BACKENDS.includes("postgres")) await postgresServer();
}, 120_000);
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function storeWith(users: UserSpec[], driver: "sqlite" | "postgres" = "sqlite"): Promise<Store> {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-warm-"));
  dirs.push(dir);
  const store =
    driver === "postgres"
      ? await openPgStore({ url: await (await postgresServer()).createDatabase(), dataDir: dir, env: { PORTCULLIS_KEY: KEY }, poolSize: 2 })
      : await openStore({ driver: "sqlite", path: join(dir, "p.db"), dataDir: dir, env: { PORTCULLIS_KEY: KEY } });
  open.push(store);
  for (const u of users) {
    const user = await store.users.add({
      username: u.name,
      passwordHash: null,
      type: u.type ?? "totp",
      phone: null,
      email: null,
      disabled: u.disabled ?? false,
      expiresAt: u.expiresAt ?? null,
      directory: u.directory ?? null,
      externalId: u.directory ? `id-${u.name}` : null,
      directoryPhone: null,
    });
    let i = 0;
    for (const t of u.tokens ?? [{ seed: SEED }]) {
      await store.tokens.add({ serial: `${u.name}-${i++}`, userId: user.id, kind: "totp", secret: t.seed, algorithm: "SHA1", digits: 6, period: 30, state: t.state ?? "active" });
    }
  }
  return store;
}

/** Counts the repository reads the full path makes (the warm path makes none of these). */
function countingReads(store: Store): { reads: number } {
  const counter = { reads: 0 };
  const users = store.users as { findByName: (n: string) => Promise<unknown> };
  const findByName = users.findByName.bind(users);
  users.findByName = (n) => {
    counter.reads++;
    return findByName(n);
  };
  return counter;
}

interface Run {
  decisions: Decision[];
  events: AuditEvent[];
  /** What the attempts left in the store: every lockout counter and known source. */
  counters?: LockoutState[];
  known?: KnownSource[];
}

/**
 * The same users and attempts against the plain store and the preloaded cache. `directories`
 * configures both engines alike.
 */
async function twin(users: UserSpec[], attempts: Attempt[], directories?: () => Directories): Promise<{ plain: Run; warm: Run; fullPathReads: number }> {
  const plainStore = await storeWith(users);
  const inner = await storeWith(users);
  const cached = new CachedStore(inner as EpochStore);
  await cached.preload();
  const counter = countingReads(cached);
  const plain: Run = { decisions: [], events: [] };
  const warm: Run = { decisions: [], events: [] };
  const plainEngine = new Engine(plainStore, options(directories ? { directories: directories() } : {}), (e) => plain.events.push(e));
  const warmEngine = new Engine(cached, options(directories ? { directories: directories() } : {}), (e) => warm.events.push(e));
  for (const a of attempts) {
    plain.decisions.push(await plainEngine.authenticate({ ...a }));
    warm.decisions.push(await warmEngine.authenticate({ ...a }));
  }
  for (const [run, store] of [[plain, plainStore], [warm, inner]] as const) {
    run.counters = await store.lockouts.list();
    run.known = await store.lockouts.knownSources();
  }
  // PostgreSQL: a login's reads in one statement, then also with the login cache (each use revalidated by its write)
  for (const withCache of BACKENDS.includes("postgres") ? [false, true] : []) {
    const pgStore = (await storeWith(users, "postgres")) as PgStore;
    if (withCache) pgStore.enableLoginCache();
    const pgCounter = countingReads(pgStore);
    const fetched: Run = { decisions: [], events: [] };
    const pgEngine = new Engine(pgStore, options(directories ? { directories: directories() } : {}), (e) => fetched.events.push(e));
    for (const a of attempts) fetched.decisions.push(await pgEngine.authenticate({ ...a }));
    fetched.counters = await pgStore.lockouts.list();
    fetched.known = await pgStore.lockouts.knownSources();
    expect(fetched).toEqual(plain);
    expect(pgCounter.reads).toBe(counter.reads);
  }
  return { plain, warm, fullPathReads: counter.reads };
}

const code = (now: number, seed = SEED) => generateTOTP({ secret: seed, algorithm: "SHA1", digits: 6, period: 30 }, { now });
const at = (username: string, secret: string, now = T0, channel: Channel = codeOnly): Attempt => ({ channel, username, method: "pap", now, secret });
/** The same attempt from a calling station (the handler's attempt.source). */
const via = (source: string, a: Attempt): Attempt => ({ ...a, source });

describe("warm code-only path decides as the full path does", () => {
  test("a right code is accepted once without a repository read; the same code again is a replay", async () => {
    const r = await twin([{ name: "alice" }], [at("alice", code(T0)), at("alice", code(T0))]);
    expect(r.warm).toEqual(r.plain);
    expect(r.warm.decisions.map((d) => d.kind)).toEqual(["accept", "reject"]);
    expect(r.warm.decisions[1]).toEqual({ kind: "reject", reason: "replayed_code" });
    expect(r.fullPathReads).toBe(0);
  });

  test("an older step after a newer one is a replay; drift and the window as in the full path", async () => {
    const r = await twin([{ name: "alice" }], [at("alice", code(T0 + STEP), T0), at("alice", code(T0), T0 + 10_000), at("alice", code(T0 + 2 * STEP), T0 + STEP)]);
    expect(r.warm).toEqual(r.plain);
    expect(r.warm.decisions.map((d) => ("reason" in d ? d.reason : d.kind))).toEqual(["accept", "replayed_code", "accept"]);
    expect(r.fullPathReads).toBe(1); // the replay left a code counter: the last attempt took the full path, which cleared it
  });

  test("realm and case forms of the name reach the same user and the same high-water mark", async () => {
    const r = await twin([{ name: "alice" }], [at("Alice@corp.example", code(T0)), at("CORP\\alice", code(T0))]);
    expect(r.warm).toEqual(r.plain);
    expect(r.warm.decisions.map((d) => ("reason" in d ? d.reason : d.kind))).toEqual(["accept", "replayed_code"]);
  });

  test("a wrong code counts toward the lockout; once a counter exists the full path takes over, locks, and a later success clears it", async () => {
    const wrong = code(T0, OTHER_SEED);
    const r = await twin(
      [{ name: "alice" }],
      [
        at("alice", wrong),
        at("alice", code(T0)), // a counter exists: the full path accepts and resets it
        at("alice", wrong, T0 + STEP),
        at("alice", wrong, T0 + STEP),
        at("alice", wrong, T0 + STEP),
        at("alice", code(T0 + STEP), T0 + STEP), // locked out: refused whatever the code
      ],
    );
    expect(r.warm).toEqual(r.plain);
    expect(r.warm.decisions.map((d) => ("reason" in d ? d.reason : d.kind))).toEqual(["bad_code", "accept", "bad_code", "bad_code", "bad_code", "locked_out"]);
    expect(r.fullPathReads).toBeGreaterThan(0);
  });

  test("an unknown name is rejected like a wrong code, with the name hashed, and counted", async () => {
    const r = await twin([{ name: "alice" }], [at("mallory", "123456"), at("mallory", "123456"), at("mallory", "123456"), at("mallory", "123456")]);
    expect(r.warm).toEqual(r.plain);
    expect(r.warm.decisions.map((d) => ("reason" in d ? d.reason : d.kind))).toEqual(["unknown_user", "unknown_user", "unknown_user", "locked_out"]);
    expect(r.warm.events[0]).toMatchObject({ type: "auth.failure", reason: "unknown_user" });
    expect(r.warm.events[0]).toHaveProperty("userHash");
    expect(r.warm.events[0]).not.toHaveProperty("user");
  });

  test.each([
    ["disabled", { disabled: true }, "account_disabled"],
    ["expired", { expiresAt: T0 - 1 }, "account_expired"],
    ["password-type", { type: "password" as AuthType }, "type_not_allowed"],
    ["touch-type (a phone type: code-only clients take a code)", { type: "touch" as AuthType }, "type_not_allowed"],
    ["mobile-type", { type: "mobile" as AuthType }, "type_not_allowed"],
    ["token-less", { tokens: [{ seed: SEED, state: "disabled" as const }] }, "no_token"],
  ])("a %s user takes the full path and gets its refusal", async (_label, extra, reason) => {
    const r = await twin([{ name: "alice", ...extra }], [at("alice", code(T0))]);
    expect(r.warm).toEqual(r.plain);
    expect(r.warm.decisions[0]).toEqual({ kind: "reject", reason: reason as "no_token" });
    expect(r.fullPathReads).toBeGreaterThan(0);
  });

  test("a code from the second of two active tokens is accepted", async () => {
    const r = await twin([{ name: "alice", tokens: [{ seed: SEED }, { seed: OTHER_SEED }] }], [at("alice", code(T0, OTHER_SEED)), at("alice", code(T0, OTHER_SEED))]);
    expect(r.warm).toEqual(r.plain);
    expect(r.warm.decisions.map((d) => ("reason" in d ? d.reason : d.kind))).toEqual(["accept", "replayed_code"]);
  });

  test("an empty code never reaches the warm path", async () => {
    const r = await twin([{ name: "alice" }], [at("alice", "")]);
    expect(r.warm).toEqual(r.plain);
    expect(r.warm.decisions[0]).toEqual({ kind: "reject", reason: "empty_password" });
  });
});

describe("warm path and lockout sources", () => {
  const HOME = "csid:198.51.100.20";
  const STORM = "csid:203.0.113.66";
  const HOTEL = "csid:192.0.2.99";
  const wrong = code(T0, OTHER_SEED);

  test("a storm of wrong codes from one station: the same decisions, events and counters; the user on a known station gets in", async () => {
    const r = await twin(
      [{ name: "alice" }],
      [
        via(HOME, at("alice", code(T0))), // a completed login makes HOME known
        via(STORM, at("alice", wrong, T0 + STEP)),
        via(STORM, at("alice", wrong, T0 + STEP)),
        via(STORM, at("alice", wrong, T0 + STEP)),
        via(STORM, at("alice", code(T0 + STEP), T0 + STEP)), // the storm's station backs off
        via(`${STORM}1`, at("alice", wrong, T0 + STEP)),
        via(`${STORM}2`, at("alice", wrong, T0 + STEP)), // five across sources: the cap
        via(HOTEL, at("alice", code(T0 + STEP), T0 + STEP)), // an unknown station is refused
        via(HOME, at("alice", code(T0 + STEP), T0 + STEP)), // the known one is not
      ],
    );
    expect(r.warm).toEqual(r.plain);
    expect(r.warm.decisions.map((d) => ("reason" in d ? d.reason : d.kind))).toEqual([
      "accept",
      "bad_code",
      "bad_code",
      "bad_code",
      "locked_out",
      "bad_code",
      "bad_code",
      "locked_out",
      "accept",
    ]);
    expect(r.warm.known).toEqual([{ key: "alice", source: HOME, lastSuccessAt: T0 }]);
    // HOME's success cleared the identity's counter; each storm station keeps its own
    expect(r.warm.counters!.map((c) => `${c.source} ${c.failures}`)).toEqual([`${STORM} 3`, `${STORM}1 1`, `${STORM}2 1`]);
    expect(r.warm.events.filter((e) => e.type === "auth.failure").map((e) => (e.type === "auth.failure" ? [e.source, e.user, e.detail] : []))).toEqual([
      [STORM, "alice", undefined],
      [STORM, "alice", undefined],
      [STORM, "alice", undefined],
      [STORM, "alice", "code (source back-off)"],
      [`${STORM}1`, "alice", undefined],
      [`${STORM}2`, "alice", undefined],
      [HOTEL, "alice", "code (identity cap, unknown source)"],
    ]);
  });

  test("a counter of another source or kind leaves the warm path on; the identity's counter does not", async () => {
    const r = await twin(
      [{ name: "alice" }, { name: "bob" }],
      [via(STORM, at("bob", wrong)), via(HOME, at("alice", code(T0))), via(HOME, at("bob", code(T0), T0 + 1))],
    );
    expect(r.warm).toEqual(r.plain);
    expect(r.warm.decisions.map((d) => ("reason" in d ? d.reason : d.kind))).toEqual(["bad_code", "accept", "accept"]);
    expect(r.fullPathReads).toBe(1); // bob's accept: his identity counter sent it to the full path, which cleared it
    expect(r.warm.counters!.map((c) => `${c.key} ${c.source}`)).toEqual([`bob ${STORM}`]);
  });

  test("known sources: written at the first login from a station and again a day later, the same on both paths", async () => {
    const day = 86_400_000;
    const r = await twin(
      [{ name: "alice" }],
      [via(HOME, at("alice", code(T0))), via(HOME, at("alice", code(T0 + STEP), T0 + STEP)), via(HOTEL, at("alice", code(T0 + 2 * STEP), T0 + 2 * STEP)), via(HOME, at("alice", code(T0 + day), T0 + day))],
    );
    expect(r.warm).toEqual(r.plain);
    expect(r.warm.decisions.every((d) => d.kind === "accept")).toBe(true);
    expect(r.warm.known).toEqual([
      { key: "alice", source: HOME, lastSuccessAt: T0 + day },
      { key: "alice", source: HOTEL, lastSuccessAt: T0 + 2 * STEP },
    ]);
    expect(r.fullPathReads).toBe(0);
  });

  test("an attempt without a station uses the client, on both paths", async () => {
    const r = await twin([{ name: "alice" }], [at("alice", wrong), at("alice", code(T0), T0 + 1)]);
    expect(r.warm).toEqual(r.plain);
    expect(r.warm.known).toEqual([{ key: "alice", source: "nas:nas", lastSuccessAt: T0 + 1 }]);
  });
});

describe("warm path and directories", () => {
  test("with a directory profile ahead of local users, the full path asks the directory first", async () => {
    const directories = () => new Directories([new FakeDirectory("corp")]);
    const r = await twin([{ name: "alice" }], [at("alice", code(T0)), at("nobody", "123456")], directories);
    expect(r.warm).toEqual(r.plain);
    expect(r.warm.decisions.map((d) => ("reason" in d ? d.reason : d.kind))).toEqual(["accept", "unknown_user"]);
    expect(r.fullPathReads).toBeGreaterThan(0);
  });

  test("a client that lists local first and a directory after: a local user is warm, an unknown name goes on to the directory", async () => {
    const directories = () => new Directories([new FakeDirectory("corp")]);
    const channel: Channel = { ...codeOnly, directories: ["local", "corp"] };
    const r = await twin([{ name: "alice" }], [at("alice", code(T0), T0, channel)], directories);
    expect(r.warm).toEqual(r.plain);
    expect(r.warm.decisions[0]!.kind).toBe("accept");
    expect(r.fullPathReads).toBe(0);
    const unknown = await twin([{ name: "alice" }], [at("nobody", "123456", T0, channel)], directories);
    expect(unknown.warm).toEqual(unknown.plain);
    expect(unknown.fullPathReads).toBeGreaterThan(0);
  });
});

test("two attempts with the same code at once: exactly one is accepted (the store's high-water mark)", async () => {
  const inner = await storeWith([{ name: "alice" }]);
  const cached = new CachedStore(inner as EpochStore);
  await cached.preload();
  const engine = new Engine(cached, options(), () => {});
  const decisions = await Promise.all([engine.authenticate(at("alice", code(T0))), engine.authenticate(at("alice", code(T0)))]);
  expect(decisions.map((d) => d.kind).sort()).toEqual(["accept", "reject"]);
  expect(decisions.find((d) => d.kind === "reject")).toEqual({ kind: "reject", reason: "replayed_code" });
});
