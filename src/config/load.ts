// Loads the configuration once at start-up: TOML file, then PORTCULLIS_* environment, then flags; validates it.
//
// Error messages name the option and where it came from, never the offending value: a value in a
// security product's config may be a secret, and a typo'd key must not be silently ignored.

import { existsSync, readFileSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { parse as parseTOML, TomlError } from "smol-toml";
import * as v from "valibot";
import { CONFIG_FIELDS, CONFIG_SECTIONS, fieldAt, type ConfigField } from "./fields.ts";
import { ConfigError } from "./errors.ts";
import { describeGatewayIssue, isGatewayEnv, isGatewayIssue, resolveDelivery } from "./delivery.ts";
import { describeEndpointIssue } from "./endpoints.ts";
import { describeLdapIssue, ldapWarnings, resolveLdapProfiles } from "./ldap.ts";
import { configSchema, type Config } from "./schema.ts";

/** The system-wide file written by the appliance install. */
export const SYSTEM_CONFIG_FILE = "/etc/portcullis/portcullis.toml";
export const DEFAULT_DATA_DIR = "./data";

export { ConfigError };

/** One command-line flag that sets an option, e.g. `serve --radius-listen`. */
export interface ConfigOverride {
  /** Dotted option path, "radius.listen". */
  path: string;
  value: unknown;
  /** Shown in errors: "--radius-listen". */
  source: string;
}

export interface LoadOptions {
  /** `--config FILE`; beats $PORTCULLIS_CONFIG. */
  configFile?: string;
  /** `--data-dir DIR`; beats $PORTCULLIS_DATA_DIR and `data_dir` in the file. */
  dataDir?: string;
  /** Other flags, applied last. */
  overrides?: ConfigOverride[];
  /** Defaults to process.env. */
  env?: Record<string, string | undefined>;
  /** Defaults to /etc/portcullis/portcullis.toml (tests point it elsewhere). */
  systemFile?: string;
  /** Base for relative paths; defaults to process.cwd(). */
  cwd?: string;
}

export interface LoadedConfig {
  config: Config;
  /** The file that was read, or undefined when running on built-in defaults. */
  file: string | undefined;
  /** Option paths ("http.listen") set by the file, the environment or a flag rather than left at their default. */
  explicit: ReadonlySet<string>;
}

type Raw = Record<string, unknown>;

const isTable = (x: unknown): x is Raw => typeof x === "object" && x !== null && !Array.isArray(x);

/** Turns an environment string into the option's type; leaves it a string when it does not fit. */
function coerce(field: ConfigField, text: string): unknown {
  const t = text.trim();
  switch (field.kind) {
    case "integer":
      return /^-?\d+$/.test(t) ? Number(t) : text;
    case "boolean": {
      const l = t.toLowerCase();
      if (["true", "1", "yes", "on"].includes(l)) return true;
      if (["false", "0", "no", "off"].includes(l)) return false;
      return text;
    }
    case "string[]":
      return t === "" ? [] : t.split(",").map((s) => s.trim()).filter((s) => s !== "");
    case "enum":
      return typeof field.defaultValue === "number" && /^-?\d+$/.test(t) ? Number(t) : t;
    default:
      return text;
  }
}

function setPath(raw: Raw, field: ConfigField, value: unknown): void {
  if (!field.section) {
    raw[field.key] = value;
    return;
  }
  // A sub-table ("delivery.sms") is walked one level at a time.
  let table: Raw = raw;
  for (const name of field.section.split(".")) {
    if (table[name] === undefined) table[name] = {};
    const next = table[name];
    // A non-table section (e.g. `radius = 5`) is left for validation to report.
    if (!isTable(next)) return;
    table = next;
  }
  table[field.key] = value;
}

function readTOML(file: string, source: string): Raw {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "unreadable";
    throw new ConfigError(`config: cannot read ${file} (from ${source}): ${code}`);
  }
  try {
    return parseTOML(text) as Raw;
  } catch (e) {
    // smol-toml's message quotes the offending source line, which may hold a secret: keep the position only.
    const where = e instanceof TomlError ? ` at line ${e.line}, column ${e.column}` : "";
    throw new ConfigError(`config: ${file} is not valid TOML${where}`);
  }
}

