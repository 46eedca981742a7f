// SMS one-time codes: their formats, a uniform generator (rejection sampling over random bytes), the
// keyed hash the store keeps, and the message template.

import { createHmac } from "node:crypto";
import { stripUnsafeDisplayText } from "../util/display-text.ts";

/** The kinds of code a client or profile may ask for. */
export type SmsCodeAlphabet = "numeric" | "alphabetic" | "alphanumeric";

export const SMS_CODE_ALPHABET_NAMES: readonly SmsCodeAlphabet[] = ["numeric", "alphabetic", "alphanumeric"];

/**
 * The characters of each kind. Letters are upper case only (a code is compared after upper-casing
 * what was typed), and the letters and digits that are read as one another are left out:
 * - no I, L or O (I and L look like 1, O like 0, in many fonts and on phone keyboards' suggestions);
 * - `alphanumeric` also has no 0 or 1 (the other half of those pairs).
 * What remains of A-Z is 23 letters; with 2-9 it is 31 characters. Numeric codes keep every digit:
 * without letters nothing can be mistaken for one.
 */
export const SMS_CODE_ALPHABETS: Readonly<Record<SmsCodeAlphabet, string>> = {
  numeric: "0123456789",
  alphabetic: "ABCDEFGHJKMNPQRSTUVWXYZ",
  alphanumeric: "23456789ABCDEFGHJKMNPQRSTUVWXYZ",
};

export const SMS_CODE_MIN_LENGTH = 4;
export const SMS_CODE_MAX_LENGTH = 12;

export interface SmsCodeFormat {
  alphabet: SmsCodeAlphabet;
  /** SMS_CODE_MIN_LENGTH..SMS_CODE_MAX_LENGTH characters. */
  length: number;
}

/** Six digits, as every phone's code autofill expects. */
export const DEFAULT_SMS_CODE_FORMAT: SmsCodeFormat = { alphabet: "numeric", length: 6 };

/** Rounds of random bytes before a source that keeps returning only rejected bytes is declared broken. */
const MAX_ROUNDS = 64;

/**
 * A fresh code in `format`, each character drawn uniformly from its alphabet: a random byte b is
 * used only when b < 256 - (256 mod n), as b mod n, and drawn again otherwise, so that every
 * character has the same chance (b mod n alone would favour the first 256 mod n characters).
 *
 * @throws TypeError for a length outside 4-12 or an unknown alphabet; Error when `random` returns no
 *   bytes or nothing but rejected bytes for MAX_ROUNDS rounds (a broken source, never a real one).
 */
export function generateSmsCode(format: SmsCodeFormat, random: (n: number) => Uint8Array): string {
  const chars = SMS_CODE_ALPHABETS[format.alphabet];
  if (chars === undefined) throw new TypeError("unknown SMS code alphabet");
  if (!Number.isInteger(format.length) || format.length < SMS_CODE_MIN_LENGTH || format.length > SMS_CODE_MAX_LENGTH) {
    throw new TypeError(`an SMS code must be ${SMS_CODE_MIN_LENGTH}-${SMS_CODE_MAX_LENGTH} characters long`);
  }
  const n = chars.length;
  const limit = 256 - (256 % n);
  let out = "";
  for (let round = 0; round < MAX_ROUNDS; round++) {
    // Exactly the bytes still needed: none is drawn and thrown away, and a rejected byte costs one
    // more round (at most 8 in 256 bytes are rejected, for the 31-character alphabet).
    const bytes = random(format.length - out.length);
    if (bytes.length === 0) throw new Error("the random source returned no bytes");
    for (const b of bytes) {
      if (b >= limit) continue;
      out += chars[b % n];
      if (out.length === format.length) return out;
    }
  }
  throw new Error("the random source returned only rejected bytes");
}

/**
 * What a user typed, as it is hashed: surrounding and inner spaces and hyphens removed ("123 456",
 * "ABC-DEF"), letters upper-cased.
 */
export function normalizeSmsCode(typed: string): string {
  return typed.replace(/[\s-]+/g, "").toUpperCase();
}

/** What a code is bound to: the challenge State (its SHA-256 hex, as the challenge's ID), the client and the user. */
export interface SmsCodeBinding {
  state: string;
  client: string;
  user: string;
}

/**
 * HMAC-SHA-256 (hex) under the server secret of the code and its binding. A database dump alone
 * then gives nothing to brute-force offline: the secret is sealed under the key kept outside the
 * database. The binding is part of the input, so a row copied to another State, client or user does
 * not verify there. Fields are separated by NUL, which none of them can hold unnoticed (the code is
 * normalised, the State is hex).
 */
export function hashSmsCode(secret: Uint8Array, binding: SmsCodeBinding, code: string): string {
  return createHmac("sha256", secret).update(`sms-code\u0000${binding.state}\u0000${binding.client}\u0000${binding.user}\u0000${normalizeSmsCode(code)}`, "utf8").digest("hex");
}

/** The built-in message: the code, and that it must not be shared (people are talked into reading codes out). */
export const DEFAULT_SMS_CODE_TEMPLATE = "Your sign-in code is {code}. Do not share it with anyone.";

/** Longest client label put into a message (characters); longer is cut. */
export const SMS_CODE_CLIENT_MAX = 32;

/** True when `template` holds `{code}` (the config check; without it the message would not carry the code). */
export function isSmsCodeTemplate(template: string): boolean {
  return template.includes("{code}");
}

/**
 * The message for `code`: `template` with every `{code}` replaced by the code and every `{client}`
 * by `client` (cleaned and cut to SMS_CODE_CLIENT_MAX; "" when undefined). No other placeholder
 * exists: a message never carries the username or the password. Characters refused in displayed
 * texts are removed (the template was checked at config load; this covers the client label).
 * A template without `{code}` gets the code appended.
 */
export function smsCodeText(template: string, code: string, client?: string): string {
  const label = [...stripUnsafeDisplayText(client ?? "").replace(/[\t\r\n]/g, " ").trim()].slice(0, SMS_CODE_CLIENT_MAX).join("");
  const clean = stripUnsafeDisplayText(template);
  // One pass, so that a client label holding "{code}" stays text.
  const text = clean.replace(/\{(code|client)\}/g, (_m, name: string) => (name === "code" ? code : label));
  return isSmsCodeTemplate(clean) ? text : `${text.trimEnd()} ${code}`;
}
