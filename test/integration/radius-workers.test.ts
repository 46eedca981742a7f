// `[radius] workers = 2`: two RADIUS processes on one port (SO_REUSEPORT) over one store (SQLite,
// and PostgreSQL on a throwaway server on loopback), supervised by `serve`. Every log line of a worker carries `"worker":N`, which is how these tests
// know which process decided a request; the stored audit log (GET /api/admin/v1/audit) names the worker too.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Appliance, Attr, Code, UDPClient, buildAccessRequest, eventually, statusServer, type LogLine, type ServerProcess } from "./helpers/appliance.ts";
import { decodeBase32, encodeBase32, totp } from "../../scripts/bench/radius-wire.ts";
import { POSTGRES_SKIP_REASON, startPostgres, type PostgresServer } from "./helpers/postgres.ts";

const text = (s: string) => new TextEncoder().encode(s);
const codeOf = (seed: string, stepOffset = 0) => totp(decodeBase32(seed), { now: Date.now(), stepOffset });
const USERS = 16;

/** A code-only Access-Request (the client is `--first-factor none`). */
function request(secret: string, user: string, code: string, identifier: number): Uint8Array {
  return buildAccessRequest({ identifier, secret, attributes: [[Attr.UserName, text(user)], [Attr.UserPassword, text(code)]] });
}

/** The worker that wrote the first `event` line about `user` from log index `from`. */
function workerOf(server: ServerProcess, event: string, user: string, from = 0): LogLine | undefined {
  return server.logs.slice(from).find((l) => l.event === event && l.user === user);
}

/** The value of a sample on the admin listener's /metrics. */
async function metric(server: ServerProcess, sample: string): Promise<number> {
  const body = await (await fetch(`http://127.0.0.1:${server.adminPort}/metrics`)).text();
  const line = body.split("\n").find((l) => l.startsWith(sample + " "));
  return line === undefined ? NaN : Number(line.slice(sample.length + 1));
}

const BACKENDS = POSTGRES_SKIP_REASON ? (["sqlite"] as const) : (["sqlite", "postgres"] as const);

