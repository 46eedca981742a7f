// Store contract: domain records and the async repository interfaces that SQLite and PostgreSQL implement.
//
// Nothing outside src/store/ writes SQL. Secrets (OTP seeds, RADIUS shared secrets) cross this
// interface in plaintext; the implementation seals them with AES-256-GCM before they reach disk
// (see keyring.ts / seal.ts) and opens them on read.

import type { AuthType } from "../domain/auth-types.ts";

export type FirstFactor = "password" | "none";
export type OTPMode = "challenge" | "concat";
/** How a client waits for a phone approval: hold the request until it ends, or answer Access-Challenge at once. */
export type ApprovalMode = "hold" | "challenge";
/** The characters of an SMS one-time code (approvals/sms-code.ts SMS_CODE_ALPHABETS). */
export type SmsCodeAlphabetName = "numeric" | "alphabetic" | "alphanumeric";
export type HashAlgorithm = "SHA1" | "SHA256" | "SHA512";
export type TokenKind = "totp" | "hotp";
export type TokenState = "active" | "disabled" | "lost";
export type FailureKind = "password" | "code";

export interface RadiusClient {
  id: number;
  name: string;
  /** Source network in CIDR form ("192.0.2.10/32", "2001:db8::/64"). */
  address: string;
  /** Shared secret, plaintext in memory only. */
  secret: string;
  firstFactor: FirstFactor;
  otpMode: OTPMode;
  requireMessageAuthenticator: boolean;
  allowPasswordOnly: boolean;
  /**
   * User sources this client may use, in order: LDAP profile names and "local" (`--directories corp,local`).
   * null means every configured LDAP profile in config order, then local users.
   */
  directories: string[] | null;
  /** Seconds a held request waits for its phone approval (5-120), and in challenge mode how long the approval lives. */
  approvalHoldS: number;
  approvalMode: ApprovalMode;
  /** Number matching on approval pages (challenge mode only: the prompt shows the number). */
  approvalNumberMatch: boolean;
  /** SMS one-time code length (4-12); null: `[delivery] sms_code_length`. */
  smsCodeLength: number | null;
  /** SMS one-time code characters; null: `[delivery] sms_code_alphabet`. */
  smsCodeAlphabet: SmsCodeAlphabetName | null;
  createdAt: number; // unix ms
}

/** A client's phone-factor settings, the ones `client set` changes. */
export type ClientPhoneSettings = Pick<RadiusClient, "approvalHoldS" | "approvalMode" | "approvalNumberMatch" | "smsCodeLength" | "smsCodeAlphabet">;

/** Phone-factor settings of a client that names none: hold 25 s, hold mode, no number matching, the configured code format. */
export const DEFAULT_CLIENT_PHONE: Readonly<ClientPhoneSettings> = Object.freeze({ approvalHoldS: 25, approvalMode: "hold", approvalNumberMatch: false, smsCodeLength: null, smsCodeAlphabet: null });

/** A new client; its phone settings default to DEFAULT_CLIENT_PHONE. */
export type NewRadiusClient = Omit<RadiusClient, "id" | "createdAt" | keyof ClientPhoneSettings> & Partial<ClientPhoneSettings>;

export interface User {
  id: number;
  /** Normalised login name (see domain/identity.ts normalizeUsername). Unique. */
  username: string;
  /** argon2id or bcrypt PHC string; null means no local password (cannot pass a password check). */
  passwordHash: string | null;
  /**
   * Authentication type. null only on a directory-linked record, where it means "as the directory
   * says" (type attribute, else the profile's default_type); a value there is a local override.
   */
  type: AuthType | null;
  /** E.164. On a directory-linked record a non-null value overrides the directory's phone. */
  phone: string | null; // E.164
  email: string | null;
  disabled: boolean;
  /** Account expiry, unix ms; null = never. */
  expiresAt: number | null;
  /**
   * LDAP profile this record belongs to (a hybrid user: the directory checks the password, this
   * record holds tokens and overrides); null for a purely local user.
   */
  directory: string | null;
  /** The directory's stable ID (objectGUID / entryUUID), so the record survives renames; null when local. */
  externalId: string | null;
  /** The directory's phone attribute as last seen (raw), so that a change can be audited; null when local. */
  directoryPhone: string | null;
  createdAt: number;
}

export type NewUser = Omit<User, "id" | "createdAt">;

export interface Token {
  id: number;
  /** Unique serial: generated ("TOTP0001A2B3") or from a PSKC/CSV import. */
  serial: string;
  userId: number | null;
  kind: TokenKind;
  /** Raw seed bytes, plaintext in memory only. */
  secret: Uint8Array;
  algorithm: HashAlgorithm;
  digits: 6 | 8;
  /** TOTP step in seconds. */
  period: number;
  /** HOTP: the next counter value expected. Unused for TOTP (0). */
  counter: number;
  /** TOTP high-water mark: the last accepted time step; -1 when none yet. */
  lastStep: number;
  /** TOTP learned clock drift, in steps. */
  drift: number;
  state: TokenState;
  createdAt: number;
}

export type NewToken = Omit<Token, "id" | "createdAt" | "lastStep" | "drift" | "counter"> &
  Partial<Pick<Token, "counter" | "lastStep" | "drift">>;

/** A user row together with everything needed to import it in one all-or-nothing transaction. */
export interface UserImportRow {
  user: NewUser;
  tokens: NewToken[]; // userId is filled in by the store
}

export interface ClientRepo {
  list(): Promise<RadiusClient[]>;
  findByName(name: string): Promise<RadiusClient | undefined>;
  /**
   * Throws StoreError("conflict") when the name exists, and NetworkTakenError when another client has
   * exactly the same network (checked in the same write transaction as the insert).
   */
  add(client: NewRadiusClient): Promise<RadiusClient>;
  /** Returns false when no such client. */
  remove(name: string): Promise<boolean>;
  /** Changes phone-factor settings (the fields given); returns the client afterwards, undefined when no such client. */
  updatePhone(name: string, patch: Partial<ClientPhoneSettings>): Promise<RadiusClient | undefined>;
}

export interface UserRepo {
  list(): Promise<User[]>;
  count(): Promise<number>;
  findByName(username: string): Promise<User | undefined>;
  findById(id: number): Promise<User | undefined>;
  /** The record linked to a directory user (profile name + stable ID). */
  findByExternal(directory: string, externalId: string): Promise<User | undefined>;
  /** Throws StoreError("conflict") when the username (or the directory + externalId pair) exists. */
  add(user: NewUser): Promise<User>;
  update(id: number, patch: Partial<NewUser>): Promise<void>;
  /** Removes the user and unassigns (does not delete) their tokens. Returns false when absent. */
  remove(username: string): Promise<boolean>;
  /**
   * Inserts all rows in one transaction: every row or none. Throws StoreError("conflict")
   * naming the first duplicate username. Calls onProgress(done) now and then.
   */
  importMany(rows: UserImportRow[], onProgress?: (done: number) => void): Promise<void>;
}

