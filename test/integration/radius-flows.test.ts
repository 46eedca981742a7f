// End-to-end authentication flows against the real server process, driven by FreeRADIUS's radclient.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Appliance, Code, UDPClient, eventually, statusServer, type ServerProcess, untilServed } from "./helpers/appliance.ts";
import { attr, quote, radclient, runRadclientTests } from "./helpers/radclient.ts";
import { decodeBase32, encodeBase32, totp } from "../../scripts/bench/radius-wire.ts";

const rtest = runRadclientTests ? test : test.skip;
const PROMPT = "Enter your verification code";

/** A fresh random base32 TOTP seed (160 bits). */
const newSeed = () => encodeBase32(randomBytes(20));
/** The code of the current step. */
const codeOf = (seed: string, stepOffset = 0) => totp(decodeBase32(seed), { now: Date.now(), stepOffset });
const newSecret = () => `it-${randomBytes(12).toString("hex")}`;
/** An EAP-Response/Identity (RFC 3748 §5.1) for `name`, as radclient's octets syntax: Code 2, Identifier 1, Length, Type 1. */
const eapIdentity = (name: string) => `0x0201${(5 + name.length).toString(16).padStart(4, "0")}01${Buffer.from(name).toString("hex")}`;

/** Adds a user with a password and, unless `type` says otherwise, a TOTP token; returns the seed. */
async function addUser(app: Appliance, name: string, password: string, { type, token = true }: { type?: string; token?: boolean } = {}): Promise<string> {
  await app.cli(["user", "add", name, "--password-stdin", ...(type ? ["--type", type] : [])], { stdin: password + "\n" });
  const seed = newSeed();
  if (token) await app.cli(["token", "add", name, "--totp", "--secret", seed]);
  return seed;
}

/** Starts an appliance, then adds one client for 127.0.0.1/32 while the server runs and waits until it answers. */
async function liveAppliance(clientFlags: string[], env: Record<string, string> = {}) {
  const app = new Appliance(env);
  const server = await app.serve();
  const secret = newSecret();
  await app.cli(["client", "add", "nas", "--address", "127.0.0.1/32", "--secret", secret, ...clientFlags]);
  // The running server must see the CLI's change without a restart: poll Status-Server (bounded).
  await untilServed(server, secret, "the new client to be served");
  return { app, server, secret };
}

