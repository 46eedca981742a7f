// Active Directory specifics: bind sub-codes, account status from userAccountControl & co., unicodePwd, GUID/SID formats.
//
// Pure functions over what ldapts hands back (strings, string arrays, Buffers); no I/O. The LDAP
// directory (ldap/index.ts) calls them when the profile talks to AD or Samba AD.
//
// Sources: [MS-ADTS] §2.2.16 (userAccountControl bits), §3.1.1.4.5.17 (msDS-User-Account-Control-
// Computed), §3.1.1.3.1.5 (unicodePwd: delete old + add new is a user change, replace is a reset);
// [MS-DTYP] §2.3.4 (GUID packet representation), §2.4.2 (SID binary form), §2.3.3 (FILETIME);
// [MS-ERREF] §2.2 (Win32 error codes: 0x52e ERROR_LOGON_FAILURE, 0x773 ERROR_PASSWORD_MUST_CHANGE …).

import type { AccountStatus, BindFailure } from "../types.ts";

/** userAccountControl bits ([MS-ADTS] §2.2.16). */
export const UF = {
  ACCOUNTDISABLE: 0x2,
  LOCKOUT: 0x10,
  NORMAL_ACCOUNT: 0x200,
  DONT_EXPIRE_PASSWD: 0x10000,
  PASSWORD_EXPIRED: 0x800000,
} as const;

/**
 * The attributes findUser must request on AD, on top of the profile's phone/email/type/token
 * attributes. objectGUID and objectSid are binary: request them with `explicitBufferAttributes`
 * (see AD_BINARY_ATTRIBUTES). msDS-User-Account-Control-Computed is constructed: AD returns it
 * only when asked by name, and it is the only reliable source for "locked now" and
 * "password expired now" (it applies lockoutDuration and maxPwdAge).
 */
export const AD_USER_ATTRIBUTES: string[] = [
  "objectGUID",
  "objectSid",
  "sAMAccountName",
  "userPrincipalName",
  "userAccountControl",
  "msDS-User-Account-Control-Computed",
  "accountExpires",
  "pwdLastSet",
  "lockoutTime",
  "primaryGroupID",
];

/** Attributes ldapts must return as Buffers (pass as `explicitBufferAttributes`). */
export const AD_BINARY_ATTRIBUTES: string[] = ["objectGUID", "objectSid", "tokenGroups"];

/** Windows FILETIME (100 ns ticks since 1601-01-01 UTC) of the Unix epoch ([MS-DTYP] §2.3.3). */
const FILETIME_UNIX_EPOCH = 116444736000000000n;
/** accountExpires = 0x7FFFFFFFFFFFFFFF means "never", as does 0 ([MS-ADA1] Account-Expires). */
const FILETIME_NEVER = 0x7fffffffffffffffn;

/** FILETIME (decimal string or bigint, as AD returns it) → Unix milliseconds. Throws RangeError on a non-integer string. */
export function filetimeToUnixMs(filetime: string | bigint): number {
  const ticks = typeof filetime === "bigint" ? filetime : parseBigInt(filetime);
  if (ticks === undefined) throw new RangeError("FILETIME must be a decimal integer");
  return Number((ticks - FILETIME_UNIX_EPOCH) / 10000n);
}

/** Unix milliseconds → FILETIME as the decimal string AD stores (for accountExpires, in tests and seeding). */
export function unixMsToFiletime(ms: number): string {
  return (BigInt(Math.trunc(ms)) * 10000n + FILETIME_UNIX_EPOCH).toString();
}

/** The AD bind sub-codes ("data 52e" in the diagnostic message), [MS-ERREF] §2.2 Win32 error values. */
const BIND_SUBCODES: Record<string, BindFailure> = {
  "525": "bad_credentials", // ERROR_NO_SUCH_USER: reported like a wrong password (no user enumeration)
  "52e": "bad_credentials", // ERROR_LOGON_FAILURE
  "530": "not_permitted_time", // ERROR_INVALID_LOGON_HOURS
  "531": "not_permitted_workstation", // ERROR_INVALID_WORKSTATION
  "532": "password_expired", // ERROR_PASSWORD_EXPIRED
  "533": "disabled", // ERROR_ACCOUNT_DISABLED
  "701": "account_expired", // ERROR_ACCOUNT_EXPIRED
  "773": "must_change", // ERROR_PASSWORD_MUST_CHANGE
  "775": "locked", // ERROR_ACCOUNT_LOCKED_OUT
};