export interface TokenRepo {
  list(userId?: number): Promise<Token[]>;
  findById(id: number): Promise<Token | undefined>;
  findBySerial(serial: string): Promise<Token | undefined>;
  /** Tokens of a user in state active. */
  activeForUser(userId: number): Promise<Token[]>;
  /** Throws StoreError("conflict") when the serial exists. */
  add(token: NewToken): Promise<Token>;
  /** All or nothing. */
  addMany(tokens: NewToken[]): Promise<Token[]>;
  assign(id: number, userId: number | null): Promise<void>;
  setState(id: number, state: TokenState): Promise<void>;
  remove(id: number): Promise<boolean>;
  /**
   * TOTP high-water mark: atomically sets last_step = step (and drift) only if last_step < step.
   * Returns true when this call advanced it: the code is consumed. The write is committed before
   * the promise resolves.
   */
  advanceTOTP(id: number, step: number, drift: number): Promise<boolean>;
  /**
   * HOTP: atomically sets counter = next only if counter < next. True when this call advanced it.
   */
  advanceHOTP(id: number, next: number): Promise<boolean>;
  /** Resync: unconditional set of counter / last_step / drift after two consecutive codes matched. */
  resync(id: number, values: { counter?: number; lastStep?: number; drift?: number }): Promise<void>;
}

/** Challenge state between the legs of an Access-Challenge flow (a "consumable"). */
export interface Challenge {
  /** SHA-256 of the State attribute value, hex. The raw State never reaches the store. */
  id: string;
  clientName: string;
  userId: number;
  username: string;
  expiresAt: number; // unix ms
  /** Wrong codes so far. */
  failures: number;
  /** Opaque JSON for the engine (what leg comes next, etc.). */
  data: string;
}

export interface ChallengeRepo {
  put(challenge: Challenge): Promise<void>;
  /** Reads without consuming; undefined when absent or expired (at `now`). */
  find(id: string, now: number): Promise<Challenge | undefined>;
  /** Atomically deletes and returns it; undefined if another caller already consumed it or it expired. */
  consume(id: string, now: number): Promise<Challenge | undefined>;
  /** Increments failures; returns the new count, or undefined if absent. */
  fail(id: string): Promise<number | undefined>;
  /** Deletes expired rows; returns how many. */
  purgeExpired(now: number): Promise<number>;
}

export interface LockoutState {
  key: string; // normalised identity
  kind: FailureKind;
  /**
   * Where the failures came from (auth/sources.ts: "csid:<Calling-Station-Id>" or "nas:<client>"),
   * or "" for the identity's counter across every source.
   */
  source: string;
  failures: number;
  /** unix ms until which attempts are refused without any expensive work; 0 = not locked. */
  lockedUntil: number;
  lastFailureAt: number;
}

/** A source from which a user completed a login: failures elsewhere never lock it out (auth/lockout.ts). */
export interface KnownSource {
  key: string; // normalised identity
  source: string;
  lastSuccessAt: number;
}

/** What one failure writes: the counter of its source and the identity's counter, in one transaction. */
export interface FailurePolicy {
  /** A counter whose last failure is before this restarts from zero. */
  staleBefore: number;
  /** The lockedUntil stored with a counter after this failure made it `failures`. */
  lockedUntil(scope: "source" | "identity", failures: number): number;
}

export interface LockoutRepo {
  /** One counter; `source` "" (the default) is the identity's counter across every source. */
  get(key: string, kind: FailureKind, source?: string): Promise<LockoutState | undefined>;
  /** Every counter row (few: rows are deleted on success and purged when stale), or one identity's. */
  list(key?: string): Promise<LockoutState[]>;
  /**
   * Records one failure from `source` (not "") on its own counter and on the identity's counter, in
   * one write transaction; a stale counter restarts from zero first. Returns both new states.
   */
  recordFailure(key: string, kind: FailureKind, source: string, now: number, policy: FailurePolicy): Promise<{ source: LockoutState; identity: LockoutState }>;
  /** Clears one counter (after a success); `source` "" is the identity's. */
  reset(key: string, kind: FailureKind, source?: string): Promise<void>;
  /** Clears every counter of the identity, all kinds and sources (`user unlock`). True if anything was cleared. */
  clear(key: string): Promise<boolean>;
  /**
   * Deletes counters whose last failure is before `lastFailureBefore` and that no longer lock
   * (locked_until < now): they would restart from zero anyway. Keeps the table bounded when many
   * unknown names fail. Returns how many rows went.
   */
  purgeStale(lastFailureBefore: number, now: number): Promise<number>;
  /** The last recorded success of `key` from `source`, or undefined. */
  knownSource(key: string, source: string): Promise<number | undefined>;
  /** The identity's known sources, most recent first (every identity's when `key` is omitted). */
  knownSources(key?: string): Promise<KnownSource[]>;
  /**
   * Records a success of `key` from `source` at `now`, then keeps only the identity's `keep` most
   * recent sources and forgets those whose last success is before `forgetBefore`.
   */
  recordSuccess(key: string, source: string, now: number, bounds: { keep: number; forgetBefore: number }): Promise<void>;
  /** Forgets every known source whose last success is before `before`; returns how many. */
  forgetSources(before: number): Promise<number>;
}

// --- web surface: API keys, approvals (Magic Link sessions among them), SMS codes, endpoint profiles

/** What an API key may do: call the Magic Link API, or use the admin API at a privilege level. */
export type ApiKeyRole = "magiclink" | "operator" | "admin" | "root";

/**
 * An API key as stored. The key itself is never stored: only its SHA-256 (hex) and a short prefix
 * for display. It is shown once, at creation.
 */
export interface ApiKey {
  id: number;
  /** Unique, chosen by the administrator. */
  name: string;
  role: ApiKeyRole;
  /** Magic Link keys: the endpoint profile they may use; null means "default". Unused by admin roles. */
  endpoint: string | null;
  /** SHA-256 of the key, lower-case hex. */
  hash: string;
  /** The first characters of the key (not secret on their own), to tell keys apart in listings. */
  prefix: string;
  /** unix ms after which the key is refused; null = never. */
  expiresAt: number | null;
  disabled: boolean;
  createdAt: number;
  lastUsedAt: number | null;
}

export type NewApiKey = Omit<ApiKey, "id" | "createdAt" | "lastUsedAt" | "disabled"> & { disabled?: boolean };

