// The configuration schema: every option, its type, its default and its documentation, in one place.
//
// The documentation in docs/configuration.md is generated from this file (scripts/gen-config-docs.ts),
// so the description strings here are the product's configuration reference. Keys are snake_case,
// as in the TOML file, and the exported `Config` type keeps them (config.radius.challenge_ttl_s).

import { DEFAULT_SMS_CODE_TEMPLATE, isSmsCodeTemplate, SMS_CODE_ALPHABET_NAMES, SMS_CODE_MAX_LENGTH, SMS_CODE_MIN_LENGTH } from "../approvals/sms-code.ts";
import { isIPv4, isIPv6 } from "node:net";
import { DEFAULT_PUSH_HOSTS, isPushHostRule } from "../push/hosts.ts";
import { canonicalCIDR } from "../util/cidr.ts";
import { isSafeDisplayText, SAFE_DISPLAY_TEXT_MUST } from "../util/display-text.ts";
import { isSupportedCountry } from "libphonenumber-js";
import * as v from "valibot";
import type { AuthType } from "../domain/auth-types.ts";

/** How a field is coerced from an environment variable and described in the reference. */
export type FieldKind = "string" | "integer" | "boolean" | "string[]" | "enum" | "table";

/** Metadata attached to every leaf option; `must` completes the sentence "KEY must be …". */
export type FieldMeta = {
  kind: FieldKind;
  must: string;
};

// --- value checks (exported for the CLI, which validates the same shapes) ---------------------

/**
 * True for "ADDR:PORT" with a literal IPv4 address, or "[IPv6]:PORT". Host names are not accepted:
 * a listener must name an address (see docs/appliance.md on virtual IPs).
 */
export function isListenAddress(s: string): boolean {
  const m = /^(?:\[([0-9A-Fa-f:.%a-zA-Z0-9]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(s);
  if (!m) return false;
  const port = Number(m[3]);
  if (port > 65535) return false; // port 0 asks the kernel for a free port (tests; the bound port is logged)
  return m[1] !== undefined ? isIPv6(m[1]) : isIPv4(m[2] ?? "");
}

/**
 * Parses a CIDR ("192.0.2.0/24", "2001:db8::/32") or a bare address (meaning /32 or /128), with
 * the same rules the RADIUS client table matches by. Returns the canonical "ADDR/PREFIX" string,
 * or undefined when the input is not one.
 */
export const parseCIDR = canonicalCIDR;

/** True for an ISO 3166 alpha-2 code that libphonenumber-js knows ("SE", "US"). */
export function isCountryCode(s: string): boolean {
  return /^[A-Z]{2}$/.test(s) && isSupportedCountry(s);
}

// --- field builders -------------------------------------------------------------------------

// The explicit input type keeps the pipe's output typed (an untyped action would make it unknown).
function meta<T>(kind: FieldKind, must: string) {
  return v.metadata<T, FieldMeta>({ kind, must });
}

function doc<T>(text: string) {
  return v.description<T, string>(text);
}

function integer(def: number, min: number, max: number, text: string) {
  return v.optional(
    v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max), doc<number>(text), meta<number>("integer", `a number between ${min} and ${max}`)),
    def,
  );
}

function text(def: string, description: string, must = "a string", check: (s: string) => boolean = () => true) {
  return v.optional(v.pipe(v.string(), v.check(check), doc<string>(description), meta<string>("string", must)), def);
}

function oneOf<const T extends readonly (string | number)[]>(options: T, def: T[number], description: string) {
  const must = `one of ${options.map((o) => (typeof o === "string" ? `"${o}"` : String(o))).join(", ")}`;
  return v.optional(v.pipe(v.picklist(options), doc<T[number]>(description), meta<T[number]>("enum", must)), def);
}

/** Like oneOf, but the input is normalised first (case, aliases such as a MIME type for a short name). */
function oneOfLoose<const T extends readonly string[]>(options: T, def: T[number], description: string, normalise: (s: string) => string) {
  const must = `one of ${options.map((o) => `"${o}"`).join(", ")}`;
  return v.optional(v.pipe(v.string(), v.transform(normalise), v.picklist(options), doc<T[number]>(description), meta<T[number]>("enum", must)), def);
}

function bool(def: boolean, description: string) {
  return v.optional(v.pipe(v.boolean(), doc<boolean>(description), meta<boolean>("boolean", "true or false")), def);
}

function list(def: string[], description: string, must: string, check: (s: string) => boolean) {
  return v.optional(v.pipe(v.array(v.pipe(v.string(), v.check(check))), doc<string[]>(description), meta<string[]>("string[]", must)), def);
}

function section<E extends v.ObjectEntries>(description: string, entries: E) {
  const schema = v.strictObject(entries);
  // An omitted section is parsed as {} so that every key in it takes its default.
  return v.optional(v.pipe(schema, doc<v.InferOutput<typeof schema>>(description)), {} as never);
}

/** A profile name: what clients list in `--directories`, and part of the bind password's env variable. */
export const PROFILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** An LDAP URL naming only a server: ldap:// or ldaps://, a host and an optional port (no DN, no query). */
export function isLdapURL(s: string): boolean {
  const m = /^(ldaps?):\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?\/?$/.exec(s);
  return m !== null && (m[3] === undefined || (Number(m[3]) >= 1 && Number(m[3]) <= 65535));
}

/** An LDAP attribute description: a name (RFC 4512 §1.4 descr) or a numeric OID. */
const isAttributeName = (s: string) => /^[A-Za-z][A-Za-z0-9-]{0,127}$/.test(s) || /^\d+(?:\.\d+)+$/.test(s);

/** A user filter template: parenthesised, balanced, holding `{username}` (RFC 4515 §3). */
export function isUserFilter(s: string): boolean {
  if (!s.startsWith("(") || !s.endsWith(")") || !s.includes("{username}")) return false;
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "\\") i += 2; // an RFC 4515 escape \XX is not a parenthesis
    else if (c === "(") depth++;
    else if (c === ")") {
      if (--depth < 0) return false;
      if (depth === 0 && i !== s.length - 1) return false; // "(a)(b)": two filters, not one
    } else if (depth === 0) return false; // text outside the outer parentheses
  }
  return depth === 0;
}

const nonEmpty = (s: string) => s.trim() !== "";

/** A text shown to a user (approval page, SMS, e-mail subject): non-empty, no control or bidirectional formatting characters (util/display-text.ts). */
const displayText = (s: string) => nonEmpty(s) && isSafeDisplayText(s);
const DISPLAY_TEXT_MUST = `a non-empty string ${SAFE_DISPLAY_TEXT_MUST}`;

function required(description: string, must: string, check: (s: string) => boolean) {
  return v.pipe(v.string(), v.check(check), doc<string>(description), meta<string>("string", must));
}

function optionalText(description: string, must: string, check: (s: string) => boolean) {
  return v.optional(v.pipe(v.string(), v.check(check), doc<string>(description), meta<string>("string", must)));
}

