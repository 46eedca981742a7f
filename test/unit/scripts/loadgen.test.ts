// The load generator's spreading over several servers (round-robin per request, shifted by an
// offset) and its per-request record, against loopback UDP responders that speak RADIUS replies.

import { afterEach, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { OUTCOME, runLoad, type LoadRecord, type LoadUser } from "../../../scripts/loadgen.ts";
import { Attr, Code, encodeRaw, parseAttributes } from "../../../scripts/bench/radius-wire.ts";

const secret = "loadgen-test-secret";
const te = new TextEncoder();
const td = new TextDecoder();

/**
 * A responder: answers each Access-Request with `code` (no Message-Authenticator), or never when
 * null; with `dropFirst`, only a packet it has seen before (octet for octet, from the same port).
 * Records the User-Names of first copies.
 */
async function responder(code: number | null, { dropFirst = false } = {}) {
  const names: string[] = [];
  const seen = new Set<string>();
  const sock = await Bun.udpSocket({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(s, buf, port, address) {
        const k = `${port} ${Buffer.from(buf).toString("hex")}`;
        const repeated = seen.has(k);
        seen.add(k);
        const attrs = parseAttributes(buf);
        const name = attrs?.find(([t]) => t === Attr.UserName)?.[1];
        if (name && !repeated) names.push(td.decode(name));
        if (code === null || (dropFirst && !repeated)) return;
        const reply = encodeRaw(code, buf[1]!, buf.subarray(4, 20), []);
        const auth = createHash("md5").update(reply.subarray(0, 4)).update(buf.subarray(4, 20)).update(reply.subarray(20)).update(te.encode(secret)).digest();
        reply.set(auth, 4);
        s.send(reply, port, address);
      },
    },
  });
  return { port: sock.port, names, close: () => sock.close() };
}

const users: LoadUser[] = Array.from({ length: 9 }, (_, i) => ({
  username: `u${i}`,
  key: new Uint8Array(20).fill(i + 1),
  params: { algorithm: "SHA1", digits: 6, period: 30 },
}));

const open: Array<{ close(): void }> = [];
afterEach(() => {
  for (const s of open.splice(0)) s.close();
});

describe("runLoad over several ports", () => {
  test("request i goes to ports[(i + offset) % n]; each outcome and port is recorded", async () => {
    const [a, b, silent] = [await responder(Code.AccessAccept), await responder(Code.AccessReject), await responder(null)];
    open.push(a, b, silent);
    const record: LoadRecord = {};
    const res = await runLoad(users, {
      host: "127.0.0.1",
      port: a.port,
      ports: [a.port, b.port, silent.port],
      portOffset: 1,
      secret,
      concurrency: 4,
      timeoutMs: 300,
      maxSeconds: 10,
      waitForStep: false,
      now: () => 1_700_000_000_000,
      record,
    });
    // offset 1: u0 -> b, u1 -> silent, u2 -> a, u3 -> b, ...
    expect(b.names.sort()).toEqual(["u0", "u3", "u6"]);
    expect(silent.names.sort()).toEqual(["u1", "u4", "u7"]);
    expect(a.names.sort()).toEqual(["u2", "u5", "u8"]);
    expect(Array.from(record.port!)).toEqual([b.port, silent.port, a.port, b.port, silent.port, a.port, b.port, silent.port, a.port]);
    const R = OUTCOME.reject, T = OUTCOME.timeout, A = OUTCOME.accept;
    expect(Array.from(record.outcome!)).toEqual([R, T, A, R, T, A, R, T, A]);
    expect(record.codeAt).toBe(1_700_000_000_000);
    expect({ accepts: res.accepts, rejects: res.rejects, timeouts: res.timeouts }).toEqual({ accepts: 3, rejects: 3, timeouts: 3 });
  });

  test("retries: an unanswered request is sent again, the same packet from the same port, before it counts as a timeout", async () => {
    const a = await responder(Code.AccessAccept, { dropFirst: true });
    const b = await responder(Code.AccessAccept, { dropFirst: true });
    open.push(a, b);
    const record: LoadRecord = {};
    const res = await runLoad(users, { host: "127.0.0.1", port: a.port, ports: [a.port, b.port], secret, concurrency: 4, timeoutMs: 100, maxSeconds: 10, waitForStep: false, retries: 1, record });
    expect({ accepts: res.accepts, timeouts: res.timeouts, retransmissions: res.retransmissions }).toEqual({ accepts: 9, timeouts: 0, retransmissions: 9 });
    expect(Array.from(record.outcome!).every((x) => x === OUTCOME.accept)).toBe(true);
    const none = await runLoad(users, { host: "127.0.0.1", port: a.port, secret, concurrency: 4, timeoutMs: 100, maxSeconds: 10, waitForStep: false });
    expect({ accepts: none.accepts, timeouts: none.timeouts, retransmissions: none.retransmissions }).toEqual({ accepts: 0, timeouts: 9, retransmissions: 0 });
  });

  test("one port: every request goes there (a connected socket)", async () => {
    const a = await responder(Code.AccessAccept);
    open.push(a);
    const record: LoadRecord = {};
    const res = await runLoad(users, { host: "127.0.0.1", port: a.port, secret, concurrency: 4, timeoutMs: 2000, maxSeconds: 10, waitForStep: false, record });
    expect(a.names.length).toBe(9);
    expect(new Set(record.port!)).toEqual(new Set([a.port]));
    expect(res.accepts).toBe(9);
  });
});