export interface ApiKeyRepo {
  /** Throws StoreError("conflict") when the name (or, astronomically unlikely, the hash) exists. */
  add(key: NewApiKey): Promise<ApiKey>;
  list(): Promise<ApiKey[]>;
  findByName(name: string): Promise<ApiKey | undefined>;
  /** Exact lookup by SHA-256 hex; the caller still compares in constant time (http/api-keys.ts). */
  findByHash(hash: string): Promise<ApiKey | undefined>;
  /** Returns false when no such key. */
  remove(name: string): Promise<boolean>;
  /** Returns false when no such key. */
  setDisabled(name: string, disabled: boolean): Promise<boolean>;
  /** Records a use (best effort; not a transaction the caller waits on for security). */
  touch(id: number, now: number): Promise<void>;
}

/**
 * What asked for an approval: a RADIUS request (held or challenge mode), a Magic Link API call, a
 * password-reset portal, a self-service portal sign-in. The approvals table's CHECK names the same.
 */
export const APPROVAL_KINDS = ["radius", "magic-link", "password-reset", "self-service"] as const;
export type ApprovalKind = (typeof APPROVAL_KINDS)[number];

/**
 * An approval's state. `pending` moves once, by one conditional UPDATE, to one of the others:
 * - `approved`, `rejected`: the user answered (a wrong number-matching pick is a rejection);
 * - `reported`: the user rejected and reported it as not theirs (the approver app);
 * - `expired`: nobody answered before `expiresAt`;
 * - `cancelled`: whoever waited went away first (a Magic Link caller disconnected, the engine gave up);
 * - `failed`: the link could not be delivered, so nobody could answer.
 * Magic Link sessions map `accepted` → `approved` (migration 9); every other name is theirs unchanged.
 */
export type ApprovalState = "pending" | "approved" | "rejected" | "reported" | "expired" | "cancelled" | "failed";

/** A final state: what a pending approval can become. */
export type ApprovalOutcome = Exclude<ApprovalState, "pending">;

/** How the request reached the user: a link by SMS or e-mail, the approver app, or the switch relay. */
export type ApprovalChannel = "sms-link" | "email-link" | "app" | "switch";

/**
 * One approval (a "consumable"): RADIUS held requests and challenge-mode legs, Magic Link calls and
 * password-reset approvers all wait on these; none keeps pending state of its own. Answered once: the
 * store moves `pending` to a final state with one conditional UPDATE. The link token never reaches the
 * store, only its SHA-256.
 */
export interface Approval {
  /** Random internal ID (≥128 bits, base64url); never sent in a link. */
  id: string;
  kind: ApprovalKind;
  /**
   * The resolved identity (normalised username, the lockout key); null for a Magic Link call by
   * number. With `kind` and `client` it keys the one pending approval per user and client.
   */
  user: string | null;
  /** The RADIUS client's name, the Magic Link endpoint profile, or the password-reset portal. */
  client: string;
  /** Where the request came from: Calling-Station-Id, or the caller's address; null when unknown. */
  source: string | null;
  /** E.164 number the link was sent to, when sent by SMS (Magic Link calls record theirs). */
  msisdn: string | null;
  /** The API key that started a Magic Link call; null for other kinds. */
  apiKeyId: number | null;
  state: ApprovalState;
  /** How the request reached the user; null until delivered (or when it never was). */
  channel: ApprovalChannel | null;
  /** SHA-256 hex of the link token; null for an approval without a link (app only). */
  linkHash: string | null;
  /** JSON of the texts shown (title, question, buttons, results). */
  texts: string;
  /** Number matching: the number the user must pick; null when not used. */
  numberMatch: number | null;
  createdAt: number;
  expiresAt: number;
  answeredAt: number | null;
}

/** What createOrJoin did: inserted `approval`, or found the pending one for the same kind, user and client. */
export type CreateOrJoin = { created: true; approval: Approval } | { created: false; approval: Approval };

export interface ApprovalRepo {
  /**
   * Inserts a pending approval. Throws StoreError("conflict") on a duplicate id or link hash, or when
   * another approval of the same kind, user and client is pending (use createOrJoin for those).
   */
  create(approval: Approval): Promise<void>;
  /**
   * One pending approval per kind, user and client, also across processes: inserts `approval`
   * unless one is pending for its (kind, user, client), and then returns that one instead. A pending
   * row already past its expiry at `now` is closed as expired first. Throws TypeError for an
   * approval without a user, and StoreError("conflict") on a duplicate id or link hash.
   */
  createOrJoin(approval: Approval, now: number): Promise<CreateOrJoin>;
  get(id: string): Promise<Approval | undefined>;
  /** By the SHA-256 hex of the link token, whatever its state (so a page can say "already answered"). */
  findByLink(linkHash: string): Promise<Approval | undefined>;
  /** The pending, unexpired (at `now`) approval of this kind for `user` and `client`, if any. */
  findPending(kind: ApprovalKind, user: string, client: string, now: number): Promise<Approval | undefined>;
  /** Every pending, unexpired (at `now`) approval of `user`, whatever its kind and client, oldest first (`user show`). */
  pendingForUser(user: string, now: number): Promise<Approval[]>;
  /** How many approvals are pending and unexpired at `now`, by kind (every process and node on the store). */
  pendingCounts(now: number): Promise<Partial<Record<ApprovalKind, number>>>;
  /**
   * Atomic single use: sets the state (and answeredAt = now) only while the approval is pending
   * and not expired at `now` (UPDATE … WHERE state = 'pending' AND expires_at > now). Returns true
   * for exactly one of any number of concurrent callers, in any process. Close a timed-out
   * approval with markExpired.
   */
  answer(id: string, state: ApprovalOutcome, now: number): Promise<boolean>;
  /** Sets `expired` on a pending approval whose expiresAt <= now. True when this call did it. */
  markExpired(id: string, now: number): Promise<boolean>;
  /** Records how the request reached the user (after delivery), whatever the state by then. */
  setChannel(id: string, channel: ApprovalChannel): Promise<void>;
  /** Deletes approvals whose expiresAt is older than `before`; returns how many. */
  purgeExpired(before: number): Promise<number>;
  /**
   * Approvals answered (any final state) at or after `since` (unix ms, by answeredAt; indexed): the
   * waiter poll's read of answers committed by other processes. Only ID and state.
   */
  answeredSince(since: number): Promise<Array<{ id: string; state: ApprovalOutcome }>>;
  /**
   * The server secret (CSRF tokens, number matching, SMS code hashes), sealed at rest: the stored
   * one, or `create()` stored first (one winner when several processes start together; every
   * process on the store then uses the same). A secret sealed under a key the keyring no longer
   * holds is replaced. Throws StoreError("corrupt") for a tampered value, TypeError when `create()`
   * gives fewer than 32 bytes, and like every repository call on failure.
   */
  serverSecret(create: () => Uint8Array): Promise<Uint8Array>;
}