/**
 * Maps the diagnostic message of a failed AD simple bind (result 49, invalidCredentials) to a
 * BindFailure, e.g. "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error,
 * data 52e, v4563" → "bad_credentials". ldapts appends " Code: 0x31" to the message; that is fine.
 * Returns undefined when the message carries no known sub-code (the caller then treats a result 49
 * as bad_credentials). Never throws.
 */
export function parseADBindError(diagnosticMessage: string): BindFailure | undefined {
  const match = /\bdata ([0-9a-f]{1,8})\b/i.exec(diagnosticMessage);
  if (!match) return undefined;
  const code = match[1]!.toLowerCase().replace(/^0+(?=.)/, "");
  return BIND_SUBCODES[code];
}

/**
 * Account status from an AD user entry without a bind, so that flows with no password
 * (`--first-factor none`) still refuse disabled, locked and expired accounts.
 * Precedence follows what a bind would report: disabled (533), locked (775), account expired (701),
 * must change (773, pwdLastSet = 0), password expired (532).
 * `now` is Unix milliseconds. Values may be string, string[] or Buffer (as ldapts returns them);
 * absent or unparsable attributes count as "not set". Never throws.
 */
export function adAccountStatus(entry: Record<string, unknown>, now: number): AccountStatus {
  const uac = intAttribute(entry, "userAccountControl") ?? 0n;
  const computedRaw = intAttribute(entry, "msDS-User-Account-Control-Computed");
  const computed = computedRaw ?? 0n;
  const has = (flags: bigint, bit: number): boolean => (flags & BigInt(bit)) !== 0n;

  if (has(uac, UF.ACCOUNTDISABLE)) return "disabled";

  // The computed attribute applies lockoutDuration; without it, a non-zero lockoutTime is taken as
  // locked (conservative: AD clears lockoutTime only at the next successful logon or an unlock).
  const lockoutTime = intAttribute(entry, "lockoutTime") ?? 0n;
  if (has(uac, UF.LOCKOUT) || has(computed, UF.LOCKOUT) || (computedRaw === undefined && lockoutTime > 0n)) return "locked";

  const accountExpires = intAttribute(entry, "accountExpires");
  if (accountExpires !== undefined && accountExpires !== 0n && accountExpires < FILETIME_NEVER) {
    if (filetimeToUnixMs(accountExpires) <= now) return "account_expired";
  }

  const pwdLastSet = intAttribute(entry, "pwdLastSet");
  if (pwdLastSet === 0n) return "must_change";

  if (has(uac, UF.PASSWORD_EXPIRED) || has(computed, UF.PASSWORD_EXPIRED)) return "password_expired";
  return "ok";
}

/**
 * The unicodePwd value: the password in double quotes, UTF-16LE ([MS-ADTS] §3.1.1.3.1.5.1).
 * AD accepts it only over an encrypted connection (LDAPS or StartTLS).
 */
export function encodeUnicodePwd(password: string): Buffer {
  return Buffer.from(`"${password}"`, "utf16le");
}

/**
 * objectGUID bytes → the display form AD tools show, lowercase: the first three fields are
 * little-endian, the last two big-endian ([MS-DTYP] §2.3.4.2). Throws RangeError unless 16 bytes.
 */
export function formatGUID(bytes: Buffer): string {
  if (bytes.length !== 16) throw new RangeError(`objectGUID must be 16 bytes, got ${bytes.length}`);
  const hex = (from: number, to: number, reverse: boolean): string => {
    const part = Array.from(bytes.subarray(from, to));
    if (reverse) part.reverse();
    return part.map((b) => b.toString(16).padStart(2, "0")).join("");
  };
  return `${hex(0, 4, true)}-${hex(4, 6, true)}-${hex(6, 8, true)}-${hex(8, 10, false)}-${hex(10, 16, false)}`;
}

/**
 * Binary SID → "S-1-5-21-…" ([MS-DTYP] §2.4.2.2: revision, sub-authority count, 48-bit big-endian
 * identifier authority, then 32-bit little-endian sub-authorities). Throws RangeError on a malformed SID.
 */
