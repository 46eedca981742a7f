// encodeResponse / encodeRequest: Message-Authenticator first, verifyResponse round trips, caller-bug TypeErrors.
import { describe, expect, test } from "bun:test";
import {
  Attr,
  Code,
  decodePacket,
  encodeRequest,
  encodeResponse,
  getAttribute,
  getAttributes,
  integerAttribute,
  revealUserPassword,
  textAttribute,
  verifyRequest,
  verifyResponse,
} from "../../../../src/radius/codec/index.ts";
import { hex, utf8 } from "./helpers.ts";

const secret = utf8.encode("s3cr3t-shared-secret");
const requestAuthenticator = hex("00112233445566778899aabbccddeeff");

describe("encodeResponse", () => {
  const replies: [string, number, { type: number; value: Uint8Array }[]][] = [
    ["Access-Accept", Code.AccessAccept, [textAttribute(Attr.ReplyMessage, "welcome"), integerAttribute(Attr.SessionTimeout, 3600)]],
    ["Access-Reject", Code.AccessReject, []],
    ["Access-Challenge", Code.AccessChallenge, [textAttribute(Attr.ReplyMessage, "Enter code"), { type: Attr.State, value: new Uint8Array(16).fill(5) }]],
    ["Accounting-Response", Code.AccountingResponse, []],
    ["Access-Accept with Proxy-State x2", Code.AccessAccept, [{ type: Attr.ProxyState, value: utf8.encode("a") }, { type: Attr.ProxyState, value: utf8.encode("b") }]],
  ];

  test.each(replies)("%s: Message-Authenticator is the first attribute and verifyResponse passes", (_n, code, attributes) => {
    const bytes = encodeResponse({ code, identifier: 42, attributes }, requestAuthenticator, secret);
    const p = decodePacket(bytes);
    expect(p.code).toBe(code);
    expect(p.identifier).toBe(42);
    expect(p.attributes[0]!.type).toBe(Attr.MessageAuthenticator);
    expect(p.attributes[0]!.value.length).toBe(16);
    expect(p.attributes.slice(1)).toEqual(attributes);
    expect(verifyResponse(bytes, requestAuthenticator, secret, { requireMessageAuthenticator: true })).toBe(true);
    expect(verifyResponse(bytes, hex("ff112233445566778899aabbccddeeff"), secret)).toBe(false);
    expect(verifyResponse(bytes, requestAuthenticator, utf8.encode("other"))).toBe(false);
  });

  test("Proxy-State order survives (RFC 2865 §5.33)", () => {
    const bytes = encodeResponse({ code: Code.AccessReject, identifier: 1, attributes: replies[4]![2] }, requestAuthenticator, secret);
    expect(getAttributes(decodePacket(bytes), Attr.ProxyState).map((v) => new TextDecoder().decode(v))).toEqual(["a", "b"]);
  });

  test("a 253-octet attribute is accepted, the maximum packet is 4096", () => {
    const big = Array.from({ length: 15 }, () => ({ type: Attr.Class, value: new Uint8Array(253) }));
    const bytes = encodeResponse({ code: Code.AccessAccept, identifier: 1, attributes: big }, requestAuthenticator, secret);
    expect(bytes.length).toBe(20 + 18 + 15 * 255);
    expect(verifyResponse(bytes, requestAuthenticator, secret)).toBe(true);
  });

  test.each([
    ["attribute of 254 octets", { code: Code.AccessAccept, identifier: 1, attributes: [{ type: Attr.Class, value: new Uint8Array(254) }] }],
    ["total over 4096", { code: Code.AccessAccept, identifier: 1, attributes: Array.from({ length: 17 }, () => ({ type: Attr.Class, value: new Uint8Array(253) })) }],
    ["request code", { code: Code.AccessRequest, identifier: 1, attributes: [] }],
    ["unknown code", { code: 99, identifier: 1, attributes: [] }],
    ["identifier 256", { code: Code.AccessAccept, identifier: 256, attributes: [] }],
    ["identifier -1", { code: Code.AccessAccept, identifier: -1, attributes: [] }],
    ["attribute type 0", { code: Code.AccessAccept, identifier: 1, attributes: [{ type: 0, value: new Uint8Array(1) }] }],
    ["attribute type 256", { code: Code.AccessAccept, identifier: 1, attributes: [{ type: 256, value: new Uint8Array(1) }] }],
    ["caller-supplied Message-Authenticator", { code: Code.AccessAccept, identifier: 1, attributes: [{ type: Attr.MessageAuthenticator, value: new Uint8Array(16) }] }],
  ])("%s is a TypeError", (_n, reply) => {
    expect(() => encodeResponse(reply, requestAuthenticator, secret)).toThrow(TypeError);
  });

  test("a request authenticator that is not 16 octets is a TypeError", () => {
    expect(() => encodeResponse({ code: 2, identifier: 1, attributes: [] }, new Uint8Array(15), secret)).toThrow(TypeError);
  });
});

