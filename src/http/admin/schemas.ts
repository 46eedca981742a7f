// Valibot schemas shared by the admin API resources: names, path parameters and the JSON views answered.
//
// The shapes only: the rules (username normalisation, E.164, CIDR, auth types, directories, expiry
// dates, algorithm names) are the admin operations' (src/admin), the same for the CLI.

import * as v from "valibot";
import { AUTH_TYPES } from "../../domain/auth-types.ts";
import { PROFILE_NAME } from "../../config/index.ts";
import { APPROVAL_KINDS } from "../../store/types.ts";

/** A client, API key or endpoint profile name (the CLI's rule): 1-64 letters, digits, '.', '_' or '-'. */
export const nameSchema = v.pipe(v.string(), v.regex(PROFILE_NAME), v.description("1-64 letters, digits, '.', '_' or '-'"));

/** `{name}` path parameter. */
export const nameParams = v.object({ name: nameSchema });

/** `{name}` of a user: any login name; it is normalised as the RADIUS path normalises it. */
export const usernameParams = v.object({ name: v.pipe(v.string(), v.minLength(1), v.maxLength(253)) });

/** `{id}` path parameter: a decimal row ID. */
export const idParams = v.object({ id: v.pipe(v.string(), v.regex(/^[1-9]\d{0,14}$/), v.description("a positive whole number")) });

/** A day `YYYY-MM-DD`: valid through that day (UTC). */
export const daySchema = v.pipe(v.string(), v.regex(/^\d{4}-\d{2}-\d{2}$/), v.description("YYYY-MM-DD; valid through that day (UTC)"));

/** An authentication type by name or Mideye number (1-11). */
export const authTypeSchema = v.pipe(
  v.union([v.picklist(AUTH_TYPES), v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(AUTH_TYPES.length))]),
  v.description("a type name or its Mideye number 1-11"),
);

const isoTime = v.pipe(v.string(), v.description("ISO 8601 UTC timestamp"));
/** A user's counter of one kind across every source; `lockedUntil`: unknown sources are refused until then. */
const lockoutView = v.object({ failures: v.number(), lockedUntil: v.nullable(isoTime) });
/** One source's counter of one kind; `lockedUntil`: that source is backing off until then. */
const sourceLockoutView = v.object({
  source: v.pipe(v.string(), v.description('"csid:<Calling-Station-Id>" or "nas:<RADIUS client>"')),
  kind: v.picklist(["password", "code"]),
  failures: v.number(),
  lockedUntil: v.nullable(isoTime),
});
/** A source the user completed a login from: failures from other sources never refuse it. */
const knownSourceView = v.object({ source: v.string(), lastSuccessAt: isoTime });

/** A user as listed (no password hash). */
export const userListItem = v.object({
  username: v.string(),
  directory: v.nullable(v.string()),
  externalId: v.nullable(v.string()),
  type: v.nullable(v.picklist(AUTH_TYPES)),
  phone: v.nullable(v.string()),
  email: v.nullable(v.string()),
  password: v.boolean(),
  disabled: v.boolean(),
  tokens: v.number(),
});

/** One token of a user, in the user view. */
export const userTokenItem = v.object({
  id: v.number(),
  serial: v.string(),
  kind: v.picklist(["totp", "hotp"]),
  state: v.picklist(["active", "disabled", "lost"]),
  digits: v.number(),
  algorithm: v.string(),
});

/** A user in full (what `user show --json` prints): never the password hash, never a seed. */
export const userView = v.object({
  username: v.string(),
  directory: v.nullable(v.string()),
  externalId: v.nullable(v.string()),
  type: v.nullable(v.picklist(AUTH_TYPES)),
  typeNumber: v.nullable(v.number()),
  overrides: v.array(v.string()),
  phone: v.nullable(v.string()),
  directoryPhone: v.nullable(v.string()),
  email: v.nullable(v.string()),
  password: v.picklist(["set", "none"]),
  disabled: v.boolean(),
  expiresAt: v.nullable(isoTime),
  createdAt: isoTime,
  tokens: v.array(userTokenItem),
  lockout: v.object({ password: lockoutView, code: lockoutView, sources: v.array(sourceLockoutView), knownSources: v.array(knownSourceView) }),
  pendingApprovals: v.pipe(
    v.array(
      v.object({
        kind: v.picklist(APPROVAL_KINDS),
        client: v.string(),
        source: v.nullable(v.string()),
        channel: v.nullable(v.string()),
        createdAt: isoTime,
        expiresAt: isoTime,
      }),
    ),
    v.description("approvals waiting for this user's answer now (held RADIUS requests, challenge-mode legs)"),
  ),
});

/** A token as listed (never the seed). */
export const tokenView = v.object({
  id: v.number(),
  serial: v.string(),
  kind: v.picklist(["totp", "hotp"]),
  state: v.picklist(["active", "disabled", "lost"]),
  user: v.nullable(v.string()),
  digits: v.number(),
  algorithm: v.string(),
  period: v.nullable(v.number()),
});

/** A RADIUS client (never the shared secret). */
export const clientView = v.object({
  id: v.number(),
  name: v.string(),
  address: v.string(),
  firstFactor: v.picklist(["password", "none"]),
  otpMode: v.picklist(["challenge", "concat"]),
  requireMessageAuthenticator: v.boolean(),
  allowPasswordOnly: v.boolean(),
  directories: v.nullable(v.array(v.string())),
  approvalHoldS: v.number(),
  approvalMode: v.picklist(["hold", "challenge"]),
  approvalNumberMatch: v.boolean(),
  smsCodeLength: v.nullable(v.number()),
  smsCodeAlphabet: v.nullable(v.picklist(["numeric", "alphabetic", "alphanumeric"])),
  createdAt: isoTime,
  network: v.pipe(v.nullable(v.string()), v.description("the network as matched: host bits cleared, IPv4-mapped IPv6 as IPv4; null when the address is not a CIDR")),
  overlaps: v.pipe(
    v.object({
      shadows: v.pipe(v.array(v.string()), v.description("clients with a wider network containing this one's: for these addresses this client is matched instead of them")),
      shadowedBy: v.pipe(v.array(v.string()), v.description("clients with a narrower network inside this one's, matched instead of it for their addresses")),
      duplicateOf: v.pipe(v.nullable(v.string()), v.description("the client matched instead of this one for exactly the same network (stored before such duplicates were refused)")),
      unreachable: v.pipe(v.boolean(), v.description("no source address can reach this client")),
    }),
    v.description("how this client's network overlaps the others' (the most specific network is matched first)"),
  ),
});

/** An API key (never the key, never its hash). */
export const apiKeyView = v.object({
  name: v.string(),
  role: v.picklist(["magiclink", "operator", "admin", "root"]),
  endpoint: v.nullable(v.string()),
  prefix: v.string(),
  status: v.picklist(["active", "disabled", "expired"]),
  expiresAt: v.nullable(isoTime),
  createdAt: isoTime,
  lastUsedAt: v.nullable(isoTime),
});

/** What a change answers when there is nothing else to say. */
export const okView = v.object({ ok: v.literal(true) });

/** Warnings about weak but accepted input (a short secret, Message-Authenticator off). */
export const warningsSchema = v.array(v.string());

/** ISO string of unix ms, or null. */
export function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}
