// RADIUS packet codes, attribute numbers and size limits (RFC 2865 §3-§5, RFC 2866, RFC 3579, RFC 5997).

/** Packet codes this codec accepts (RFC 2865 §3, RFC 2866 §3, RFC 5997 §2). Any other code is "unknown_code". */
export const Code = {
  AccessRequest: 1,
  AccessAccept: 2,
  AccessReject: 3,
  AccountingRequest: 4,
  AccountingResponse: 5,
  AccessChallenge: 11,
  StatusServer: 12,
  StatusClient: 13,
} as const;

/** Attribute types the server code refers to by name (RFC 2865 §5, RFC 2869 §5, RFC 3579 §3). */
export const Attr = {
  UserName: 1,
  UserPassword: 2,
  CHAPPassword: 3,
  NASIPAddress: 4,
  NASPort: 5,
  ServiceType: 6,
  ReplyMessage: 18,
  State: 24,
  Class: 25,
  VendorSpecific: 26,
  SessionTimeout: 27,
  IdleTimeout: 28,
  CalledStationId: 30,
  CallingStationId: 31,
  NASIdentifier: 32,
  ProxyState: 33,
  CHAPChallenge: 60,
  NASPortType: 61,
  EAPMessage: 79,
  MessageAuthenticator: 80,
} as const;

/** Code + Identifier + Length + Authenticator (RFC 2865 §3). */
export const HEADER_LENGTH = 20;
/** Largest packet, RFC 2865 §3 ("The maximum length is 4096"). */
export const MAX_PACKET_LENGTH = 4096;
/** An attribute's Length octet covers Type and Length, so at most 255 - 2 value octets (RFC 2865 §5). */
export const MAX_ATTRIBUTE_VALUE_LENGTH = 253;
/** Authenticator field length (RFC 2865 §3) and HMAC-MD5 output length (RFC 3579 §3.2). */
export const AUTHENTICATOR_LENGTH = 16;
/** Message-Authenticator attribute: Type 80, Length 18, 16 octets of HMAC-MD5 (RFC 3579 §3.2). */
export const MESSAGE_AUTHENTICATOR_ATTRIBUTE_LENGTH = 18;

const KNOWN_CODES = new Uint8Array(256);
for (const c of Object.values(Code)) KNOWN_CODES[c] = 1;

/** True for a code listed in {@link Code}. */
export function isKnownCode(code: number): boolean {
  return KNOWN_CODES[code & 0xff] === 1 && code >= 0 && code <= 255;
}