describe("encodeRequest", () => {
  test.each([
    ["Access-Request", Code.AccessRequest],
    ["Status-Server", Code.StatusServer],
    ["Accounting-Request", Code.AccountingRequest],
  ])("%s: Message-Authenticator first and verifyRequest passes with MA required", (_n, code) => {
    const raw = encodeRequest({ code, identifier: 3, attributes: [textAttribute(Attr.UserName, "alice")] }, secret);
    const p = decodePacket(raw);
    expect(p.attributes.map((a) => a.type)).toEqual([Attr.MessageAuthenticator, Attr.UserName]);
    expect(() => verifyRequest(p, raw, secret, { requireMessageAuthenticator: true })).not.toThrow();
  });

  test("a given authenticator is used as is; random ones differ", () => {
    const a = encodeRequest({ code: Code.AccessRequest, identifier: 1, authenticator: requestAuthenticator, attributes: [] }, secret);
    expect(Array.from(decodePacket(a).authenticator)).toEqual(Array.from(requestAuthenticator));
    const r1 = decodePacket(encodeRequest({ code: Code.AccessRequest, identifier: 1, attributes: [] }, secret)).authenticator;
    const r2 = decodePacket(encodeRequest({ code: Code.AccessRequest, identifier: 1, attributes: [] }, secret)).authenticator;
    expect(Array.from(r1)).not.toEqual(Array.from(r2));
  });

  test("userPassword is hidden with the packet's authenticator, right after the Message-Authenticator", () => {
    const raw = encodeRequest({ code: Code.AccessRequest, identifier: 1, attributes: [textAttribute(Attr.UserName, "bob")] }, secret, {
      userPassword: utf8.encode("hunter2 123456"),
    });
    const p = decodePacket(raw);
    expect(p.attributes.map((a) => a.type)).toEqual([Attr.MessageAuthenticator, Attr.UserPassword, Attr.UserName]);
    const plain = revealUserPassword(getAttribute(p, Attr.UserPassword)!, secret, p.authenticator);
    expect(new TextDecoder().decode(plain)).toBe("hunter2 123456");
    expect(() => verifyRequest(p, raw, secret, { requireMessageAuthenticator: true })).not.toThrow();
  });

  test.each([
    ["Access-Accept code", { code: Code.AccessAccept, identifier: 1, attributes: [] }, {}],
    ["authenticator for Accounting-Request", { code: Code.AccountingRequest, identifier: 1, authenticator: requestAuthenticator, attributes: [] }, {}],
    ["15-octet authenticator", { code: Code.AccessRequest, identifier: 1, authenticator: new Uint8Array(15), attributes: [] }, {}],
    ["userPassword on Status-Server", { code: Code.StatusServer, identifier: 1, attributes: [] }, { userPassword: utf8.encode("x") }],
    ["userPassword over 128 octets", { code: Code.AccessRequest, identifier: 1, attributes: [] }, { userPassword: new Uint8Array(129) }],
  ])("%s is a TypeError", (_n, req, options) => {
    expect(() => encodeRequest(req, secret, options)).toThrow(TypeError);
  });
});

describe("verifyResponse never throws", () => {
  test.each([
    ["empty", new Uint8Array(0)],
    ["truncated", encodeResponse({ code: 2, identifier: 1, attributes: [] }, requestAuthenticator, secret).subarray(0, 30)],
    ["a request", encodeRequest({ code: Code.AccessRequest, identifier: 1, attributes: [] }, secret)],
    ["unknown code", hex("63 01 0014 00000000000000000000000000000000")],
  ])("%s → false", (_n, bytes) => {
    expect(verifyResponse(bytes, requestAuthenticator, secret)).toBe(false);
  });

  test("a request authenticator that is not 16 octets → false", () => {
    const bytes = encodeResponse({ code: 2, identifier: 1, attributes: [] }, requestAuthenticator, secret);
    expect(verifyResponse(bytes, requestAuthenticator.subarray(0, 15), secret)).toBe(false);
  });
});
