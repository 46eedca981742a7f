// Admin operations on TOTP/HOTP tokens: list, show, enrol (with the otpauth URI, shown once),
// assign, disable/enable, resync from two codes, remove, and PSKC/CSV import. Shared by
// `portcullis token …` and /api/admin/v1/tokens.

import {
  decodeBase32,
  generateSecret,
  MAX_SECRET_BYTES,
  MIN_SECRET_BYTES,
  OTPError,
  otpauthURI,
  parsePSKC,
  parseTokenCSV,
  RECOMMENDED_MIN_SECRET_BYTES,
  resyncHOTP,
  resyncTOTP,
  type ImportedToken,
  type PSKCOptions,
} from "../otp/index.ts";
import { StoreError, type NewToken, type Store, type Token, type TokenState, type User } from "../store/types.ts";
import type { AdminContext } from "./context.ts";
import { AdminError, invalid } from "./errors.ts";
import { newSerial } from "./user-import.ts";
import { findUser } from "./users.ts";
import { cleanUsername, HASH_ALGORITHMS, parseHashAlgorithm } from "./validate.ts";

/** A token as listed: never the seed. */
export interface TokenView {
  id: number;
  serial: string;
  kind: "totp" | "hotp";
  state: TokenState;
  user: string | null;
  digits: number;
  algorithm: string;
  period: number | null;
}

export function describeToken(t: Token, owner: string | null): TokenView {
  return { id: t.id, serial: t.serial, kind: t.kind, state: t.state, user: owner, digits: t.digits, algorithm: t.algorithm, period: t.kind === "totp" ? t.period : null };
}

async function ownerName(store: Store, t: Token): Promise<string | null> {
  return t.userId === null ? null : ((await store.users.findById(t.userId))?.username ?? null);
}

/** Tokens, of one user (by login name) and/or with one serial. Throws AdminError "not_found" for an unknown user. */
export async function listTokens(ctx: Pick<AdminContext, "config" | "store">, { user, serial }: { user?: string; serial?: string } = {}): Promise<TokenView[]> {
  const owner = user === undefined ? undefined : await findUser(ctx, user, "user");
  const [tokens, users] = await Promise.all([ctx.store.tokens.list(owner?.id), ctx.store.users.list()]);
  const names = new Map(users.map((u) => [u.id, u.username]));
  return tokens.filter((t) => serial === undefined || t.serial === serial).map((t) => describeToken(t, t.userId === null ? null : (names.get(t.userId) ?? null)));
}

/** The token with ID `id`. Throws AdminError("not_found"): "no token with ID …". */
export async function findToken(ctx: Pick<AdminContext, "store">, id: number): Promise<Token> {
  const token = await ctx.store.tokens.findById(id);
  if (!token) throw new AdminError("not_found", `no token with ID ${id}`, { field: "id" });
  return token;
}

/** The token with serial `serial`. Throws AdminError("not_found"): "no token with serial …". */
export async function findTokenBySerial(ctx: Pick<AdminContext, "store">, serial: string): Promise<Token> {
  const token = await ctx.store.tokens.findBySerial(serial);
  if (!token) throw new AdminError("not_found", `no token with serial ${serial}`, { field: "serial" });
  return token;
}

/** One token as listed. Throws like findToken. */
export async function showToken(ctx: Pick<AdminContext, "store">, id: number): Promise<TokenView> {
  const t = await findToken(ctx, id);
  return describeToken(t, await ownerName(ctx.store, t));
}

export interface EnrolTokenInput {
  /** The owner's login name. */
  user: string;
  kind?: "totp" | "hotp";
  /** Base32; generated (160 bits) when absent. */
  secret?: string;
  digits?: number;
  /** TOTP step in seconds (10-300). */
  period?: number;
  /** SHA1, SHA256 or SHA512 exactly. */
  algorithm?: string;
  /** HOTP initial counter. */
  counter?: number;
}

export interface EnrolledToken {
  token: Token;
  owner: User;
  /** The otpauth:// provisioning URI: it holds the seed; show it once. */
  uri: string;
  /** Weak but accepted input (a secret under 128 bits). */
  warnings: string[];
}

