// The product under Deno: the admin CLI and `serve` run from source by the `deno` npm package
// (node_modules/.bin/deno), driven by FreeRADIUS's radclient, with the same harness as every other
// integration test. Deno answers a password → challenge → TOTP login, with users, tokens and
// clients made by the CLI under Deno and a password hash made by Bun; then the same on a throwaway
// PostgreSQL (the postgres package as client), with a key rotation by the CLI under Deno.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Appliance, untilServed, type ServerProcess } from "./helpers/appliance.ts";
import { denoExecutable, denoPortcullisCommand } from "./helpers/deno.ts";
import { POSTGRES_SKIP_REASON, startPostgres, type PostgresServer } from "./helpers/postgres.ts";
import { attr, quote, radclient, runRadclientTests } from "./helpers/radclient.ts";
import { decodeBase32, encodeBase32, totp } from "../../scripts/bench/radius-wire.ts";

const deno = denoExecutable();
/** Always in CI (where a missing deno must fail: it is a devDependency), else only when installed. */
const runDenoTests = runRadclientTests && (deno !== null || Boolean(process.env.CI));
if (deno === null) console.warn("the deno npm package is not installed: skipping the Deno smoke test (npm install)");
const dtest = runDenoTests ? test : test.skip;

const newSeed = () => encodeBase32(randomBytes(20));
const codeOf = (seed: string, stepOffset = 0) => totp(decodeBase32(seed), { now: Date.now(), stepOffset });

/** `serve` on `app`, returned once its RADIUS listener answers a Status-Server with `secret` (bounded wait). */
async function serveAnswering(app: Appliance, secret: string): Promise<ServerProcess> {
  const server = await app.serve();
  await untilServed(server, secret, "Status-Server to be answered", { tries: 40, timeoutMs: 20_000, probeMs: 500 });
  return server;
}

/**
 * Over radclient: `password` → Access-Challenge with a State; the current TOTP code of `seed` with
 * that State → Access-Accept; the same code again, in a new challenge → Access-Reject (the
 * high-water mark is in the store).
 */
async function loginThenReplay(server: ServerProcess, secret: string, user: string, password: string, seed: string): Promise<void> {
  const first = await radclient(server.port, secret, [`User-Name = ${user}`, `User-Password = ${quote(password)}`]);
  expect(first.code).toBe("Access-Challenge");
  const state = attr(first, "State");
  expect(state).toMatch(/^0x[0-9a-f]{32,}$/);
  const code = codeOf(seed);
  const second = await radclient(server.port, secret, [`User-Name = ${user}`, `User-Password = ${quote(code)}`, `State = ${state}`]);
  expect(second.code).toBe("Access-Accept");
  const again = await radclient(server.port, secret, [`User-Name = ${user}`, `User-Password = ${quote(password)}`]);
  expect(again.code).toBe("Access-Challenge");
  const replay = await radclient(server.port, secret, [`User-Name = ${user}`, `User-Password = ${quote(code)}`, `State = ${attr(again, "State")}`]);
  expect(replay.code).toBe("Access-Reject");
}