/**
 * A one-time code sent by SMS for a challenge (type 2 `mobile`, and the SMS-code step of
 * `touch-mobile`): bound to the challenge State, the client and the user; stored only as a keyed
 * hash; single use; a bounded number of wrong attempts invalidates it.
 */
export interface SmsCode {
  /** The challenge's ID: SHA-256 hex of the State attribute (as Challenge.id). One code per State. */
  state: string;
  /** The RADIUS client's name. */
  client: string;
  /** The resolved identity (normalised username). */
  user: string;
  /** HMAC-SHA-256 (hex) of the code and its binding under the server secret; never the code. */
  hash: string;
  createdAt: number;
  expiresAt: number;
  /** Wrong codes presented so far. */
  failures: number;
}

export interface SmsCodeRepo {
  /** Stores the code for `code.state`, replacing an earlier one for the same State (a new code invalidates the old). */
  put(code: SmsCode): Promise<void>;
  /** The code for a State, if unexpired at `now`. */
  find(state: string, now: number): Promise<SmsCode | undefined>;
  /**
   * Atomic single use: deletes the code for `state` only while it still holds `hash` and is
   * unexpired at `now` (one conditional DELETE). True for exactly one of any number of concurrent
   * callers, in any process. The caller compares the presented code's hash with the stored one in
   * constant time first; `hash` here only pins the row it read (a code replaced meanwhile stays).
   */
  consume(state: string, hash: string, now: number): Promise<boolean>;
  /**
   * Counts one wrong code for `state` (when the row still holds `hash`); at `maxFailures` the code is
   * deleted. Returns the new count (`maxFailures` when it was invalidated), or undefined when there
   * was no such code.
   */
  fail(state: string, hash: string, maxFailures: number): Promise<number | undefined>;
  /** Deletes the code for `state`; true when there was one. */
  remove(state: string): Promise<boolean>;
  /** Deletes expired codes (expiresAt <= now); returns how many. */
  purgeExpired(now: number): Promise<number>;
}

/** The texts of a Magic Link session; the Mideye query parameters override them per call. */
export interface EndpointTexts {
  sms_text: string;
  authentication_text: string;
  touch_accept_text: string;
  touch_reject_text: string;
  button_accept_text: string;
  button_reject_text: string;
  title_text: string;
}

export interface EndpointRateLimits {
  perNumberPerMinute: number;
  perNumberPerHour: number;
  /** 0 = no limit of this kind. */
  perKeyPerMinute: number;
  /** 0 = no limit of this kind. */
  overallPerMinute: number;
}

/** A Magic Link endpoint profile (`/api/sfwa/auth/{endpoint}`); "default" always exists. */
export interface EndpointProfile {
  name: string;
  texts: EndpointTexts;
  /** Default touch-timeout in seconds, 15-300. */
  touchTimeoutS: number;
  /** May a caller replace the SMS text (`sms-text`)? It still always carries the link. Off by default. */
  allowCustomSmsText: boolean;
  /** Refuse MSISDNs that do not belong to a known user (SMS pumping defence). */
  requireKnownUser: boolean;
  rateLimits: EndpointRateLimits;
  /** Delivery channels in failover order ("sms", "email"); empty means the configured default order. */
  channels: string[];
}

export interface EndpointRepo {
  /** Every profile, "default" first (synthesised from defaults when never stored). */
  list(): Promise<EndpointProfile[]>;
  /** "default" always resolves. */
  get(name: string): Promise<EndpointProfile | undefined>;
  /** Inserts or replaces. */
  put(profile: EndpointProfile): Promise<void>;
  /** Returns false when absent. Throws StoreError("conflict") for "default", which cannot be removed. */
  remove(name: string): Promise<boolean>;
}

/** Name of the endpoint profile that always exists (`/api/sfwa/auth` without a name). */
export const DEFAULT_ENDPOINT = "default";

/**
 * A profile with the built-in defaults (what "default" is until edited). In `sms_text`, `{link}` is
 * replaced by the approval link; a text without it gets the link appended.
 */
export function defaultEndpointProfile(name: string = DEFAULT_ENDPOINT): EndpointProfile {
  return {
    name,
    texts: {
      sms_text: "Approve or reject your sign-in: {link}",
      authentication_text: "Someone is signing in with your account. Was it you?",
      touch_accept_text: "Sign-in approved. You can close this page.",
      touch_reject_text: "Sign-in rejected. You can close this page.",
      button_accept_text: "Approve",
      button_reject_text: "Reject",
      title_text: "Sign-in request",
    },
    touchTimeoutS: 90,
    // A key holder's own text under the organisation's sender ID is phishing waiting to happen.
    allowCustomSmsText: false,
    requireKnownUser: false,
    rateLimits: { perNumberPerMinute: 5, perNumberPerHour: 30, perKeyPerMinute: 60, overallPerMinute: 600 },
    channels: [],
  };
}

// --- approver app: devices, enrolment codes, signature replay records, server secrets ----------

/** A device's public key as enrolled: an ECDSA P-256 JWK with exactly these members (RFC 7518 §6.2.1). */
export interface DevicePublicKey {
  kty: "EC";
  crv: "P-256";
  /** base64url of the 32-byte x coordinate. */
  x: string;
  /** base64url of the 32-byte y coordinate. */
  y: string;
}

/** A Web Push subscription (the browser's PushSubscription JSON, reduced to what sending needs). */
export interface PushSubscription {
  /** The push service URL, normalised (WHATWG URL href); checked against `[push] allowed_hosts`. */
  endpoint: string;
  /** base64url of the user agent's P-256 public key, 65 bytes uncompressed (RFC 8291 §3.2). */
  p256dh: string;
  /** base64url of the 16-byte authentication secret (RFC 8291 §3.2). */
  auth: string;
}

/** One enrolled approver device of a user. */
export interface Device {
  /** Random (128 bits, base64url, 22 characters); sent by the app in `Portcullis-Device`. */
  id: string;
  userId: number;
  /** Display name the app chose ("Alice's phone"); safe display text, at most 64 characters. */
  name: string;
  publicKey: DevicePublicKey;
  /** null: no push (the app polls or listens while open). */
  push: PushSubscription | null;
  createdAt: number;
  /** Last accepted signed request (updated at most once a minute); null before the first. */
  lastSeenAt: number | null;
  /** When it was removed; null while it is live. A removed device's requests are refused with 403. */
  removedAt: number | null;
}

/** An outstanding enrolment code: single use, expiring. The code itself never reaches the store. */
export interface DeviceEnrolment {
  /** SHA-256 hex of the code. */
  codeHash: string;
  userId: number;
  createdAt: number;
  expiresAt: number;
}