/** `[[ldap.reply]]`: RADIUS reply attributes for the members of one group. */
export const ldapReplySchema = v.strictObject({
  group: required("DN of the group; nested membership counts.", "a non-empty group DN", nonEmpty),
  attributes: v.pipe(
    v.record(v.string(), v.union([v.string(), v.pipe(v.number(), v.integer())])),
    doc<Record<string, string | number>>(
      'Attribute name → value, sent on the final Access-Accept. Names come from the embedded RADIUS dictionaries (standard, Microsoft, Cisco, Juniper and the other vendors embedded), e.g. `{ "Class" = "admins", "Filter-Id" = "admin-acl" }`; integer attributes take a number or a dictionary value name.',
    ),
    meta<Record<string, string | number>>("table", "a table of RADIUS attribute names to strings or integers"),
  ),
});

/** `[[ldap]]`: one LDAP or Active Directory profile. Cross-key rules are checked in load.ts. */
export const ldapProfileSchema = v.strictObject({
  name: required('Profile name, unique and not "local"; RADIUS clients list profiles by name (`client add … --directories corp,local`).', "a name of 1-64 letters, digits, '.', '_' or '-' other than \"local\"", (s) => PROFILE_NAME.test(s) && s.toLowerCase() !== "local"),
  urls: v.pipe(
    v.array(v.pipe(v.string(), v.check(isLdapURL))),
    v.minLength(1),
    doc<string[]>("Servers in failover order, each `ldaps://host[:port]` or `ldap://host[:port]`. Plain `ldap://` without `start_tls` sends passwords in clear text and is logged as a warning."),
    meta<string[]>("string[]", 'a non-empty list of ldap:// or ldaps:// URLs such as "ldaps://dc1.corp.example:636"'),
  ),
  start_tls: bool(false, "Upgrade `ldap://` connections with StartTLS (RFC 4513 §3) before any bind."),
  ca_file: optionalText("PEM file of the CA(s) that sign the servers' certificates. Absent means the system roots.", "a path to a readable file", nonEmpty),
  bind_dn: required("DN of the service account that searches for users (anonymous search is not supported).", "a non-empty DN", nonEmpty),
  bind_password_file: optionalText(
    "File holding the service account's password (one trailing newline is ignored), read at start-up; keep it mode 0600 or 0400. Give this or `bind_password`; `$PORTCULLIS_LDAP_<NAME>_BIND_PASSWORD` overrides both.",
    "a path to a readable file",
    nonEmpty,
  ),
  bind_password: optionalText(
    "The service account's password, when not in `bind_password_file`. Prefer the file or `$PORTCULLIS_LDAP_<NAME>_BIND_PASSWORD` (NAME upper-cased, other characters than letters and digits as `_`).",
    "a non-empty string",
    (s) => s !== "",
  ),
  base_dn: required("Where user searches start (subtree).", "a non-empty DN", nonEmpty),
  user_filter: required(
    "Search filter for a login name; `{username}` is replaced by the name escaped as RFC 4515 §3 requires, e.g. `(&(objectClass=user)(sAMAccountName={username}))` for Active Directory or `(&(objectClass=inetOrgPerson)(uid={username}))` for OpenLDAP.",
    "a parenthesised LDAP filter containing {username}",
    isUserFilter,
  ),
  phone_attribute: text("mobile", "Attribute holding the phone number, normalised to E.164 with the top-level `region`. Active Directory lets users write their own `mobile`, `pager` and `ipPhone`: prefer an attribute they cannot write.", "an attribute name", isAttributeName),
  email_attribute: text("mail", "Attribute holding the e-mail address.", "an attribute name", isAttributeName),
  type_attribute: optionalText(
    "Attribute holding the user's authentication type, as a Mideye number 1-11 or a type name. Use one users cannot write themselves (e.g. `extensionAttribute5` on Active Directory): a self-writable type attribute would let a user choose their own factors.",
    "an attribute name",
    isAttributeName,
  ),
  token_attribute: optionalText("Attribute holding a hardware token's serial.", "an attribute name", isAttributeName),
  allow_type_password: bool(false, "May the directory set a user to type `password` (1, no second factor)? Off, a `password` type read from the directory is ignored and `default_type` applies."),
  required_groups: list([], "Group DNs the user must be a member of, every one (nested membership counts). Empty means no group gate.", "a list of group DNs", nonEmpty),
  default_type: v.optional(
    v.pipe(
      v.union([v.string(), v.pipe(v.number(), v.integer())]),
      doc<string | number>("Authentication type (name or Mideye number) of users whose type attribute is absent or unusable. `password` only with `allow_type_password`."),
      meta<string | number>("string", "an authentication type name or number 1-11"),
    ),
    "totp",
  ),
  timeout_ms: integer(3000, 100, 60_000, "Timeout of each network operation (connect, bind, search, modify). The whole check, failover included, must fit the NAS's RADIUS timeout."),
  pool_size: integer(4, 1, 64, "Service-account connections kept open in each of two pools: one for the logins' user searches, one for group lookups and password changes (opened only when needed). When all are busy a login waits for one (at most `timeout_ms`)."),
  pipeline: integer(
    8,
    1,
    64,
    "Requests one service connection carries at once (pipelined; the server answers each by its message ID). 1 sends one request at a time. A network error or timeout fails every request then on the connection; searches are retried once on a new connection.",
  ),
  bind_pool_size: integer(
    32,
    1,
    64,
    "Connections kept open for user password checks only: each login rebinds one as the user, and none of them is ever used for a search. A bind cannot be pipelined, so this bounds the logins checking a password at once. When all are busy a login waits for one (at most `timeout_ms`). Each server connection counts against the directory's own connection limits; idle ones are closed after 60 s.",
  ),
  reply: v.optional(
    v.pipe(v.array(ldapReplySchema), doc<Array<v.InferOutput<typeof ldapReplySchema>>>("Group → RADIUS reply attributes; every matching entry applies, in order.")),
    [],
  ),
});


