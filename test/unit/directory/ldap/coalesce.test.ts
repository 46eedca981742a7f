// Write coalescing on pipelined LDAP connections: the writes of one event-loop turn leave in one socket write, in order.
import { afterAll, beforeAll, expect, test } from "bun:test";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { coalesce } from "../../../../src/directory/ldap/connection.ts";

let server: net.Server;
let port = 0;
const received: Buffer[] = [];
let peerSocket: net.Socket | undefined;

beforeAll(async () => {
  server = net.createServer((s) => {
    peerSocket = s;
    s.on("data", (d: Buffer) => received.push(d));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as net.AddressInfo).port;
});
afterAll(() => {
  peerSocket?.destroy();
  server.close();
});

async function connected(): Promise<{ s: net.Socket; writes: Buffer[] }> {
  const s = net.connect(port, "127.0.0.1");
  await new Promise<void>((r, j) => s.once("connect", r).once("error", j));
  // Count the writes that reach the real socket.
  const writes: Buffer[] = [];
  const real = s.write.bind(s) as (b: Uint8Array, cb?: (e?: Error | null) => void) => boolean;
  s.write = ((b: Uint8Array, cb?: (e?: Error | null) => void) => {
    writes.push(Buffer.from(b));
    return real(b, cb);
  }) as typeof s.write;
  coalesce(s);
  return { s, writes };
}

test("three writes in one turn reach the socket as one write, in order, and every callback runs", async () => {
  received.length = 0;
  const { s, writes } = await connected();
  const done: number[] = [];
  s.write(Buffer.from("one,"), () => done.push(1));
  s.write(Buffer.from("two,"), () => done.push(2));
  s.write(Buffer.from("three"), () => done.push(3));
  expect(writes).toHaveLength(0); // nothing leaves before the turn ends
  for (let i = 0; i < 100 && done.length < 3; i++) await sleep(5);
  expect(done).toEqual([1, 2, 3]);
  expect(writes.map((w) => w.toString())).toEqual(["one,two,three"]);
  for (let i = 0; i < 100 && Buffer.concat(received).length < 13; i++) await sleep(5);
  expect(Buffer.concat(received).toString()).toBe("one,two,three");
  // A later turn is a separate write.
  s.write(Buffer.from("four"));
  for (let i = 0; i < 100 && writes.length < 2; i++) await sleep(5);
  expect(writes.map((w) => w.toString())).toEqual(["one,two,three", "four"]);
  s.destroy();
});

test("a socket destroyed before the flush sends nothing and fails the callbacks", async () => {
  const { s, writes } = await connected();
  const errors: Array<Error | null | undefined> = [];
  s.write(Buffer.from("lost"), (e) => errors.push(e));
  s.destroy();
  for (let i = 0; i < 100 && errors.length < 1; i++) await sleep(5);
  expect(writes).toHaveLength(0);
  expect(errors[0]).toBeInstanceOf(Error);
});
