// User import (`user import FILE.csv`, POST /users/import): validate every row, hash plaintext
// passwords, then write all users in one transaction.
//
// Order matters for a running server: validation and argon2id hashing (the slow part) happen
// before the write transaction, so the database is locked only for the inserts, and a bad row
// anywhere means nothing is written.

import { randomBytes } from "node:crypto";
import { parseAuthType, type AuthType } from "../domain/auth-types.ts";
import { decodeBase32 } from "../otp/base32.ts";
import { MAX_SECRET_BYTES, MIN_SECRET_BYTES, RECOMMENDED_MIN_SECRET_BYTES } from "../otp/hotp.ts";
import { isValidSecretLength } from "../otp/imported-token.ts";
import { hashPassword, isPrehashed, passwordConcurrency } from "../runtime/password.ts";
import type { HashAlgorithm, NewToken, UserImportRow } from "../store/types.ts";
import { StoreError } from "../store/types.ts";
import { CSVError, parseCSV } from "../util/csv.ts";
import type { AdminContext } from "./context.ts";
import { AdminError } from "./errors.ts";
import { cleanUsername, HASH_ALGORITHMS, isEmail, normalizePhone, parseHashAlgorithm } from "./validate.ts";

export const USER_CSV_COLUMNS = [
  "username",
  "password",
  "type",
  "phone",
  "email",
  "totp_secret",
  "totp_algorithm",
  "totp_digits",
  "totp_period",
] as const;

/** A validation failure at a line of the file (field `csv.line.N`); the reason never repeats the field's value. */
export class ImportError extends AdminError {
  constructor(
    readonly line: number,
    readonly reason: string,
  ) {
    super("invalid", `line ${line}: ${reason}`, { field: `csv.line.${line}`, expose: reason });
    this.name = "ImportError";
  }
}

export type PasswordInput = { kind: "none" } | { kind: "hash"; value: string } | { kind: "plain"; value: string };

/** One row after validation: normalised and typed, ready to hash and write. */
export interface ValidatedUser {
  line: number;
  username: string;
  password: PasswordInput;
  type: AuthType;
  phone: string | null;
  email: string | null;
  totp: { secret: Uint8Array; algorithm: HashAlgorithm; digits: 6 | 8; period: number } | undefined;
}

export interface ValidateOptions {
  region: string;
  realms: "strip" | "keep";
  /** Defaults for totp_algorithm / totp_digits / totp_period when a secret is given without them. */
  defaults: { algorithm: HashAlgorithm; digits: 6 | 8; period: number };
  /** Called with the number of rows validated so far. */
  onProgress?: (done: number, total: number) => void;
}

const HASH_LIKE = /^\$(argon2|2[abxy]\$)/;

/**
 * Parses and validates a user CSV (header USER_CSV_COLUMNS, exactly). Checks every row:
 * username (normalised, unique within the file), type, phone (→ E.164), e-mail shape, base32
 * secret of MIN_SECRET_BYTES-MAX_SECRET_BYTES (10-64) bytes, algorithm, digits, period, and that a password is plaintext or a
 * well-formed argon2id/bcrypt hash.
 *
 * @throws ImportError naming the first bad line; CSVError for malformed CSV.
 */
export function validateUserCSV(text: string, options: ValidateOptions): ValidatedUser[] {
  const records = parseCSV(text);
  const header = records.shift();
  if (!header) throw new ImportError(1, "the file is empty; the first line must be the header " + USER_CSV_COLUMNS.join(","));
  const names = header.fields.map((f) => f.trim().toLowerCase());
  if (names.length !== USER_CSV_COLUMNS.length || names.some((n, i) => n !== USER_CSV_COLUMNS[i])) {
    throw new ImportError(header.line, `the header must be exactly ${USER_CSV_COLUMNS.join(",")}`);
  }
  const seen = new Map<string, number>();
  const out: ValidatedUser[] = [];
  const total = records.length;
  for (const [index, record] of records.entries()) {
    const row = validateRow(record.line, record.fields, options);
    const earlier = seen.get(row.username);
    if (earlier !== undefined) throw new ImportError(record.line, `username is a duplicate of line ${earlier} after normalisation`);
    seen.set(row.username, record.line);
    out.push(row);
    if (options.onProgress && (index % 1000 === 999 || index === total - 1)) options.onProgress(index + 1, total);
  }
  return out;
}