/** `[[endpoint]]`: a Magic Link endpoint profile declared in the file (seeded into the store by `serve`). */
export const endpointProfileSchema = v.strictObject({
  name: required(
    'Profile name, as in `/api/sfwa/auth/{name}` and `apikey add --endpoint`; "default" edits the profile used without a name.',
    "a name of 1-64 letters, digits, '.', '_' or '-'",
    (s) => PROFILE_NAME.test(s),
  ),
  sms_text: optionalText("SMS text; `{link}` is replaced by the approval link, which is appended when absent. Default: `Approve or reject your sign-in: {link}`.", DISPLAY_TEXT_MUST, displayText),
  authentication_text: optionalText("Question shown on the approval page.", DISPLAY_TEXT_MUST, displayText),
  touch_accept_text: optionalText("Page text after Approve.", DISPLAY_TEXT_MUST, displayText),
  touch_reject_text: optionalText("Page text after Reject.", DISPLAY_TEXT_MUST, displayText),
  button_accept_text: optionalText("Label of the Approve button.", DISPLAY_TEXT_MUST, displayText),
  button_reject_text: optionalText("Label of the Reject button.", DISPLAY_TEXT_MUST, displayText),
  title_text: optionalText("Title of the approval page.", DISPLAY_TEXT_MUST, displayText),
  touch_timeout_s: integer(90, 15, 300, "How long a call waits for the user when it passes no `touch-timeout`. Keep it under the caller's HTTP timeout (Mideye clients: 120 s)."),
  allow_custom_sms_text: bool(
    false,
    "May a caller replace the SMS text with `sms-text`? The link is always included. Off (the default), a call's `sms-text` is ignored and this profile's `sms_text` sent (the call proceeds; the first such call of each API key is logged, `magiclink.custom_text_ignored`), so that a key holder cannot send arbitrary text under the organisation's sender ID.",
  ),
  require_known_user: bool(false, "Refuse numbers that belong to no known user (an SMS pumping defence)."),
  per_number_per_minute: integer(5, 1, 1000, "Messages to one number in any 60 s."),
  per_number_per_hour: integer(30, 1, 10_000, "Messages to one number in any hour."),
  per_key_per_minute: integer(60, 0, 100_000, "Calls per API key in any 60 s; 0 means no limit."),
  overall_per_minute: integer(600, 0, 1_000_000, "Calls on this endpoint in any 60 s, over all keys; 0 means no limit."),
  channels: list([], 'Delivery channels in failover order, e.g. ["sms", "email"]; empty means the configured default order.', "a list of channel names", (s) => /^[a-z][a-z0-9_-]{0,31}$/.test(s)),
});
/** `[[password_reset]]`: one password-reset portal at `/password-reset/{name}` (docs/password-reset.md). */
export const passwordResetSchema = v.strictObject({
  name: required("Portal name, as in `/password-reset/{name}`.", "a name of 1-64 letters, digits, '.', '_' or '-'", (s) => PROFILE_NAME.test(s)),
  directory: text("local", 'Where the users of this portal live and their password is changed: an `[[ldap]]` profile name, or "local" (the store\'s own users, argon2id).', "an [[ldap]] profile name or \"local\"", (s) => s === "local" || PROFILE_NAME.test(s)),
  approvers: list([], "Usernames (local users, or users of `directory`) who may approve a reset; any one of them suffices.", "a list of usernames", nonEmpty),
  approver_groups: list([], "Group DNs of `directory` whose (direct or, on AD, nested) members may approve a reset.", "a list of group DNs", nonEmpty),
  approver_role: text("your helpdesk", "How the waiting page names the approvers (a role, never a person).", DISPLAY_TEXT_MUST, displayText),
  approval_timeout_s: integer(600, 60, 3600, "How long the approvers have to answer."),
  session_ttl_s: integer(1800, 300, 7200, "How long one reset (from the username to the new password) may take."),
  min_password_length: integer(12, 8, 256, 'Shortest new password for local users (`directory = "local"`); a directory applies its own policy.'),
  per_user_per_hour: integer(5, 1, 1000, "Resets started for one username in any hour (known or not)."),
  per_address_per_hour: integer(20, 1, 100_000, "Resets started from one client address in any hour."),
  overall_per_hour: integer(200, 1, 1_000_000, "Resets started on this portal in any hour, over all users and addresses."),
});

/** An E.164 prefix: "+" and 1-14 digits. */
export const isE164Prefix = (s: string) => /^\+[1-9]\d{0,13}$/.test(s);

function isRegExp(s: string): boolean {
  try {
    new RegExp(s);
    return true;
  } catch {
    return false;
  }
}

/** A sub-table of a section (`[delivery.sms]`): its keys are documented and overridable like a section's. */
function subsection<E extends v.ObjectEntries>(description: string, entries: E) {
  return section(description, entries);
}

/** A VAPID subject: a mailto: address or an https: URL, not naming localhost (Apple refuses it). */
export function isPushSubject(s: string): boolean {
  if (s === "") return true;
  if (/^mailto:[^\s@<>]+@[^\s@<>]+$/.test(s)) return true;
  if (!/^https:\/\/[^\s/]+/.test(s) || !URL.canParse(s)) return false;
  return new URL(s).hostname !== "localhost";
}

const isURL = (s: string) => s === "" || (/^https?:\/\/[^\s/]+/.test(s) && URL.canParse(s));

/** A delivery channel name: `[delivery] channels`, `[[endpoint]] channels`, logs and metrics. */
export const CHANNEL_NAME = /^[a-z][a-z0-9_-]{0,31}$/;

/** The channel names of the built-in channels, which a `[[delivery.gateway]]` may not take. */
export const BUILTIN_CHANNELS = ["sms", "email"] as const;

/**
 * The keys of an HTTP SMS gateway, shared by `[delivery.sms]` (channel "sms", overridable by
 * PORTCULLIS_DELIVERY_SMS_*) and each `[[delivery.gateway]]` (file only, `url` required).
 */
function smsGatewayEntries(kind: "sms" | "gateway") {
  const passwordEnv = kind === "sms" ? "`$PORTCULLIS_DELIVERY_SMS_PASSWORD`" : "`$PORTCULLIS_DELIVERY_GATEWAY_<NAME>_PASSWORD` (NAME upper-cased, other characters than letters and digits as `_`)";
  return {
    url:
      kind === "sms"
        ? text("", "Gateway URL (https:// unless on a trusted network). Empty disables SMS.", "empty or an http(s):// URL", isURL)
        : required("Gateway URL (https:// unless on a trusted network).", "an http(s):// URL", (s) => s !== "" && isURL(s)),
    method: oneOfLoose(["POST", "GET"] as const, "POST", "HTTP method (any case). With GET the rendered `body` becomes the query string.", (s) => s.toUpperCase()),
    content_type: oneOfLoose(
      ["form", "json"] as const,
      "form",
      '"form" (or `application/x-www-form-urlencoded`) sends a form body, each `{to}`/`{message}` value URL-encoded; "json" (or `application/json`) sends JSON, each value JSON-escaped, so write `"{message}"` inside quotes.',
      (s) => ({ "application/x-www-form-urlencoded": "form", "application/json": "json" })[s.trim().toLowerCase()] ?? s.trim().toLowerCase(),
    ),
    body: text(
      "to={to}&message={message}",
      "Body template. `{to}` is the E.164 number (+46701234567), `{to_digits}` the same without the + (46701234567), `{message}` the text. Everything else is sent as written.",
      "a string containing {to} (or {to_digits}) and {message}",
      (s) => (s.includes("{to}") || s.includes("{to_digits}")) && s.includes("{message}"),
    ),
    headers: v.optional(
      v.pipe(
        v.record(v.pipe(v.string(), v.regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/)), v.pipe(v.string(), v.check((s) => !/[\r\n\0]/.test(s)))),
        doc<Record<string, string>>("Extra request headers, e.g. `{ Authorization = \"Bearer …\" }`. Values may hold credentials: they are never logged."),
        meta<Record<string, string>>("table", "a table of header names to single-line strings"),
      ),
      {},
    ),
    user: text("", "User name for HTTP basic authentication (Twilio Account SID, 46elks API username). Empty sends no basic authentication."),
    password: text("", `Password for HTTP basic authentication; prefer ${passwordEnv} or \`password_file\`.`),
    password_file: text("", "File holding the basic-authentication password (one trailing newline ignored), read at start-up."),
    success_match: text(
      "",
      'Regular expression the response body must match for a 2xx to count as sent (Vonage answers 200 with `"status": "4"` on bad credentials). Empty: any 2xx is success.',
      "empty or a valid regular expression",
      isRegExp,
    ),
    timeout_ms: integer(5000, 100, 60_000, "Time for the whole request; after it the next channel is tried."),
  };
}

