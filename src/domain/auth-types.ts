// Authentication types: Mideye's numbers 1-11 and their names, the contract in DESIGN.md.
// A leaf of src/domain/: it imports nothing of ours, so that store, directory, config and auth share it.

export const AUTH_TYPES = [
  "password", // 1
  "mobile", // 2  SMS OTP
  "token", // 3
  "concatenated", // 4
  "plus", // 5
  "touch", // 6
  "touch-plus", // 7
  "touch-mobile", // 8
  "assisted", // 9
  "shared", // 10
  "totp", // 11 on-premise TOTP/HOTP
] as const;

export type AuthType = (typeof AUTH_TYPES)[number];

/** The Mideye number of a type (1-11). */
export function authTypeNumber(type: AuthType): number {
  return AUTH_TYPES.indexOf(type) + 1;
}

/**
 * Parses a type given by name (case-insensitive) or by Mideye number ("11").
 * Returns undefined for anything else; callers turn that into their own error.
 */
export function parseAuthType(input: string): AuthType | undefined {
  const s = input.trim().toLowerCase();
  if (/^\d{1,2}$/.test(s)) {
    const n = Number(s);
    return n >= 1 && n <= AUTH_TYPES.length ? AUTH_TYPES[n - 1] : undefined;
  }
  return (AUTH_TYPES as readonly string[]).includes(s) ? (s as AuthType) : undefined;
}
