// RADIUS packet encoding (wire layout drawn in packet.ts): replies with Message-Authenticator first
// then the Response Authenticator (RFC 3579 §3.2, RFC 2865 §3), and requests for tests and load tools.

import { getRandomValues } from "node:crypto";
import { md5Into } from "../../runtime/hash.ts";
import {
  Attr,
  AUTHENTICATOR_LENGTH,
  Code,
  HEADER_LENGTH,
  MAX_ATTRIBUTE_VALUE_LENGTH,
  MAX_PACKET_LENGTH,
  MESSAGE_AUTHENTICATOR_ATTRIBUTE_LENGTH,
} from "./constants.ts";
import { hmacMD5Packet } from "./authenticator.ts";
import type { RawAttribute } from "./packet.ts";
import { hideUserPassword } from "./user-password.ts";

const ZERO16 = new Uint8Array(AUTHENTICATOR_LENGTH);
const MA_OFFSET = HEADER_LENGTH;

/**
 * Lays out header, an optional zeroed Message-Authenticator as the first attribute, then the
 * attributes, in one allocation.
 * @throws TypeError on a bad identifier, attribute type or length, a caller-supplied
 *   Message-Authenticator, or a total length over 4096.
 */
function layout(
  code: number,
  identifier: number,
  authenticator: Uint8Array,
  attributes: readonly RawAttribute[],
  withMessageAuthenticator: boolean,
): Uint8Array {
  if (!Number.isInteger(identifier) || identifier < 0 || identifier > 255) {
    throw new TypeError("identifier must be 0..255");
  }
  let length = HEADER_LENGTH + (withMessageAuthenticator ? MESSAGE_AUTHENTICATOR_ATTRIBUTE_LENGTH : 0);
  for (const a of attributes) {
    if (!Number.isInteger(a.type) || a.type < 1 || a.type > 255) throw new TypeError("attribute type must be 1..255");
    if (a.type === Attr.MessageAuthenticator) {
      throw new TypeError("Message-Authenticator is added by the codec, not by the caller");
    }
    if (a.value.length > MAX_ATTRIBUTE_VALUE_LENGTH) {
      throw new TypeError(`attribute ${a.type} value longer than ${MAX_ATTRIBUTE_VALUE_LENGTH} octets`);
    }
    length += 2 + a.value.length;
  }
  if (length > MAX_PACKET_LENGTH) throw new TypeError(`packet longer than ${MAX_PACKET_LENGTH} octets`);

  const buf = new Uint8Array(length);
  buf[0] = code;
  buf[1] = identifier;
  buf[2] = length >>> 8;
  buf[3] = length & 0xff;
  buf.set(authenticator, 4);
  let off = HEADER_LENGTH;
  if (withMessageAuthenticator) {
    buf[off] = Attr.MessageAuthenticator;
    buf[off + 1] = MESSAGE_AUTHENTICATOR_ATTRIBUTE_LENGTH;
    off += MESSAGE_AUTHENTICATOR_ATTRIBUTE_LENGTH; // value octets stay zero until signed
  }
  for (const a of attributes) {
    buf[off] = a.type;
    buf[off + 1] = 2 + a.value.length;
    buf.set(a.value, off + 2);
    off += 2 + a.value.length;
  }
  return buf;
}

/**
 * The length in octets of a reply with these attributes and the Message-Authenticator that
 * encodeResponse puts first. A reply longer than MAX_PACKET_LENGTH (4096, RFC 2865 §3) cannot be
 * encoded: the server asks this first, because Proxy-State echoed from a request that itself fits
 * (RFC 2865 §5.33) can push a reply past it.
 */
export function responseLength(attributes: readonly RawAttribute[]): number {
  let length = HEADER_LENGTH + MESSAGE_AUTHENTICATOR_ATTRIBUTE_LENGTH;
  for (const a of attributes) length += 2 + a.value.length;
  return length;
}

/** A reply to encode. */
export interface ReplySpec {
  code: number;
  identifier: number;
  attributes: RawAttribute[];
}

/** Options for {@link encodeResponse}. */
export interface EncodeResponseOptions {
  /** Default true. false only to reproduce RFC 2865 §7 byte-exact vectors; the server never sets it. */
  messageAuthenticator?: boolean;
}

const REPLY_CODES = new Set<number>([
  Code.AccessAccept,
  Code.AccessReject,
  Code.AccessChallenge,
  Code.AccountingResponse,
]);

/**
 * Encodes a reply (Access-Accept/Reject/Challenge, Accounting-Response). Message-Authenticator
 * is the first attribute, computed over the reply with the *request* authenticator in the
 * Authenticator field and its own value zeroed (RFC 3579 §3.2); then the Response Authenticator
 * MD5(Code+ID+Length+RequestAuth+Attributes+Secret) is written (RFC 2865 §3). For an
 * Accounting-Response the Message-Authenticator is computed with the Authenticator field zeroed,
 * as FreeRADIUS and radclient expect (answer Status-Server with Access-Accept, RFC 5997 §3).
 * @throws TypeError (caller bugs) for a non-reply code, an identifier outside 0..255, a request
 *   authenticator that is not 16 octets, an attribute value over 253 octets, a caller-supplied
 *   Message-Authenticator, or a total length over 4096.
 */
