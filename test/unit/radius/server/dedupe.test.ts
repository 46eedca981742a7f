// Retransmission cache: RFC 5080 §2.2.2 key, in-progress drops, cached replies, expiry.
import { expect, test } from "bun:test";
import { DedupeCache } from "../../../../src/radius/server/dedupe.ts";

const auth = (b: number) => new Uint8Array(16).fill(b);

test("the key is source IP, source port, Identifier and Request Authenticator", () => {
  const base = DedupeCache.key("192.0.2.1", 1000, 7, auth(1));
  expect(DedupeCache.key("192.0.2.1", 1000, 7, auth(1))).toBe(base);
  for (const other of [
    DedupeCache.key("192.0.2.2", 1000, 7, auth(1)),
    DedupeCache.key("192.0.2.1", 1001, 7, auth(1)),
    DedupeCache.key("192.0.2.1", 1000, 8, auth(1)),
    DedupeCache.key("192.0.2.1", 1000, 7, auth(2)),
  ]) {
    expect(other).not.toBe(base);
  }
});

test("distinct (source, port, Identifier, authenticator) tuples never share a key", () => {
  // Neighbouring values in every field, octets that differ only in one position of a 16-bit unit,
  // and sources that are prefixes of each other: the fixed-length suffix keeps them apart.
  const sources = ["10.0.0.1", "10.0.0.11", "10.0.0.1\u0001", "::1", "::ffff:10.0.0.1", ""];
  const ports = [0, 1, 256, 1812, 65535];
  const ids = [0, 1, 255];
  const auths = [auth(0), auth(1), Uint8Array.from({ length: 16 }, (_, i) => (i === 0 ? 1 : 0)), Uint8Array.from({ length: 16 }, (_, i) => (i === 1 ? 1 : 0)), Uint8Array.from({ length: 16 }, (_, i) => (i === 15 ? 0xff : 0))];
  const seen = new Map<string, string>();
  for (const s of sources)
    for (const p of ports)
      for (const id of ids)
        for (const [ai, a] of auths.entries()) {
          const k = DedupeCache.key(s, p, id, a);
          const tuple = `${s}/${p}/${id}/${ai}`;
          expect(seen.get(k) ?? tuple).toBe(tuple);
          seen.set(k, tuple);
        }
  expect(seen.size).toBe(sources.length * ports.length * ids.length * auths.length);
});

test("new → in progress → answered with the same bytes → expired", () => {
  const cache = new DedupeCache(30_000);
  const key = DedupeCache.key("192.0.2.1", 1000, 7, auth(1));
  expect(cache.begin(key, 0)).toEqual({ kind: "new" });
  expect(cache.begin(key, 10)).toEqual({ kind: "in_progress" });
  const reply = new Uint8Array([2, 7, 0, 20]);
  cache.finish(key, reply, 20);
  expect(cache.begin(key, 30)).toEqual({ kind: "answered", reply });
  expect(cache.begin(key, 20 + 30_001)).toEqual({ kind: "new" });
});

test("an abandoned request is evaluated afresh", () => {
  const cache = new DedupeCache(30_000);
  const key = DedupeCache.key("192.0.2.1", 1000, 7, auth(1));
  cache.begin(key, 0);
  cache.abandon(key);
  expect(cache.begin(key, 1)).toEqual({ kind: "new" });
});

test("a request evaluated but left unanswered is dropped again for the same reason, until it expires", () => {
  const cache = new DedupeCache<"reply_too_large">(30_000);
  const key = DedupeCache.key("192.0.2.1", 1000, 7, auth(1));
  expect(cache.begin(key, 0)).toEqual({ kind: "new" });
  cache.drop(key, "reply_too_large", 20);
  expect(cache.begin(key, 30)).toEqual({ kind: "dropped", reason: "reply_too_large" });
  expect(cache.begin(key, 20 + 29_999)).toEqual({ kind: "dropped", reason: "reply_too_large" });
  expect(cache.begin(key, 20 + 30_001)).toEqual({ kind: "new" });

  // a request already answered keeps its reply: the retransmission gets the bytes the NAS may have missed
  const answered = DedupeCache.key("192.0.2.1", 1000, 8, auth(1));
  const reply = new Uint8Array([2, 8, 0, 20]);
  cache.begin(answered, 0);
  cache.finish(answered, reply, 10);
  cache.drop(answered, "reply_too_large", 20);
  expect(cache.begin(answered, 30)).toEqual({ kind: "answered", reply });
});