for (const backend of BACKENDS) describe(`two RADIUS workers on ${backend}`, () => {
  let app: Appliance;
  let server: ServerProcess;
  let secret: string;
  let pg: PostgresServer | undefined;
  const seeds: Record<string, string> = {};

  beforeAll(async () => {
    // Wrong and replayed codes are counted; the bound keeps this file's attempts from reaching a back-off.
    app = new Appliance({ PORTCULLIS_RADIUS_WORKERS: "2", PORTCULLIS_LOCKOUT_CODE_THRESHOLD: "100", PORTCULLIS_LOCKOUT_CODE_IDENTITY_CAP: "100" });
    if (backend === "postgres") {
      pg = await startPostgres();
      app.writeConfig(`[store]\nurl = "${await pg.createDatabase()}"\n`);
    }
    secret = `it-${randomBytes(12).toString("hex")}`;
    const names = [...Array.from({ length: USERS }, (_, i) => `retx${i}`), "replay", "lock"];
    const rows = names.map((name) => {
      seeds[name] = encodeBase32(randomBytes(20));
      return `${name},,totp,,,${seeds[name]},SHA1,6,30`;
    });
    const csv = join(app.dataDir, "users.csv");
    writeFileSync(csv, "username,password,type,phone,email,totp_secret,totp_algorithm,totp_digits,totp_period\n" + rows.join("\n") + "\n", { mode: 0o600 });
    await app.cli(["user", "import", csv]);
    await app.cli(["client", "add", "nas", "--address", "127.0.0.1/32", "--secret", secret, "--first-factor", "none"]);
    server = await app.serve();
    // Both workers listen before the tests start (the first line alone is enough for app.serve()).
    await eventually("both workers listening", () => (server.logs.filter((l) => l.event === "radius.listening").length >= 2 ? true : undefined), { tries: 200, timeoutMs: 30_000 });
  }, 120_000);
  afterAll(async () => {
    await app?.[Symbol.asyncDispose]();
    pg?.destroy();
  });

  test("the supervisor starts two workers on one port, steered by Identifier, and keeps the HTTP listeners", () => {
    const listening = server.logs.filter((l) => l.event === "radius.listening");
    expect(new Set(listening.map((l) => l.worker))).toEqual(new Set([1, 2]));
    expect(new Set(listening.map((l) => l.port))).toEqual(new Set([server.port]));
    expect(listening.every((l) => l.steering === "identifier")).toBe(true);
    const http = server.logs.filter((l) => l.event === "http.listening");
    expect(http.length).toBe(2);
    expect(http.every((l) => l.worker === undefined)).toBe(true);
  });

  test("workers: retransmissions to a 2-worker server are answered from the cache", async () => {
    const from = server.logs.length;
    const duplicatesBefore = await metric(server, 'portcullis_radius_packets_total{outcome="duplicate"}');
    const acceptsBefore = await metric(server, 'portcullis_radius_packets_total{outcome="accept"}');
    for (let i = 0; i < USERS; i++) {
      // A new source port and a new Identifier for each request: both workers get some.
      using udp = await UDPClient.open();
      const pkt = request(secret, `retx${i}`, codeOf(seeds[`retx${i}`]!), i);
      const first = await udp.exchange(pkt, server.port, secret);
      expect(first.code).toBe(Code.AccessAccept);
      for (let r = 0; r < 3; r++) {
        // The same datagram again, as a NAS retransmits it: the same bytes back, although the code is spent.
        const again = await udp.exchange(pkt, server.port, secret);
        expect(Buffer.from(again.raw).equals(Buffer.from(first.raw))).toBe(true);
      }
    }
    // The stats line (SIGUSR1 to the supervisor) is written after every reply arrived, so every
    // worker line written before those replies is in the log by then (one pipe, in write order).
    const stats = await server.stats();
    expect(stats.duplicates).toBeGreaterThanOrEqual(3 * USERS);
    expect((stats as unknown as { workers: number }).workers).toBe(2);
    // One decision per request, none for a retransmission (a second one would be auth.failure replayed_code).
    const decisions = server.logs.slice(from).filter((l) => (l.event === "auth.success" || l.event === "auth.failure") && String(l.user).startsWith("retx"));
    expect(decisions.length).toBe(USERS);
    expect(decisions.every((l) => l.event === "auth.success")).toBe(true);
    expect(new Set(decisions.map((l) => l.worker))).toEqual(new Set([1, 2]));
    // The supervisor's /metrics adds up both workers' counters.
    expect(await metric(server, 'portcullis_radius_packets_total{outcome="duplicate"}')).toBe((Number.isNaN(duplicatesBefore) ? 0 : duplicatesBefore) + 3 * USERS);
    expect(await metric(server, 'portcullis_radius_packets_total{outcome="accept"}')).toBe((Number.isNaN(acceptsBefore) ? 0 : acceptsBefore) + USERS);
    expect(await metric(server, "portcullis_radius_workers")).toBe(2);
  }, 60_000);

  test("a code accepted by one worker is refused as replayed by the other", async () => {
    using udp = await UDPClient.open();
    const code = codeOf(seeds.replay!);
    let from = server.logs.length;
    const first = await udp.exchange(request(secret, "replay", code, 10), server.port, secret);
    expect(first.code).toBe(Code.AccessAccept);
    const accepted = await eventually("the auth.success line", () => workerOf(server, "auth.success", "replay", from));
    // Identifiers of both parities: with the Identifier steering one of them lands on the other worker.
    let other: LogLine | undefined;
    for (let id = 11; id < 19 && !other; id++) {
      from = server.logs.length;
      const again = await udp.exchange(request(secret, "replay", code, id), server.port, secret);
      expect(again.code).toBe(Code.AccessReject);
      const failure = await eventually("the auth.failure line", () => workerOf(server, "auth.failure", "replay", from));
      expect(failure.reason).toBe("replayed_code");
      if (failure.worker !== accepted.worker) other = failure;
    }
    expect(other).toBeDefined();
  }, 60_000);

  test("wrong codes counted by both workers add up in the identity's one counter", async () => {
    // The counters live in the store: each worker adds to the count the other one left.
    using udp = await UDPClient.open();
    const from = server.logs.length;
    const wrong = codeOf(seeds.lock!, 5); // a code of another step: wrong, not replayed
    for (let id = 20; id < 24; id++) {
      const r = await udp.exchange(request(secret, "lock", wrong, id), server.port, secret);
      expect(r.code).toBe(Code.AccessReject);
    }
    await server.stats(); // every worker line written before the replies is read by now (see above)
    const failures = server.logs.slice(from).filter((l) => l.event === "auth.failure" && l.user === "lock");
    expect(failures.length).toBe(4);
    expect(new Set(failures.map((l) => l.worker))).toEqual(new Set([1, 2]));
    // The identity's counter in the store holds all four, whichever worker counted them.
    const shown = await app.cli(["user", "show", "lock"]);
    expect(shown).toMatch(/across sources: password 0 failures; code 4 failures/);
  }, 60_000);

  test("the stored audit log holds both workers' decisions: the supervisor's GET /audit lists them by worker", async () => {
    const key = /pcl_[A-Za-z0-9_-]{43}/.exec(await app.cli(["apikey", "add", "reader", "--role", "operator"]))![0];
    const audit = async (query: string) => ((await (await fetch(`http://127.0.0.1:${server.adminPort}/api/admin/v1/audit?${query}`, { headers: { "api-key": key } })).json()) as { events: Array<{ node: string; outcome: string }> }).events;
    // The four wrong codes above, each stored by the worker that decided it.
    const failures = await eventually("lock's failures in the stored audit log", async () => {
      const events = await audit("event=auth.failure&user=lock");
      return events.length >= 4 ? events : undefined;
    });
    expect(failures.every((e) => e.outcome === "reject")).toBe(true);
    expect(new Set(failures.map((e) => /\/w(\d+)$/.exec(e.node)?.[1]))).toEqual(new Set(["1", "2"]));
    // Accepted logins are counted per minute, not stored one by one ([audit] exclude).
    expect(await audit("event=auth.success")).toEqual([]);
  }, 60_000);

  test("Status-Server is answered by both workers", async () => {
    using udp = await UDPClient.open();
    for (let id = 30; id < 34; id++) {
      const r = await udp.exchange(statusServer(secret, id), server.port, secret);
      expect(r.code).toBe(Code.AccessAccept);
    }
    const stats = await server.statsUntil("4 Status-Server answers", (s) => ((s as unknown as { status_server: number }).status_server ?? 0) >= 4);
    expect((stats as unknown as { status_server: number }).status_server).toBeGreaterThanOrEqual(4);
  }, 30_000);

  test("a worker that dies is restarted; the others keep answering meanwhile", async () => {
    const started = server.logs.filter((l) => l.event === "radius.worker_started");
    const victim = started.find((l) => l.worker === 1)!;
    const from = server.logs.length;
    process.kill(Number(victim.pid), "SIGKILL");
    const exited = await server.waitForLog((l) => l.event === "radius.worker_exited" && l.worker === 1, { from, timeoutMs: 10_000 });
    expect(exited.signal).toBe("SIGKILL");
    await server.waitForLog((l) => l.event === "radius.listening" && l.worker === 1, { from, timeoutMs: 30_000 });
    using udp = await UDPClient.open();
    for (let id = 40; id < 44; id++) {
      const r = await udp.exchange(statusServer(secret, id), server.port, secret);
      expect(r.code).toBe(Code.AccessAccept);
    }
    expect(await metric(server, "portcullis_radius_worker_restarts_total")).toBe(1);
  }, 60_000);
});

