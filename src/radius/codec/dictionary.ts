// Attribute dictionaries embedded in the binary (FreeRADIUS format, imported as text) and
// name-based attribute encoding, including Vendor-Specific wrapping (RFC 2865 §5.26).

import rfc2865 from "./dictionaries/dictionary.rfc2865" with { type: "text" };
import rfc2866 from "./dictionaries/dictionary.rfc2866" with { type: "text" };
import rfc2869 from "./dictionaries/dictionary.rfc2869" with { type: "text" };
import rfc3162 from "./dictionaries/dictionary.rfc3162" with { type: "text" };
import rfc3576 from "./dictionaries/dictionary.rfc3576" with { type: "text" };
import rfc5176 from "./dictionaries/dictionary.rfc5176" with { type: "text" };
import microsoft from "./dictionaries/dictionary.microsoft" with { type: "text" };
import cisco from "./dictionaries/dictionary.cisco" with { type: "text" };
import juniper from "./dictionaries/dictionary.juniper" with { type: "text" };
import fortinet from "./dictionaries/dictionary.fortinet" with { type: "text" };
import paloalto from "./dictionaries/dictionary.paloalto" with { type: "text" };
import { octetsAttribute, parseIPv4, vendorSpecificAttribute } from "./attributes.ts";
import type { RawAttribute } from "./packet.ts";

/** An attribute definition. `vendor` is set for vendor sub-attributes carried inside type 26. */
export interface DictionaryAttribute {
  name: string;
  type: number;
  vendor?: number;
  /** FreeRADIUS data type, lower case, without a size suffix: string, octets, integer, ipaddr, date, ... */
  dataType: string;
  /** FreeRADIUS `encrypt=N`: 1 is User-Password hiding (RFC 2865 §5.2), 2 Tunnel-Password (RFC 2868). */
  encrypt?: number;
}

/** The embedded files, in load order (later definitions of a name win, as in FreeRADIUS). */
const SOURCES: ReadonlyArray<readonly [string, string]> = [
  ["dictionary.rfc2865", rfc2865],
  ["dictionary.rfc2866", rfc2866],
  ["dictionary.rfc2869", rfc2869], // also holds EAP-Message and Message-Authenticator (RFC 3579)
  ["dictionary.rfc3162", rfc3162],
  ["dictionary.rfc3576", rfc3576],
  ["dictionary.rfc5176", rfc5176],
  ["dictionary.microsoft", microsoft],
  ["dictionary.cisco", cisco],
  ["dictionary.juniper", juniper],
  ["dictionary.fortinet", fortinet],
  ["dictionary.paloalto", paloalto],
];

interface Tables {
  byName: Map<string, DictionaryAttribute>;
  byCode: Map<string, DictionaryAttribute>;
  /** key: lower-case attribute name + "\0" + lower-case value name */
  values: Map<string, number>;
  vendors: Map<string, number>;
}

let tables: Tables | undefined;

const codeKey = (type: number, vendor: number | undefined): string => `${vendor ?? 0}:${type}`;

function parseNumber(s: string | undefined): number {
  if (s === undefined) return Number.NaN;
  return /^0x[0-9a-f]+$/i.test(s) ? Number.parseInt(s.slice(2), 16) : /^\d+$/.test(s) ? Number(s) : Number.NaN;
}

/**
 * Parses FreeRADIUS dictionary text into `t`: ATTRIBUTE, VALUE, VENDOR, BEGIN-VENDOR, END-VENDOR.
 * Other keywords ($INCLUDE, FLAGS, ...) are ignored.
 * @throws TypeError naming the file and line for a line it cannot read (a build-time bug).
 */
