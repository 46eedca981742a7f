// Input rules of the admin operations, the same for every caller: usernames, phone numbers, e-mail
// addresses, names, expiry dates and HMAC algorithm names.

import { parsePhoneNumberFromString, type CountryCode } from "libphonenumber-js";
import { normalizeUsername } from "../domain/identity.ts";
import type { HashAlgorithm } from "../store/types.ts";
import { invalid } from "./errors.ts";

/**
 * Normalises a login name as the RADIUS path will (NFC, case, realm per `realms`).
 * Returns undefined when it is empty afterwards, too long, or holds control characters.
 */
export function cleanUsername(name: string, realms: "strip" | "keep"): string | undefined {
  const s = normalizeUsername(name, { realms });
  // eslint-disable-next-line no-control-regex
  if (s === "" || s.length > 253 || /[\u0000-\u001f\u007f]/.test(s)) return undefined;
  return s;
}

/**
 * Normalises a phone number to E.164 with libphonenumber-js. A number in local format is read in
 * `region` (ISO 3166 alpha-2); with an empty region only "+…" numbers are accepted.
 * Returns undefined when it is not a valid number.
 */
export function normalizePhone(input: string, region: string): string | undefined {
  const s = input.trim();
  if (s === "") return undefined;
  if (!s.startsWith("+") && region === "") return undefined;
  const parsed = parsePhoneNumberFromString(s, region ? (region as CountryCode) : undefined);
  return parsed?.isValid() ? parsed.number : undefined;
}

/** True for a plausible single e-mail address (local@domain.tld, no spaces, at most 254 characters). */
export function isEmail(s: string): boolean {
  return s.length <= 254 && /^[^\s@<>(),;:"]+@[^\s@<>(),;:"]+\.[^\s@<>(),;:".]{2,}$/.test(s);
}

export const PHONE_RULE = "must be a valid phone number in E.164 form (+46701234567), or local form when `region` is set";

/** A client, API key or endpoint profile name: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit. */
export const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The HMAC algorithms of a token, by their documented names (as in `[otp] default_algorithm`). */
export const HASH_ALGORITHMS: readonly HashAlgorithm[] = ["SHA1", "SHA256", "SHA512"];

/**
 * `text` when it is exactly one of HASH_ALGORITHMS, else undefined. One rule for every caller:
 * no case folding and no "SHA-256" spelling, as the API, the configuration and the docs name them.
 */
export function parseHashAlgorithm(text: string): HashAlgorithm | undefined {
  return (HASH_ALGORITHMS as readonly string[]).includes(text) ? (text as HashAlgorithm) : undefined;
}

/** The normalised login name in `field`; throws AdminError("invalid") when it is empty, too long or holds control characters. */
export function requireUsername(raw: string, realms: "strip" | "keep", field = "username"): string {
  const name = cleanUsername(raw, realms);
  if (name === undefined) throw invalid(field, "must be a login name of 1-253 characters without control characters");
  return name;
}

/**
 * Parses an expiry day `YYYY-MM-DD` in `field`: valid through that day (UTC), refused from the next
 * midnight UTC; returns that instant (unix ms). Throws AdminError("invalid") for a malformed, unreal
 * or past date.
 */
export function parseExpiry(text: string, now: number, field = "expires"): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!m) throw invalid(field, "must be a date YYYY-MM-DD");
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const start = Date.UTC(y, mo - 1, d);
  const check = new Date(start);
  if (check.getUTCFullYear() !== y || check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d) throw invalid(field, "is not a calendar date");
  const end = start + 86_400_000;
  if (end <= now) throw invalid(field, "is in the past");
  return end;
}