describe("worker life cycle", () => {
  test("a worker exits when its supervisor is killed", async () => {
    await using app = new Appliance({ PORTCULLIS_RADIUS_WORKERS: "2" });
    const server = await app.serve();
    const started = await eventually("two workers started", () => {
      const lines = server.logs.filter((l) => l.event === "radius.worker_started");
      return lines.length >= 2 ? lines : undefined;
    });
    server.proc.kill("SIGKILL");
    await server.proc.exited;
    const pids = started.map((l) => Number(l.pid));
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    await eventually("both workers gone", () => (pids.some(alive) ? undefined : true), { tries: 100, timeoutMs: 10_000, everyMs: 100 });
  }, 60_000);

  test("a second server on the same address fails to start, as with one process", async () => {
    await using app = new Appliance({ PORTCULLIS_RADIUS_WORKERS: "2" });
    const first = await app.serve();
    const second = Bun.spawn([...app.command, "--data-dir", app.dataDir, "serve", "--radius-listen", `127.0.0.1:${first.port}`, "--http-listen", "127.0.0.1:0"], {
      env: { ...process.env, ...app.env, PORTCULLIS_ADMIN_LISTEN: "127.0.0.1:0" },
      stdout: "pipe",
      stderr: "pipe",
    });
    const timer = setTimeout(() => second.kill("SIGKILL"), 30_000);
    const code = await second.exited;
    clearTimeout(timer);
    expect(code).not.toBe(0);
    expect(await new Response(second.stderr).text()).toMatch(/EADDRINUSE|in use/i);
  }, 60_000);
});