test("a held request retransmitted after 35 s (beyond the 30 s ttl, across generation changes) is still absorbed; its reply is then kept the ttl", () => {
  const cache = new DedupeCache(30_000);
  const held = DedupeCache.key("192.0.2.1", 1000, 7, auth(1));
  expect(cache.begin(held, 0)).toEqual({ kind: "new" });
  // other traffic turns the generations over every 30 s
  for (let t = 1000; t <= 119_000; t += 1000) cache.begin(DedupeCache.key("192.0.2.2", t, 1, auth(2)), t);
  for (const t of [35_000, 65_000, 95_000, 119_999]) expect(cache.begin(held, t)).toEqual({ kind: "in_progress" });
  const reply = new Uint8Array([2, 7, 0, 20]);
  cache.finish(held, reply, 120_000);
  for (let t = 121_000; t <= 149_000; t += 1000) cache.begin(DedupeCache.key("192.0.2.3", t, 1, auth(3)), t);
  expect(cache.begin(held, 149_999)).toEqual({ kind: "answered", reply });
  expect(cache.begin(held, 150_001)).toEqual({ kind: "new" });
});

test("a wedged evaluation stops counting as in progress after ttl + the longest hold", () => {
  const cache = new DedupeCache(30_000);
  const key = DedupeCache.key("192.0.2.1", 1000, 7, auth(1));
  cache.begin(key, 0);
  expect(cache.begin(key, 149_999)).toEqual({ kind: "in_progress" });
  expect(cache.begin(key, 150_000)).toEqual({ kind: "new" });
});

test("the cache is bounded: the oldest entries go first", () => {
  const cache = new DedupeCache(30_000, 100);
  for (let i = 0; i < 1000; i++) cache.begin(DedupeCache.key("192.0.2.1", i, 1, auth(1)), i);
  expect(cache.size).toBeLessThanOrEqual(100);
  expect(cache.begin(DedupeCache.key("192.0.2.1", 999, 1, auth(1)), 1000)).toEqual({ kind: "in_progress" });
});

test("a reply is kept for the whole ttl across generation changes, and not after", () => {
  const cache = new DedupeCache(1000);
  const a = DedupeCache.key("192.0.2.1", 1000, 7, auth(1));
  cache.begin(DedupeCache.key("192.0.2.1", 999, 7, auth(1)), 0); // the first generation starts at 0
  expect(cache.begin(a, 500)).toEqual({ kind: "new" });
  cache.begin(DedupeCache.key("192.0.2.1", 1001, 7, auth(1)), 1000); // a new generation: `a` is now in the older one
  expect(cache.begin(a, 1050)).toEqual({ kind: "in_progress" });
  const reply = new Uint8Array([2, 7, 0, 20]);
  cache.finish(a, reply, 1100);
  cache.begin(DedupeCache.key("192.0.2.1", 1002, 7, auth(1)), 2000); // another generation
  expect(cache.begin(a, 2099)).toEqual({ kind: "answered", reply });
  expect(cache.begin(a, 2100)).toEqual({ kind: "new" });
});

test("authenticators differing in any octet give different keys", () => {
  const keys = new Set<string>();
  for (let i = 0; i < 16; i++) for (const v of [0, 1, 127, 128, 255]) {
    const a = new Uint8Array(16).fill(7);
    a[i] = v;
    keys.add(DedupeCache.key("192.0.2.1", 1000, 7, a));
  }
  expect(keys.size).toBe(16 * 5);
});
