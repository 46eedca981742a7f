// Packet authenticity: Request/Response Authenticator (RFC 2865 §3, RFC 2866 §3) and
// Message-Authenticator (RFC 3579 §3.2, RFC 5997 §3), all compared in constant time.

import { createHash, createHmac } from "node:crypto";
import { hmacMD5Into } from "../../runtime/hash.ts";
import {
  Attr,
  AUTHENTICATOR_LENGTH,
  Code,
  HEADER_LENGTH,
} from "./constants.ts";
import { RADIUSError } from "./errors.ts";
import { attributeOffset, decodePacket, packetLength, type RADIUSPacket } from "./packet.ts";

const ZERO16 = new Uint8Array(AUTHENTICATOR_LENGTH);

/**
 * Constant-time equality for two byte strings; false (not a throw) on a length mismatch (lengths
 * are public here: authenticators are always 16 octets). Every octet is compared and the
 * differences OR-ed together, with one branch at the end; this runs for every request.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/**
 * MD5(Code + Identifier + Length + `authenticator` + Attributes + Secret) over `raw[0..length)`,
 * with the packet's own Authenticator field replaced by `authenticator`. This is the Response
 * Authenticator when `authenticator` is the request's (RFC 2865 §3), and the Accounting-Request
 * Request Authenticator when it is 16 zero octets (RFC 2866 §3).
 */
export function md5Authenticator(
  raw: Uint8Array,
  length: number,
  authenticator: Uint8Array,
  secret: Uint8Array,
): Buffer {
  return createHash("md5")
    .update(raw.subarray(0, 4))
    .update(authenticator)
    .update(raw.subarray(HEADER_LENGTH, length))
    .update(secret)
    .digest();
}

/**
 * HMAC-MD5 keyed by the secret over `raw[0..length)` with the Authenticator field replaced by
 * `authenticator` and the 16 value octets of the Message-Authenticator at `maOffset` zeroed
 * (RFC 3579 §3.2). No copy of the packet is made.
 */
export function hmacMessageAuthenticator(
  raw: Uint8Array,
  length: number,
  maOffset: number,
  authenticator: Uint8Array,
  secret: Uint8Array,
): Buffer {
  return createHmac("md5", secret)
    .update(raw.subarray(0, 4))
    .update(authenticator)
    .update(raw.subarray(HEADER_LENGTH, maOffset + 2))
    .update(ZERO16)
    .update(raw.subarray(maOffset + 2 + AUTHENTICATOR_LENGTH, length))
    .digest();
}

function messageAuthenticatorValid(
  raw: Uint8Array,
  length: number,
  maOffset: number,
  authenticator: Uint8Array,
  secret: Uint8Array,
): boolean {
  const expected = hmacMessageAuthenticator(raw, length, maOffset, authenticator, secret);
  return constantTimeEqual(expected, raw.subarray(maOffset + 2, maOffset + 2 + AUTHENTICATOR_LENGTH));
}

/**
 * HMAC-MD5 keyed by the secret over `raw[0..length)` as it stands, written into `out` at `offset`:
 * the caller has already put the right octets in the Authenticator field and zeroed the
 * Message-Authenticator value. One update over the whole packet instead of five over views of it
 * (the hot path of every request and reply). `out` may be `raw` itself (the reply's own
 * Message-Authenticator value): the MAC is computed before it is written.
 */
export function hmacMD5Packet(raw: Uint8Array, length: number, secret: Uint8Array, out: Uint8Array, offset = 0): void {
  hmacMD5Into(secret, length === raw.length ? raw : raw.subarray(0, length), out, offset);
}

/** The 16 value octets of a request's own Message-Authenticator, and the MAC recomputed over it. */
const receivedMA = new Uint8Array(AUTHENTICATOR_LENGTH);
const expectedMA = new Uint8Array(AUTHENTICATOR_LENGTH);

/**
 * The Message-Authenticator check of a request whose own Authenticator field is part of the MAC
 * (Access-Request, Status-Server; RFC 3579 §3.2): the 16 value octets are copied out, zeroed in
 * `raw` for the HMAC, and put back before returning, so `raw` is unchanged afterwards. Nothing
 * runs in between, so no other code can observe the zeroed octets (nor the two module-level
 * buffers, which only ever hold a received value and the MAC recomputed over public octets).
 */
function ownMessageAuthenticatorValid(raw: Uint8Array, length: number, maOffset: number, secret: Uint8Array): boolean {
  const start = maOffset + 2;
  for (let i = 0; i < AUTHENTICATOR_LENGTH; i++) {
    receivedMA[i] = raw[start + i]!;
    raw[start + i] = 0;
  }
  try {
    hmacMD5Packet(raw, length, secret, expectedMA);
  } finally {
    raw.set(receivedMA, start);
  }
  return constantTimeEqual(expectedMA, receivedMA);
}

/** Options for {@link verifyRequest}. */
export interface VerifyRequestOptions {
  /**
   * Access-Request must carry Message-Authenticator (the default for every client; a legacy NAS
   * may be exempted). Status-Server always requires it regardless.
   */
  requireMessageAuthenticator: boolean;
}

