// The `[[ldap]]` profiles: rules across keys, the bind password (env → file → config), warnings, and the mapping onto LdapProfile.
//
// The schema (schema.ts) checks each key alone; this module checks what needs several keys or the
// world outside the file (unique names, `password` only when allowed, readable files, reply
// attribute names in the embedded RADIUS dictionaries). Every message names the key as
// `ldap[corp].urls` (or `ldap[0].urls` before the name is known) and its source, never a value: the
// bind password is a secret, and a DN or URL may be confidential too.

import { accessSync, constants, readFileSync, statSync } from "node:fs";
import type * as v from "valibot";
import { parseAuthType } from "../domain/auth-types.ts";
import type { LdapProfile } from "../directory/types.ts";
import { attributeByName, encodeAttributeByName } from "../radius/codec/dictionary.ts";
import { CONFIG_TABLE_ARRAYS, type ConfigField, type ConfigTableArray } from "./fields.ts";
import { ConfigError } from "./errors.ts";
import { PROFILE_NAME, type Config, type LdapConfig, type ldapProfileSchema } from "./schema.ts";

type ParsedLdap = v.InferOutput<typeof ldapProfileSchema>;

/**
 * Reply attributes the server sets itself, or that would break the protocol if a group could set
 * them (RFC 2865 §5.24 State, §5.33 Proxy-State; RFC 3579 §3.2 Message-Authenticator, §3.1 EAP-Message).
 */
const SERVER_OWNED = new Set(["user-password", "chap-password", "state", "proxy-state", "message-authenticator", "eap-message"]);

/**
 * The environment variable that overrides a profile's bind password:
 * `PORTCULLIS_LDAP_<NAME>_BIND_PASSWORD`, NAME upper-cased with every non-alphanumeric as `_`.
 */
export function ldapPasswordEnv(profileName: string): string {
  return `PORTCULLIS_LDAP_${profileName.toUpperCase().replace(/[^A-Z0-9]/g, "_")}_BIND_PASSWORD`;
}

/** `ldap[corp]` when the raw entry has a usable name, else `ldap[0]`. */
function profileLabel(rawProfiles: unknown, index: number): string {
  const entry = Array.isArray(rawProfiles) ? (rawProfiles[index] as Record<string, unknown> | undefined) : undefined;
  const name = entry && typeof entry === "object" ? entry.name : undefined;
  return typeof name === "string" && PROFILE_NAME.test(name) ? `ldap[${name}]` : `ldap[${index}]`;
}

const fromWhere = (source: string | undefined) => (source ? ` (from ${source})` : "");

/**
 * The one-line message for a schema issue inside `ldap`, naming `ldap[corp].key` (or
 * `ldap[corp].reply[0].key`) and the source; never the value.
 */
export function describeLdapIssue(issue: v.BaseIssue<unknown>, rawProfiles: unknown, source: string | undefined): string {
  const path = (issue.path ?? []).map((p) => p.key);
  const from = fromWhere(source);
  if (path.length === 1) return `config: ldap must be an array of tables ([[ldap]])${from}`;
  const index = path[1];
  if (typeof index !== "number") return `config: ldap must be an array of tables ([[ldap]])${from}`;
  let label = profileLabel(rawProfiles, index);
  let table: ConfigTableArray = CONFIG_TABLE_ARRAYS.find((t) => t.name === "ldap")!;
  let rest = path.slice(2);
  if (rest[0] === "reply") {
    const child = table.children.find((c) => c.name === "ldap.reply")!;
    if (rest.length === 1 || typeof rest[1] !== "number") return `config: ${label}.reply must be an array of tables ([[ldap.reply]])${from}`;
    label = `${label}.reply[${rest[1]}]`;
    table = child;
    rest = rest.slice(2);
  }
  if (rest.length === 0) return `config: ${label} must be a table${from}`;
  const key = String(rest[0]);
  if (issue.kind === "schema" && issue.expected === "never") return `config: ${label}.${key} is not a known option${from}`;
  const field: ConfigField | undefined = table.fields.find((f) => f.key === key);
  if (!field) return `config: ${label}.${key} is invalid${from}`;
  if (rest.length === 1 && issue.received === "undefined") return `config: ${label}.${key} is required${from}`;
  return `config: ${label}.${key} must be ${field.must}${from}`;
}