/**
 * Enrols a TOTP (default) or HOTP token for a user and records admin.token_enrolled; digits, period
 * and algorithm default to `[otp]`. Throws AdminError: "invalid" (field named), "not_found" (field
 * `user`) for an unknown user.
 */
export async function enrolToken(ctx: AdminContext, input: EnrolTokenInput): Promise<EnrolledToken> {
  const kind = input.kind ?? "totp";
  if (kind === "totp" && input.counter !== undefined) throw new AdminError("invalid", "{counter} applies to {hotp} tokens only", { field: "counter", expose: "absent for a TOTP token" });
  if (kind === "hotp" && input.period !== undefined) throw new AdminError("invalid", "{period} applies to {totp} tokens only", { field: "period", expose: "absent for an HOTP token" });
  const { otp } = ctx.config;
  const digits = input.digits ?? otp.default_digits;
  if (digits !== 6 && digits !== 8) throw invalid("digits", "must be 6 or 8");
  const period = input.period ?? otp.default_period;
  if (!Number.isInteger(period) || period < 10 || period > 300) throw invalid("period", "must be between 10 and 300");
  const algorithm = input.algorithm === undefined ? otp.default_algorithm : parseHashAlgorithm(input.algorithm);
  if (algorithm === undefined) throw invalid("algorithm", `must be ${HASH_ALGORITHMS.slice(0, -1).join(", ")} or ${HASH_ALGORITHMS.at(-1)}`);
  const counter = input.counter ?? 0;
  if (!Number.isSafeInteger(counter) || counter < 0) throw invalid("counter", "must be a whole number, 0 or more");
  const warnings: string[] = [];
  let secret: Uint8Array;
  if (input.secret !== undefined) {
    const bad = () => invalid("secret", `must be base32 (RFC 4648) of ${MIN_SECRET_BYTES} to ${MAX_SECRET_BYTES} bytes`);
    try {
      secret = decodeBase32(input.secret.replace(/[\s-]/g, ""));
    } catch {
      throw bad();
    }
    if (secret.length < MIN_SECRET_BYTES || secret.length > MAX_SECRET_BYTES) throw bad();
    if (secret.length < RECOMMENDED_MIN_SECRET_BYTES) warnings.push(`the secret is shorter than ${RECOMMENDED_MIN_SECRET_BYTES * 8} bits (RFC 4226 §4 R6); prefer a generated one`);
  } else {
    secret = generateSecret({ random: ctx.random });
  }
  const owner = await findUser(ctx, input.user, "user");
  const token = await ctx.audit.change(
    async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await ctx.store.tokens.add({ serial: newSerial(kind, ctx.random), userId: owner.id, kind, secret, algorithm, digits, period, counter, state: "active" });
        } catch (e) {
          // A random serial collided with an existing one: draw another.
          if (!(e instanceof StoreError && e.code === "conflict") || attempt >= 3) throw e;
        }
      }
    },
    (t) => ({ type: "admin.token_enrolled", user: owner.username, token: t.id, kind }),
  );
  const uri = otpauthURI({ kind, issuer: otp.issuer, account: owner.username, secret, algorithm, digits, period, counter });
  return { token, owner, uri, warnings };
}

/** Assigns `token` to the user named `user` (null: unassigns) and records admin.token_assigned. Throws AdminError "not_found" (field `user`). */
export async function assignToken(ctx: AdminContext, token: Token, user: string | null): Promise<{ token: Token; owner: User | null }> {
  const owner = user === null ? null : await findUser(ctx, user, "user");
  await ctx.audit.change(
    () => ctx.store.tokens.assign(token.id, owner?.id ?? null),
    () => ({ type: "admin.token_assigned", token: token.id, user: owner?.username ?? null }),
  );
  return { token: { ...token, userId: owner?.id ?? null }, owner };
}

/** Sets the state of token `id` (disabled, active) and records admin.token_state. Throws like findToken. */
export async function setTokenState(ctx: AdminContext, id: number, state: TokenState): Promise<Token> {
  const token = await findToken(ctx, id);
  await ctx.audit.change(
    () => ctx.store.tokens.setState(token.id, state),
    () => ({ type: "admin.token_state", token: token.id, state }),
  );
  return { ...token, state };
}