export function sidToString(bytes: Buffer): string {
  if (bytes.length < 8) throw new RangeError("SID too short");
  const revision = bytes[0]!;
  const count = bytes[1]!;
  if (bytes.length !== 8 + 4 * count) throw new RangeError("SID length does not match its sub-authority count");
  const authority = bytes.readUIntBE(2, 6);
  const parts = [`S-${revision}-${authority}`];
  for (let i = 0; i < count; i++) parts.push(String(bytes.readUInt32LE(8 + 4 * i)));
  return parts.join("-");
}

/** The relative ID (last sub-authority) of a SID string, e.g. 513 for Domain Users. */
export function sidRID(sid: string): number {
  return Number(sid.slice(sid.lastIndexOf("-") + 1));
}

/** "S-1-5-21-A-B-C" + RID → the SID of the object with that RID in the same domain (primaryGroupID → group SID). */
export function domainSID(userSid: string, rid: number): string {
  return `${userSid.slice(0, userSid.lastIndexOf("-"))}-${rid}`;
}

export type ADChangeError =
  | { reason: "policy"; message: string }
  | { reason: "bad_credentials" | "not_permitted"; detail: string };

/**
 * Maps the error of a unicodePwd delete-old/add-new modify to a ChangeResult failure.
 * - constraintViolation (19) with 0000052D (ERROR_PASSWORD_RESTRICTION): the new password breaks the
 *   policy (length, complexity, history, minimum age) → "policy" with a message safe to show the user;
 * - 00000056 (ERROR_INVALID_PASSWORD): the old password is wrong → "bad_credentials";
 * - insufficientAccessRights (50), unwillingToPerform (53, e.g. no TLS): → "not_permitted".
 * The texts never contain either password (the server's diagnostic never does, and only a fixed
 * phrase derived from it is returned). Returns undefined for anything else (a network error, a
 * timeout): the caller treats those as "directory unavailable". Never throws.
 */
export function adChangeError(err: unknown): ADChangeError | undefined {
  if (!(err instanceof Error)) return undefined;
  const code: unknown = (err as Error & { code?: unknown }).code;
  if (typeof code !== "number") return undefined;
  const text = err.message;
  const werr = /\b0000([0-9A-F]{4}):/i.exec(text)?.[1]?.toUpperCase();
  if (werr === "0056" || /old password .*(doesn't|does not) match/i.test(text)) {
    return { reason: "bad_credentials", detail: `AD ${werr ?? "?"}: old password rejected (LDAP ${code})` };
  }
  if (code === 19 || werr === "052D") {
    return { reason: "policy", message: policyMessage(text) };
  }
  if (code === 50) return { reason: "not_permitted", detail: `insufficient access rights to change unicodePwd (LDAP 50${werr ? `, AD ${werr}` : ""})` };
  if (code === 53) return { reason: "not_permitted", detail: `server unwilling to change unicodePwd (LDAP 53${werr ? `, AD ${werr}` : ""}); is the connection encrypted?` };
  return undefined;
}

function policyMessage(diagnostic: string): string {
  if (/history|already used/i.test(diagnostic)) return "The new password was used before. Choose a password you have not used recently.";
  if (/too short|length/i.test(diagnostic)) return "The new password is too short.";
  if (/complexity/i.test(diagnostic)) return "The new password is not complex enough: use upper and lower case letters, digits and symbols, and not your name.";
  if (/too young|minimum.*age|min.*pwd.*age/i.test(diagnostic)) return "The password was changed too recently to change it again now.";
  return "The new password does not meet the password policy (length, complexity or history).";
}

function firstValue(entry: Record<string, unknown>, name: string): string | undefined {
  const key = Object.keys(entry).find((k) => k.toLowerCase() === name.toLowerCase());
  if (key === undefined) return undefined;
  let value = entry[key];
  if (Array.isArray(value)) value = value[0];
  if (Buffer.isBuffer(value)) return value.toString("utf8");
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  return undefined;
}

function intAttribute(entry: Record<string, unknown>, name: string): bigint | undefined {
  const value = firstValue(entry, name);
  return value === undefined ? undefined : parseBigInt(value);
}

function parseBigInt(value: string): bigint | undefined {
  const trimmed = value.trim();
  if (!/^-?\d+$/.test(trimmed)) return undefined;
  // A negative value (a signed 32-bit userAccountControl) still tests right: BigInt bit operations are two's complement.
  return BigInt(trimmed);
}