export interface ResolveLdapOptions {
  env: Record<string, string | undefined>;
  /** Where `ldap` came from (the file), for messages. */
  source: string | undefined;
  /** Makes a configured path absolute. */
  resolvePath(p: string): string;
  /** The profiles as read from the file, to name them in messages. */
  rawProfiles: unknown;
}

function readable(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Drops exactly one trailing newline, as `echo` or an editor leaves it. */
function stripOneNewline(s: string): string {
  if (s.endsWith("\r\n")) return s.slice(0, -2);
  if (s.endsWith("\n")) return s.slice(0, -1);
  return s;
}

/**
 * Checks the parsed `[[ldap]]` tables across keys, reads each bind password and returns the loaded
 * profiles in config order.
 * @throws ConfigError naming `ldap[NAME].KEY` and its source (never a value) for a duplicate or
 *   reserved name, `default_type` `password` without `allow_type_password`, a missing or doubled
 *   bind password, an unreadable or empty file, an unknown or server-owned reply attribute or a
 *   value it cannot carry, and a PORTCULLIS_LDAP_* variable that names no profile.
 */
export function resolveLdapProfiles(parsed: ParsedLdap[], options: ResolveLdapOptions): LdapConfig[] {
  const { env, source, resolvePath, rawProfiles } = options;
  const from = fromWhere(source);
  const seen = new Map<string, string>();
  const envNames = new Set<string>();
  const out: LdapConfig[] = [];
  parsed.forEach((p, index) => {
    const label = profileLabel(rawProfiles, index);
    // Unique also after the env-name mapping, so that each profile has its own password variable.
    const envName = ldapPasswordEnv(p.name);
    const clash = seen.get(p.name.toLowerCase()) ?? seen.get(envName);
    if (clash !== undefined) throw new ConfigError(`config: ${label}.name must be unique (it clashes with ${clash})${from}`);
    seen.set(p.name.toLowerCase(), label);
    seen.set(envName, label);
    envNames.add(envName);

    const type = parseAuthType(String(p.default_type));
    if (!type) throw new ConfigError(`config: ${label}.default_type must be an authentication type name or number 1-11${from}`);
    if (type === "password" && !p.allow_type_password) {
      throw new ConfigError(`config: ${label}.default_type may be password (no second factor) only with allow_type_password = true${from}`);
    }

    let caFile: string | undefined;
    if (p.ca_file !== undefined) {
      caFile = resolvePath(p.ca_file);
      if (!readable(caFile)) throw new ConfigError(`config: ${label}.ca_file cannot be read${from}`);
    }

    const password = bindPassword(p, label, envName, env, from, resolvePath);

    p.reply.forEach((entry, j) => {
      for (const [name, value] of Object.entries(entry.attributes)) {
        const where = `${label}.reply[${j}].attributes.${name.length <= 64 ? name : "…"}`;
        const attr = attributeByName(name);
        if (!attr) throw new ConfigError(`config: ${where} is not an attribute of the embedded RADIUS dictionaries${from}`);
        if (SERVER_OWNED.has(attr.name.toLowerCase()) || attr.encrypt !== undefined) {
          throw new ConfigError(`config: ${where} is set by the server and cannot be a group reply attribute${from}`);
        }
        try {
          encodeAttributeByName(name, value);
        } catch {
          throw new ConfigError(`config: ${where} has a value that attribute cannot carry (type ${attr.dataType})${from}`);
        }
      }
    });

    out.push({
      ...p,
      default_type: type,
      ca_file: caFile,
      bind_password_file: password.file,
      bind_password: password.value,
      bind_password_source: password.source,
      bind_password_file_mode: password.mode,
    });
  });
  for (const name of Object.keys(env)) {
    if (name.startsWith("PORTCULLIS_LDAP_") && env[name] !== undefined && !envNames.has(name)) {
      throw new ConfigError(`config: ${name} names no [[ldap]] profile (expected ${ldapPasswordEnv("NAME")} for a configured NAME)`);
    }
  }
  return out;
}

function bindPassword(
  p: ParsedLdap,
  label: string,
  envName: string,
  env: Record<string, string | undefined>,
  from: string,
  resolvePath: (p: string) => string,
): { value: string; source: LdapConfig["bind_password_source"]; file: string | undefined; mode: number | undefined } {
  if (p.bind_password !== undefined && p.bind_password_file !== undefined) {
    throw new ConfigError(`config: ${label} must set only one of bind_password and bind_password_file${from}`);
  }
  const file = p.bind_password_file === undefined ? undefined : resolvePath(p.bind_password_file);
  const fromEnv = env[envName];
  if (fromEnv !== undefined) {
    // An empty password would make the service bind an unauthenticated bind (RFC 4513 §5.1.2).
    if (fromEnv === "") throw new ConfigError(`config: ${envName} must not be empty`);
    return { value: fromEnv, source: "env", file, mode: undefined };
  }
  if (file !== undefined) {
    let text: string;
    let mode: number;
    try {
      text = readFileSync(file, "utf8");
      mode = statSync(file).mode & 0o777;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "error";
      throw new ConfigError(`config: ${label}.bind_password_file cannot be read (${code})${from}`);
    }
    const value = stripOneNewline(text);
    if (value === "") throw new ConfigError(`config: ${label}.bind_password_file is empty${from}`);
    return { value, source: "file", file, mode };
  }
  if (p.bind_password !== undefined) return { value: p.bind_password, source: "config", file: undefined, mode: undefined };
  throw new ConfigError(`config: ${label} needs bind_password_file, bind_password or $${envName} (anonymous search is not supported)${from}`);
}

/** Start-up warnings for profiles that weaken a default; serve logs each (see configWarnings). */
export function ldapWarnings(profiles: readonly LdapConfig[]): string[] {
  const w: string[] = [];
  for (const p of profiles) {
    const plain = p.urls.filter((u) => u.toLowerCase().startsWith("ldap://"));
    if (plain.length > 0 && !p.start_tls) {
      w.push(`ldap[${p.name}] uses plain ldap:// without start_tls (${plain.join(", ")}): passwords cross the network unencrypted`);
    }
    if (p.bind_password_file_mode !== undefined && (p.bind_password_file_mode & 0o077) !== 0) {
      const mode = p.bind_password_file_mode.toString(8).padStart(4, "0");
      w.push(`ldap[${p.name}].bind_password_file is readable by group or others (mode ${mode}); chmod 600 it`);
    }
    if (p.allow_type_password) {
      w.push(`ldap[${p.name}].allow_type_password is true: the directory can let a user in with a password alone`);
    }
  }
  return w;
}

/** True when some URL of the profile is ldap:// and StartTLS is off. */
function isPlaintext(p: LdapConfig): boolean {
  return !p.start_tls && p.urls.some((u) => u.toLowerCase().startsWith("ldap://"));
}

/** The loaded `[[ldap]]` profiles as the directory layer takes them, in config order. */
export function ldapProfiles(config: Config): LdapProfile[] {
  return config.ldap.map((p) => {
    const profile: LdapProfile = {
      name: p.name,
      urls: [...p.urls],
      startTLS: p.start_tls,
      plaintext: isPlaintext(p),
      bindDN: p.bind_dn,
      bindPassword: p.bind_password,
      baseDN: p.base_dn,
      userFilter: p.user_filter,
      phoneAttribute: p.phone_attribute,
      emailAttribute: p.email_attribute,
      allowTypePassword: p.allow_type_password,
      requiredGroups: [...p.required_groups],
      defaultType: p.default_type,
      timeoutMs: p.timeout_ms,
      poolSize: p.pool_size,
      bindPoolSize: p.bind_pool_size,
      pipeline: p.pipeline,
      reply: p.reply.map((r) => ({ group: r.group, attributes: { ...r.attributes } })),
      region: config.region,
    };
    if (p.ca_file !== undefined) profile.caFile = p.ca_file;
    if (p.type_attribute !== undefined) profile.typeAttribute = p.type_attribute;
    if (p.token_attribute !== undefined) profile.tokenAttribute = p.token_attribute;
    return profile;
  });
}