export interface DeviceRepo {
  /** Stores an enrolment code (its hash). Throws StoreError("conflict") on a duplicate hash, StoreError("not_found") when the user is gone. */
  addEnrolment(enrolment: DeviceEnrolment): Promise<void>;
  /**
   * Consumes a live enrolment code (expiresAt > now) and creates the device for its user, in one
   * transaction: both or neither, and of concurrent callers with one code exactly one gets a device.
   * undefined when the code is unknown, used or expired. Throws StoreError("conflict") when the
   * device ID exists (the code is then not consumed).
   */
  enrol(codeHash: string, now: number, device: { id: string; name: string; publicKey: DevicePublicKey; push: PushSubscription | null }): Promise<Device | undefined>;
  /** The hashes of the live enrolment codes (expiresAt > now) with their expiry, at most `limit` of them, newest first. */
  liveEnrolments(now: number, limit: number): Promise<Array<{ codeHash: string; expiresAt: number }>>;
  /** A device by ID, removed or not. */
  get(id: string): Promise<Device | undefined>;
  /** Devices (of one user when `userId` is given), oldest first; removed ones only with `includeRemoved`. */
  list(options?: { userId?: number; includeRemoved?: boolean }): Promise<Device[]>;
  /**
   * Marks a live device removed at `now` and drops its push subscription, in one statement; returns it
   * with the number of live devices its user still has, or undefined when it is unknown or already removed.
   */
  remove(id: string, now: number): Promise<{ device: Device; remaining: number } | undefined>;
  /** Replaces (null: removes) a live device's push subscription. False when the device is unknown or removed. */
  setPush(id: string, push: PushSubscription | null): Promise<boolean>;
  /** Drops the subscription only while it is still `endpoint` (a newer one set meanwhile is kept). True when dropped. */
  dropPush(id: string, endpoint: string): Promise<boolean>;
  /** Records a use (best effort, not awaited for security). */
  touch(id: string, now: number): Promise<void>;
  /**
   * Records one accepted signature, identified by the device and `sig` (its r half), kept until
   * `expiresAt`. True for the first use; false when it was already recorded (a replay), from any process.
   */
  useSignature(deviceId: string, sig: string, expiresAt: number): Promise<boolean>;
  /** Deletes expired enrolment codes and signature records; returns how many rows went. */
  purgeExpired(now: number): Promise<number>;
}

/**
 * Named secrets the server itself uses (the Magic Link CSRF secret, the VAPID private key), sealed
 * at rest and re-sealed by key rotation.
 */
export interface ServerSecretRepo {
  /**
   * The stored secret `name`, or the value `create()` gives, stored first (one winner when several
   * processes start together: every process gets the same). A value sealed under a key the keyring
   * no longer holds is replaced (logged). Throws StoreError("corrupt") for a tampered value, TypeError
   * when `create()` gives fewer than `minBytes` (default 32) bytes.
   */
  get(name: string, create: () => Uint8Array, options?: { minBytes?: number }): Promise<Uint8Array>;
}

/**
 * The approver app's back-off after a rejected or reported request (one row per user). `strikes`
 * counts rejections in a row; the user gets no app request before `blockedUntil`.
 */
export interface ApprovalBlock {
  /** The resolved identity (the approvals' `user`). */
  user: string;
  strikes: number;
  /** unix ms; no new app request for the user before it. */
  blockedUntil: number;
  reason: "rejected" | "reported";
  /** unix ms of the last strike. */
  updatedAt: number;
}

export interface ApprovalBlockRepo {
  get(user: string): Promise<ApprovalBlock | undefined>;
  /**
   * Atomic read-modify-write of the user's row (one transaction, also across processes): `next`
   * gets the row as it stands (undefined when none) and returns the new one, which is stored.
   */
  strike(user: string, next: (current: ApprovalBlock | undefined) => ApprovalBlock): Promise<ApprovalBlock>;
  /** Deletes the user's row (an approval ends the streak; `user unlock`). True when there was one. */
  clear(user: string): Promise<boolean>;
  /** Deletes rows whose block ended and whose last strike is older than `before`; returns how many. */
  purgeExpired(before: number): Promise<number>;
}

/** An administrator's single-use sign-in link to the self-service portal. The code never reaches the store. */
export interface SelfServiceLink {
  /** SHA-256 hex of the code. */
  codeHash: string;
  userId: number;
  createdAt: number;
  expiresAt: number;
}

/** How a self-service session was signed in. */
export type SelfServiceMethod = "password_totp" | "link" | "app";

/** A signed-in self-service browser. The cookie value never reaches the store. */
export interface SelfServiceSession {
  /** SHA-256 hex of the cookie value. */
  idHash: string;
  userId: number;
  method: SelfServiceMethod;
  createdAt: number;
  lastSeenAt: number;
  /** Absolute end. */
  expiresAt: number;
  /** The seed of a TOTP app being enrolled (opened), until confirmed or pendingExpiresAt. */
  pending: { secret: Uint8Array; expiresAt: number } | null;
}

export interface SelfServiceRepo {
  /** Stores a link (its hash). Throws StoreError("not_found") when the user is gone. */
  addLink(link: SelfServiceLink): Promise<void>;
  /** Consumes a live link (expiresAt > now): of concurrent callers exactly one gets its user ID; undefined when unknown, used or expired. */
  consumeLink(codeHash: string, now: number): Promise<number | undefined>;
  /** Stores a new session (without a pending seed). */
  addSession(session: Omit<SelfServiceSession, "pending">): Promise<void>;
  /**
   * The live session (expiresAt > now and lastSeenAt > now - idleMs), its lastSeenAt moved to now;
   * undefined when absent, idle or expired (such a row is deleted). A pending seed past its expiry is left out.
   */
  touchSession(idHash: string, now: number, idleMs: number): Promise<SelfServiceSession | undefined>;
  /** Deletes a session; true when there was one. */
  removeSession(idHash: string): Promise<boolean>;
  /** Sets (sealed, bound to the session) or clears the pending TOTP seed of a session. */
  setPending(idHash: string, pending: { secret: Uint8Array; expiresAt: number } | null): Promise<void>;
  /** Deletes expired links and sessions whose absolute end or idle limit passed; returns how many. */
  purgeExpired(now: number, idleMs: number): Promise<number>;
}

/** Where a password reset stands: code sent → approvers asked → new password → done, or failed. */
export type PasswordResetStage = "code" | "approval" | "password" | "done" | "failed";

/**
 * One password reset in progress (the portal's state between pages). Keyed by the SHA-256 of the
 * random token in the browser's cookie; never holds a code or a password.
 */