/** `[[delivery.gateway]]`: a further HTTP SMS gateway, a channel named `name`. Cross-key rules are checked in config/delivery.ts. */
export const smsGatewaySchema = v.strictObject({
  name: required(
    'Channel name, unique, not "sms" or "email" (the built-in channels); used in `[delivery] channels`, `[[endpoint]] channels`, the delivery log and metrics.',
    "a name of 1-32 lower-case letters, digits, '_' or '-' starting with a letter, other than \"sms\", \"email\" and \"switch\"",
    (s) => CHANNEL_NAME.test(s) && ![...BUILTIN_CHANNELS, "switch"].includes(s),
  ),
  ...smsGatewayEntries("gateway"),
});

const LISTEN_MUST = 'an address and port such as "192.0.2.10:1812" or "[2001:db8::10]:1812"';

// --- the schema -----------------------------------------------------------------------------

/** The whole configuration file. Unknown keys anywhere are an error. */
export const configSchema = v.strictObject({
  data_dir: text(
    "./data",
    "Directory for the database, the encryption key file and generated certificates. Also `--data-dir` and `$PORTCULLIS_DATA_DIR`. The appliance install sets `/var/lib/portcullis`.",
    "a non-empty path",
    (s) => s.trim() !== "",
  ),
  region: v.optional(
    v.pipe(
      v.string(),
      v.toUpperCase(),
      v.check((s) => s === "" || isCountryCode(s)),
 doc<string>(
        'Country (ISO 3166 alpha-2, e.g. "SE") for phone numbers written in local format. Empty means every number must be written in E.164 (+46701234567).',
      ),
      meta<string>("string", 'empty or a two-letter country code such as "SE"'),
    ),
    "",
  ),
  log_level: oneOf(["debug", "info", "warn", "error"] as const, "info", "Minimum level of the JSON log lines written to standard output."),

  radius: section("The RADIUS server (RFC 2865).", {
    listen: list(
      ["0.0.0.0:1812"],
      'UDP addresses to listen on, as "ADDR:PORT" ("[::1]:1812" for IPv6). Name the explicit addresses of the appliance: a wildcard socket replies from whichever address routing picks, which breaks virtual IPs (VRRP). Also `serve --radius-listen`, which may be given several times.',
      `a list of ${LISTEN_MUST}`,
      isListenAddress,
    ),
    recv_buffer_bytes: integer(8_388_608, 65_536, 1_073_741_824, "Socket receive buffer size in bytes, so that a burst of requests is queued rather than dropped by the kernel."),
    dedupe_ttl_s: integer(
      30,
      1,
      3600,
      "How long an answered request is remembered after its answer, to recognise retransmissions (RFC 5080 §2.2.2). Must exceed the NAS's retry count times its retry interval. A request still being decided (a held phone approval, up to 120 s) is recognised for as long as it is held, whatever this value.",
    ),
    challenge_ttl_s: integer(120, 10, 600, "How long an Access-Challenge State stays valid for the second leg."),
    challenge_max_failures: integer(3, 1, 10, "Wrong codes after which a challenge State is invalidated and the user must start again."),
    otp_prompt: text(
      "Enter your verification code",
      "Reply-Message text sent with an Access-Challenge (RFC 2865 §5.18).",
      "a non-empty string of at most 253 bytes",
      (s) => s.trim() !== "" && new TextEncoder().encode(s).length <= 253,
    ),
    realms: oneOf(
      ["strip", "keep"] as const,
      "strip",
      '"strip" removes a `DOMAIN\\` prefix and an `@realm` suffix from User-Name, so that `alice`, `Alice@corp` and `CORP\\alice` are one identity. "keep" treats them as different users.',
    ),
    workers: integer(
      0,
      0,
      64,
      "RADIUS worker processes on this host, sharing the listen addresses (SO_REUSEPORT) and the store; 0 means the number of CPUs, at most 8. With 1 the server is a single process; with more, `serve` supervises the workers and runs the HTTP listeners and the periodic jobs itself. On a host whose CPUs are busy anyway, more workers cost more CPU per login than one: see docs/appliance.md, \"RADIUS workers\".",
    ),
    stats_interval_s: integer(300, 0, 86_400, "Interval of the `radius.stats` log line with packet counters (also written on SIGUSR1); 0 turns the periodic line off."),
    drop_log_interval_s: integer(10, 1, 3600, "Dropped packets are logged at most once per source and reason in this interval, with a count of the lines suppressed."),
  }),

  otp: section("One-time passwords (TOTP RFC 6238, HOTP RFC 4226).", {
    window: integer(1, 0, 10, "TOTP steps accepted either side of the current one (clock skew). Each extra step widens the guessing window."),
    hotp_look_ahead: integer(10, 0, 100, "HOTP counter values accepted ahead of the expected one (RFC 4226 §7.4)."),
    issuer: text(
      "Portcullis",
      "Issuer shown by authenticator apps, in otpauth:// URIs.",
      "a non-empty string without a colon",
      (s) => s.trim() !== "" && !s.includes(":"),
    ),
    default_digits: oneOf([6, 8] as const, 6, "Code length of new tokens."),
    default_period: integer(30, 10, 300, "TOTP step in seconds of new tokens."),
    default_algorithm: oneOf(["SHA1", "SHA256", "SHA512"] as const, "SHA1", "HMAC algorithm of new tokens. Many authenticator apps only support SHA1."),
  }),

  lockout: section(
    "Back-off after failures, keyed on the normalised identity and the source (the Calling-Station-Id, else the RADIUS client), with a per-user cap across sources that refuses only sources the user has not logged in from. Keep `password_identity_cap` below the directory's own lockout threshold (e.g. the Active Directory account lockout policy), so that unknown sources can never lock the directory account. See docs/security.md, \"Lockout\".",
    {
      password_threshold: integer(
        5,
        1,
        100,
        "Password failures from one source (the Calling-Station-Id, else the RADIUS client) before that source's back-off starts. With `password_identity_cap`, keep the sum below the directory's own lockout threshold.",
      ),
      code_threshold: integer(5, 1, 100, "Wrong codes from one source before that source's back-off starts."),
      base_delay_s: integer(2, 1, 3600, "First waiting time once a threshold is reached; doubled for each further failure."),
      max_delay_s: integer(900, 1, 86_400, "Longest waiting time. Must be at least `base_delay_s`."),
      reset_after_s: integer(
        900,
        1,
        604_800,
        "A counter whose last failure is older than this starts again from zero; also how long a reached `*_identity_cap` holds. Keep it at least the directory's own lockout observation window (AD: \"Reset account lockout counter after\").",
      ),
      password_identity_cap: integer(
        4,
        1,
        100,
        "Wrong passwords for one user across every source after which password attempts are refused from sources where the user has not logged in within `known_source_days`; known sources still get in. Must sit below the directory's own lockout threshold (AD's default is 10, CIS recommends at most 5).",
      ),
      code_identity_cap: integer(5, 1, 100, "Wrong codes for one user across every source after which code attempts are refused from sources where the user has not logged in within `known_source_days`."),
      known_source_days: integer(30, 1, 365, "A source (the Calling-Station-Id, else the RADIUS client) stays known for a user this many days after a login completed from it."),
      known_sources_per_user: integer(16, 1, 256, "Known sources kept per user: the most recent."),
    },
  ),

  password: section("Local passwords (argon2id).", {
    hash_concurrency: integer(0, 0, 256, "Password hashes computed at the same time; 0 means the number of CPUs. Bounds memory use under a flood of requests."),
  }),

  store: section("Where state lives.", {
    driver: oneOf(["sqlite"] as const, "sqlite", 'Storage back-end. "sqlite" keeps everything in one file in the data directory.'),
    path: text("", "SQLite database file. Empty means `<data_dir>/portcullis.db`."),
    url: text(
      "",
      'PostgreSQL instead of SQLite: `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (also `$PORTCULLIS_STORE_URL`). Empty means SQLite. Several appliances may share one database; each needs the same key (`[keys] key_file`). The password is never logged; prefer the environment variable or a file readable only by the service. See docs/store.md.',
      "empty or a postgres:// URL",
      (s) => s === "" || /^postgres(ql)?:\/\/\S+$/i.test(s),
    ),
    pool_size: integer(10, 1, 200, "PostgreSQL connections each appliance keeps open (ignored for SQLite)."),
    idempotency_records: bool(
      true,
      "PostgreSQL: record each RADIUS reply for `[radius] dedupe_ttl_s`, so that a NAS failing over to another appliance with the same packet gets the same answer. Costs one read and one write per Access-Request (batched). Ignored for SQLite.",
    ),
    synchronous: oneOf(
      ["normal", "full"] as const,
      "normal",
      'SQLite `synchronous` pragma in WAL mode. "full" also survives power loss without losing the last commits, at some cost in write latency.',
    ),
    cache: bool(
      true,
      "Serve users, active tokens and lockout counters from memory in `serve`, loaded at start-up (up to 262,144 users) and dropped whenever another process (the admin CLI, another RADIUS worker) commits a change to them (another worker's high-water-mark commits do not count). Writes, the TOTP replay guard and challenge state always go to the database. PostgreSQL: each local user's record and active tokens are remembered after a code-only login reads them, and a later login accepts from memory only when its high-water-mark write revalidates all of it in the same statement (docs/store.md).",
    ),
    busy_timeout_ms: integer(5000, 0, 600_000, "How long a write waits for another process (the admin CLI) holding the database lock."),
  }),

  keys: section("The key that encrypts OTP seeds and RADIUS secrets at rest (AES-256-GCM).", {
    key_file: text(
      "",
      "Key file, created with mode 0600 when no key exists. Empty means `<data_dir>/portcullis.key`. A systemd credential named `portcullis.key` (`$CREDENTIALS_DIRECTORY`) takes precedence.",
    ),
  }),

  http: section("The public HTTP(S) listener: approval pages and the Magic Link API.", {
    listen: text("0.0.0.0:8443", "Address and port of the public listener. Also `serve --http-listen`.", LISTEN_MUST, isListenAddress),
    public_url: text(
      "",
      "Base URL of every link sent to a phone (https://mfa.example.com). Links are never built from request headers.",
      "empty or an http(s):// URL",
      isURL,
    ),
    cert_file: text("", "TLS certificate (PEM). When both files are empty a self-signed certificate is generated into the data directory; phones need a certificate they trust."),
    key_file: text("", "TLS private key (PEM) for `cert_file`."),
    tls: bool(true, "false serves plain HTTP, only for use behind a TLS-terminating reverse proxy."),
    trusted_proxies: list(
      [],
      "Proxies (CIDR or address) whose X-Forwarded-For header is believed. Empty means the header is ignored.",
      "a list of CIDR networks or addresses",
      (s) => parseCIDR(s) !== undefined,
    ),
    max_connections: integer(
      4096,
      16,
      1_000_000,
      "Open connections the public listener holds at once; a connection beyond it is closed as soon as it is accepted. Lowered at start-up, with a warning, when the process's open-file limit cannot hold it beside the admin listener. Each waiting Magic Link call holds one.",
    ),
    max_connections_per_address: integer(
      128,
      1,
      1_000_000,
      "Open connections from one client address at once (trusted proxies are exempt; the overall cap still applies to them). Raise it when one web application holds more simultaneous Magic Link calls.",
    ),
    header_timeout_s: integer(10, 1, 300, "A connection that has not sent a complete request head this long after it opened (or after its previous answer) is closed. Includes the TLS handshake."),
    body_timeout_s: integer(5, 1, 300, "A request body that has not fully arrived this long after its head is abandoned and the connection closed."),
  }),

  admin: section("The admin listener: admin API and Prometheus /metrics.", {
    listen: text("127.0.0.1:8444", "Address and port of the admin listener. Keep it on loopback or a management network.", LISTEN_MUST, isListenAddress),
    max_connections: integer(128, 4, 100_000, "Open connections the admin listener holds at once. Its own cap, apart from the public listener's, keeps it reachable while the public listener is flooded."),
    max_connections_per_address: integer(32, 1, 100_000, "Open connections from one address to the admin listener at once."),
    body_timeout_s: integer(60, 1, 600, "A request body (an import file, at most 8 MiB) that has not fully arrived this long after its head is abandoned and the connection closed."),
  }),

  ldap: v.optional(
    v.pipe(
      v.array(ldapProfileSchema),
      doc<Array<v.InferOutput<typeof ldapProfileSchema>>>(
        "LDAP and Active Directory profiles, tried in the order listed: the next profile is asked only when a user is not found in this one, never because this one did not answer. With none, only local users exist.",
      ),
    ),
    [],
  ),

  endpoint: v.optional(
    v.pipe(
      v.array(endpointProfileSchema),
      doc<Array<v.InferOutput<typeof endpointProfileSchema>>>(
        "Magic Link endpoint profiles. `serve` writes each one to the store at start-up, replacing a stored profile of the same name (the file wins over edits made through the admin API); profiles created only through the admin API are kept. Unset keys take the defaults shown. The texts (`*_text`) may not hold control characters other than tab and line breaks, nor bidirectional formatting characters (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069): they could make a page or an SMS show one thing and say another.",
      ),
    ),
    [],
  ),

  password_reset: v.optional(
    v.pipe(
      v.array(passwordResetSchema),
      doc<Array<v.InferOutput<typeof passwordResetSchema>>>(
        "Password-reset portals on the public listener (`/password-reset/{name}`): a one-time code to the user's phone or approver app, an approval by one of the approvers, then a new password set in the directory. None by default. See docs/password-reset.md.",
      ),
    ),
    [],
  ),

  delivery: section("Delivery of codes and approvals (SMS, e-mail, push), and the SMS-pumping defences in front of it. See docs/delivery.md.", {
    allowed_countries: v.optional(
      v.pipe(
        v.array(v.pipe(v.string(), v.toUpperCase(), v.check(isCountryCode))),
        doc<string[]>(
          "SMS destination allow-list of ISO 3166 alpha-2 country codes: their mobile numbers (and numbers a country's plan cannot tell from mobiles, as in +1) are allowed; premium-rate, shared-cost, fixed-line and other numbers, and numbers of unknown type, need an `allowed_prefixes` entry. When omitted it is `[region]`; when empty every SMS is refused (unless `allowed_prefixes` lets a number through). See docs/delivery.md, Number types.",
        ),
        meta<string[]>("string[]", 'a list of two-letter country codes such as ["SE", "NO"]'),
      ),
    ),
    allowed_prefixes: list(
      [],
      'Further E.164 prefixes SMS may go to, in addition to `allowed_countries` (e.g. `["+35840", "+35850"]` for Finnish mobile ranges only). A number that starts with a listed prefix is allowed whatever its country and number type: `["+468"]` admits Stockholm landlines, which `allowed_countries` alone refuses. List the narrowest prefix: `"+46"` would admit Swedish premium-rate numbers too.',
      'a list of E.164 prefixes such as ["+4670", "+35840"]',
      isE164Prefix,
    ),
    channels: v.optional(
      v.pipe(
        v.array(v.pipe(v.string(), v.check((s) => CHANNEL_NAME.test(s)))),
        v.check((a) => new Set(a).size === a.length),
        doc<string[]>(
          'Channels tried in this order; the next is tried when one fails: `"sms"` (`[delivery.sms]`), `"email"` (`[delivery.smtp]`) and the name of each `[[delivery.gateway]]`. A channel is used only when it is configured (`[delivery.sms] url`, `[delivery.smtp] host`) and the user has its address (phone, e-mail). When omitted: `sms`, then every `[[delivery.gateway]]` in file order, then `email`.',
        ),
        meta<string[]>("string[]", 'a list without repeats of channel names ("sms", "email" or a [[delivery.gateway]] name)'),
      ),
    ),
    per_number_per_minute: integer(5, 0, 1_000_000, "Messages to one phone number (or e-mail address) in any 60 s (a sliding window, not the calendar minute; see docs/delivery.md). 0 turns this limit off."),
    per_number_per_hour: integer(30, 0, 1_000_000, "Messages to one phone number (or e-mail address) in any hour. 0 turns this limit off."),
    per_key_per_minute: integer(30, 0, 1_000_000, "Messages requested with one API key in any 60 s. 0 turns this limit off."),
    per_key_per_hour: integer(300, 0, 1_000_000, "Messages requested with one API key in any hour. 0 turns this limit off."),
    overall_per_minute: integer(120, 0, 1_000_000, "Messages from the whole appliance (the cluster, sharing one store) in any 60 s: the ceiling that stops SMS pumping spread over many numbers. 0 turns this limit off."),
    overall_per_hour: integer(1000, 0, 10_000_000, "Messages from the whole appliance (the cluster) in any hour. 0 turns this limit off."),
    sms_max_length: integer(300, 60, 1600, "Longest SMS text in characters (UCS-2 code units), link included; custom text is cut to fit, the link never is."),
    sms_template: text(
      "Approve or reject the sign-in request: {link}",
      "Default SMS text; `{link}` is replaced by the approval link (which is appended when the template lacks it).",
      DISPLAY_TEXT_MUST,
      displayText,
    ),
    sms_code_template: text(
      DEFAULT_SMS_CODE_TEMPLATE,
      "Text of an SMS one-time code (authentication types `mobile` and `touch-mobile`): `{code}` is replaced by the code and `{client}` by the RADIUS client's name. No other placeholder exists: the message never carries the username or the password.",
      `${DISPLAY_TEXT_MUST}, holding {code}, at most 250 characters`,
      (s) => displayText(s) && isSmsCodeTemplate(s) && s.length <= 250,
    ),
    sms_code_length: integer(6, SMS_CODE_MIN_LENGTH, SMS_CODE_MAX_LENGTH, "Characters in an SMS one-time code."),
    sms_code_alphabet: oneOf(
      SMS_CODE_ALPHABET_NAMES,
      "numeric",
      "Characters of an SMS one-time code: `numeric` (0-9), `alphabetic` (A-Z without I, L and O) or `alphanumeric` (2-9 and A-Z without I, L and O: nothing that reads as another character). Letters are upper case; what the user types is compared upper-cased, spaces and hyphens ignored.",
    ),
    sms_code_lifetime_s: integer(300, 30, 3600, "How long an SMS one-time code can be used (seconds)."),
    sms_code_max_failures: integer(3, 1, 10, "Wrong codes after which an SMS one-time code is invalidated (a new one must be sent)."),
    email_subject: text("Sign-in request", "Subject of approval e-mails.", "a non-empty string without line breaks, control or bidirectional formatting characters", (s) => displayText(s) && !/[\r\n]/.test(s)),
    log_retention_days: integer(90, 1, 3650, "Days a delivery log row is kept."),
    sms: subsection("`[delivery.sms]`: the HTTP SMS gateway (channel `sms`). Leave `url` empty to send no SMS. Examples for Twilio, 46elks and Vonage are in docs/delivery.md.", smsGatewayEntries("sms")),
    gateway: v.optional(
      v.pipe(
        v.array(smsGatewaySchema),
        doc<Array<v.InferOutput<typeof smsGatewaySchema>>>(
          "Further HTTP SMS gateways, each a channel of its own `name` with the keys of `[delivery.sms]`, e.g. a second provider to fail over to. List them in `[delivery] channels` (or an endpoint's `channels`) to set the order; when `[delivery] channels` is not set they come after `sms` and before `email`, in file order.",
        ),
      ),
      [],
    ),
    smtp: subsection("`[delivery.smtp]`: e-mail over SMTP. Leave `host` empty to send no e-mail.", {
      host: text("", "SMTP server host name. Empty disables e-mail.", "a host name or address without spaces", (s) => !/\s/.test(s)),
      port: integer(587, 1, 65_535, "SMTP port: 587 (submission with STARTTLS) or 465 (implicit TLS, `secure = true`)."),
      starttls: bool(true, "Require STARTTLS before authentication and sending; a server without it fails the delivery."),
      secure: bool(false, "Implicit TLS from the first byte (port 465)."),
      user: text("", "SMTP AUTH user name. Empty sends without authentication."),
      password: text("", "SMTP AUTH password; prefer `$PORTCULLIS_DELIVERY_SMTP_PASSWORD` or `password_file`."),
      password_file: text("", "File holding the SMTP password (one trailing newline ignored), read at start-up."),
      from: text("", "Sender address (`Portcullis <mfa@example.com>`). Required when `host` is set.", "empty or an address without line breaks", (s) => !/[\r\n]/.test(s)),
      ca_file: text("", "PEM file of the CA(s) that sign the server's certificate. Empty means the system roots."),
      timeout_ms: integer(10_000, 100, 120_000, "Time for connecting, each SMTP reply and the whole send; after it the next channel is tried."),
    }),
  }),

  push: section("Web Push to the approver app (RFC 8030, encrypted per RFC 8291, VAPID per RFC 8292). See docs/app.md.", {
    subject: text(
      "",
      "The VAPID `sub` claim (RFC 8292 §2.1): a `mailto:` address or `https:` URL where push services can reach the operator. Empty means `http.public_url` when that is an https: URL; with neither, no push is sent (logged at start-up). Apple's push service refuses a `localhost` subject.",
      "empty, a mailto: address or an https:// URL (not localhost)",
      isPushSubject,
    ),
    allowed_hosts: list(
      [...DEFAULT_PUSH_HOSTS],
      "Push services a device's subscription may point at: host names, `*.domain` for any subdomain (not the domain itself), or IP addresses. An endpoint must be https: on one of them; http: is accepted only for a loopback address listed literally (a test push service). Checked when a subscription is stored and again before each send. The default is the Apple, Google (FCM), Mozilla and Microsoft (WNS) push services.",
      'a list of host names, "*.domain" wildcards or IP addresses',
      isPushHostRule,
    ),
    timeout_ms: integer(10_000, 500, 60_000, "Deadline of each request to a push service; devices are notified in parallel, so one slow service delays none of the others."),
  }),

  switch: section("The appliance's outbound connection to a switch relay (`portcullis switch join URL TOKEN` once). With `urls` set, `switch` is a delivery channel, tried first unless `[delivery] channels` orders it. See docs/switch.md.", {
    urls: list(
      [],
      "Relay base URLs (https://), the primary first; the next one is used while the primary cannot be reached, and the primary again once it answers. Empty: no switch.",
      "a list of https:// URLs",
      (s) => /^https:\/\/[^\s/]+/.test(s) && URL.canParse(s),
    ),
    ca_file: text("", "PEM file of the CA(s) that sign the relays' certificates (for a relay's generated certificate: that certificate). Required with `urls`; the system roots are not used."),
    primary_retry_s: integer(30, 1, 3600, "While on a secondary relay, how often the primary is tried again."),
  }),

  switch_server: section("`portcullis switch serve`: the relay, on an internet-facing host, with its own data directory, `[delivery]` and `[push]`. See docs/switch.md.", {
    listen: text("0.0.0.0:9443", "Address and port of the relay's listener: the appliances' WebSocket and the approval pages, over TLS.", LISTEN_MUST, isListenAddress),
    public_url: text("", "Base URL of the approval links the relay serves (https://switch.example.com). Required by `switch serve`.", "empty or an http(s):// URL", isURL),
    cert_file: text("", "TLS certificate (PEM). When both files are empty a self-signed certificate is generated into the data directory (give it to the appliances as `[switch] ca_file`; phones need a certificate they trust, so put a reverse proxy with a public certificate in front)."),
    key_file: text("", "TLS private key (PEM) for `cert_file`."),
    tls: bool(true, "false serves plain HTTP and WS, only behind a TLS-terminating reverse proxy on the same host."),
    per_appliance_per_minute: integer(60, 0, 1_000_000, "Messages one appliance may send through the relay in any 60 s, on top of the `[delivery]` limits per number and overall. 0 turns it off."),
    per_appliance_per_hour: integer(600, 0, 10_000_000, "Messages one appliance may send through the relay in any hour. 0 turns it off."),
    metrics_listen: text(
      "",
      "Address and port of a separate plain-HTTP listener serving only the relay's Prometheus `/metrics` (and `/healthz`), never on the public listener. Empty (the default) serves no metrics. Keep it on loopback or a management network, like the appliance's admin listener.",
      `empty or ${LISTEN_MUST}`,
      (s) => s === "" || isListenAddress(s),
    ),
  }),

  app: section("Requests to the approver app: limits against MFA fatigue, the event streams, and the code shown for challenge mode. See docs/app.md.", {
    requests_per_minute: integer(5, 0, 1000, "App requests one user may get in any 60 s (RADIUS and Magic Link together; a request that joins a pending one counts too); beyond it the request is refused. 0 = no limit."),
    requests_per_hour: integer(30, 0, 10_000, "App requests one user may get in any hour. 0 = no limit."),
    reject_backoff_s: integer(
      30,
      0,
      86_400,
      "After a user rejects an app request, no new one reaches them for this long; it doubles with each rejection in a row (up to `max_backoff_s`) and resets with an approval or an hour without rejections. 0 = no back-off.",
    ),
    max_backoff_s: integer(900, 0, 86_400, "The longest back-off after rejections in a row."),
    report_lock_s: integer(1800, 0, 604_800, "After a user reports a request (\"This wasn't me\"), no app request reaches them for this long; `user unlock` ends it sooner. 0 = no lock (the report is still audited)."),
    code_to_phone: bool(
      true,
      "In challenge mode (a RADIUS client with `--approval-mode challenge`), the app also shows a one-time code that the user may type at the VPN instead of approving; a wrong code rejects the request.",
    ),
    max_streams_per_user: integer(4, 1, 64, "Open event streams (`GET /app/api/v{1,2}/events`) per user; each device keeps at most 2 (a third closes its oldest). Beyond it a new stream is refused with 429."),
  }),

  admin_ui: section("The admin web UI at `/ui/` on the admin listener: local accounts (`portcullis admin add`), and optionally the members of directory groups, signing in with a password and a TOTP code. See docs/admin-ui.md.", {
    enabled: bool(true, "Serve the admin web UI at `/ui/` on the admin listener. It is reachable only where the admin listener is, and only accounts made with `portcullis admin add` (and, with `ldap_profile`, members of its role groups) can sign in."),
    idle_timeout_s: integer(900, 1, 86_400, "A session with no request for this long ends; the next page asks to sign in again."),
    session_lifetime_s: integer(28_800, 60, 604_800, "A session ends this long after its sign-in, however active."),
    secure_cookie: bool(
      false,
      "Mark the session cookie `Secure` and name it with the `__Host-` prefix. The admin listener speaks plain HTTP, so turn this on only when a TLS-terminating reverse proxy sits in front of it (the browser would otherwise never send the cookie back).",
    ),
    ldap_profile: text(
      "",
      "An `[[ldap]]` profile whose users may sign in too, by group (`root_group`, `admin_group`, `operator_group`): a name that is not a local admin account is looked up there, its password checked by a bind, then its groups, then a code of a TOTP token the user has in Portcullis. Empty: local accounts only.",
      "an [[ldap]] profile name or empty",
      (s) => s === "" || PROFILE_NAME.test(s),
    ),
    root_group: text("", "Members of this group DN (of `ldap_profile`) sign in with the `root` role. Empty: none.", "a group DN or empty"),
    admin_group: text("", "Members of this group DN sign in with the `admin` role (unless a higher role's group also holds them). Empty: none.", "a group DN or empty"),
    operator_group: text("", "Members of this group DN sign in with the `operator` role (unless a higher role's group also holds them). Empty: none.", "a group DN or empty"),
  }),
  self_service: section("The self-service portal at `/self-service` on the public listener, where users enrol and remove their own authenticators. Off by default. See docs/self-service.md.", {
    enabled: bool(false, "Serve the portal. Off: every `/self-service` path answers 404."),
    allow_totp_sign_in: bool(
      true,
      "Users may sign in with their password and a code of an active token, checked as a RADIUS login checks them (the same user sources, lockout counters and replay protection). Off: only an administrator's enrolment link signs in.",
    ),
    allow_app_sign_in: bool(
      true,
      "Users with a live approver-app device may sign in with their password and an approval in the app (the code field left empty): an app request of kind `self-service` under the `[app]` limits against fatigue, never an SMS. Off: a code or a link only.",
    ),
    app_sign_in_timeout_s: integer(90, 15, 300, "How long an approver-app sign-in waits for the answer in the app; the page then shows the generic failure."),
    app_sign_in_number_match: bool(true, "The sign-in page shows a number that the user picks among three in the app (number matching)."),
    allow_totp_enrolment: bool(true, "Signed-in users may enrol a TOTP app (the token becomes active only once a code from it is confirmed)."),
    allow_app_enrolment: bool(true, "Signed-in users may start an approver-app enrolment (the link and QR code `device enrol` prints)."),
    allow_removal: bool(true, "Signed-in users may remove their own tokens and devices (never the last one: that takes an administrator)."),
    directories: list(
      [],
      "User sources for password sign-in, in order (LDAP profile names and `local`), like a RADIUS client's `--directories`. Empty means every profile in file order, then local users.",
      'a list of profile names or "local"',
      (s) => s === "local" || PROFILE_NAME.test(s),
    ),
    sign_ins_per_minute: integer(
      20,
      0,
      10_000,
      "Sign-in attempts (password and code, or a link) one client address may make in any 60 s (the address after `[http] trusted_proxies`; raise it when many users share one NAT address), counted before any check and shared by every process on the store; beyond it the page asks to wait. The lockout counters apply on top of it. 0 = no limit.",
    ),
    sign_ins_per_hour: integer(200, 0, 100_000, "Sign-in attempts one client address may make in any hour. 0 = no limit."),
    idle_timeout_s: integer(600, 60, 86_400, "A session unused for this long ends; the next request shows the sign-in page."),
    session_lifetime_s: integer(3600, 300, 86_400, "A session ends this long after sign-in, however active."),
    enrol_link_ttl_h: integer(24, 1, 720, "How long a link made by `portcullis user enrol-link` stays valid (it is single use)."),
    pending_totp_ttl_s: integer(600, 60, 3600, "How long an enrolled TOTP app may wait for its confirming code; after it the seed is dropped and enrolment starts again."),
  }),
  audit: section("The audit log kept in the store, shared by every process and node on it: the admin web UI's audit page and dashboard, and `GET /api/v1/audit`, read it. Every event still goes to standard output first. See docs/events.md.", {
    store: bool(true, "Keep audit events in the store (batched per event-loop turn, never in the way of a login: when the store is slow or down, events go to standard output only and `portcullis_audit_unstored_total` counts them)."),
    exclude: list(
      ["auth.success", "auth.challenge"],
      "Events not stored one by one: names (`auth.success`) or prefixes ending in a dot (`push.`). Authentications are always counted per minute and outcome for the dashboard, whatever is excluded; the default leaves out the two events every accepted login writes, which at thousands of logins a second would be most of the table.",
      "a list of event names or prefixes ending in '.'",
      (s) => /^[a-z][a-z_]*(\.[a-z_]*)?$/.test(s),
    ),
    max_per_second: integer(2000, 1, 1_000_000, "Events one process stores per second at most; beyond it they go to standard output only and are counted (a flood of failed logins cannot fill the table or the disk)."),
    retention_days: integer(90, 1, 3650, "Stored events and per-minute counts older than this are deleted (checked every minute)."),
    max_rows: integer(1_000_000, 1000, 1_000_000_000, "The most events kept; the oldest beyond it are deleted (checked every minute)."),
  }),
});