describe("serve under Deno", () => {
  let app: Appliance;
  let server: ServerProcess;
  const secret = `it-${randomBytes(12).toString("hex")}`;
  const seeds: Record<string, string> = {};

  beforeAll(async () => {
    if (!runDenoTests) return;
    if (deno === null) throw new Error("the deno npm package is not installed (npm install)");
    app = new Appliance({}, { command: denoPortcullisCommand(deno) });
    // alice: password hashed by Deno (hash-wasm), token added by the CLI.
    await app.cli(["user", "add", "alice", "--password-stdin"], { stdin: "alice-pass-1\n" });
    seeds.alice = newSeed();
    await app.cli(["token", "add", "alice", "--totp", "--secret", seeds.alice]);
    // bob: an argon2id hash made by Bun.password and his TOTP seed, imported as is from a CSV.
    const bunHash = await Bun.password.hash("bob-pass-1", { algorithm: "argon2id", memoryCost: 19456, timeCost: 2 });
    seeds.bob = newSeed();
    const csv = join(app.dataDir, "users.csv");
    writeFileSync(csv, `username,password,type,phone,email,totp_secret,totp_algorithm,totp_digits,totp_period\nbob,"${bunHash}",,,,${seeds.bob},,,\n`);
    await app.cli(["user", "import", csv]);
    await app.cli(["client", "add", "nas", "--address", "127.0.0.1/32", "--secret", secret]);
    server = await serveAnswering(app, secret);
  }, 180_000);
  afterAll(async () => {
    await app?.[Symbol.asyncDispose]();
  });

  dtest("the server says it runs on Deno", () => {
    const listening = server.logs.find((l) => l.event === "radius.listening");
    expect(String(listening?.runtime)).toStartWith("deno ");
  });

  dtest("password → Access-Challenge, TOTP code + State → Access-Accept; the same code again → Access-Reject", async () => {
    // the replay is refused by the high-water mark written through node:sqlite
    await loginThenReplay(server, secret, "alice", "alice-pass-1", seeds.alice!);
  });

  dtest("a wrong password → Access-Reject, no challenge", async () => {
    const r = await radclient(server.port, secret, ["User-Name = alice", `User-Password = ${quote("wrong-pass")}`]);
    expect(r.code).toBe("Access-Reject");
  });

  dtest("an argon2id hash made by Bun.password verifies under Deno", async () => {
    const first = await radclient(server.port, secret, ["User-Name = bob", `User-Password = ${quote("bob-pass-1")}`]);
    expect(first.code).toBe("Access-Challenge");
    const second = await radclient(server.port, secret, ["User-Name = bob", `User-Password = ${quote(codeOf(seeds.bob!))}`, `State = ${attr(first, "State")}`]);
    expect(second.code).toBe("Access-Accept");
  });

  dtest("the counters (SIGUSR1) and the HTTP health endpoint answer", async () => {
    const stats = await server.statsUntil("two accepts", (s) => s.accepted >= 2);
    expect(stats.accepted).toBe(2);
    const res = await fetch(`http://127.0.0.1:${server.adminPort}/readyz`);
    expect(res.status).toBe(200);
  });

  dtest("SIGTERM stops the server cleanly", async () => {
    expect(await server.stop()).toBe(0);
  });
});

describe("serve under Deno on PostgreSQL", () => {
  const pgSkip = POSTGRES_SKIP_REASON !== undefined;
  const ptest = runDenoTests && !pgSkip ? test : test.skip;
  let pg: PostgresServer;
  let app: Appliance;
  let server: ServerProcess;
  const secret = `it-${randomBytes(12).toString("hex")}`;
  const seed = newSeed();

  beforeAll(async () => {
    if (!runDenoTests || pgSkip) return;
    if (deno === null) throw new Error("the deno npm package is not installed (npm install)");
    pg = await startPostgres();
    const url = await pg.createDatabase();
    // A key file (not $PORTCULLIS_KEY), so that `key rotate` can append to it.
    app = new Appliance({ PORTCULLIS_KEY: "" }, { command: denoPortcullisCommand(deno) });
    app.writeConfig(`[store]\nurl = "${url}"\n`);
    // The CLI under Deno writes the users, token and client to PostgreSQL through the postgres package.
    await app.cli(["user", "add", "carol", "--password-stdin"], { stdin: "carol-pass-1\n" });
    await app.cli(["token", "add", "carol", "--totp", "--secret", seed]);
    await app.cli(["client", "add", "nas", "--address", "127.0.0.1/32", "--secret", secret]);
    server = await serveAnswering(app, secret);
  }, 180_000);
  afterAll(async () => {
    await app?.[Symbol.asyncDispose]();
    pg?.destroy();
  });

  ptest("the server runs on Deno with the PostgreSQL store", () => {
    expect(String(server.logs.find((l) => l.event === "radius.listening")?.runtime)).toStartWith("deno ");
    expect(server.logs.find((l) => l.event === "store.opened")?.driver).toBe("postgres");
  });

  ptest("password → Access-Challenge, TOTP code + State → Access-Accept; the same code again → Access-Reject", async () => {
    await loginThenReplay(server, secret, "carol", "carol-pass-1", seed);
  });

  ptest("key rotate through the CLI under Deno while the server runs: the next login (next TOTP step) is accepted", async () => {
    const out = await app.cli(["key", "rotate"]);
    // The client secret, the token seed and the server secrets serve created.
    expect(Number(/^new key [0-9a-f]+; (\d+) secrets re-encrypted\n$/.exec(out)?.[1])).toBeGreaterThanOrEqual(2);
    const first = await radclient(server.port, secret, ["User-Name = carol", `User-Password = ${quote("carol-pass-1")}`]);
    expect(first.code).toBe("Access-Challenge");
    const next = await radclient(server.port, secret, ["User-Name = carol", `User-Password = ${quote(codeOf(seed, 1))}`, `State = ${attr(first, "State")}`]);
    expect(next.code).toBe("Access-Accept");
  });

  ptest("SIGTERM stops the server cleanly", async () => {
    expect(await server.stop()).toBe(0);
  });
});
