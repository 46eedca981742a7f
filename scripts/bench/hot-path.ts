// In-process micro-benchmark of the warm RADIUS OTP path: RADIUSServer.receive → codec → engine →
// cache → group-committed high-water mark → reply encoding → audit line, without sockets.
//
// Usage: bun scripts/bench/hot-path.ts [--users 20000] [--rounds 8] [--inflight 128] [--audit-store]
// --audit-store also subscribes the stored audit log (audit/store-sink.ts, `[audit]` defaults), as serve does.
// Prints µs per request for each round and the minimum (the least disturbed round on a shared machine).
// Date.now is replaced by a fake clock that moves one TOTP step per round, so no round waits for a
// fresh step; log lines are serialised as in production and then discarded.

import { parseArgs } from "node:util";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { AuditBus, logSink } from "../../src/audit/events.ts";
import { setLogSink } from "../../src/audit/log.ts";
import { AuditStoreSink } from "../../src/audit/store-sink.ts";
import { auditCounters, createMetrics, requestSeconds } from "../../src/audit/metrics.ts";
import { Engine } from "../../src/auth/engine.ts";
import { DEFAULT_LOCKOUT } from "../../src/auth/lockout.ts";
import { RADIUSServer } from "../../src/radius/server/server.ts";
import type { UDPEndpoint } from "../../src/runtime/udp.ts";
import { CachedStore } from "../../src/store/cache.ts";
import { openSqliteStore } from "../../src/store/sqlite/store.ts";
import { Attr, buildAccessRequest, text, totp } from "./radius-wire.ts";

const { values: a } = parseArgs({
  options: {
    users: { type: "string", default: "20000" },
    rounds: { type: "string", default: "8" },
    inflight: { type: "string", default: "128" },
    "audit-store": { type: "boolean", default: false },
  },
});
const nUsers = Number(a.users);
const rounds = Number(a.rounds);
const inflight = Number(a.inflight);

let logBytes = 0;
setLogSink((line) => {
  logBytes += line.length;
});

const realNow = Date.now;
let fakeNow = Math.floor(realNow() / 30_000) * 30_000 + 1_000;
Date.now = () => fakeNow;

const dir = mkdtempSync(join(tmpdir(), "portcullis-hotpath-"));
try {
  const inner = await openSqliteStore({ path: join(dir, "p.db"), dataDir: dir, env: { PORTCULLIS_KEY: randomBytes(32).toString("base64") } });
  const secret = "bench-secret-0123456789";
  await inner.clients.add({ name: "bench", address: "127.0.0.1/32", secret, firstFactor: "none", otpMode: "challenge", requireMessageAuthenticator: true, allowPasswordOnly: false, directories: null });
  const seeds: Uint8Array[] = [];
  const rows = [];
  for (let i = 0; i < nUsers; i++) {
    const seed = new Uint8Array(randomBytes(20));
    seeds.push(seed);
    rows.push({
      user: { username: `user${i}`, passwordHash: null, type: "totp" as const, phone: null, email: null, disabled: false, expiresAt: null, directory: null, externalId: null, directoryPhone: null },
      tokens: [{ serial: `T${i}`, userId: null, kind: "totp" as const, secret: seed, algorithm: "SHA1" as const, digits: 6 as const, period: 30, state: "active" as const }],
    });
  }
  await inner.users.importMany(rows);
  const store = new CachedStore(inner);
  await store.preload();
  const audit = new AuditBus();
  audit.subscribe(logSink);
  const metrics = createMetrics();
  audit.subscribe(auditCounters(metrics));
  if (a["audit-store"]) audit.subscribe(new AuditStoreSink({ repo: inner.auditLog, node: "bench", exclude: ["auth.success", "auth.challenge"], maxPerSecond: 2000 }).push);
  const engine = new Engine(
    store,
    { realms: "strip", window: 1, hotpLookAhead: 10, challengeTtlMs: 60_000, challengeMaxFailures: 3, otpPrompt: "Code", retryPrompt: "Again", lockout: DEFAULT_LOCKOUT },
    audit.emit,
  );
  const server = new RADIUSServer(store, engine, {
    listen: [],
    recvBufferBytes: 0,
    dedupeTtlMs: 30_000,
    dropLogIntervalMs: 10_000,
    observe: requestSeconds(metrics),
  });
  await server.refresh();

  let replies = 0;
  const endpoint: UDPEndpoint = {
    address: "127.0.0.1",
    port: 1812,
    steering: "none",
    send: () => void replies++,
    receiveBufferSize: () => 0,
    kernelDrops: () => 0,
    close: async () => {},
  };
  const receive = (server as unknown as { receive(e: UDPEndpoint, d: Uint8Array, s: string, p: number): void }).receive.bind(server);
  const turn = () => new Promise<void>((r) => setImmediate(r));

  const perRound: number[] = [];
  for (let r = 0; r < rounds; r++) {
    fakeNow += 30_000;
    const packets: Uint8Array[] = [];
    for (let i = 0; i < nUsers; i++) {
      const code = totp(seeds[i]!, { now: fakeNow });
      packets.push(buildAccessRequest({ identifier: i & 0xff, secret, attributes: [[Attr.UserName, text(`user${i}`)], [Attr.UserPassword, text(code)]] }));
    }
    const before = replies;
    let sent = 0;
    const t0 = performance.now();
    while (replies - before < nUsers) {
      while (sent < nUsers && sent - (replies - before) < inflight) {
        receive(endpoint, packets[sent]!, "127.0.0.1", 40_000 + (sent % 20_000));
        sent++;
      }
      await turn();
    }
    const us = ((performance.now() - t0) * 1000) / nUsers;
    perRound.push(us);
    const s = server.snapshot();
    process.stderr.write(`round ${r + 1}: ${us.toFixed(2)} µs/request (accepted ${s.accepted}, rejected ${s.rejected})\n`);
  }
  const warm = perRound.slice(1);
  console.log(JSON.stringify({ users: nUsers, inflight, min_us: Math.min(...warm), median_us: warm.sort((x, y) => x - y)[warm.length >> 1], log_kb: Math.round(logBytes / 1024) }));
  await store.close();
} finally {
  Date.now = realNow;
  rmSync(dir, { recursive: true, force: true });
}
