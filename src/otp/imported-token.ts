// The token record produced by PSKC and CSV imports, and the checks both importers share.

import { MAX_SECRET_BYTES, MIN_SECRET_BYTES, type OTPAlgorithm } from "./hotp.ts";

/** One token read from an import file; the CLI turns it into a store NewToken. */
export interface ImportedToken {
  serial: string;
  kind: "totp" | "hotp";
  /** Raw seed bytes. */
  secret: Uint8Array;
  algorithm: OTPAlgorithm;
  digits: 6 | 8;
  /** TOTP step in seconds (30 when the file says nothing; kept for HOTP too). */
  period: number;
  /** HOTP next counter (0 when the file says nothing; 0 for TOTP). */
  counter: number;
  /** PSKC UserId, or the CSV `user` column: the login name to assign the token to. */
  userId?: string;
}

/** A serial is printable text without control characters, 1-64 characters. */
export function isValidSerial(s: string): boolean {
  // eslint-disable-next-line no-control-regex
  return s.length >= 1 && s.length <= 64 && !/[\u0000-\u001f\u007f]/.test(s);
}

/** RFC 4226 §4 R6 lower bound; 64 bytes is the RFC 6238 SHA-512 seed size. */
export function isValidSecretLength(secret: Uint8Array): boolean {
  return secret.length >= MIN_SECRET_BYTES && secret.length <= MAX_SECRET_BYTES;
}

export const SECRET_LENGTH_RULE = `secret must be ${MIN_SECRET_BYTES}-${MAX_SECRET_BYTES} bytes`;
