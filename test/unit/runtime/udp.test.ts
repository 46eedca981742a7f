// runtime/udp.ts ReplyBatcher: when the replies of a turn leave, and that they leave together; a
// reply that cannot leave is reported, never thrown.

import { describe, expect, test } from "bun:test";
import { createSocket } from "node:dgram";
import { REPLY_BATCH_MAX, ReplyBatcher, bindNodeUDP, bindUDP, markDelivery } from "../../../src/runtime/udp.ts";

type Batch = (Uint8Array | number | string)[];

function batcher() {
  const batches: Batch[] = [];
  return { batches, b: new ReplyBatcher((batch) => void batches.push(batch)) };
}
const reply = (n: number) => new Uint8Array([n]);
const immediate = () => new Promise<void>((r) => setImmediate(r));
const microtasks = async (n = 5) => {
  for (let i = 0; i < n; i++) await Promise.resolve();
};

describe("ReplyBatcher", () => {
  test("while datagrams are being delivered, replies wait for the end of the turn and leave in one batch", async () => {
    const { batches, b } = batcher();
    markDelivery();
    b.push(reply(1), 1000, "127.0.0.1");
    await microtasks(); // e.g. a reply resolved by a promise during delivery
    b.push(reply(2), 1001, "::1");
    await microtasks();
    expect(batches).toEqual([]);
    await immediate();
    expect(batches).toEqual([[reply(1), 1000, "127.0.0.1", reply(2), 1001, "::1"]]);
  });

  test("after delivery (the turn's immediates, where the group commit releases logins) replies leave at the end of the microtask run, before the next poll", async () => {
    const { batches, b } = batcher();
    markDelivery();
    await immediate(); // delivery of this turn is over
    let seen: Batch[] | undefined;
    await new Promise<void>((done) =>
      setImmediate(() => {
        b.push(reply(1), 1000, "127.0.0.1");
        b.push(reply(2), 1000, "127.0.0.1");
        // two microtask steps later: still inside this immediate's microtask run
        Promise.resolve()
          .then(() => undefined)
          .then(() => {
            seen = batches.map((x) => [...x]);
            done();
          });
      }),
    );
    expect(seen).toEqual([[reply(1), 1000, "127.0.0.1", reply(2), 1000, "127.0.0.1"]]);
  });

  test(`${REPLY_BATCH_MAX} waiting replies leave at once, whatever the phase; the rest keeps waiting`, async () => {
    const { batches, b } = batcher();
    markDelivery();
    for (let i = 0; i < REPLY_BATCH_MAX + 1; i++) b.push(reply(i), 1000 + i, "127.0.0.1");
    expect(batches.length).toBe(1);
    expect(batches[0]!.length).toBe(REPLY_BATCH_MAX * 3);
    expect(batches[0]!.slice(0, 3)).toEqual([reply(0), 1000, "127.0.0.1"]);
    await immediate();
    expect(batches.length).toBe(2);
    expect(batches[1]).toEqual([reply(REPLY_BATCH_MAX), 1000 + REPLY_BATCH_MAX, "127.0.0.1"]);
  });

  test("flush() sends what is queued now (close), and an empty queue sends nothing", async () => {
    const { batches, b } = batcher();
    b.flush();
    expect(batches).toEqual([]);
    markDelivery();
    b.push(reply(7), 1812, "127.0.0.1");
    b.flush();
    expect(batches).toEqual([[reply(7), 1812, "127.0.0.1"]]);
    await immediate(); // the scheduled flush finds nothing left
    expect(batches.length).toBe(1);
  });
});

describe.each([
  ["bindUDP (this runtime's socket)", bindUDP],
  ["bindNodeUDP (node:dgram, as under Deno)", bindNodeUDP],
] as const)("%s", (_name, bindUDP) => {
  test("receives a datagram with its source, answers it, and reports the receive buffer the kernel granted", async () => {
    const received: string[] = [];
    await using peer = await udpPeer((text) => received.push(text));
    const endpoint = await bindUDP("127.0.0.1", 0, {
      recvBufferBytes: 1 << 18,
      onMessage: (data, address, port) => {
        expect(address).toBe("127.0.0.1");
        endpoint.send(new TextEncoder().encode("re:" + new TextDecoder().decode(data)), port, address);
      },
    });
    try {
      expect(endpoint.port).toBeGreaterThan(0);
      expect(endpoint.address).toBe("127.0.0.1");
      peer.send(new TextEncoder().encode("hello"), endpoint.port);
      for (let i = 0; i < 100 && received.length < 1; i++) await sleep(10);
      expect(received).toEqual(["re:hello"]);
      // Linux reports twice the request, capped by net.core.rmem_max; either way more than nothing
      expect(endpoint.receiveBufferSize()).toBeGreaterThan(0);
      expect(endpoint.kernelDrops()).toBe(0);
    } finally {
      await endpoint.close();
    }
  });

  test("binding a port already bound is refused", async () => {
    const first = await bindUDP("127.0.0.1", 0, { recvBufferBytes: 1 << 16, onMessage: () => {} });
    try {
      await expect(bindUDP("127.0.0.1", first.port, { recvBufferBytes: 1 << 16, onMessage: () => {} })).rejects.toThrow();
    } finally {
      await first.close();
    }
  });

  test("a reply that cannot leave is reported with its error code, the others in its batch still leave, and nothing is thrown", async () => {
    const failed: [string, number, string][] = [];
    const received: string[] = [];
    const errors: string[] = [];
    await using peer = await udpPeer((text) => received.push(text));
    const endpoint = await bindUDP("127.0.0.1", 0, {
      recvBufferBytes: 1 << 16,
      onMessage: () => {},
      onError: (err) => void errors.push(err),
      onSendFailed: (address, port, error) => void failed.push([address, port, error]),
    });
    try {
      // Before the fix the batch's second try threw from a microtask: an uncaught exception that
      // ends the process (bun test reports it as an unhandled error).
      endpoint.send(new TextEncoder().encode("one"), peer.port, "127.0.0.1");
      endpoint.send(new TextEncoder().encode("lost"), 1812, "::1"); // an IPv6 destination from an IPv4 socket
      endpoint.send(new TextEncoder().encode("two"), peer.port, "127.0.0.1");
      for (let i = 0; i < 100 && received.length < 2; i++) await sleep(10);
      expect(received.sort()).toEqual(["one", "two"]);
      // Deno's node:dgram reports libuv's UV_UNKNOWN for this send error, not the system's code
      expect(failed).toEqual([["::1", 1812, "Deno" in globalThis ? "UNKNOWN" : "EAFNOSUPPORT"]]);
      expect(errors).toEqual([]);
    } finally {
      await endpoint.close();
    }
  });
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A plain UDP socket on 127.0.0.1 (node:dgram, so that this file also runs under Deno) that hands every datagram to `onText`. */
async function udpPeer(onText: (text: string) => void) {
  const socket = createSocket("udp4");
  socket.on("message", (data) => onText(new TextDecoder().decode(data)));
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return {
    port: socket.address().port,
    send: (data: Uint8Array, port: number) => socket.send(data, port, "127.0.0.1"),
    [Symbol.asyncDispose]: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