describe("challenge client (default: password, then code)", () => {
  let app: Appliance;
  let server: ServerProcess;
  let secret: string;
  const seeds: Record<string, string> = {};

  beforeAll(async () => {
    ({ app, server, secret } = await liveAppliance([]));
    seeds.alice = await addUser(app, "alice", "alice-pass-1");
    seeds.bob = await addUser(app, "bob", "bob-pass-1", { type: "concatenated" });
    await addUser(app, "carol", "carol-pass-1", { type: "password", token: false });
    seeds.dave = await addUser(app, "dave", "dave-pass-1");
    seeds.erin = await addUser(app, "erin", "erin-pass-1");
    seeds.gina = await addUser(app, "gina", "gina-pass-1");
  }, 120_000);
  afterAll(async () => {
    await app?.[Symbol.asyncDispose]();
  });

  rtest("password → Access-Challenge (State + prompt), code + State → Access-Accept", async () => {
    const first = await radclient(server.port, secret, ["User-Name = alice", `User-Password = ${quote("alice-pass-1")}`]);
    expect(first.code).toBe("Access-Challenge");
    expect(attr(first, "Reply-Message")).toBe(PROMPT);
    const state = attr(first, "State");
    expect(state).toMatch(/^0x[0-9a-f]{32,}$/); // at least 128 bits
    const second = await radclient(server.port, secret, ["User-Name = alice", `User-Password = ${quote(codeOf(seeds.alice!))}`, `State = ${state}`]);
    expect(second.code).toBe("Access-Accept");
  });

  rtest("type concatenated: password+code in one User-Password → Access-Accept on a challenge client", async () => {
    const r = await radclient(server.port, secret, ["User-Name = bob", `User-Password = ${quote("bob-pass-1" + codeOf(seeds.bob!))}`]);
    expect(r.code).toBe("Access-Accept");
  });

  rtest("type password is refused on a client without --allow-password-only", async () => {
    const r = await radclient(server.port, secret, ["User-Name = carol", `User-Password = ${quote("carol-pass-1")}`]);
    expect(r.code).toBe("Access-Reject");
  });

  rtest("wrong password and unknown user get the same Access-Reject", async () => {
    const wrong = await radclient(server.port, secret, ["User-Name = dave", `User-Password = ${quote("not-his-password")}`]);
    const unknown = await radclient(server.port, secret, ["User-Name = nobody-here", `User-Password = ${quote("whatever-1")}`]);
    expect(wrong.code).toBe("Access-Reject");
    expect(unknown.code).toBe("Access-Reject");
    expect(attr(wrong, "Reply-Message")).toBe(attr(unknown, "Reply-Message"));
  });

  rtest("second leg: wrong code → Reject; another User-Name with the State → Reject", async () => {
    const c1 = await radclient(server.port, secret, ["User-Name = erin", `User-Password = ${quote("erin-pass-1")}`]);
    expect(c1.code).toBe("Access-Challenge");
    const good = codeOf(seeds.erin!);
    const wrongCode = String((Number(good) + 1) % 1_000_000).padStart(6, "0");
    const r1 = await radclient(server.port, secret, ["User-Name = erin", `User-Password = ${quote(wrongCode)}`, `State = ${attr(c1, "State")}`]);
    expect(["Access-Reject", "Access-Challenge"]).toContain(r1.code!); // a retry prompt is allowed, never an Accept
    const c2 = await radclient(server.port, secret, ["User-Name = erin", `User-Password = ${quote("erin-pass-1")}`]);
    expect(c2.code).toBe("Access-Challenge");
    // dave's current code is unused, so only the State's binding to erin can refuse it.
    const r2 = await radclient(server.port, secret, ["User-Name = dave", `User-Password = ${quote(codeOf(seeds.dave!))}`, `State = ${attr(c2, "State")}`]);
    expect(r2.code).toBe("Access-Reject");
  });

  rtest("a replayed code (same code, fresh flow) is never accepted and ends in Access-Reject", async () => {
    const code = codeOf(seeds.gina!);
    const leg1 = async () => {
      const c = await radclient(server.port, secret, ["User-Name = gina", `User-Password = ${quote("gina-pass-1")}`]);
      expect(c.code).toBe("Access-Challenge");
      return c;
    };
    const c1 = await leg1();
    expect((await radclient(server.port, secret, ["User-Name = gina", `User-Password = ${quote(code)}`, `State = ${attr(c1, "State")}`])).code).toBe("Access-Accept");
    // Fresh flow, same code: a replay is not a typo, so the flow ends at once.
    const state = attr(await leg1(), "State");
    const r = await radclient(server.port, secret, ["User-Name = gina", `User-Password = ${quote(code)}`, `State = ${state}`]);
    expect(r.code).toBe("Access-Reject");
  });

  rtest("EAP-Message → Access-Reject even with the right password (RFC 3579: EAP is not supported), audited and counted as eap_unsupported", async () => {
    const from = server.logs.length;
    const r = await radclient(server.port, secret, ["User-Name = dave", `User-Password = ${quote("dave-pass-1")}`, `EAP-Message = ${eapIdentity("dave")}`]);
    expect(r.code).toBe("Access-Reject");
    const line = await server.waitForLog((l) => l.event === "auth.failure", { from });
    expect(line).toMatchObject({ reason: "eap_unsupported", client: "nas", detail: "EAP is not supported" });
    const metrics = await (await fetch(`http://127.0.0.1:${server.adminPort}/metrics`)).text();
    expect(metrics).toContain('portcullis_auth_failures_total{reason="eap_unsupported"} 1');
  });

  rtest("CHAP → Access-Reject", async () => {
    const r = await radclient(server.port, secret, ["User-Name = alice", `CHAP-Password = ${quote("alice-pass-1")}`]);
    expect(r.code).toBe("Access-Reject");
  });

  rtest("user import (CSV with totp_secret) → the imported user can log in", async () => {
    const seed = newSeed();
    const csv = join(app.dataDir, "import.csv");
    writeFileSync(
      csv,
      "username,password,type,phone,email,totp_secret,totp_algorithm,totp_digits,totp_period\n" +
        `hank,hank-pass-1,totp,,,${seed},SHA1,6,30\n` +
        `ivy,ivy-pass-1,concatenated,,,${newSeed()},,,\n`,
    );
    await app.cli(["user", "import", csv]);
    const c = await radclient(server.port, secret, ["User-Name = hank", `User-Password = ${quote("hank-pass-1")}`]);
    expect(c.code).toBe("Access-Challenge");
    const r = await radclient(server.port, secret, ["User-Name = hank", `User-Password = ${quote(codeOf(seed))}`, `State = ${attr(c, "State")}`]);
    expect(r.code).toBe("Access-Accept");
  });

  test("token add prints the token id and an otpauth:// URI", async () => {
    await app.cli(["user", "add", "jack", "--password-stdin"], { stdin: "jack-pass-1\n" });
    const seed = newSeed();
    const out = await app.cli(["token", "add", "jack", "--totp", "--secret", seed]);
    expect(out).toMatch(/otpauth:\/\/totp\/[^\s]*secret=/);
    expect(out.replace(/otpauth:\/\/\S+/g, "").trim()).not.toBe(""); // something besides the URI: the token id
  });
});

