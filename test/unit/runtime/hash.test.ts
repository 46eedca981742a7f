// runtime/hash.ts: both MD5 implementations (Bun's hasher and node:crypto) against RFC 1321 and RFC 2202.

import { describe, expect, test } from "bun:test";
import md5Vectors from "../../vectors/rfc1321-md5.json" with { type: "json" };
import hmacVectors from "../../vectors/rfc2202-hmac-md5.json" with { type: "json" };
import { bunMD5, hmacMD5Into, md5Into, nodeMD5, type MD5Functions } from "../../../src/runtime/hash.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const ascii = (s: string) => new TextEncoder().encode(s);

const implementations: [string, MD5Functions][] = [["node:crypto", nodeMD5]];
if (bunMD5) implementations.push(["Bun.CryptoHasher", bunMD5]);

test("Bun's hasher is the one in use under Bun, node:crypto elsewhere (this file also runs under Deno)", () => {
  if (typeof Bun === "undefined") {
    expect(bunMD5).toBeUndefined();
    expect(md5Into).toBe(nodeMD5.md5Into);
    expect(hmacMD5Into).toBe(nodeMD5.hmacMD5Into);
    return;
  }
  expect(bunMD5).toBeDefined();
  expect(md5Into).toBe(bunMD5!.md5Into);
  expect(hmacMD5Into).toBe(bunMD5!.hmacMD5Into);
});

describe.each(implementations)("%s", (_name, impl) => {
  test.each(md5Vectors.cases)("RFC 1321 $title, whole and split in two", ({ message, digest }) => {
    const m = ascii(message);
    expect(hex(impl.md5Into(m, new Uint8Array(0), new Uint8Array(16)))).toBe(digest);
    const cut = m.length >> 1;
    expect(hex(impl.md5Into(m.subarray(0, cut), m.subarray(cut), new Uint8Array(16)))).toBe(digest);
  });

  test.each(hmacVectors.cases)("RFC 2202 $title", ({ key, data, digest }) => {
    expect(hex(impl.hmacMD5Into(Buffer.from(key, "hex"), Buffer.from(data, "hex"), new Uint8Array(16)))).toBe(digest);
  });

  test("writes exactly 16 octets at the offset and leaves the rest", () => {
    const out = new Uint8Array(40).fill(0xee);
    impl.hmacMD5Into(ascii("Jefe"), ascii("what do ya want for nothing?"), out, 20);
    expect(hex(out.subarray(20, 36))).toBe("750c783e6ab0b503eaa86e310a5db738");
    expect([...out.subarray(0, 20), ...out.subarray(36)].every((x) => x === 0xee)).toBe(true);
  });

  test("the input may be the output: the digest is computed before it is written", () => {
    const buf = ascii("abcdefghijklmnopqrstuvwxyz");
    impl.md5Into(buf, new Uint8Array(0), buf, 4);
    expect(hex(buf.subarray(4, 20))).toBe("c3fcd3d76192e4007dfb496cca67e13b");
  });

  test("no room for 16 octets is a RangeError, and nothing is written", () => {
    const out = new Uint8Array(20).fill(1);
    expect(() => impl.md5Into(ascii("a"), new Uint8Array(0), out, 5)).toThrow(RangeError);
    expect(() => impl.hmacMD5Into(ascii("k"), ascii("a"), new Uint8Array(15))).toThrow(RangeError);
    expect(out.every((x) => x === 1)).toBe(true);
  });
});

describe.each(implementations)("%s, digests in a row", (_name, impl) => {
  test("one key object over many digests, RFC 2202 each time (Bun's keyed base is copied, never consumed)", () => {
    for (const { key, data, digest } of hmacVectors.cases) {
      const k = Buffer.from(key, "hex");
      for (let i = 0; i < 3; i++) expect(hex(impl.hmacMD5Into(k, Buffer.from(data, "hex"), new Uint8Array(16)))).toBe(digest);
    }
  });

  test("a key changed in place is used as it is now, not as it was", () => {
    const key = ascii("Jefe");
    const data = ascii("what do ya want for nothing?");
    expect(hex(impl.hmacMD5Into(key, data, new Uint8Array(16)))).toBe("750c783e6ab0b503eaa86e310a5db738");
    key.set(ascii("jefe"));
    expect(hex(impl.hmacMD5Into(key, data, new Uint8Array(16)))).toBe(hex(nodeMD5.hmacMD5Into(ascii("jefe"), data, new Uint8Array(16))));
    key.set(ascii("Jefe"));
    expect(hex(impl.hmacMD5Into(key, data, new Uint8Array(16)))).toBe("750c783e6ab0b503eaa86e310a5db738");
  });

  test("MD5 digests in a row each start afresh, also after an update that threw", () => {
    const [a, b] = [md5Vectors.cases[1]!, md5Vectors.cases[2]!];
    expect(hex(impl.md5Into(ascii(a.message), new Uint8Array(0), new Uint8Array(16)))).toBe(a.digest);
    expect(hex(impl.md5Into(ascii(b.message), new Uint8Array(0), new Uint8Array(16)))).toBe(b.digest);
    expect(() => impl.md5Into(ascii(a.message), { length: 1 } as unknown as Uint8Array, new Uint8Array(16))).toThrow();
    expect(hex(impl.md5Into(ascii(b.message), new Uint8Array(0), new Uint8Array(16)))).toBe(b.digest);
  });
});
