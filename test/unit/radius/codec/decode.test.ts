// decodePacket structural checks (RFC 2865 §3, §5; RFC 3579 §3.2): malformed shapes, unknown codes, padding.
import { describe, expect, test } from "bun:test";
import { Code, decodePacket, RADIUSError } from "../../../../src/radius/codec/index.ts";
import { errorCode, hex } from "./helpers.ts";

/** Header with the given code and Length, then `rest`. */
function packet(length: number, rest: number[] = [], code: number = Code.AccessRequest): Uint8Array {
  return Uint8Array.from([code, 9, length >> 8, length & 0xff, ...new Array(16).fill(0xab), ...rest]);
}

const ma = (len = 18) => [80, len, ...new Array(Math.max(0, len - 2)).fill(0)];

describe("decodePacket refuses malformed datagrams", () => {
  test.each([
    ["empty datagram", new Uint8Array(0)],
    ["19 octets, shorter than a header", packet(20).subarray(0, 19)],
    ["Length 19 (< 20)", packet(19)],
    ["Length 0", packet(0)],
    ["Length 4097 (> 4096)", packet(4097, new Array(4077).fill(0))],
    ["Length 65535", packet(65535)],
    ["datagram shorter than its Length", packet(30, [1, 6, 0x61, 0x62])],
    ["attribute Length 0", packet(22, [1, 0])],
    ["attribute Length 1", packet(22, [1, 1])],
    ["attribute running past Length", packet(24, [1, 6, 0x61, 0x62])],
    ["attribute running past Length into padding", packet(24, [1, 6, 0x61, 0x62, 0x63, 0x64])],
    ["lone Type octet at the end", packet(21, [1])],
    ["Message-Authenticator Length 17", packet(37, ma(17))],
    ["Message-Authenticator Length 19", packet(39, ma(19))],
    ["Message-Authenticator Length 2", packet(22, ma(2))],
    ["two Message-Authenticators (RFC 3579 §3.3: 0-1)", packet(56, [...ma(), ...ma()])],
  ])("%s", (_name, bytes) => {
    expect(() => decodePacket(bytes)).toThrow(RADIUSError);
    expect(errorCode(() => decodePacket(bytes))).toBe("malformed");
  });
});

describe("decodePacket codes", () => {
  test.each([0, 6, 10, 14, 40, 43, 255])("code %d is unknown_code", (code) => {
    expect(errorCode(() => decodePacket(packet(20, [], code)))).toBe("unknown_code");
  });

  test.each(Object.entries(Code))("%s (%d) is accepted", (_name, code) => {
    expect(decodePacket(packet(20, [], code)).code).toBe(code);
  });

  test("a structurally broken packet with an unknown code is malformed first", () => {
    expect(errorCode(() => decodePacket(packet(19, [], 99)))).toBe("malformed");
  });
});

describe("decodePacket shapes it accepts", () => {
  test("header only, no attributes", () => {
    const p = decodePacket(packet(20));
    expect({ ...p, authenticator: Array.from(p.authenticator) }).toEqual({
      code: 1,
      identifier: 9,
      authenticator: new Array(16).fill(0xab),
      attributes: [],
    });
  });

  test("octets beyond Length are padding and ignored (RFC 2865 §3)", () => {
    const p = decodePacket(packet(24, [1, 4, 0x61, 0x62, 0xff, 0xff, 0xff, 0x00, 0x01]));
    expect(p.attributes.map((a) => [a.type, Array.from(a.value)])).toEqual([[1, [0x61, 0x62]]]);
  });

  test("padding up to any datagram size beyond 4096 is ignored", () => {
    const bytes = new Uint8Array(5000);
    bytes.set(packet(22, [1, 2]));
    expect(decodePacket(bytes).attributes).toHaveLength(1);
  });

  test("Length exactly 4096 is accepted", () => {
    const rest: number[] = [];
    let room = 4096 - 20;
    while (room > 0) {
      const len = Math.min(255, room);
      rest.push(26, len, ...new Array(len - 2).fill(7));
      room -= len;
    }
    expect(decodePacket(packet(4096, rest)).attributes.length).toBeGreaterThan(15);
  });

  test("empty attribute (Length 2) and Vendor-Specific stay raw", () => {
    const p = decodePacket(packet(32, [1, 2, 26, 10, 0, 0, 0, 9, 1, 4, 0x78, 0x79]));
    expect(p.attributes.map((a) => [a.type, Array.from(a.value)])).toEqual([
      [1, []],
      [26, [0, 0, 0, 9, 1, 4, 0x78, 0x79]],
    ]);
  });

  test("values and the authenticator are copies: the packet survives the datagram buffer being reused", () => {
    const bytes = packet(24, [1, 4, 0x61, 0x62]);
    const p = decodePacket(bytes);
    const authenticator = Array.from(bytes.subarray(4, 20));
    bytes.fill(0xee);
    expect(Array.from(p.attributes[0]!.value)).toEqual([0x61, 0x62]);
    expect(Array.from(p.authenticator)).toEqual(authenticator);
    expect(p.attributes[0]!.value.buffer).not.toBe(bytes.buffer);
  });

  test("a datagram inside a larger buffer (non-zero byteOffset) parses", () => {
    const big = new Uint8Array(100);
    const inner = hex("0c 01 00 16 00000000000000000000000000000000 01 02");
    big.set(inner, 37);
    expect(decodePacket(big.subarray(37)).code).toBe(Code.StatusServer);
  });
});