/**
 * Resynchronises token `id` from two consecutive codes (TOTP: the clock drift; HOTP: the counter)
 * and records admin.token_resynced. Throws AdminError: "not_found", "invalid" (a code of the wrong
 * length, field `code1` or `code2`), "conflict" when the codes are not consecutive (nothing changes).
 */
export async function resyncToken(ctx: AdminContext, id: number, code1: string, code2: string): Promise<{ token: Token; drift: number | null; counter: number | null }> {
  const token = await findToken(ctx, id);
  const shape = new RegExp(`^\\d{${token.digits}}$`);
  for (const [field, code] of [["code1", code1], ["code2", code2]] as const) {
    if (!shape.test(code)) throw new AdminError("invalid", `{code1} and {code2} must be ${token.digits}-digit codes`, { field, expose: `a ${token.digits}-digit code` });
  }
  const notConsecutive = () =>
    new AdminError("conflict", `the two codes are not consecutive codes of token ${token.id}; nothing changed`, { expose: "the two codes are not consecutive codes of this token; nothing changed" });
  const resynced = () => ({ type: "admin.token_resynced", token: token.id }) as const;
  if (token.kind === "totp") {
    const r = resyncTOTP(token, code1, code2, { now: ctx.now() });
    if (!r) throw notConsecutive();
    await ctx.audit.change(() => ctx.store.tokens.resync(token.id, { lastStep: r.lastStep, drift: r.drift }), resynced);
    return { token, drift: r.drift, counter: null };
  }
  const r = resyncHOTP(token, code1, code2);
  if (!r) throw notConsecutive();
  await ctx.audit.change(() => ctx.store.tokens.resync(token.id, { counter: r.counter }), resynced);
  return { token, drift: null, counter: r.counter };
}

/** Removes token `id` and records admin.token_removed. Returns it. Throws like findToken. */
export async function removeToken(ctx: AdminContext, id: number): Promise<Token> {
  const token = await findToken(ctx, id);
  const removed = await ctx.audit.change(
    () => ctx.store.tokens.remove(token.id),
    (ok) => (ok ? { type: "admin.token_removed", token: token.id } : null),
  );
  if (!removed) throw new AdminError("not_found", `no token with ID ${id}`, { field: "id" });
  return token;
}

/**
 * Imported tokens (PSKC/CSV) as store records: active, and assigned to the user their file names
 * (UserId / user column, normalised like a login name) when that user exists.
 */
export async function importedTokens(store: Store, imported: ImportedToken[], realms: "strip" | "keep"): Promise<{ tokens: NewToken[]; assigned: number; unknownOwners: number }> {
  const users = new Map((await store.users.list()).map((u) => [u.username, u.id]));
  let assigned = 0;
  let unknownOwners = 0;
  const tokens: NewToken[] = imported.map((t) => {
    let userId: number | null = null;
    if (t.userId) {
      const name = cleanUsername(t.userId, realms);
      userId = name ? (users.get(name) ?? null) : null;
      if (userId === null) unknownOwners++;
      else assigned++;
    }
    return { serial: t.serial, userId, kind: t.kind, secret: t.secret, algorithm: t.algorithm, digits: t.digits, period: t.period, counter: t.counter, state: "active" };
  });
  return { tokens, assigned, unknownOwners };
}

export interface ImportTokensInput {
  format: "pskc" | "csv";
  /** The PSKC XML (RFC 6030) or token CSV. */
  content: string;
  /** PSKC key protection: at most one of these. */
  preSharedKey?: Uint8Array;
  password?: string;
  privateKeyPem?: string;
}

/** What a token import did. */
export interface TokensImported {
  imported: number;
  /** Assigned to the user their file named. */
  assigned: number;
  /** Naming a user that does not exist (left unassigned). */
  unknownOwners: number;
  /** Weak but accepted input, one line each. */
  warnings: string[];
}