export function encodeResponse(
  reply: ReplySpec,
  requestAuthenticator: Uint8Array,
  secret: Uint8Array,
  { messageAuthenticator = true }: EncodeResponseOptions = {},
): Uint8Array {
  if (!REPLY_CODES.has(reply.code)) throw new TypeError(`code ${reply.code} is not a reply code`);
  if (requestAuthenticator.length !== AUTHENTICATOR_LENGTH) {
    throw new TypeError("requestAuthenticator must be 16 octets");
  }
  // Accounting has no RFC-defined Message-Authenticator; FreeRADIUS (rad_sign) and radclient
  // compute it with the Authenticator field zeroed, as RFC 5176 §3.3 does for CoA.
  const field = reply.code === Code.AccountingResponse ? ZERO16 : requestAuthenticator;
  // The packet is laid out with `field` in the Authenticator and the Message-Authenticator value
  // zeroed, which is exactly the HMAC input (RFC 3579 §3.2); then the Response Authenticator
  // MD5(Code+ID+Length+RequestAuth+Attributes+Secret) covers the signed attributes (RFC 2865 §3).
  const buf = layout(reply.code, reply.identifier, field, reply.attributes, messageAuthenticator);
  if (messageAuthenticator) hmacMD5Packet(buf, buf.length, secret, buf, MA_OFFSET + 2);
  if (field !== requestAuthenticator) buf.set(requestAuthenticator, 4);
  md5WithSecret(buf, secret);
  return buf;
}

/**
 * MD5(packet + secret) written into the packet's Authenticator field: the Response Authenticator
 * (RFC 2865 §3) or the Accounting Request Authenticator (RFC 2866 §3). The digest covers the
 * field as it stands and is computed before it is written.
 */
function md5WithSecret(buf: Uint8Array, secret: Uint8Array): void {
  md5Into(buf, secret, buf, 4);
}

/** A request to encode. */
export interface RequestSpec {
  code: number;
  identifier: number;
  /** Access-Request / Status-Server only: 16 octets; random when omitted. */
  authenticator?: Uint8Array;
  attributes: RawAttribute[];
}

/** Options for {@link encodeRequest}. */
export interface EncodeRequestOptions {
  /** Message-Authenticator first (default true). false only to build legacy or negative test packets. */
  messageAuthenticator?: boolean;
  /**
   * Access-Request only: a plaintext password, hidden with the packet's authenticator
   * (RFC 2865 §5.2) and placed right after the Message-Authenticator.
   */
  userPassword?: Uint8Array;
}

/**
 * Encodes a request, for tests, the load generator and the bench.
 * - Access-Request / Status-Server: the given or a random Request Authenticator; with
 *   `messageAuthenticator` (default) an HMAC-MD5 Message-Authenticator first (RFC 3579 §3.2,
 *   RFC 5997 §3).
 * - Accounting-Request: the Request Authenticator is computed (RFC 2866 §3); a Message-Authenticator
 *   is computed first with the Authenticator field zeroed.
 * @throws TypeError for another code, an authenticator given for Accounting-Request or not 16
 *   octets, `userPassword` on a non-Access-Request, and every layout error of encodeResponse.
 */
export function encodeRequest(
  req: RequestSpec,
  secret: Uint8Array,
  { messageAuthenticator = true, userPassword }: EncodeRequestOptions = {},
): Uint8Array {
  const { code } = req;
  if (code !== Code.AccessRequest && code !== Code.StatusServer && code !== Code.AccountingRequest) {
    throw new TypeError(`code ${code} is not a request code this codec encodes`);
  }
  if (userPassword !== undefined && code !== Code.AccessRequest) {
    throw new TypeError("userPassword is only for Access-Request");
  }

  if (code === Code.AccountingRequest) {
    if (req.authenticator !== undefined) throw new TypeError("the Accounting-Request authenticator is computed");
    const buf = layout(code, req.identifier, ZERO16, req.attributes, messageAuthenticator);
    if (messageAuthenticator) hmacMD5Packet(buf, buf.length, secret, buf, MA_OFFSET + 2);
    md5WithSecret(buf, secret);
    return buf;
  }

  let authenticator = req.authenticator;
  if (authenticator === undefined) {
    authenticator = getRandomValues(new Uint8Array(AUTHENTICATOR_LENGTH));
  } else if (authenticator.length !== AUTHENTICATOR_LENGTH) {
    throw new TypeError("authenticator must be 16 octets");
  }
  const attributes =
    userPassword === undefined
      ? req.attributes
      : [{ type: Attr.UserPassword, value: hideUserPassword(userPassword, secret, authenticator) }, ...req.attributes];
  const buf = layout(code, req.identifier, authenticator, attributes, messageAuthenticator);
  if (messageAuthenticator) hmacMD5Packet(buf, buf.length, secret, buf, MA_OFFSET + 2);
  return buf;
}