describe("client --otp-mode concat", () => {
  let app: Appliance;
  let server: ServerProcess;
  let secret: string;
  let seed: string;
  beforeAll(async () => {
    ({ app, server, secret } = await liveAppliance(["--otp-mode", "concat"]));
    seed = await addUser(app, "alice", "alice-pass-1");
  }, 120_000);
  afterAll(async () => {
    await app?.[Symbol.asyncDispose]();
  });

  rtest("User-Password = password + code → Access-Accept (no challenge)", async () => {
    const r = await radclient(server.port, secret, ["User-Name = alice", `User-Password = ${quote("alice-pass-1" + codeOf(seed))}`]);
    expect(r.code).toBe("Access-Accept");
  });

  rtest("password alone → Access-Reject (a concat client cannot do challenges)", async () => {
    const r = await radclient(server.port, secret, ["User-Name = alice", `User-Password = ${quote("alice-pass-1")}`]);
    expect(r.code).toBe("Access-Reject");
  });
});

describe("client --first-factor none", () => {
  let app: Appliance;
  let server: ServerProcess;
  let secret: string;
  let seed: string;
  beforeAll(async () => {
    ({ app, server, secret } = await liveAppliance(["--first-factor", "none"]));
    seed = await addUser(app, "alice", "alice-pass-1");
    fredSeed = await addUser(app, "fred", "fred-pass-1");
  }, 120_000);
  let fredSeed: string;
  afterAll(async () => {
    await app?.[Symbol.asyncDispose]();
  });

  rtest("User-Password = code alone → Access-Accept; the same code again → Access-Reject", async () => {
    const code = codeOf(seed);
    expect((await radclient(server.port, secret, ["User-Name = alice", `User-Password = ${quote(code)}`])).code).toBe("Access-Accept");
    expect((await radclient(server.port, secret, ["User-Name = alice", `User-Password = ${quote(code)}`])).code).toBe("Access-Reject");
  });

  rtest("EAP-Message with a right code → Access-Reject, and the code is not consumed: without EAP-Message it is then accepted", async () => {
    const code = codeOf(fredSeed);
    const eap = await radclient(server.port, secret, ["User-Name = fred", `User-Password = ${quote(code)}`, `EAP-Message = ${eapIdentity("fred")}`]);
    expect(eap.code).toBe("Access-Reject");
    expect((await radclient(server.port, secret, ["User-Name = fred", `User-Password = ${quote(code)}`])).code).toBe("Access-Accept");
  });

  test("client add refuses --first-factor none with --allow-password-only true", async () => {
    const r = await app.run(["client", "add", "bad", "--address", "10.9.9.9/32", "--secret", newSecret(), "--first-factor", "none", "--allow-password-only", "true"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split("\n").length).toBe(1);
  });
});

describe("client --allow-password-only true", () => {
  let app: Appliance;
  let server: ServerProcess;
  let secret: string;
  beforeAll(async () => {
    ({ app, server, secret } = await liveAppliance(["--allow-password-only", "true"]));
    await addUser(app, "carol", "carol-pass-1", { type: "password", token: false });
  }, 120_000);
  afterAll(async () => {
    await app?.[Symbol.asyncDispose]();
  });

  rtest("type password → Access-Accept on the password right, Access-Reject on a wrong one", async () => {
    expect((await radclient(server.port, secret, ["User-Name = carol", `User-Password = ${quote("carol-pass-1")}`])).code).toBe("Access-Accept");
    expect((await radclient(server.port, secret, ["User-Name = carol", `User-Password = ${quote("carol-pass-2")}`])).code).toBe("Access-Reject");
  });
});

describe("lockout (threshold 3)", () => {
  let app: Appliance;
  let server: ServerProcess;
  let secret: string;
  beforeAll(async () => {
    ({ app, server, secret } = await liveAppliance([], {
      PORTCULLIS_LOCKOUT_PASSWORD_THRESHOLD: "3",
      PORTCULLIS_LOCKOUT_BASE_DELAY_S: "600",
      PORTCULLIS_LOCKOUT_MAX_DELAY_S: "900",
    }));
    await addUser(app, "alice", "alice-pass-1");
    await addUser(app, "bob", "bob-pass-1");
  }, 120_000);
  afterAll(async () => {
    await app?.[Symbol.asyncDispose]();
  });

  rtest("requests with EAP-Message never count a failure: after more wrong passwords than the threshold, the right one still gets its challenge", async () => {
    for (let i = 0; i < 4; i++) {
      const r = await radclient(server.port, secret, ["User-Name = bob", `User-Password = ${quote(`wrong-pass-${i}`)}`, `EAP-Message = ${eapIdentity("bob")}`]);
      expect(r.code).toBe("Access-Reject");
    }
    expect((await radclient(server.port, secret, ["User-Name = bob", `User-Password = ${quote("bob-pass-1")}`])).code).toBe("Access-Challenge");
  });

  rtest("Alice / alice@corp / alice share one counter; then even the right password is rejected until `user unlock`", async () => {
    const login = (name: string, password: string) => radclient(server.port, secret, [`User-Name = ${quote(name)}`, `User-Password = ${quote(password)}`]);
    expect((await login("alice", "alice-pass-1")).code).toBe("Access-Challenge"); // sanity: not locked yet
    for (const name of ["Alice", "alice@corp", "alice"]) expect((await login(name, "wrong-pass-0")).code).toBe("Access-Reject");
    expect((await login("alice", "alice-pass-1")).code).toBe("Access-Reject");
    await app.cli(["user", "unlock", "alice"]);
    await eventually("alice to be unlocked", async () => ((await login("alice", "alice-pass-1")).code === "Access-Challenge" ? true : undefined), {
      tries: 10,
      timeoutMs: 10_000,
      everyMs: 100,
    });
  });
});

describe("lockout by source (Calling-Station-Id): a storm from one station does not keep the user out of another", () => {
  let app: Appliance;
  let server: ServerProcess;
  let secret: string;
  let seed: string;
  const HOME = "198.51.100.20";
  const STORM = "203.0.113.66";
  beforeAll(async () => {
    ({ app, server, secret } = await liveAppliance([], {
      // password_identity_cap stays at its default, 4
      PORTCULLIS_LOCKOUT_PASSWORD_THRESHOLD: "3",
      PORTCULLIS_LOCKOUT_BASE_DELAY_S: "600",
      PORTCULLIS_LOCKOUT_MAX_DELAY_S: "900",
    }));
    seed = await addUser(app, "bob", "bob-pass-1");
  }, 120_000);
  afterAll(async () => {
    await app?.[Symbol.asyncDispose]();
  });

  const from = (station: string, name: string, password: string, extra: string[] = []) =>
    radclient(server.port, secret, [`User-Name = ${quote(name)}`, `User-Password = ${quote(password)}`, `Calling-Station-Id = ${quote(station)}`, ...extra]);
  /** Password, then the code with the State, both from `station`: the final reply code. */
  async function login(station: string, stepOffset = 0): Promise<string | null> {
    const first = await from(station, "bob", "bob-pass-1");
    if (first.code !== "Access-Challenge") return first.code;
    return (await from(station, "bob", codeOf(seed, stepOffset), [`State = ${attr(first, "State")}`])).code;
  }

  rtest("bob logs in from home during and after a storm of wrong passwords from another station; unknown stations stay capped until `user unlock`", async () => {
    expect(await login(HOME)).toBe("Access-Accept"); // HOME becomes a known source
    const logFrom = server.logs.length;
    // The storm: wrong passwords for bob (as Bob@corp too, one identity) from one station, then one from a second.
    for (let i = 0; i < 10; i++) expect((await from(STORM, i % 2 ? "Bob@corp" : "bob", `guess-${i}`)).code).toBe("Access-Reject");
    expect((await from(`${STORM}:2`, "bob", "guess-x")).code).toBe("Access-Reject");
    // The storm's station, even with the right password: refused (its own back-off).
    expect((await from(STORM, "bob", "bob-pass-1")).code).toBe("Access-Reject");
    // A station bob never logged in from: refused (four failures across stations, the cap).
    expect((await from("192.0.2.99", "bob", "bob-pass-1")).code).toBe("Access-Reject");
    // Home: password → challenge → code → accept, the storm notwithstanding (the next step's code: this one was used).
    expect(await login(HOME, 1)).toBe("Access-Accept");

    // What reached the password check: three from the storm's station, one from the second; the rest were refused unverified.
    const failures = server.logs.slice(logFrom).filter((l) => l.event === "auth.failure");
    const reasons = failures.map((l) => `${l.source} ${l.reason}`);
    expect(reasons.filter((r) => r === `csid:${STORM} bad_password`).length).toBe(3);
    expect(reasons.filter((r) => r === `csid:${STORM} locked_out`).length).toBe(8);
    expect(reasons).toContain("csid:192.0.2.99 locked_out");
    // A known user is named in every line, never hashed.
    expect(failures.every((l) => l.user === "bob" && l.userHash === undefined)).toBe(true);
    expect(failures.find((l) => l.source === "csid:192.0.2.99")).toMatchObject({ detail: "password (identity cap, unknown source)" });

    const view = JSON.parse(await app.cli(["user", "show", "bob", "--json"]));
    // The successful login from home cleared the counter across sources; each storm station keeps its own.
    expect(view.lockout.password).toEqual({ failures: 0, lockedUntil: null });
    expect(view.lockout.sources).toEqual([
      { source: `csid:${STORM}`, kind: "password", failures: 3, lockedUntil: expect.any(String) },
      { source: `csid:${STORM}:2`, kind: "password", failures: 1, lockedUntil: null },
    ]);
    expect(view.lockout.knownSources.map((k: { source: string }) => k.source)).toEqual([`csid:${HOME}`]);
    const text = await app.cli(["user", "show", "bob"]);
    expect(text).toContain(`csid:${STORM}: password 3 failures, backing off until`);
    expect(text).toContain(`known:     csid:${HOME} (last login`);

    await app.cli(["user", "unlock", "bob"]);
    await eventually("the storm's station to be unlocked", async () => ((await from(STORM, "bob", "bob-pass-1")).code === "Access-Challenge" ? true : undefined), {
      tries: 10,
      timeoutMs: 10_000,
      everyMs: 100,
    });
    expect(JSON.parse(await app.cli(["user", "show", "bob", "--json"])).lockout.sources).toEqual([]);
  });

  rtest("an unknown name is refused the same way, and logged only as a hash", async () => {
    const logFrom = server.logs.length;
    for (let i = 0; i < 4; i++) expect((await from(STORM, "nobody-here", `guess-${i}`)).code).toBe("Access-Reject");
    const lines = server.logs.slice(logFrom).filter((l) => l.event === "auth.failure");
    expect(lines.map((l) => l.reason)).toEqual(["unknown_user", "unknown_user", "unknown_user", "locked_out"]);
    expect(lines.every((l) => typeof l.userHash === "string" && l.user === undefined)).toBe(true);
    expect(JSON.stringify(server.logs)).not.toContain("nobody-here");
  });
});

test("SIGTERM right after the radius.listening line stops the server cleanly (exit 0)", async () => {
  await using app = new Appliance();
  const server = await app.serve();
  expect(await server.stop()).toBe(0);
});

test("SIGTERM after serving requests stops the server cleanly (exit 0, a final radius.stats line)", async () => {
  await using app = new Appliance();
  const secret = newSecret();
  await app.cli(["client", "add", "nas", "--address", "127.0.0.1/32", "--secret", secret]);
  const server = await app.serve();
  using udp = await UDPClient.open();
  expect((await udp.exchange(statusServer(secret), server.port, secret)).code).toBe(Code.AccessAccept);
  const from = server.logs.length;
  expect(await server.stop()).toBe(0);
  expect(server.logs.slice(from).some((l) => l.event === "radius.stats")).toBe(true);
});

test("Status-Server is answered by a freshly added client (status via radclient)", async () => {
  const { app, server, secret } = await liveAppliance([]);
  try {
    if (runRadclientTests) {
      const r = await radclient(server.port, secret, [], { command: "status" });
      expect(r.code).toBe("Access-Accept");
    }
    using udp = await UDPClient.open();
    const reply = await udp.exchange(statusServer(secret), server.port, secret);
    expect(reply.code).toBe(Code.AccessAccept);
  } finally {
    await app[Symbol.asyncDispose]();
  }
});