function validateRow(line: number, fields: string[], options: ValidateOptions): ValidatedUser {
  if (fields.length !== USER_CSV_COLUMNS.length) {
    throw new ImportError(line, `expected ${USER_CSV_COLUMNS.length} columns, found ${fields.length}`);
  }
  const [rawName, password, rawType, rawPhone, rawEmail, rawSecret, rawAlgorithm, rawDigits, rawPeriod] = fields.map((f, i) =>
    // Passwords are taken byte for byte; every other column is trimmed.
    i === 1 ? f : f.trim(),
  ) as [string, string, string, string, string, string, string, string, string];
  const fail = (reason: string): never => {
    throw new ImportError(line, reason);
  };

  const username = cleanUsername(rawName, options.realms) ?? fail("username must not be empty, longer than 253 characters or contain control characters");

  let pw: PasswordInput = { kind: "none" };
  if (password !== "") {
    if (isPrehashed(password)) pw = { kind: "hash", value: password };
    else if (HASH_LIKE.test(password)) fail("password looks like a hash but is not a well-formed argon2id or bcrypt ($2a$/$2b$/$2y$) value");
    else pw = { kind: "plain", value: password };
  }

  const type: AuthType = rawType === "" ? "totp" : (parseAuthType(rawType) ?? fail("type must be an authentication type name or number 1-11"));

  let phone: string | null = null;
  if (rawPhone !== "") {
    phone =
      normalizePhone(rawPhone, options.region) ??
      fail(options.region ? "phone must be a valid phone number" : "phone must be a valid phone number in E.164 form (+46701234567)");
  }

  let email: string | null = null;
  if (rawEmail !== "") email = isEmail(rawEmail) ? rawEmail : fail("email must be an e-mail address");

  let totp: ValidatedUser["totp"];
  if (rawSecret === "") {
    if (rawAlgorithm !== "" || rawDigits !== "" || rawPeriod !== "") fail("totp_algorithm, totp_digits and totp_period need a totp_secret");
  } else {
    let secret: Uint8Array | undefined;
    try {
      secret = decodeBase32(rawSecret.replace(/[\s-]/g, ""));
    } catch {
      secret = undefined;
    }
    if (!secret || !isValidSecretLength(secret)) fail(`totp_secret must be base32 (RFC 4648) of ${MIN_SECRET_BYTES} to ${MAX_SECRET_BYTES} bytes`);
    const algorithm = rawAlgorithm === "" ? options.defaults.algorithm : (parseHashAlgorithm(rawAlgorithm) ?? fail(`totp_algorithm must be ${HASH_ALGORITHMS.slice(0, -1).join(", ")} or ${HASH_ALGORITHMS.at(-1)}`));
    const digits = rawDigits === "" ? options.defaults.digits : rawDigits === "6" ? 6 : rawDigits === "8" ? 8 : fail("totp_digits must be 6 or 8");
    const period = rawPeriod === "" ? options.defaults.period : /^\d{1,3}$/.test(rawPeriod) ? Number(rawPeriod) : NaN;
    if (!(period >= 10 && period <= 300)) fail("totp_period must be a number of seconds between 10 and 300");
    totp = { secret: secret!, algorithm: algorithm as HashAlgorithm, digits: digits as 6 | 8, period };
  }
  return { line, username, password: pw, type, phone, email, totp };
}

/** A new token serial: "TOTP" and 12 random hex digits (48 bits, so 100,000 imports do not collide). */
export function newSerial(kind: "totp" | "hotp", random: (n: number) => Uint8Array = (n) => randomBytes(n)): string {
  return kind.toUpperCase() + Buffer.from(random(6)).toString("hex").toUpperCase();
}

/**
 * Hashes every plaintext password (argon2id, at most `concurrency` at a time) and builds the
 * rows for UserRepo.importMany. Pre-hashed values are kept as they are.
 */