export interface PasswordResetSession {
  /** Hex SHA-256 of the cookie token. */
  id: string;
  portal: string;
  /** The normalised username as typed (also when no such user exists). */
  username: string;
  /** False for a name that matched no user: the flow runs on, and every code fails. */
  known: boolean;
  stage: PasswordResetStage;
  /** The approval whose app code the user types (a user with an approver-app device); null: an SMS code. */
  codeApproval: string | null;
  codeFailures: number;
  /** The approver approvals (one per approver reached). */
  approvals: string[];
  /** The approver who approved. */
  approvedBy: string | null;
  /** The client address that started it. */
  source: string | null;
  createdAt: number;
  updatedAt: number;
  expiresAt: number;
}

export interface PasswordResetRepo {
  create(s: PasswordResetSession): Promise<void>;
  /** The live session (now < expiresAt), or undefined. */
  get(id: string, now: number): Promise<PasswordResetSession | undefined>;
  /**
   * Applies `patch` only while the session is still at stage `from` and live: of two concurrent
   * requests exactly one moves it on. True when this call did.
   */
  advance(id: string, from: PasswordResetStage, patch: Partial<Pick<PasswordResetSession, "stage" | "codeApproval" | "approvals" | "approvedBy">>, now: number): Promise<boolean>;
  /** Counts a wrong code; returns the new count (undefined: no such session). */
  failCode(id: string, now: number): Promise<number | undefined>;
  purgeExpired(now: number): Promise<number>;
}

/**
 * Idempotency records: the encoded reply to a completed Access-Request, under a key derived from
 * the client, the NAS's address and the whole request, until `expiresAt` (the retransmission window).
 */
export interface RadiusReplyRepo {
  /** The reply recorded under `key` and not yet expired, or undefined. */
  get(key: string, now: number): Promise<Uint8Array | undefined>;
  /** Records a reply; a record already there for `key` (another node answered first) stays. */
  put(key: string, reply: Uint8Array, expiresAt: number): Promise<void>;
  /** Deletes expired records; returns how many. */
  purgeExpired(now: number): Promise<number>;
}

export interface Store {
  readonly clients: ClientRepo;
  readonly users: UserRepo;
  readonly tokens: TokenRepo;
  readonly challenges: ChallengeRepo;
  readonly lockouts: LockoutRepo;
  readonly apiKeys: ApiKeyRepo;
  readonly approvals: ApprovalRepo;
  readonly smsCodes: SmsCodeRepo;
  readonly endpoints: EndpointRepo;
  readonly devices: DeviceRepo;
  readonly serverSecrets: ServerSecretRepo;
  /** The approver app's back-off after rejected and reported requests. */
  readonly approvalBlocks: ApprovalBlockRepo;
  /** The self-service portal's sign-in links and sessions. */
  readonly selfService: SelfServiceRepo;
  /**
   * Idempotency records for RADIUS replies, on back-ends that several nodes share (PostgreSQL);
   * absent on SQLite, where one appliance's retransmission cache suffices.
   */
  readonly radiusReplies?: RadiusReplyRepo;
  /**
   * Calls `listener` whenever an approval leaves "pending" on any node sharing the store (committed
   * answers, expiries, cancels), on back-ends that several nodes share (PostgreSQL). Resolves with
   * the unsubscribe once listening.
   */
  watchApprovals?(listener: (id: string, state: ApprovalOutcome) => void): Promise<() => Promise<void>>;
  /**
   * A number that changes whenever another process (the admin CLI) commits a change to clients,
   * users or tokens. The server polls it to reload caches without a restart.
   */
  generation(): Promise<number>;
  /** True when a write transaction can be committed right now (Status-Server gate). */
  writable(): Promise<boolean>;
  /**
   * Adds a new sealing key and re-seals every secret under it in one transaction (CLI `key rotate`).
   * Optional: a back-end that cannot rotate omits it. Throws StoreError("unavailable") when the key
   * source cannot take a new key (environment, credential).
   */
  rotateKey?(): Promise<{ keyId: string; resealed: number }>;
  /**
   * Optional: a cheap synchronous counter that changes whenever another process commits (SQLite:
   * PRAGMA data_version). Stores that offer it can sit behind the read cache (store/cache.ts).
   */
  changeEpoch?(): number;
  /**
   * Optional, with changeEpoch: a counter that moves only with commits that change what the read
   * cache keeps (SQLite: the cache_epoch row, moved by triggers). The cache reads it when
   * changeEpoch moved, and empties itself only when this moved too.
   */
  cacheEpoch?(): number;
  /**
   * Optional: synchronous reads answered from memory, for the RADIUS hot path (store/cache.ts).
   * A store without a memory copy omits it and every read takes the asynchronous path.
   */
  readonly warm?: WarmReads;
  /**
   * Optional, for a store without a memory copy: the reads of one code-only login fetched together
   * from the store (the code failure counters of `key` from `source` and across every source, the
   * user named `key`, that user's active tokens, `source`'s known-source record), answered as
   * WarmReads for that name and source only (undefined for anything else). PostgreSQL: one
   * statement for all the logins of an event-loop turn instead of about six round trips each.
   */
  loginReads?(key: string, source: string): Promise<WarmReads>;
  /**
   * Optional, with loginReads: what this node remembers of the local user named `key` from an
   * earlier loginReads (the record and its active tokens), with a high-water-mark write that
   * revalidates all of it in the same statement; undefined when nothing is remembered.
   */
  cachedLogin?(key: string, source: string): CachedLogin | undefined;
  close(): Promise<void>;
}

/**
 * A code-only login's inputs from a node's memory (Store.cachedLogin). Nothing here is trusted:
 * advance() writes the high-water mark only if, in the same statement, every input the decision
 * took from memory still holds in the store.
 */
export interface CachedLogin {
  /** A local user (no directory link) as last read. */
  readonly user: User;
  /** Its active tokens as last read. */
  readonly tokens: readonly Token[];
  /**
   * Moves a TOTP token's high-water mark to `step` (drift `drift`) only if, in one statement: the
   * mark is below `step` and its drift still `wasDrift`; the token is still active and still this
   * user's; the user record still has this name, is enabled, has no directory link, and has the
   * type and expiry remembered; and no code failure counter exists for the name from `source` or
   * across every source. won false: nothing was written (a replay, or memory is stale; the entry
   * is then forgotten) and the caller decides from fresh reads. `known`: the source's known-source
   * record, read by the same statement.
   *
   * With `record` (a request whose idempotency record has not been looked up): the same statement
   * writes the mark only while no live record of `record.key` exists (`existing` is then that
   * record's reply, and nothing is written), and a won write records `record.reply` beside the mark
   * when the source's known-source record is newer than `record.knownSince` (`recorded`).
   */
  advance(token: Token, step: number, drift: number, record?: AcceptRecord): Promise<AdvanceOutcome>;
}