/** Records which source set each option, for error messages. */
function fileSources(raw: Raw, label: string, sources: Map<string, string>, prefix = ""): void {
  for (const [key, value] of Object.entries(raw)) {
    sources.set(`${prefix}${key}`, label);
    // Sections and their sub-tables ([delivery.sms]); deeper tables are values (headers).
    if (isTable(value) && prefix.split(".").length < 3) fileSources(value, label, sources, `${prefix}${key}.`);
  }
}

function describeIssue(issue: v.BaseIssue<unknown>, sources: Map<string, string>, raw: Raw): string {
  if (issue.path?.[0]?.key === "ldap") return describeLdapIssue(issue, raw.ldap, sources.get("ldap"));
  if (issue.path?.[0]?.key === "endpoint") return describeEndpointIssue(issue, raw.endpoint, sources.get("endpoint"));
  if (issue.path?.[0]?.key === "password_reset") return describeEndpointIssue(issue, raw.password_reset, sources.get("password_reset"), "password_reset");
  if (isGatewayIssue(issue)) return describeGatewayIssue(issue, isTable(raw.delivery) ? raw.delivery.gateway : undefined, sources.get("delivery.gateway"));
  const keys = (issue.path ?? []).map((p) => p.key).filter((k): k is string => typeof k === "string");
  const dotted = keys.join(".");
  const from = (path: string) => {
    const s = sources.get(path);
    return s ? ` (from ${s})` : "";
  };
  if (issue.kind === "schema" && issue.expected === "never") {
    return `config: ${dotted} is not a known option${from(dotted)}`;
  }
  for (let n = keys.length; n > 0; n--) {
    const path = keys.slice(0, n).join(".");
    const field = fieldAt(path);
    if (field) return `config: ${field.path} must be ${field.must}${from(field.path)}`;
  }
  if (keys.length > 0 && CONFIG_SECTIONS.some((s) => s.name === keys[0])) {
    return `config: [${keys[0]}] must be a table${from(keys[0] ?? "")}`;
  }
  return `config: invalid configuration${dotted ? ` at ${dotted}` : ""}`;
}

function resolveIn(base: string, p: string): string {
  return isAbsolute(p) ? p : resolve(base, p);
}

/**
 * Loads and validates the configuration: file → environment → flags, over built-in defaults.
 * The file is `configFile`, else $PORTCULLIS_CONFIG, else the first existing of
 * DATA_DIR/portcullis.toml and /etc/portcullis/portcullis.toml; with none, defaults alone apply.
 *
 * @throws ConfigError (one line naming the option and its source, never the value) when a file
 *   cannot be read or parsed, a key is unknown, or a value is out of range.
 */
