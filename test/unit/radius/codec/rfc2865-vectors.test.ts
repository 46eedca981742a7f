// RFC 2865 §7.1-§7.3 examples: parse, check each attribute, reveal User-Password, re-encode replies byte for byte.
import { describe, expect, test } from "bun:test";
import vectors from "../../../vectors/rfc2865-examples.json" with { type: "json" };
import {
  decodePacket,
  encodeResponse,
  RADIUSError,
  revealUserPassword,
  verifyResponse,
  getAttribute,
  Attr,
} from "../../../../src/radius/codec/index.ts";
import { errorCode, hex, toHex, utf8, vectorValue, type VectorAttribute } from "./helpers.ts";

const secret = utf8.encode(vectors.secret);

interface Side {
  hex: string;
  code: number;
  identifier: number;
  attributes?: VectorAttribute[];
  userPassword?: string;
  malformed?: boolean;
}
const exchanges = vectors.exchanges as { title: string; request: Side; reply: Side }[];

describe("RFC 2865 §7 examples", () => {
  test.each(exchanges.filter((e) => !e.request.malformed).map((e) => [e.title, e] as const))(
    "%s: request parses attribute by attribute",
    (_title, e) => {
      const p = decodePacket(hex(e.request.hex));
      expect({
        code: p.code,
        identifier: p.identifier,
        attributes: p.attributes.map((a) => ({ type: a.type, value: toHex(a.value) })),
      }).toEqual({
        code: e.request.code,
        identifier: e.request.identifier,
        attributes: e.request.attributes!.map((a) => ({ type: a.type, value: toHex(vectorValue(a)) })),
      });
    },
  );

  test.each(exchanges.filter((e) => e.request.userPassword).map((e) => [e.title, e] as const))(
    "%s: User-Password reveals to the RFC's password",
    (_title, e) => {
      const p = decodePacket(hex(e.request.hex));
      const plain = revealUserPassword(getAttribute(p, Attr.UserPassword)!, secret, p.authenticator);
      expect(new TextDecoder().decode(plain)).toBe(e.request.userPassword!);
    },
  );

  test.each(exchanges.map((e) => [e.title, e] as const))(
    "%s: reply re-encodes byte for byte (messageAuthenticator: false)",
    (_title, e) => {
      const requestAuthenticator = hex(e.request.hex).subarray(4, 20);
      const bytes = encodeResponse(
        {
          code: e.reply.code,
          identifier: e.reply.identifier,
          attributes: e.reply.attributes!.map((a) => ({ type: a.type, value: vectorValue(a) })),
        },
        requestAuthenticator,
        secret,
        { messageAuthenticator: false },
      );
      expect(toHex(bytes)).toBe(toHex(hex(e.reply.hex)));
      expect(verifyResponse(hex(e.reply.hex), requestAuthenticator, secret)).toBe(true);
      expect(verifyResponse(hex(e.reply.hex), requestAuthenticator, secret, { requireMessageAuthenticator: true })).toBe(
        false,
      );
    },
  );

  test.each(exchanges.map((e) => [e.title, e] as const))("%s: reply parses to its attributes", (_title, e) => {
    const p = decodePacket(hex(e.reply.hex));
    expect(p.attributes.map((a) => ({ type: a.type, value: toHex(a.value) }))).toEqual(
      e.reply.attributes!.map((a) => ({ type: a.type, value: toHex(vectorValue(a)) })),
    );
  });

  test("§7.3 second request as printed (State Length 16 past the packet Length) is malformed", () => {
    const e = exchanges.find((x) => x.request.malformed)!;
    expect(() => decodePacket(hex(e.request.hex))).toThrow(RADIUSError);
    expect(errorCode(() => decodePacket(hex(e.request.hex)))).toBe("malformed");
  });

  test("§7.1 reply with the wrong secret or request authenticator fails verifyResponse", () => {
    const e = exchanges[0]!;
    const ra = hex(e.request.hex).subarray(4, 20);
    expect(verifyResponse(hex(e.reply.hex), ra, utf8.encode("xyzzy5462"))).toBe(false);
    expect(verifyResponse(hex(e.reply.hex), new Uint8Array(16), secret)).toBe(false);
  });
});
