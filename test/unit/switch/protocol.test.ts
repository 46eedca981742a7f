// The switch protocol: the appliance's signature, enrolment tokens, frame parsing (size, replay,
// shape), reconnect back-off, and the link tokens the relay routes by.

import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { backoffMs, FrameCounter, hashSecret, keyFromSeed, linkTokensIn, MAX_FRAME_BYTES, parseFrame, parseToken, sameHash, signAuth, verifyAuth } from "../../../src/switch/protocol.ts";

const seed = () => new Uint8Array(randomBytes(32));

describe("authentication", () => {
  test("a signature verifies for its nonce, relay and name only", () => {
    const k = keyFromSeed(seed());
    const sig = signAuth(k.privateKey, "nonce-1", "https://relay.example", "branch-1");
    expect(verifyAuth(k.publicKey, sig, "nonce-1", "https://relay.example", "branch-1")).toBe(true);
    expect(verifyAuth(k.publicKey, sig, "nonce-2", "https://relay.example", "branch-1")).toBe(false);
    expect(verifyAuth(k.publicKey, sig, "nonce-1", "https://other.example", "branch-1")).toBe(false);
    expect(verifyAuth(k.publicKey, sig, "nonce-1", "https://relay.example", "branch-2")).toBe(false);
    expect(verifyAuth(keyFromSeed(seed()).publicKey, sig, "nonce-1", "https://relay.example", "branch-1")).toBe(false);
  });

  test("malformed keys and signatures are false, never a throw", () => {
    const k = keyFromSeed(seed());
    expect(verifyAuth("", "", "n", "u", "a")).toBe(false);
    expect(verifyAuth(k.publicKey, "!!", "n", "u", "a")).toBe(false);
    expect(verifyAuth("AAAA", signAuth(k.privateKey, "n", "u", "a"), "n", "u", "a")).toBe(false);
  });

  test("the same seed gives the same key pair", () => {
    const s = seed();
    expect(keyFromSeed(s).publicKey).toBe(keyFromSeed(s).publicKey);
    expect(() => keyFromSeed(new Uint8Array(31))).toThrow(TypeError);
  });

  test("tokens are NAME.SECRET; only the secret's hash is compared", () => {
    const secret = randomBytes(32).toString("base64url");
    expect(parseToken(`branch-1.${secret}`)).toEqual({ name: "branch-1", secret });
    expect(parseToken(`branch 1.${secret}`)).toBeUndefined();
    expect(parseToken(`branch-1.${secret.slice(1)}`)).toBeUndefined();
    expect(parseToken("branch-1")).toBeUndefined();
    expect(sameHash(hashSecret(secret), hashSecret(secret))).toBe(true);
    expect(sameHash(hashSecret(secret), hashSecret(secret + "x"))).toBe(false);
  });
});

describe("frames", () => {
  test("ids must grow: a repeated or older id is refused", () => {
    const out = new FrameCounter();
    const a = out.frame("ping");
    const b = out.frame("ping");
    expect(parseFrame(a.text, 0)).toMatchObject({ id: 1, t: "ping" });
    expect(parseFrame(b.text, 1)).toMatchObject({ id: 2 });
    expect(parseFrame(a.text, 1)).toBeUndefined();
    expect(parseFrame(b.text, 2)).toBeUndefined();
  });

  test("a sender cannot choose its id or type through the fields", () => {
    const f = new FrameCounter().frame("deliver", { id: 99, t: "welcome" });
    expect(JSON.parse(f.text)).toMatchObject({ id: 1, t: "deliver" });
  });

  test("too large, not JSON, not an object, no integer id or no type: refused", () => {
    expect(parseFrame(JSON.stringify({ id: 1, t: "x", pad: "y".repeat(MAX_FRAME_BYTES) }), 0)).toBeUndefined();
    expect(parseFrame("{", 0)).toBeUndefined();
    expect(parseFrame("[1]", 0)).toBeUndefined();
    expect(parseFrame('{"id":1.5,"t":"x"}', 0)).toBeUndefined();
    expect(parseFrame('{"id":"1","t":"x"}', 0)).toBeUndefined();
    expect(parseFrame('{"id":1}', 0)).toBeUndefined();
    expect(parseFrame(new TextEncoder().encode('{"id":1,"t":"x"}'), 0)).toMatchObject({ id: 1 });
  });
});

test("back-off doubles from 500 ms, with jitter in the upper half, and never exceeds 30 s", () => {
  expect(backoffMs(0, () => 0)).toBe(250);
  expect(backoffMs(0, () => 1)).toBe(500);
  expect(backoffMs(3, () => 0)).toBe(2000);
  for (const n of [6, 7, 10, 50, 1000]) {
    expect(backoffMs(n, () => 1)).toBe(30_000);
    expect(backoffMs(n, () => 0)).toBe(15_000);
  }
});

test("link tokens are found only under the relay's public_url", () => {
  const t1 = "a".repeat(43);
  const t2 = "B".repeat(43);
  const text = `Approve: https://relay.example/ml/${t1} or https://relay.example/ml/${t2}; not https://evil.example/ml/${"c".repeat(43)}`;
  expect(linkTokensIn(text, "https://relay.example/")).toEqual([t1, t2]);
  expect(linkTokensIn("no link", "https://relay.example")).toEqual([]);
});
