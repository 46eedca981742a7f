// Shared input checks for admin commands and user import: usernames, phone numbers, e-mail addresses.

import { parsePhoneNumberFromString, type CountryCode } from "libphonenumber-js";
import { normalizeUsername } from "../domain/identity.ts";

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