/**
 * The idempotency record of an Access-Accept decided from memory, written by the statement that
 * consumes the code (CachedLogin.advance), so that the login costs the store one statement.
 */
export interface AcceptRecord {
  /** The idempotency key (RadiusReplyRepo). */
  key: string;
  /** The encoded Access-Accept, recorded only when the write wins. */
  reply: Uint8Array;
  expiresAt: number;
  /** A record expiring after this stands (RadiusReplyRepo.get). */
  now: number;
  /** The record goes with the mark only when the source's known-source record is newer than this. */
  knownSince: number;
}

export interface AdvanceOutcome {
  won: boolean;
  known: number | null;
  /** With a record: it was written beside the mark. */
  recorded?: boolean;
  /** With a record: the reply already recorded under its key (nothing was written). */
  existing?: Uint8Array;
}

/**
 * Reads answered from memory without a promise. Each returns undefined when memory cannot answer
 * (the entry was never loaded or was invalidated); the caller then uses the repositories, which
 * give the same answer asynchronously. null means "known to be absent".
 */
export interface WarmReads {
  userByName(username: string): User | null | undefined;
  /** The active tokens of a user; [] when the user is known to have none. */
  activeTokens(userId: number): Token[] | undefined;
  /**
   * Whether a failure counter of `kind` exists for `key` from `source` or across every source:
   * false when neither does (the common case, answered without building a key while no counter
   * exists at all).
   */
  counted(key: string, kind: FailureKind, source: string): boolean | undefined;
  /** The last recorded success of `key` from `source`; null when there is none. */
  knownSource(key: string, source: string): number | null | undefined;
}

export type StoreErrorCode = "conflict" | "network_taken" | "not_found" | "key_missing" | "key_mismatch" | "corrupt" | "unavailable";

/** Typed store failure with a stable code. Messages never include secrets. */
export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "StoreError";
  }
}

/**
 * A RADIUS client was added with exactly the network of an existing one (the same CIDR once host
 * bits are cleared and IPv4-mapped IPv6 is read as IPv4): the table matches the first of the two,
 * so the new one could never be matched. Overlapping networks are allowed (the narrower wins).
 */
export class NetworkTakenError extends StoreError {
  constructor(
    /** The normalised network ("10.0.0.0/24"). */
    readonly network: string,
    /** The name of the client that already has it. */
    readonly client: string,
  ) {
    super("network_taken", `the network ${network} is already client ${client}'s; a second client for it could never be matched`);
    this.name = "NetworkTakenError";
  }
}

// --- delivery: shared rate-limit counters and the delivery log (issue 4) ---------------------

/** One sliding-window counter to check and bump: at most `limit` hits in any `windowMs`. */
export interface RateBucket {
  /** Counter name, e.g. "number:<hash>:60000". Never a secret; hash personal data first. */
  key: string;
  windowMs: number;
  limit: number;
}

export type RateDecision =
  | { allowed: true }
  /** `bucket` is the first full bucket (its key); `retryAt` is when it next has room (unix ms). */
  | { allowed: false; bucket: string; retryAt: number };

export interface RateLimitRepo {
  /**
   * Atomically checks every bucket and, only when none is full, counts one hit in each. Sliding
   * windows (rate-window.ts): no closed span of windowMs ever holds more than `limit` admitted hits,
   * and a refusal lasts at most windowMs / 60 longer than an exact per-hit count would make it. A
   * refused call counts nothing. Shared by every process on the store, so a cluster enforces one limit.
   */
  consume(buckets: readonly RateBucket[], now: number): Promise<RateDecision>;
  /** Deletes counters no call at `now` or later counts any more; returns how many. */
  purgeExpired(now: number): Promise<number>;
}

export type DeliveryOutcome = "sent" | "failed" | "refused";

/** One delivery attempt (or refusal). Never holds the message text, the link or a credential. */
export interface DeliveryLogEntry {
  id: number;
  at: number; // unix ms
  /** Channel name ("sms", "email"); null for a request refused before any channel. */
  channel: string | null;
  /** Masked destination: "+46…34" or "…@example.com". */
  destination: string;
  /** ISO 3166 country of a phone number, or null. */
  country: string | null;
  endpoint: string;
  apiKeyId: string;
  result: DeliveryOutcome;
  /** Failure or refusal reason code; null when sent. */
  reason: string | null;
  /** Short technical detail (HTTP status, SMTP code); never message text or secrets. */
  detail: string | null;
  /** The gateway's message ID, when it returned one. */
  providerId: string | null;
}

export type NewDeliveryLogEntry = Omit<DeliveryLogEntry, "id">;

export interface DeliveryLogRepo {
  append(entry: NewDeliveryLogEntry): Promise<void>;
  /** Newest first; at most `limit` rows, optionally only those with id < `beforeId` (paging). */
  recent(limit: number, beforeId?: number): Promise<DeliveryLogEntry[]>;
  /** Deletes rows older than `at`; returns how many. */
  purgeBefore(at: number): Promise<number>;
}

/** The delivery repositories a store offers beside `Store` (SqliteStore has them). */
export interface DeliveryRepos {
  readonly rateLimits: RateLimitRepo;
  readonly deliveryLog: DeliveryLogRepo;
}

// --- admin events recorded outside the server (the CLI) ----------------------------------------

/**
 * One admin change made by a process that has no audit bus (the CLI), kept until the running server
 * emits it as a typed audit event. Never holds a password, seed, shared secret or key.
 */
export interface AdminEventRecord {
  id: number;
  at: number; // unix ms
  /** Who made the change: "cli:" + the invoking OS user. */
  actor: string;
  /** The audit event type ("admin.user_added", …). */
  type: string;
  /** The event's other fields (without `type` and `by`), as stored. */
  fields: Record<string, unknown>;
}

export type NewAdminEventRecord = Omit<AdminEventRecord, "id">;

export interface AdminEventRepo {
  /**
   * Runs `change`, then appends the record `describe` makes of its result (null: nothing changed,
   * nothing recorded), in ONE transaction: both are committed or neither is. `change` must only use
   * this store, and nothing else may use the store's connection meanwhile (a CLI process; the server
   * emits its own changes on its bus instead). Throws what `change` throws (after rolling back), and
   * StoreError("unavailable") when the write lock cannot be taken in time.
   */
  recordWith<T>(change: () => Promise<T>, describe: (result: T) => NewAdminEventRecord | null): Promise<T>;
  /** Appends one record on its own; returns its ID. Throws StoreError("unavailable"). */
  append(record: NewAdminEventRecord): Promise<number>;
  /**
   * Claims up to `limit` records not emitted yet, oldest first, and marks them emitted at `now`, in
   * one transaction: each record is handed out once, also with several servers on one store.
   */
  claimPending(limit: number, now: number): Promise<AdminEventRecord[]>;
  /** Deletes emitted records older than `at`; returns how many (unemitted ones are kept). */
  purgeBefore(at: number): Promise<number>;
}