type ParsedConfig = v.InferOutput<typeof configSchema>;

/**
 * The validated configuration, snake_case as in the file. After loading, `data_dir`, `store.path`
 * and `keys.key_file` are absolute paths, `delivery.allowed_countries` and `delivery.channels` are
 * always lists, and each `delivery.gateway[].password` holds its environment override when set.
 */
export type Config = Omit<ParsedConfig, "delivery" | "ldap"> & {
  delivery: Omit<ParsedConfig["delivery"], "allowed_countries" | "channels"> & {
    allowed_countries: string[];
    /** Always a list after loading: when omitted, "sms", the gateways in file order, "email". */
    channels: string[];
  };
  ldap: LdapConfig[];
};

type ParsedLdap = v.InferOutput<typeof ldapProfileSchema>;

/**
 * One `[[ldap]]` profile after loading: paths absolute, the type parsed, the bind password read
 * (from the environment, the file or the config, in that order). Map it onto the directory's
 * LdapProfile with ldapProfiles() (config/ldap.ts).
 */
export type LdapConfig = Omit<ParsedLdap, "default_type" | "bind_password" | "bind_password_file" | "ca_file"> & {
  default_type: AuthType;
  ca_file: string | undefined;
  bind_password_file: string | undefined;
  /** The password itself. Never log it, never put it in an error. */
  bind_password: string;
  /** Where bind_password came from. */
  bind_password_source: "env" | "file" | "config";
  /** Permission bits of bind_password_file (for the group/world-readable warning); undefined without a file. */
  bind_password_file_mode: number | undefined;
};
