// Destination numbers: E.164 validation with the configured region, the country/prefix allow-list, and masking for logs.

import { parsePhoneNumberFromString, type CountryCode } from "libphonenumber-js";

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

/** True when the number's country is listed or it starts with a listed prefix. */
export function isAllowedDestination(d: Destination, allow: AllowList): boolean {
  if (d.country !== undefined && allow.countries.includes(d.country)) return true;
  return allow.prefixes.some((p) => d.e164.startsWith(p));
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