function parseDictionary(file: string, text: string, t: Tables): void {
  let vendor: number | undefined;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/#.*/, "").trim();
    if (line === "") continue;
    const f = line.split(/\s+/);
    const where = `${file}:${i + 1}`;
    switch (f[0]) {
      case "VENDOR": {
        const id = parseNumber(f[2]);
        if (f[1] === undefined || !Number.isInteger(id)) throw new TypeError(`${where}: bad VENDOR`);
        t.vendors.set(f[1].toLowerCase(), id);
        break;
      }
      case "BEGIN-VENDOR": {
        const id = t.vendors.get((f[1] ?? "").toLowerCase());
        if (id === undefined) throw new TypeError(`${where}: BEGIN-VENDOR of an unknown vendor`);
        vendor = id;
        break;
      }
      case "END-VENDOR":
        vendor = undefined;
        break;
      case "ATTRIBUTE": {
        const [, name, num, rawType, flags] = f;
        const type = parseNumber(num);
        if (name === undefined || rawType === undefined || !Number.isInteger(type) || type < 0 || type > 255) {
          throw new TypeError(`${where}: bad ATTRIBUTE`);
        }
        const attr: DictionaryAttribute = { name, type, dataType: rawType.toLowerCase().replace(/\[.*\]$/, "") };
        if (vendor !== undefined) attr.vendor = vendor;
        const encrypt = /(?:^|,)encrypt=(\d)/.exec(flags ?? "");
        if (encrypt) attr.encrypt = Number(encrypt[1]);
        t.byName.set(name.toLowerCase(), attr);
        const key = codeKey(type, vendor);
        if (!t.byCode.has(key)) t.byCode.set(key, attr); // the first (canonical) name keeps the code
        break;
      }
      case "VALUE": {
        const [, attrName, valueName, num] = f;
        const n = parseNumber(num);
        if (attrName === undefined || valueName === undefined || !Number.isInteger(n)) {
          throw new TypeError(`${where}: bad VALUE`);
        }
        t.values.set(`${attrName.toLowerCase()}\0${valueName.toLowerCase()}`, n);
        break;
      }
      default:
        break;
    }
  }
}

function load(): Tables {
  if (tables) return tables;
  const t: Tables = { byName: new Map(), byCode: new Map(), values: new Map(), vendors: new Map() };
  for (const [file, text] of SOURCES) parseDictionary(file, text, t);
  tables = t;
  return t;
}

/** The definition for a name (case-insensitive, as in FreeRADIUS), or undefined. */
export function attributeByName(name: string): DictionaryAttribute | undefined {
  return load().byName.get(name.toLowerCase());
}

/** The definition for a type, within `vendor` when given (a Vendor-Specific sub-attribute), or undefined. */
export function attributeByCode(type: number, vendor?: number): DictionaryAttribute | undefined {
  return load().byCode.get(codeKey(type, vendor));
}

/** The number of a named VALUE of an integer attribute (e.g. Service-Type "Framed-User" → 2), or undefined. */
export function dictionaryValue(attributeName: string, valueName: string): number | undefined {
  return load().values.get(`${attributeName.toLowerCase()}\0${valueName.toLowerCase()}`);
}

/** The IANA enterprise number of a vendor named in the dictionaries (e.g. "Microsoft" → 311), or undefined. */
export function vendorByName(name: string): number | undefined {
  return load().vendors.get(name.toLowerCase());
}

const utf8 = new TextEncoder();

function uint(n: number, bytes: number): Uint8Array {
  const max = 2 ** (8 * bytes) - 1;
  if (!Number.isInteger(n) || n < 0 || n > max) throw new TypeError("integer value out of range");
  const out = new Uint8Array(bytes);
  for (let i = bytes - 1; i >= 0; i--) {
    out[i] = n % 256;
    n = Math.floor(n / 256);
  }
  return out;
}

function integerValue(attr: DictionaryAttribute, value: string | number): number {
  if (typeof value === "number") return value;
  const named = load().values.get(`${attr.name.toLowerCase()}\0${value.toLowerCase()}`);
  if (named !== undefined) return named;
  const n = parseNumber(value);
  if (Number.isNaN(n)) throw new TypeError(`${attr.name}: not a number or a known value name`);
  return n;
}

function encodeValue(attr: DictionaryAttribute, value: string | number): Uint8Array {
  switch (attr.dataType) {
    case "string":
    case "text":
      return utf8.encode(String(value));
    case "octets":
      if (typeof value === "number") throw new TypeError(`${attr.name}: octets need a string`);
      if (/^0x([0-9a-f]{2})*$/i.test(value)) return Uint8Array.from(Buffer.from(value.slice(2), "hex"));
      return utf8.encode(value);
    case "integer":
      return uint(integerValue(attr, value), 4);
    case "short":
      return uint(integerValue(attr, value), 2);
    case "byte":
      return uint(integerValue(attr, value), 1);
    case "date":
      return uint(typeof value === "number" ? value : parseNumber(value), 4);
    case "ipaddr":
      if (typeof value === "number") throw new TypeError(`${attr.name}: ipaddr needs dotted-quad text`);
      return parseIPv4(value);
    default:
      throw new TypeError(`${attr.name}: data type ${attr.dataType} is not supported by encodeAttributeByName`);
  }
}