export function loadConfig(options: LoadOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const sources = new Map<string, string>();

  // 1. Which file.
  let file: string | undefined;
  let fileSource = "";
  let raw: Raw = {};
  const explicit = options.configFile ?? env.PORTCULLIS_CONFIG;
  if (explicit !== undefined && explicit !== "") {
    file = resolveIn(cwd, explicit);
    fileSource = options.configFile !== undefined ? "--config" : "PORTCULLIS_CONFIG";
  } else {
    const preDataDir = options.dataDir ?? env.PORTCULLIS_DATA_DIR ?? DEFAULT_DATA_DIR;
    const candidates = [join(resolveIn(cwd, preDataDir), "portcullis.toml"), options.systemFile ?? SYSTEM_CONFIG_FILE];
    file = candidates.find((c) => existsSync(c));
    fileSource = "the default search path";
  }
  if (file !== undefined) {
    raw = readTOML(file, fileSource);
    fileSources(raw, file, sources);
  }

  // 2. Environment: PORTCULLIS_<SECTION>_<KEY> and PORTCULLIS_<KEY> for top-level scalars.
  const known = new Map(CONFIG_FIELDS.map((f) => [f.env, f]));
  const sectionPrefixes = CONFIG_SECTIONS.map((s) => `PORTCULLIS_${s.name.toUpperCase()}_`);
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || !name.startsWith("PORTCULLIS_")) continue;
    const field = known.get(name);
    if (field) {
      setPath(raw, field, coerce(field, value));
      sources.set(field.path, name);
    } else if (sectionPrefixes.some((p) => name.startsWith(p)) && !isGatewayEnv(name)) {
      // A [[delivery.gateway]] password variable is checked against the gateways in step 5.
      throw new ConfigError(`config: ${name} is not a known option`);
    }
  }

  // 3. Flags.
  const overrides: ConfigOverride[] = [...(options.overrides ?? [])];
  if (options.dataDir !== undefined) overrides.unshift({ path: "data_dir", value: options.dataDir, source: "--data-dir" });
  for (const o of overrides) {
    const field = fieldAt(o.path);
    if (!field) throw new TypeError(`loadConfig: unknown override path ${o.path}`);
    setPath(raw, field, o.value);
    sources.set(field.path, o.source);
  }

  // 4. Validate.
  const result = v.safeParse(configSchema, raw, { abortEarly: true });
  if (!result.success) {
    const issue = result.issues[0];
    throw new ConfigError(issue ? describeIssue(issue, sources, raw) : "config: invalid configuration");
  }
  const parsed = result.output;

  // 5. Checks across options.
  const from = (p: string) => (sources.has(p) ? ` (from ${sources.get(p)})` : "");
  if (parsed.lockout.max_delay_s < parsed.lockout.base_delay_s) {
    throw new ConfigError(`config: lockout.max_delay_s must be at least lockout.base_delay_s${from("lockout.max_delay_s")}`);
  }
  if ((parsed.http.cert_file === "") !== (parsed.http.key_file === "")) {
    const missing = parsed.http.cert_file === "" ? "http.cert_file" : "http.key_file";
    throw new ConfigError(`config: ${missing} must be set together with ${missing === "http.cert_file" ? "http.key_file" : "http.cert_file"}`);
  }

  const endpointNames = new Set<string>();
  for (const e of parsed.endpoint) {
    if (endpointNames.has(e.name)) throw new ConfigError(`config: endpoint[${e.name}] is declared twice${from("endpoint")}`);
    endpointNames.add(e.name);
    if (e.per_number_per_hour < e.per_number_per_minute) {
      throw new ConfigError(`config: endpoint[${e.name}].per_number_per_hour must be at least per_number_per_minute${from("endpoint")}`);
    }
  }

  const resetNames = new Set<string>();
  for (const r of parsed.password_reset) {
    if (resetNames.has(r.name)) throw new ConfigError(`config: password_reset[${r.name}] is declared twice${from("password_reset")}`);
    resetNames.add(r.name);
    if (r.directory !== "local" && !parsed.ldap.some((l) => l.name === r.directory)) {
      throw new ConfigError(`config: password_reset[${r.name}].directory names no [[ldap]] profile${from("password_reset")}`);
    }
    if (r.approvers.length === 0 && r.approver_groups.length === 0) {
      throw new ConfigError(`config: password_reset[${r.name}] needs approvers or approver_groups${from("password_reset")}`);
    }
    if (r.directory === "local" && r.approver_groups.length > 0) {
      throw new ConfigError(`config: password_reset[${r.name}].approver_groups needs an [[ldap]] directory${from("password_reset")}`);
    }
  }

  const ui = parsed.admin_ui;
  if (ui.ldap_profile !== "") {
    if (!parsed.ldap.some((l) => l.name === ui.ldap_profile)) throw new ConfigError(`config: admin_ui.ldap_profile names no [[ldap]] profile${from("admin_ui")}`);
    if (ui.root_group.trim() === "" && ui.admin_group.trim() === "" && ui.operator_group.trim() === "") {
      throw new ConfigError(`config: admin_ui.ldap_profile needs root_group, admin_group or operator_group${from("admin_ui")}`);
    }
  }

  const delivery = resolveDelivery(parsed, { env, sources });

  // 6. Derived values.
  const dataDir = resolveIn(cwd, parsed.data_dir);
  const ldap = resolveLdapProfiles(parsed.ldap, { env, source: sources.get("ldap"), resolvePath: (p) => resolveIn(cwd, p), rawProfiles: raw.ldap });
  const config: Config = {
    ...parsed,
    ldap,
    data_dir: dataDir,
    store: { ...parsed.store, path: resolveIn(dataDir, parsed.store.path || "portcullis.db") },
    keys: { ...parsed.keys, key_file: resolveIn(dataDir, parsed.keys.key_file || "portcullis.key") },
    delivery: { ...delivery, allowed_countries: parsed.delivery.allowed_countries ?? (parsed.region ? [parsed.region] : []) },
  };
  return { config, file, explicit: new Set(sources.keys()) };
}

