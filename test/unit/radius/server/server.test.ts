// The server over real UDP on 127.0.0.1: Status-Server gated on a writable store, overload drops,
// retransmissions answered from the cache without a second evaluation.
import { afterEach, beforeEach, expect, test } from "bun:test";
import { setTimeout as sleep } from "node:timers/promises";
import dgram from "node:dgram";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Attempt, Decision, Engine } from "../../../../src/auth/engine.ts";
import { Attr, Code, decodePacket, encodeRequest, textAttribute, verifyResponse } from "../../../../src/radius/codec/index.ts";
import { RADIUSServer } from "../../../../src/radius/server/server.ts";
import { openStore } from "../../../../src/store/open.ts";
import type { Store } from "../../../../src/store/types.ts";

const SECRET = "unit-test-shared-secret";
const secret = new TextEncoder().encode(SECRET);
let dir: string;
let store: Store;
let writable = true;
let calls = 0;
let next: Decision = { kind: "accept", user: "alice" };
/** How long the fake engine takes to decide (ms): a held phone approval takes up to 120 s. */
let evaluationMs = 20;
/** When set, the next evaluation waits for it instead of `evaluationMs`: a hold the test ends itself. */
let gate: Promise<void> | null = null;
let server: RADIUSServer;
let port: number;
let client: dgram.Socket;

const fakeEngine = {
  async authenticate(_a: Attempt): Promise<Decision> {
    calls++;
    const held = gate;
    gate = null;
    if (held) await held;
    else await new Promise((r) => setTimeout(r, evaluationMs)); // a slow evaluation, so duplicates overlap it
    return next;
  },
} as unknown as Engine;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "portcullis-server-"));
  const real = await openStore({ driver: "sqlite", path: join(dir, "p.db"), dataDir: dir, env: { PORTCULLIS_KEY: Buffer.alloc(32, 1).toString("base64") } });
  await real.clients.add({ name: "nas", address: "127.0.0.1/32", secret: SECRET, firstFactor: "password", otpMode: "challenge", requireMessageAuthenticator: true, allowPasswordOnly: false, directories: null });
  real.writable = async () => writable; // the Status-Server gate reads only this
  store = real;
  writable = true;
  calls = 0;
  evaluationMs = 20;
  gate = null;
  next = { kind: "accept", user: "alice" };
  server = new RADIUSServer(store, fakeEngine, { listen: [{ address: "127.0.0.1", port: 0 }], recvBufferBytes: 1 << 20, dedupeTtlMs: 30_000, dropLogIntervalMs: 60_000 });
  port = (await server.start())[0]!.port;
  client = dgram.createSocket("udp4");
  await new Promise<void>((r) => client.bind(0, "127.0.0.1", () => r()));
});

afterEach(async () => {
  client.close();
  await server.stop();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Sends `packets` and collects replies until `count` arrived or `ms` passed. */
async function exchange(packets: Uint8Array[], count: number, ms = 1000): Promise<Buffer[]> {
  const replies: Buffer[] = [];
  return new Promise((resolve) => {
    const done = () => {
      client.off("message", onMessage);
      clearTimeout(timer);
      resolve(replies);
    };
    const onMessage = (m: Buffer) => {
      replies.push(m);
      if (replies.length >= count) done();
    };
    const timer = setTimeout(done, ms);
    client.on("message", onMessage);
    for (const p of packets) client.send(p, port, "127.0.0.1");
  });
}

const statusServer = () => encodeRequest({ code: Code.StatusServer, identifier: 1, attributes: [] }, secret);
const accessRequest = (id = 2) =>
  encodeRequest({ code: Code.AccessRequest, identifier: id, attributes: [textAttribute(Attr.UserName, "alice")] }, secret, { userPassword: new TextEncoder().encode("pw") });

test("Status-Server is answered while the store is writable, and dropped when it is not", async () => {
  const ok = await exchange([statusServer()], 1);
  expect(ok).toHaveLength(1);
  expect(decodePacket(ok[0]!).code).toBe(Code.AccessAccept);

  writable = false;
  await server.refresh();
  expect(await exchange([statusServer()], 1, 300)).toHaveLength(0);
  expect(server.stats.dropped.store_unwritable).toBe(1);

  writable = true;
  await server.refresh();
  expect(await exchange([statusServer()], 1)).toHaveLength(1);
});

test("a retransmission gets the same bytes and is evaluated once; one in progress is dropped", async () => {
  const req = accessRequest();
  const replies = await exchange([req, req], 1, 500); // the second copy arrives mid-evaluation
  expect(replies).toHaveLength(1);
  const again = await exchange([req], 1);
  expect(again[0]!.equals(replies[0]!)).toBe(true);
  expect(verifyResponse(again[0]!, req.subarray(4, 20), secret)).toBe(true);
  expect(calls).toBe(1);
  expect(server.stats.duplicates).toBe(1);
  expect(server.stats.dropped.duplicate_in_progress).toBe(1);
});

test("a request held far beyond the cache's ttl stays in progress for its whole hold: retransmissions are dropped, it is evaluated once, and its reply is cached after it", async () => {
  // The same server with a 200 ms ttl, and an evaluation held until the test ends it, after more
  // than five ttls: as a 120 s hold is four of the default 30 s.
  await server.stop();
  server = new RADIUSServer(store, fakeEngine, { listen: [{ address: "127.0.0.1", port: 0 }], recvBufferBytes: 1 << 20, dedupeTtlMs: 200, dropLogIntervalMs: 60_000 });
  port = (await server.start())[0]!.port;
  let release!: () => void;
  gate = new Promise<void>((r) => (release = r));
  const req = accessRequest(11);
  const all = exchange([req], 4, 20_000); // the held request's reply and the three others'
  // The NAS retransmits at 300, 700 and 1000 ms, each time after the ttl has passed; other requests
  // turn the cache's generations over meanwhile.
  for (const [pause, other] of [[300, 101], [400, 102], [300, 103]] as const) {
    await sleep(pause);
    client.send(req, port, "127.0.0.1");
    client.send(accessRequest(other), port, "127.0.0.1");
  }
  for (let i = 0; i < 100 && (server.stats.dropped.duplicate_in_progress ?? 0) < 3; i++) await sleep(20);
  expect(server.stats.dropped.duplicate_in_progress).toBe(3);
  release();
  const replies = await all;
  expect(replies.filter((r) => r[1] === 11)).toHaveLength(1);
  expect(replies).toHaveLength(4);
  // after the reply, a retransmission within the ttl gets the same bytes
  const again = await exchange([req], 1);
  expect(again[0]!.equals(replies.find((r) => r[1] === 11)!)).toBe(true);
  expect(calls).toBe(4); // the held request once, and the three others
});

test("an overloaded engine leaves the request unanswered, and a retransmission is evaluated afresh", async () => {
  next = { kind: "drop", reason: "overloaded" };
  const req = accessRequest(9);
  expect(await exchange([req], 1, 300)).toHaveLength(0);
  expect(server.stats.dropped.overloaded).toBe(1);
  next = { kind: "accept", user: "alice" };
  expect(await exchange([req], 1)).toHaveLength(1);
  expect(calls).toBe(2);
});

test("a source outside the client table gets nothing", async () => {
  await store.clients.remove("nas");
  await server.refresh();
  expect(await exchange([accessRequest(3)], 1, 300)).toHaveLength(0);
  expect(server.stats.dropped.unknown_client).toBe(1);
});
