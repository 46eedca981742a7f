// The appliance's connection to relays, against small relays of the test's own on loopback (TLS with
// a generated certificate): a relay that stops answering heartbeats is left, a relay that never
// completes a handshake is skipped for the next URL, and a refused appliance does not retry in a loop.

import { afterEach, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { AuditEvent } from "../../../src/audit/events.ts";
import { generateSelfSigned } from "../../../src/http/tls.ts";
import { serveWebSocketHttp, type WsListener } from "../../../src/runtime/websocket.ts";
import { SwitchClient } from "../../../src/switch/client.ts";
import { keyFromSeed, SWITCH_PATH } from "../../../src/switch/protocol.ts";

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const tls = await generateSelfSigned(["127.0.0.1"], { now: Date.now(), random: (n) => new Uint8Array(randomBytes(n)) });

/** A relay that welcomes anyone and answers pings while `mute` is false. */
async function fakeRelay(state: { mute: boolean; connections: number }): Promise<WsListener> {
  const l = await serveWebSocketHttp({
    address: "127.0.0.1",
    port: 0,
    tls,
    upgradePath: SWITCH_PATH,
    maxPayloadBytes: 65536,
    fetch: () => new Response("no"),
    open: (peer) => {
      state.connections++;
      let out = 0;
      const send = (f: Record<string, unknown>) => peer.send(JSON.stringify({ ...f, id: ++out }));
      send({ t: "challenge", nonce: "n", public_url: "https://relay.example" });
      return {
        message: (data) => {
          const f = JSON.parse(String(data)) as { id: number; t: string };
          if (f.t === "hello") send({ t: "welcome" });
          else if (f.t === "ping" && !state.mute) send({ t: "pong", re: f.id });
        },
        close: () => {},
      };
    },
  });
  cleanup.push(() => l.stop());
  return l;
}

function client(urls: string[], events: AuditEvent[]) {
  const c = new SwitchClient({ urls, ca: tls.cert, name: "a1", privateKey: keyFromSeed(new Uint8Array(32)).privateKey, audit: (e) => events.push(e), log: () => {}, deadlineMs: 300, heartbeatMs: 200, random: () => 0 });
  cleanup.push(() => c.stop());
  return c;
}

async function until(what: string, probe: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(20);
  }
}

test("a relay that stops answering heartbeats is left and connected to again", async () => {
  const state = { mute: false, connections: 0 };
  const relay = await fakeRelay(state);
  const events: AuditEvent[] = [];
  const c = client([`https://127.0.0.1:${relay.port}`], events);
  c.start();
  await until("connected", () => c.state === "connected");
  await sleep(500);
  expect(c.connects).toBe(1);
  state.mute = true;
  await until("the heartbeat to be missed", () => events.some((e) => e.type === "switch.disconnected" && e.code === 4408));
  state.mute = false;
  await until("connected again", () => c.connects === 2 && c.state === "connected");
  expect(state.connections).toBeGreaterThanOrEqual(2);
});

test("a relay that never completes the handshake is given up for the next URL", async () => {
  const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  cleanup.push(() => silent.stop(true));
  const relay = await fakeRelay({ mute: false, connections: 0 });
  const events: AuditEvent[] = [];
  const good = `https://127.0.0.1:${relay.port}`;
  const c = client([`https://127.0.0.1:${silent.port}`, good], events);
  c.start();
  await until("connected to the second relay", () => c.url === good);
  expect(c.urlIndex).toBe(1);
});

test("a relay whose certificate does not chain to ca_file is never spoken to", async () => {
  const state = { mute: false, connections: 0 };
  const relay = await fakeRelay(state);
  const other = await generateSelfSigned(["127.0.0.1"], { now: Date.now(), random: (n) => new Uint8Array(randomBytes(n)) });
  const events: AuditEvent[] = [];
  const c = new SwitchClient({ urls: [`https://127.0.0.1:${relay.port}`], ca: other.cert, name: "a1", privateKey: keyFromSeed(new Uint8Array(32)).privateKey, audit: (e) => events.push(e), log: () => {}, deadlineMs: 300, random: () => 0 });
  cleanup.push(() => c.stop());
  c.start();
  await until("a failed attempt", () => c.lastCloseCode !== 0);
  await sleep(300);
  expect(c.state).toBe("connecting");
  expect(state.connections).toBe(0);
  expect(events.filter((e) => e.type === "switch.connected")).toEqual([]);
});