/**
 * Authenticity check of a request, done BEFORE any attribute is acted on. `raw` is the datagram
 * `packet` was decoded from (only its first Length octets matter).
 *
 * - Access-Request: a Message-Authenticator, when present, must verify (HMAC-MD5 over the packet
 *   with the MA value zeroed, RFC 3579 §3.2). When absent: "missing_message_authenticator" if
 *   required, else "proxy_state_without_message_authenticator" if Proxy-State is present
 *   (FreeRADIUS `limit_proxy_state`, the CVE-2024-3596 mitigation), else
 *   "eap_without_message_authenticator" if EAP-Message is present (RFC 3579 §3.1: such a request
 *   is silently discarded, whatever the client's exemption).
 * - Status-Server: Message-Authenticator always required (RFC 5997 §3).
 * - Accounting-Request: Request Authenticator = MD5(Code+Id+Length+16 zero octets+Attributes+Secret)
 *   (RFC 2866 §3); a Message-Authenticator, when present, is computed with the Authenticator field
 *   zeroed (as FreeRADIUS does, and as RFC 5176 §3.3 does for CoA), and must verify.
 * - Any other code (replies, Status-Client): "unknown_code", a server does not accept them.
 *
 * Every comparison is constant-time. For the Message-Authenticator of an Access-Request or
 * Status-Server, `raw`'s 16 value octets are zeroed while the HMAC is computed and restored
 * before this returns or throws; `raw` must therefore be writable (a received datagram is).
 * @throws RADIUSError with code "malformed", "unknown_code", "bad_authenticator",
 *   "missing_message_authenticator", "bad_message_authenticator",
 *   "proxy_state_without_message_authenticator" or "eap_without_message_authenticator".
 */
export function verifyRequest(
  packet: RADIUSPacket,
  raw: Uint8Array,
  secret: Uint8Array,
  options: VerifyRequestOptions,
): void {
  const length = packetLength(raw);
  if (raw[0] !== packet.code) throw new RADIUSError("malformed");
  const maOffset = attributeOffset(raw, length, Attr.MessageAuthenticator);

  switch (packet.code) {
    case Code.AccessRequest: {
      if (maOffset >= 0) {
        if (!ownMessageAuthenticatorValid(raw, length, maOffset, secret)) {
          throw new RADIUSError("bad_message_authenticator");
        }
        return;
      }
      if (options.requireMessageAuthenticator) throw new RADIUSError("missing_message_authenticator");
      if (attributeOffset(raw, length, Attr.ProxyState) >= 0) {
        throw new RADIUSError("proxy_state_without_message_authenticator");
      }
      if (attributeOffset(raw, length, Attr.EAPMessage) >= 0) {
        throw new RADIUSError("eap_without_message_authenticator");
      }
      return;
    }
    case Code.StatusServer: {
      if (maOffset < 0) throw new RADIUSError("missing_message_authenticator");
      if (!ownMessageAuthenticatorValid(raw, length, maOffset, secret)) {
        throw new RADIUSError("bad_message_authenticator");
      }
      return;
    }
    case Code.AccountingRequest: {
      const expected = md5Authenticator(raw, length, ZERO16, secret);
      if (!constantTimeEqual(expected, raw.subarray(4, HEADER_LENGTH))) {
        throw new RADIUSError("bad_authenticator");
      }
      if (maOffset >= 0 && !messageAuthenticatorValid(raw, length, maOffset, ZERO16, secret)) {
        throw new RADIUSError("bad_message_authenticator");
      }
      return;
    }
    default:
      throw new RADIUSError("unknown_code");
  }
}

/** Options for {@link verifyResponse}. */
export interface VerifyResponseOptions {
  /** Also fail a reply that has no Message-Authenticator (a Blast-RADIUS-safe client). Default false. */
  requireMessageAuthenticator?: boolean;
}

const REPLY_CODES = new Set<number>([
  Code.AccessAccept,
  Code.AccessReject,
  Code.AccessChallenge,
  Code.AccountingResponse,
]);

/**
 * Verifies a reply against the request's authenticator: the Response Authenticator
 * (RFC 2865 §3) and, when present, the Message-Authenticator computed with the request
 * authenticator in the Authenticator field (RFC 3579 §3.2; zeroed for Accounting-Response, as
 * FreeRADIUS computes it). For tests and the load generator.
 * Never throws: a malformed, non-reply or forged datagram gives false.
 */
export function verifyResponse(
  reply: Uint8Array,
  requestAuthenticator: Uint8Array,
  secret: Uint8Array,
  { requireMessageAuthenticator = false }: VerifyResponseOptions = {},
): boolean {
  if (requestAuthenticator.length !== AUTHENTICATOR_LENGTH) return false;
  let length: number;
  let maOffset: number;
  try {
    const packet = decodePacket(reply);
    if (!REPLY_CODES.has(packet.code)) return false;
    length = packetLength(reply);
    maOffset = attributeOffset(reply, length, Attr.MessageAuthenticator);
  } catch {
    return false;
  }
  const expected = md5Authenticator(reply, length, requestAuthenticator, secret);
  const responseOk = constantTimeEqual(expected, reply.subarray(4, HEADER_LENGTH));
  if (maOffset < 0) return responseOk && !requireMessageAuthenticator;
  // Accounting-Response: computed with the Authenticator field zeroed, as FreeRADIUS does.
  const field = reply[0] === Code.AccountingResponse ? ZERO16 : requestAuthenticator;
  const maOk = messageAuthenticatorValid(reply, length, maOffset, field, secret);
  return responseOk && maOk;
}
