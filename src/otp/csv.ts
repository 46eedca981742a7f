// CSV token import (RFC 4180 quoting) for seeds exported from other OTP servers.
//
// Header (order free, names case-insensitive; every column but `serial` and the secret optional):
//   serial,secret,kind,algorithm,digits,period,counter,user
// The secret encoding is never guessed — "3132…" is valid hex *and* valid base32. Either:
//   - the column is named `secret` and every value carries a prefix: `hex:3132…` or `base32:GEZD…`;
//   - or the column is named `secret_hex` / `secret_base32`, and values are bare.
// Defaults: kind totp, algorithm SHA1, digits 6, period 30, counter 0, no user.
// Errors name the line where the record starts ("line 7: digits must be 6 or 8"), never a value
// of the secret column.

import { CSVError, parseCSV, type CSVRecord } from "../util/csv.ts";
import { decodeBase32 } from "./base32.ts";
import { OTPError } from "./errors.ts";
import type { OTPAlgorithm } from "./hotp.ts";
import { isValidSecretLength, isValidSerial, SECRET_LENGTH_RULE, type ImportedToken } from "./imported-token.ts";

const COLUMNS = ["serial", "secret", "secret_hex", "secret_base32", "kind", "algorithm", "digits", "period", "counter", "user"] as const;
type Column = (typeof COLUMNS)[number];

function fail(line: number, message: string): never {
  throw new OTPError("csv_format", `line ${line}: ${message}`);
}

/** RFC 4180 records with the line each starts on; a malformed file becomes OTPError("csv_format"). */
function records(text: string): CSVRecord[] {
  try {
    return parseCSV(text);
  } catch (err) {
    if (err instanceof CSVError) throw new OTPError("csv_format", err.message);
    throw err;
  }
}

function decodeHex(s: string, line: number): Uint8Array {
  const compact = s.replace(/[\s:]/g, "");
  if (compact.length === 0 || compact.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(compact)) fail(line, "secret is not valid hex");
  return new Uint8Array(Buffer.from(compact, "hex"));
}

function decodeB32(s: string, line: number): Uint8Array {
  try {
    const out = decodeBase32(s);
    if (out.length === 0) throw new OTPError("bad_secret");
    return out;
  } catch {
    fail(line, "secret is not valid base32");
  }
}

function decodeSecret(value: string, column: "secret" | "secret_hex" | "secret_base32", line: number): Uint8Array {
  const v = value.trim();
  if (column === "secret_hex") return decodeHex(v, line);
  if (column === "secret_base32") return decodeB32(v, line);
  const m = /^(hex|base32):(.*)$/is.exec(v);
  if (!m) fail(line, 'secret needs a "hex:" or "base32:" prefix (or name the column secret_hex / secret_base32)');
  return m[1]!.toLowerCase() === "hex" ? decodeHex(m[2]!, line) : decodeB32(m[2]!, line);
}

function int(value: string, line: number, name: string, min: number, max: number): number {
  if (!/^\d{1,16}$/.test(value)) fail(line, `${name} must be an integer`);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min || n > max) fail(line, `${name} must be between ${min} and ${max}`);
  return n;
}

/**
 * Parses a token CSV (format in the file comment). Throws OTPError("csv_format") with the line
 * number on the first bad header, record, value or duplicate serial. The whole file is checked
 * before anything is returned, so callers can import all-or-nothing.
 */
export function parseTokenCSV(text: string): ImportedToken[] {
  const rows = records(text);
  const header = rows.shift();
  if (!header) fail(1, "empty file: a header line is required");
  const index = new Map<Column, number>();
  header.fields.forEach((raw, i) => {
    const name = raw.trim().toLowerCase() as Column;
    if (!(COLUMNS as readonly string[]).includes(name)) fail(header.line, `unknown column "${raw.trim().slice(0, 32)}"`);
    if (index.has(name)) fail(header.line, `duplicate column ${name}`);
    index.set(name, i);
  });
  const secretColumns = (["secret", "secret_hex", "secret_base32"] as const).filter((c) => index.has(c));
  if (!index.has("serial")) fail(header.line, "a serial column is required");
  if (secretColumns.length !== 1) fail(header.line, "exactly one of secret, secret_hex, secret_base32 is required");
  const secretColumn = secretColumns[0]!;

  const out: ImportedToken[] = [];
  const serials = new Set<string>();
  for (const { line, fields } of rows) {
    if (fields.length !== header.fields.length) fail(line, `expected ${header.fields.length} fields, found ${fields.length}`);
    const get = (c: Column): string => {
      const i = index.get(c);
      return i === undefined ? "" : fields[i]!.trim();
    };
    const serial = get("serial");
    if (!isValidSerial(serial)) fail(line, "serial must be 1-64 printable characters");
    if (serials.has(serial)) fail(line, `duplicate serial ${serial}`);
    const secret = decodeSecret(get(secretColumn), secretColumn, line);
    if (!isValidSecretLength(secret)) fail(line, SECRET_LENGTH_RULE);

    const kindRaw = get("kind").toLowerCase() || "totp";
    if (kindRaw !== "totp" && kindRaw !== "hotp") fail(line, "kind must be totp or hotp");
    const algRaw = get("algorithm").toUpperCase().replace("-", "") || "SHA1";
    if (algRaw !== "SHA1" && algRaw !== "SHA256" && algRaw !== "SHA512") fail(line, "algorithm must be SHA1, SHA256 or SHA512");
    const digitsRaw = get("digits") || "6";
    if (digitsRaw !== "6" && digitsRaw !== "8") fail(line, "digits must be 6 or 8");
    const period = get("period") === "" ? 30 : int(get("period"), line, "period", 1, 86_400);
    const counter = get("counter") === "" ? 0 : int(get("counter"), line, "counter", 0, Number.MAX_SAFE_INTEGER);
    if (kindRaw === "totp" && counter !== 0) fail(line, "counter applies to hotp tokens only");
    const user = get("user");

    serials.add(serial);
    out.push({
      serial,
      kind: kindRaw,
      secret,
      algorithm: algRaw as OTPAlgorithm,
      digits: digitsRaw === "6" ? 6 : 8,
      period,
      counter,
      ...(user !== "" ? { userId: user } : {}),
    });
  }
  return out;
}
