// runtime/udp.ts for RADIUS workers: sockets that share a port (SO_REUSEPORT), the Identifier
// steering program, and the exclusive probe a supervisor binds first.

import { afterEach, expect, test } from "bun:test";
import { bindNodeUDP, bindUDP, identifierProgram, probeUDP, type UDPEndpoint } from "../../../src/runtime/udp.ts";

const open: UDPEndpoint[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((e) => e.close()));
});

/** Binds a socket that records the Identifier (second octet) of every datagram it receives. */
async function member(port: number, got: number[], options: { steerGroup?: number; node?: boolean } = {}): Promise<UDPEndpoint> {
  const bind = options.node ? bindNodeUDP : bindUDP;
  const e = await bind("127.0.0.1", port, { recvBufferBytes: 65_536, reusePort: true, steerGroup: options.steerGroup, onMessage: (data) => void got.push(data[1]!) });
  open.push(e);
  return e;
}

/** Sends one 4-octet datagram per Identifier from one source socket, and waits until `expected` arrived (bounded). */
async function sendIdentifiers(port: number, identifiers: number[], received: () => number): Promise<void> {
  const client = await Bun.udpSocket({ hostname: "127.0.0.1", port: 0 });
  try {
    for (const id of identifiers) client.send(new Uint8Array([1, id, 0, 4]), port, "127.0.0.1");
    for (let i = 0; i < 100 && received() < identifiers.length; i++) await Bun.sleep(10);
  } finally {
    client.close();
  }
}

test("the steering program is `return payload[1] % group` in struct sock_filter form", () => {
  expect([...identifierProgram(3)]).toEqual([0x30, 0, 0, 0, 1, 0, 0, 0, 0x94, 0, 0, 0, 3, 0, 0, 0, 0x16, 0, 0, 0, 0, 0, 0, 0]);
});

test("two sockets on one port with Identifier steering: one source's requests split by Identifier, and a repeated Identifier reaches the same socket", async () => {
  const a: number[] = [];
  const b: number[] = [];
  const first = await member(0, a, { steerGroup: 2 });
  const second = await member(first.port, b, { steerGroup: 2 });
  expect(second.port).toBe(first.port);
  expect(first.steering).toBe("identifier");
  expect(second.steering).toBe("identifier");
  const ids = [...Array.from({ length: 16 }, (_, i) => i), 3, 3, 8, 8];
  await sendIdentifiers(first.port, ids, () => a.length + b.length);
  expect(a.length + b.length).toBe(ids.length);
  // Each socket sees one parity only, so a retransmission (same Identifier) never changes socket.
  const parities = (xs: number[]) => new Set(xs.map((x) => x % 2));
  expect(parities(a).size).toBe(1);
  expect(parities(b).size).toBe(1);
  expect([...parities(a), ...parities(b)].sort()).toEqual([0, 1]);
});

test("without reusePort a second bind on the port fails; with it, node:dgram's sockets join the group too (address hash)", async () => {
  const got: number[] = [];
  const first = await member(0, got);
  expect(first.steering).toBe("address");
  await expect(bindUDP("127.0.0.1", first.port, { recvBufferBytes: 65_536, onMessage: () => {} })).rejects.toThrow();
  const viaNode = await member(first.port, got, { node: true });
  expect(viaNode.port).toBe(first.port);
  expect(viaNode.steering).toBe("address");
});

test("probeUDP: a free port (0 resolved to a concrete one), EADDRINUSE while a reuseport group holds it", async () => {
  const port = await probeUDP("127.0.0.1", 0);
  expect(port).toBeGreaterThan(0);
  const member1 = await member(port, []);
  expect(member1.port).toBe(port);
  await expect(probeUDP("127.0.0.1", port)).rejects.toThrow(/EADDRINUSE/);
});