/** The admin-event repository a store offers beside `Store` (SqliteStore has it). */
export interface AdminEventRepos {
  readonly adminEvents: AdminEventRepo;
}

/** The admin-event repository of an opened store. Throws TypeError when the back-end has none. */
export function adminEventsOf(store: Store): AdminEventRepo {
  const repo = (store as Store & Partial<AdminEventRepos>).adminEvents;
  if (!repo) throw new TypeError("store: this back-end has no admin-event table; admin changes could not be audited");
  return repo;
}

// --- admin web UI: local admin accounts and their sessions

/** A local account of the admin web UI. `totpSecret` is opened (sealed at rest). */
export interface AdminAccount {
  id: number;
  name: string;
  role: "operator" | "admin" | "root";
  /** argon2id. */
  passwordHash: string;
  totpSecret: Uint8Array;
  /** The TOTP high-water mark: only a later step is accepted. */
  totpLastStep: number;
  createdAt: number;
  lastSignInAt: number | null;
}

/** A signed-in session. The cookie value is never stored: only its SHA-256 (hex). */
export interface AdminSession {
  tokenHash: string;
  accountId: number;
  /** The synchroniser token every form of this session carries. */
  csrf: string;
  createdAt: number;
  lastSeenAt: number;
  /** Absolute end. */
  expiresAt: number;
}

export interface AdminAccountRepo {
  /** Throws StoreError("conflict") when the name exists. */
  add(a: { name: string; role: AdminAccount["role"]; passwordHash: string; totpSecret: Uint8Array }): Promise<AdminAccount>;
  get(name: string): Promise<AdminAccount | undefined>;
  getById(id: number): Promise<AdminAccount | undefined>;
  list(): Promise<AdminAccount[]>;
  /** True when it existed; its sessions go with it. */
  remove(name: string): Promise<boolean>;
  /** Replaces the TOTP secret (high-water mark back to 0) and ends the account's sessions. */
  setTotp(name: string, secret: Uint8Array): Promise<boolean>;
  /** Replaces the password hash and ends the account's sessions, except the one `keepSession` names (its token hash). */
  setPassword(name: string, passwordHash: string, options?: { keepSession?: string }): Promise<boolean>;
  /** Moves the high-water mark to `step` only if it is above the current one (`UPDATE … WHERE totp_last_step < ?`); false: a replay. */
  advanceStep(id: number, step: number, now: number): Promise<boolean>;
  createSession(s: AdminSession): Promise<void>;
  getSession(tokenHash: string): Promise<AdminSession | undefined>;
  /** Sets last_seen_at. */
  touchSession(tokenHash: string, now: number): Promise<void>;
  deleteSession(tokenHash: string): Promise<void>;
  /** Deletes sessions past their absolute end or idle longer than `idleMs`; returns how many. */
  purgeSessions(now: number, idleMs: number): Promise<number>;
}

/** The admin-account repository a store offers beside `Store` (SqliteStore, and CachedStore over it). */
export interface AdminAccountRepos {
  readonly adminAccounts: AdminAccountRepo;
}

/** The admin-account repository of an opened store. Throws TypeError when the back-end has none. */
export function adminAccountsOf(store: Store): AdminAccountRepo {
  const repo = (store as Store & Partial<AdminAccountRepos>).adminAccounts;
  if (!repo) throw new TypeError("store: this back-end has no admin-account table");
  return repo;
}

// --- the stored audit log (every process and node on the store writes it; the admin UI and API read it)

/** One stored audit event. `fields` is the event's JSON without its type: never a secret. */
export interface AuditRecord {
  id: number;
  at: number; // unix ms
  event: string;
  /** Who acted: `by` of admin.* events, the account of ui.* events, the API key of Magic Link calls; else null. */
  actor: string | null;
  /** The user concerned (normalised name), when the event names one. */
  user: string | null;
  /** The RADIUS client's name or the HTTP client's address, when the event names one. */
  client: string | null;
  /** accept, reject, challenge, approved, failed, … (audit/store-sink.ts outcomeOf); null when the event has none. */
  outcome: string | null;
  /** The process that emitted it ("host", "host/w2" for RADIUS worker 2). */
  node: string;
  fields: Record<string, unknown>;
}

export type NewAuditRecord = Omit<AuditRecord, "id">;

/** Filters of a read; every one optional. `event` ending in "." is a prefix ("auth."). */
export interface AuditQuery {
  /** unix ms, inclusive. */
  from?: number;
  /** unix ms, exclusive. */
  to?: number;
  event?: string;
  actor?: string;
  user?: string;
  outcome?: string;
  client?: string;
  /** Paging: only records older than this one (its `at` and `id`), newest first. */
  before?: { at: number; id: number };
  limit: number;
}

export type AuthOutcome = "accept" | "reject" | "challenge";

/** Authentications of one minute and outcome, added up over every process. */
export interface AuthMinute {
  /** unix ms of the minute's start. */
  minute: number;
  outcome: AuthOutcome;
  n: number;
}

export interface AuditLogRepo {
  /** Appends records in one statement/transaction. Throws StoreError("unavailable"). */
  append(records: readonly NewAuditRecord[]): Promise<void>;
  /** Adds to the per-minute counters (upsert; every process adds its own counts). */
  addCounts(counts: readonly AuthMinute[]): Promise<void>;
  /** Newest first (at, then id), at most `limit` (capped at 1,000). */
  list(query: AuditQuery): Promise<AuditRecord[]>;
  /** The per-minute counters of minutes at or after `fromMinute`. */
  minutes(fromMinute: number): Promise<AuthMinute[]>;
  /**
   * Deletes records older than `before` and, beyond them, the first-written records above `maxRows`
   * (by ID, which only grows: at most `maxRows` are left); and
   * per-minute counters older than `before`. At most `batch` records per call (call again while it
   * returns `batch`). Returns how many records went.
   */
  prune(before: number, maxRows: number, batch: number): Promise<number>;
}

/** The audit-log repository a store offers beside `Store`. */
export interface AuditLogRepos {
  readonly auditLog: AuditLogRepo;
}

/** The audit-log repository of an opened store, or undefined when the back-end has none. */
export function auditLogOf(store: Store): AuditLogRepo | undefined {
  return (store as Store & Partial<AuditLogRepos>).auditLog;
}