const isLoopback = (listen: string) => /^(127\.\d+\.\d+\.\d+|\[::1\]):\d+$/.test(listen);
const isWildcard = (listen: string) => /^(0\.0\.0\.0|\[::\]):\d+$/.test(listen);

/**
 * Settings that weaken a security default, as one human sentence each. `serve` logs every one
 * loudly at start-up; an empty list means nothing is weakened.
 */
export function configWarnings(config: Config): string[] {
  const w: string[] = [];
  const wild = config.radius.listen.filter(isWildcard);
  if (wild.length > 0) {
    w.push(
      `radius.listen includes a wildcard address (${wild.join(", ")}): replies leave from whichever address routing picks, which breaks virtual IPs; list the appliance's explicit addresses`,
    );
  }
  if (config.radius.dedupe_ttl_s < 10) {
    w.push("radius.dedupe_ttl_s is under 10 seconds: a NAS retransmission may be evaluated twice");
  }
  if (config.radius.challenge_max_failures > 5) {
    w.push("radius.challenge_max_failures is above 5: each challenge allows more code guesses");
  }
  if (config.otp.window > 2) {
    w.push(`otp.window is ${config.otp.window}: every extra step widens the code-guessing window`);
  }
  if (config.otp.hotp_look_ahead > 20) {
    w.push("otp.hotp_look_ahead is above 20: more HOTP codes are valid at any time");
  }
  if (config.lockout.password_threshold > 10 || config.lockout.code_threshold > 10) {
    w.push("lockout thresholds above 10 allow many guesses before back-off; keep them below the directory's own lockout");
  }
  if (config.lockout.password_identity_cap >= 10) {
    w.push("lockout.password_identity_cap is 10 or more: at or above Active Directory's default lockout threshold, wrong passwords from unknown sources can lock the directory account");
  }
  if (!config.http.tls) {
    w.push("http.tls is false: the public listener serves plain HTTP; use this only behind a TLS-terminating reverse proxy");
  }
  if (config.http.public_url.startsWith("http://")) {
    w.push("http.public_url is http://: links sent to phones travel unencrypted");
  }
  if (config.http.trusted_proxies.some((p) => /\/0$/.test(p))) {
    w.push("http.trusted_proxies includes a /0 network: any client can forge X-Forwarded-For");
  }
  if (!isLoopback(config.admin.listen)) {
    w.push(`admin.listen is not loopback (${config.admin.listen}): the admin API and /metrics are reachable from the network`);
  }
  w.push(...ldapWarnings(config.ldap));
  return w;
}
