// Directory contract: where users and their first factor live (LDAP/AD profiles; local users stay in the store).
//
// The engine (auth/engine.ts) resolves an identity through the profiles a RADIUS client may use,
// in order, and asks the profile that found the user to check the password, report account status,
// resolve group membership and, for an expired password, change it. Implementations: ldap/ (ldapts).
//
// Rules every implementation keeps (DESIGN "Identity and secrets", issue 3):
// - An empty password never reaches a bind (an empty-password bind is an unauthenticated bind
//   that AD answers with success): verifyPassword("") resolves { ok: false, reason: "bad_credentials" }
//   without any network traffic.
// - A connection that was bound as a user is never reused for service searches.
// - No password, old or new, appears in a log line, an error message or a thrown error.
// - "Not found in this profile" (undefined) and "this profile cannot answer" (DirectoryUnavailableError)
//   are different: only the first lets the engine try the next profile.

import type { AuthType } from "../domain/auth-types.ts";

/** Resolved, validated settings of one `[[ldap]]` profile (config/ maps the TOML table onto this). */
export interface LdapProfile {
  /** Profile name, unique; clients name profiles with `--directories corp,local`. */
  name: string;
  /** Tried in order (failover); ldap:// or ldaps://. */
  urls: string[];
  /** Upgrade ldap:// URLs with StartTLS (RFC 4513 §3). */
  startTLS: boolean;
  /** PEM CA bundle for the server certificate; undefined means the system roots. */
  caFile?: string;
  /** True when some URL is ldap:// without StartTLS: allowed only because the administrator configured it; serve warns. */
  plaintext: boolean;
  bindDN: string;
  /** Service account password, read from bind_password_file or bind_password. */
  bindPassword: string;
  baseDN: string;
  /** RFC 4515 filter template; `{username}` is replaced by the escaped name. */
  userFilter: string;
  phoneAttribute: string;
  emailAttribute: string;
  /** Optional attribute holding a Mideye type number 1-11 or a type name. */
  typeAttribute?: string;
  /** Optional attribute holding a hardware-token serial. */
  tokenAttribute?: string;
  /** May the directory lower a user to type `password` (1)? Default false (self-writable attributes). */
  allowTypePassword: boolean;
  /** Group DNs; the user must be a (nested) member of every one. Empty means no gate. */
  requiredGroups: string[];
  /** Type for users whose type attribute is absent or unusable. */
  defaultType: AuthType;
  /** Per network operation (connect, bind, search, modify). */
  timeoutMs: number;
  /** Service connections (searches, password modify) kept open; default 4. */
  poolSize?: number;
  /** Connections kept open for user binds only (never a search); default 32. */
  bindPoolSize?: number;
  /** Requests in flight at once on one service connection (pipelining); default 8, 1 = one at a time. */
  pipeline?: number;
  /** Group → RADIUS reply attributes; every matching entry applies, in order. */
  reply: Array<{ group: string; attributes: Record<string, string | number> }>;
  /** Country for phone numbers in local format (top-level `region`); "" = E.164 only. */
  region: string;
}

/** Account state read from the directory (AD: userAccountControl, accountExpires, pwdLastSet; OpenLDAP: ppolicy). */
export type AccountStatus =
  | "ok"
  | "disabled" // AD 533 / UAC ACCOUNTDISABLE
  | "locked" // AD 775 / lockoutTime; OpenLDAP pwdAccountLockedTime
  | "account_expired" // AD 701 / accountExpires
  | "password_expired" // AD 532 / OpenLDAP ppolicy passwordExpired
  | "must_change"; // AD 773 / pwdLastSet = 0; OpenLDAP ppolicy changeAfterReset

/** A user as one profile sees it. Holds no password. */
export interface DirectoryUser {
  /** The profile that found the user. */
  profile: string;
  /** Stable ID that survives renames: AD objectGUID (as a lowercase UUID string) or entryUUID. */
  id: string;
  dn: string;
  /** The login name as normalised by the engine (the key it searched for). */
  username: string;
  /** E.164 (+46701234567) after normalisation with the profile's region; null when absent or unparsable. */
  phone: string | null;
  /** The raw phone attribute value, to audit changes (it may be self-writable). */
  rawPhone: string | null;
  email: string | null;
  /**
   * Type from `typeAttribute` (a number 1-11 or a name), already filtered: `password` only when
   * allowTypePassword; null when absent or unusable (the engine then uses defaultType).
   */
  type: AuthType | null;
  tokenSerial: string | null;
  /** Status from the entry's attributes, without a bind (checked in every flow, code-only included). */
  status: AccountStatus;
}

/** Why a bind failed, with AD's sub-codes (the "data 52e" in the diagnostic message) mapped. */
export type BindFailure =
  | "bad_credentials" // 52e, invalidCredentials (49) without sub-code
  | "not_permitted_time" // 530
  | "not_permitted_workstation" // 531
  | "password_expired" // 532
  | "disabled" // 533
  | "account_expired" // 701
  | "must_change" // 773
  | "locked"; // 775

export type BindResult = { ok: true } | { ok: false; reason: BindFailure; /** For the log: "AD 52e", "ppolicy passwordExpired"; never a password. */ detail: string };

export type ChangeResult =
  | { ok: true }
  /** The directory refused the new password (complexity, history, minimum age); `message` is safe to show the user. */
  | { ok: false; reason: "policy"; message: string }
  | { ok: false; reason: "bad_credentials" | "not_permitted"; detail: string };

/** A profile cannot answer (every URL down, timeouts, service bind refused). The message holds no secret. */
export class DirectoryUnavailableError extends Error {
  readonly code = "directory_unavailable";
  constructor(
    readonly profile: string,
    message: string,
  ) {
    super(message);
    this.name = "DirectoryUnavailableError";
  }
}

/** One LDAP/AD profile. Throws DirectoryUnavailableError when it cannot answer; never for a bad credential. */
export interface Directory {
  readonly name: string;
  readonly profile: LdapProfile;
  /** Service-account search with the escaped filter. undefined: not in this profile. */
  findUser(username: string): Promise<DirectoryUser | undefined>;
  /** Binds as the user on a fresh (or user-only) connection. "" is refused without a bind. */
  verifyPassword(user: DirectoryUser, password: string): Promise<BindResult>;
  /** A bind of the same cost for an unknown user (equal timing); always fails, never locks an account. */
  dummyBind(password: string): Promise<void>;
  /** Which of `groupDNs` the user is a (nested) member of, primary group included. */
  memberOf(user: DirectoryUser, groupDNs: string[]): Promise<Set<string>>;
  /**
   * User password change (not an administrator reset): AD deletes the old unicodePwd and adds the
   * new one in one modify on the service connection; OpenLDAP uses RFC 3062 Password Modify.
   */
  changePassword(user: DirectoryUser, oldPassword: string, newPassword: string): Promise<ChangeResult>;
  /**
   * An administrator's reset on the service connection (the password-reset portal): AD replaces
   * unicodePwd, OpenLDAP sends RFC 3062 Password Modify without the old password. Refused
   * (`not_permitted`) on a connection that is neither LDAPS nor StartTLS. Policy refusals come back
   * as `{ reason: "policy", message }` with the directory's own text where it has a readable one.
   */
  resetPassword?(user: DirectoryUser, newPassword: string): Promise<ChangeResult>;
  /**
   * The usernames (the user filter's login attribute) of the members of `groupDN`: nested on AD
   * (LDAP_MATCHING_RULE_IN_CHAIN), direct through memberOf elsewhere; at most `limit`.
   */
  groupMembers?(groupDN: string, limit: number): Promise<string[]>;
  close(): Promise<void>;
}