/** Where a long import reports progress: reading (parsing, decrypting) the file, then writing its tokens. */
export type TokenImportProgress = (phase: "reading" | "writing", done: number, total: number) => void;

/**
 * Imports tokens, all or nothing, assigning each to the user its file names when that user exists;
 * records admin.tokens_imported. Throws AdminError: "invalid" (key options that do not fit, a file
 * that does not parse or decrypt, no tokens: field `content`), "conflict" when a serial exists.
 *
 * Without `onProgress` the tokens are written in one transaction. With it they are written in
 * transactions of `chunkSize`, yielding to the event loop between them so that the process goes on
 * serving (and can answer "N of M" for a progress page); a failure part-way removes the tokens
 * already written, so the import is still all or nothing, but a login may see an imported token in
 * the meantime.
 */
export async function importTokens(ctx: AdminContext, input: ImportTokensInput, { onProgress, chunkSize = 500 }: { onProgress?: TokenImportProgress; chunkSize?: number } = {}): Promise<TokensImported> {
  const keyOptions = [input.preSharedKey, input.password, input.privateKeyPem].filter((x) => x !== undefined).length;
  if (keyOptions > 1) throw invalid("pskHex", "must be the only one of pskHex, password and privateKeyPem");
  if (input.format === "csv" && keyOptions > 0) throw invalid("format", "must be pskc when pskHex, password or privateKeyPem is given");
  const options: PSKCOptions = {};
  if (input.preSharedKey !== undefined) options.preSharedKey = input.preSharedKey;
  if (input.password !== undefined) options.password = input.password;
  if (input.privateKeyPem !== undefined) options.privateKeyPem = input.privateKeyPem;
  onProgress?.("reading", 0, 0);
  let imported: ImportedToken[];
  try {
    imported = input.format === "pskc" ? parsePSKC(input.content, options) : parseTokenCSV(input.content);
  } catch (e) {
    // OTPError messages never hold a seed, key or password (otp/errors.ts).
    if (e instanceof OTPError) throw new AdminError("invalid", e.message, { field: "content", expose: `a valid ${input.format === "pskc" ? "PSKC document" : "token CSV"} (${e.code})` });
    throw e;
  }
  if (imported.length === 0) throw new AdminError("invalid", "holds no tokens", { field: "content", expose: "at least one token" });
  const { tokens, assigned, unknownOwners } = await importedTokens(ctx.store, imported, ctx.config.radius.realms);
  const write = onProgress ? () => writeInChunks(ctx.store, tokens, Math.max(1, chunkSize), (done) => onProgress("writing", done, tokens.length)) : () => ctx.store.tokens.addMany(tokens);
  onProgress?.("writing", 0, tokens.length);
  try {
    await ctx.audit.change(write, (added) => ({ type: "admin.tokens_imported", count: added.length }));
  } catch (e) {
    if (e instanceof StoreError && e.code === "conflict") throw new AdminError("conflict", "a token serial already exists; nothing was imported", { expose: "a token serial exists; nothing was imported" });
    throw e;
  }
  const weak = tokens.filter((t) => t.secret.length < RECOMMENDED_MIN_SECRET_BYTES).length;
  const warnings = [
    ...(unknownOwners > 0 ? [`${unknownOwners} tokens name a user that does not exist; they were left unassigned`] : []),
    ...(weak > 0 ? [`${weak} secrets are shorter than ${RECOMMENDED_MIN_SECRET_BYTES * 8} bits (RFC 4226 §4 R6); replace those tokens when you can`] : []),
  ];
  return { imported: tokens.length, assigned, unknownOwners, warnings };
}

/** Writes `tokens` in transactions of `size`, yielding between them; on a failure removes what it wrote and rethrows. */
async function writeInChunks(store: Store, tokens: NewToken[], size: number, progress: (done: number) => void): Promise<Token[]> {
  const added: Token[] = [];
  try {
    for (let i = 0; i < tokens.length; i += size) {
      added.push(...(await store.tokens.addMany(tokens.slice(i, i + size))));
      progress(added.length);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } catch (e) {
    for (const t of added) await store.tokens.remove(t.id);
    throw e;
  }
  return added;
}