/**
 * Encodes an attribute by dictionary name. Supports string/text, octets ("0x..." hex or UTF-8
 * text), integer/short/byte (a number, decimal text, or a VALUE name), date (Unix seconds) and
 * ipaddr (dotted quad). A vendor attribute is wrapped in Vendor-Specific (26): Vendor-Id (4) |
 * Vendor-Type (1) | Vendor-Length (1) | Value (RFC 2865 §5.26).
 * @throws TypeError for an unknown name, an attribute that needs encryption (User-Password:
 *   use hideUserPassword), an unsupported data type, a value that does not fit its type, or a
 *   value too long for one attribute. Messages name the attribute, never the value.
 */
export function encodeAttributeByName(name: string, value: string | number): RawAttribute {
  const attr = attributeByName(name);
  if (!attr) throw new TypeError(`unknown RADIUS attribute ${JSON.stringify(name.slice(0, 64))}`);
  if (attr.encrypt !== undefined) throw new TypeError(`${attr.name} must be encrypted, not encoded by name`);
  const bytes = encodeValue(attr, value);
  if (attr.vendor !== undefined) return vendorSpecificAttribute(attr.vendor, attr.type, bytes);
  return octetsAttribute(attr.type, bytes);
}

/** Why a configured reply attribute cannot be sent (stable codes for the config validator). */
export type ReplyAttributeErrorCode = "unknown_attribute" | "encrypted_attribute" | "unsupported_type" | "bad_value";

export type ResolvedReplyAttribute =
  | { ok: true; attribute: RawAttribute; definition: DictionaryAttribute }
  /** `message` names the attribute, never the value (a reply attribute may be sensitive). */
  | { ok: false; code: ReplyAttributeErrorCode; message: string };

const REPLY_DATA_TYPES = new Set(["string", "text", "octets", "integer", "short", "byte", "date", "ipaddr"]);

/**
 * Resolves a reply attribute from configuration (`[[ldap.reply]] attributes = { "Filter-Id" = "x" }`)
 * against the embedded dictionaries, including vendor attributes wrapped in Vendor-Specific
 * (RFC 2865 §5.26). Never throws: the config validator turns a failure into its own error naming
 * the config path, and the RADIUS handler uses the encoded attribute.
 * Refused: unknown names, attributes that need encryption (User-Password, Tunnel-Password, MPPE
 * keys), the attributes the codec or the engine own (Message-Authenticator, State, Proxy-State,
 * User-Name... see REPLY_RESERVED), unsupported data types and values that do not fit.
 */
export function resolveReplyAttribute(name: string, value: string | number): ResolvedReplyAttribute {
  const shown = JSON.stringify(name.slice(0, 64));
  const definition = attributeByName(name);
  if (!definition) return { ok: false, code: "unknown_attribute", message: `unknown RADIUS attribute ${shown}` };
  if (definition.encrypt !== undefined) {
    return { ok: false, code: "encrypted_attribute", message: `${definition.name} needs encryption and cannot be a configured reply attribute` };
  }
  if (definition.vendor === undefined && REPLY_RESERVED.has(definition.type)) {
    return { ok: false, code: "unsupported_type", message: `${definition.name} is set by Portcullis itself and cannot be a configured reply attribute` };
  }
  if (!REPLY_DATA_TYPES.has(definition.dataType)) {
    return { ok: false, code: "unsupported_type", message: `${definition.name}: data type ${definition.dataType} is not supported in reply attributes` };
  }
  try {
    return { ok: true, attribute: encodeAttributeByName(definition.name, value), definition };
  } catch {
    return { ok: false, code: "bad_value", message: `${definition.name}: the value does not fit data type ${definition.dataType}` };
  }
}

/**
 * Standard attributes a configured reply may not carry: the request's own attributes and those
 * the codec, handler or engine set (User-Name 1, User-Password 2, CHAP-Password 3, Reply-Message 18,
 * State 24, Vendor-Specific 26 itself, Proxy-State 33, EAP-Message 79, Message-Authenticator 80).
 */
const REPLY_RESERVED: ReadonlySet<number> = new Set([1, 2, 3, 18, 24, 26, 33, 79, 80]);
