// Public API of the RADIUS codec: bytes ⇄ packet, authenticity checks, User-Password hiding, dictionaries. No I/O.
export { Code, Attr, HEADER_LENGTH, MAX_PACKET_LENGTH, MAX_ATTRIBUTE_VALUE_LENGTH } from "./constants.ts";
export { RADIUSError, type RADIUSErrorCode } from "./errors.ts";
export { decodePacket, type RADIUSPacket, type RawAttribute } from "./packet.ts";
export {
  verifyRequest,
  verifyResponse,
  type VerifyRequestOptions,
  type VerifyResponseOptions,
} from "./authenticator.ts";
export {
  encodeResponse,
  encodeRequest,
  responseLength,
  type ReplySpec,
  type RequestSpec,
  type EncodeResponseOptions,
  type EncodeRequestOptions,
} from "./encode.ts";
export { hideUserPassword, revealUserPassword, MAX_USER_PASSWORD_LENGTH } from "./user-password.ts";
export {
  getAttribute,
  getAttributes,
  textAttribute,
  integerAttribute,
  octetsAttribute,
  ipv4Attribute,
  vendorSpecificAttribute,
} from "./attributes.ts";
export {
  attributeByName,
  attributeByCode,
  dictionaryValue,
  vendorByName,
  encodeAttributeByName,
  resolveReplyAttribute,
  type DictionaryAttribute,
  type ReplyAttributeErrorCode,
  type ResolvedReplyAttribute,
} from "./dictionary.ts";
