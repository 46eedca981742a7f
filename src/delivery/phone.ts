// Destination numbers: E.164 validation with the configured region, the country/prefix allow-list
// with its number-type rule, and masking for logs.
//
// Two metadata sets of libphonenumber-js are used. Validity uses the default ("min") set, as the CLI,
// the admin API and the directory do when they store a number, so that a number accepted there is
// read the same way here. The number type (mobile, fixed line, premium rate…) needs the full ("max")
// set, which carries each type's number patterns; "min" has them for a few countries only. Only the
// delivery path loads "max" (about 150 KB of metadata), and delivery is loaded after RADIUS listens.

import { parsePhoneNumberFromString, type CountryCode } from "libphonenumber-js";
import { parsePhoneNumberFromString as parseWithTypes, type NumberType } from "libphonenumber-js/max";

/** A number that passed validation. */
export interface Destination {
  /** E.164: +46701234567. */
  e164: string;
  /** ISO 3166 alpha-2 country, or undefined for non-geographic numbers (+882…). */
  country: string | undefined;
  /** Country calling code without "+": "46". */
  callingCode: string;
}

/**
 * Parses `input` as a phone number: E.164 ("+46701234567"), or local format read in `region`
 * (ISO 3166 alpha-2; "" means only "+…" numbers are accepted). Returns undefined for anything that
 * is not a valid number, including over-long input and letters.
 */
export function parseDestination(input: string, region: string): Destination | undefined {
  const s = input.trim();
  if (s === "" || s.length > 32 || /[A-Za-z]/.test(s)) return undefined;
  if (!s.startsWith("+") && region === "") return undefined;
  const parsed = parsePhoneNumberFromString(s, region ? (region as CountryCode) : undefined);
  if (!parsed?.isValid()) return undefined;
  return { e164: parsed.number, country: parsed.country, callingCode: parsed.countryCallingCode };
}

/** The SMS destination allow-list: countries and E.164 prefixes. */
export interface AllowList {
  countries: readonly string[];
  prefixes: readonly string[];
}

/**
 * The number's type by libphonenumber's full metadata ("MOBILE", "FIXED_LINE",
 * "FIXED_LINE_OR_MOBILE", "PREMIUM_RATE", "TOLL_FREE", "SHARED_COST", "VOIP", "PERSONAL_NUMBER",
 * "PAGER", "UAN", "VOICEMAIL"), or undefined when no type's pattern matches it.
 */
export function numberType(d: Destination): NumberType {
  return parseWithTypes(d.e164)?.getType();
}

/** Types sent to by country: a mobile, or a number of a country whose plan does not tell mobiles from landlines (+1). */
const SMS_TYPES: ReadonlySet<NumberType> = new Set<NumberType>(["MOBILE", "FIXED_LINE_OR_MOBILE"]);

export type DestinationRefusal = { reason: "country_not_allowed" | "number_type_not_allowed"; detail: string };

/**
 * Why an SMS may not go to `d`, or undefined when it may:
 * - a number starting with an `allowed_prefixes` entry is allowed whatever its country and type
 *   (the operator named that range explicitly);
 * - otherwise its country must be in `allowed_countries` (else country_not_allowed), and its type
 *   MOBILE or FIXED_LINE_OR_MOBILE (else number_type_not_allowed).
 *
 * SMS pumping is paid by premium-rate, shared-cost and similar ranges, and fixed lines receive no
 * SMS: an approval link belongs on a mobile. A number whose type cannot be determined (valid by the
 * country's length rules but in no range the metadata knows: unallocated, reserved, or opened after
 * this build) is refused too: the rule cannot vouch for it, and odd ranges are what pumping uses.
 * An operator who knows such a range is mobile lists its prefix.
 */
export function destinationRefusal(d: Destination, allow: AllowList): DestinationRefusal | undefined {
  if (allow.prefixes.some((p) => d.e164.startsWith(p))) return undefined;
  if (d.country === undefined || !allow.countries.includes(d.country)) {
    return { reason: "country_not_allowed", detail: `destination country ${d.country ?? `+${d.callingCode}`} is not allowed` };
  }
  const type = numberType(d);
  if (type !== undefined && SMS_TYPES.has(type)) return undefined;
  const what = type === undefined ? "of unknown type" : `a ${type.toLowerCase().replaceAll("_", "-")} number`;
  return { reason: "number_type_not_allowed", detail: `destination is ${what}, not a mobile (list its prefix in allowed_prefixes to allow it)` };
}

/** True when destinationRefusal finds nothing against `d`. */
export function isAllowedDestination(d: Destination, allow: AllowList): boolean {
  return destinationRefusal(d, allow) === undefined;
}

/** "+46…67": country calling code and the last two digits, for logs. */
export function maskNumber(d: Destination): string {
  return `+${d.callingCode}…${d.e164.slice(-2)}`;
}

/** "…@example.com": the domain only, for logs. */
export function maskEmail(address: string): string {
  const at = address.lastIndexOf("@");
  return at < 0 ? "…" : `…${address.slice(at)}`;
}