export async function prepareImportRows(
  users: ValidatedUser[],
  {
    hash = hashPassword,
    concurrency = passwordConcurrency(),
    onProgress,
    serial = () => newSerial("totp"),
  }: {
    hash?: (plain: string) => Promise<string>;
    concurrency?: number;
    onProgress?: (done: number, total: number) => void;
    serial?: () => string;
  } = {},
): Promise<UserImportRow[]> {
  const hashes: (string | null)[] = users.map((u) => (u.password.kind === "hash" ? u.password.value : null));
  const plain = users.flatMap((u, i) => (u.password.kind === "plain" ? [i] : []));
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < plain.length) {
      const i = plain[next++]!;
      const user = users[i]!;
      if (user.password.kind === "plain") hashes[i] = await hash(user.password.value);
      done++;
      onProgress?.(done, plain.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, plain.length)) }, worker));

  const serials = new Set<string>();
  return users.map((u, i) => {
    const tokens: NewToken[] = [];
    if (u.totp) {
      let s = serial();
      while (serials.has(s)) s = serial();
      serials.add(s);
      tokens.push({ serial: s, userId: null, kind: "totp", secret: u.totp.secret, algorithm: u.totp.algorithm, digits: u.totp.digits, period: u.totp.period, state: "active" });
    }
    return {
      user: { username: u.username, passwordHash: hashes[i] ?? null, type: u.type, phone: u.phone, email: u.email, disabled: false, expiresAt: null, directory: null, externalId: null, directoryPhone: null },
      tokens,
    };
  });
}

/** What an import did. */
export interface UsersImported {
  imported: number;
  /** Users that came with a TOTP token. */
  withToken: number;
  /** Plaintext passwords hashed (argon2id). */
  hashed: number;
  /** Weak but accepted input (short TOTP secrets), one line each. */
  warnings: string[];
}

/** Where a long import reports progress: the phase and how far it is. */
export type ImportProgress = (phase: "validating" | "hashing" | "writing", done: number, total: number) => void;

/**
 * Imports the user CSV `text`, all or nothing: a bad row, an existing username or a store failure
 * leaves the database unchanged. Records admin.users_imported. Throws AdminError: "invalid" for a
 * bad row (an ImportError, field `csv.line.N`) or malformed CSV (field `csv`), "conflict" when a
 * user (field `csv.line.N`) or a token serial exists.
 */
export async function importUsers(ctx: AdminContext, text: string, { onProgress }: { onProgress?: ImportProgress } = {}): Promise<UsersImported> {
  const { config, store } = ctx;
  let users: ValidatedUser[];
  try {
    users = validateUserCSV(text, {
      region: config.region,
      realms: config.radius.realms,
      defaults: { algorithm: config.otp.default_algorithm, digits: config.otp.default_digits, period: config.otp.default_period },
      onProgress: (d, t) => onProgress?.("validating", d, t),
    });
  } catch (e) {
    if (e instanceof CSVError) throw new AdminError("invalid", e.message, { field: "csv", expose: "well-formed CSV (RFC 4180)" });
    throw e;
  }
  const existing = new Set((await store.users.list()).map((u) => u.username));
  const clash = users.find((u) => existing.has(u.username));
  if (clash) {
    throw new AdminError("conflict", `line ${clash.line}: user already exists; nothing was imported`, { field: `csv.line.${clash.line}`, expose: `line ${clash.line}: the user exists; nothing was imported` });
  }
  const rows = await prepareImportRows(users, { onProgress: (d, t) => onProgress?.("hashing", d, t) });
  try {
    await ctx.audit.change(
      () => store.users.importMany(rows, (d) => onProgress?.("writing", d, rows.length)),
      () => ({ type: "admin.users_imported", count: rows.length }),
    );
  } catch (e) {
    if (e instanceof StoreError && e.code === "conflict") throw new AdminError("conflict", "a user or token serial exists; nothing was imported", { expose: "a user or token serial exists; nothing was imported" });
    throw e;
  }
  const weak = users.filter((u) => u.totp && u.totp.secret.length < RECOMMENDED_MIN_SECRET_BYTES).length;
  const warnings =
    weak > 0 ? [`${weak} TOTP secrets are shorter than ${RECOMMENDED_MIN_SECRET_BYTES * 8} bits (RFC 4226 §4 R6); re-enrol those users with new tokens when you can`] : [];
  return {
    imported: rows.length,
    withToken: rows.filter((r) => r.tokens.length > 0).length,
    hashed: users.filter((u) => u.password.kind === "plain").length,
    warnings,
  };
}
