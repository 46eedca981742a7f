// Config loading: precedence file → env → flags, unknown keys, value-free errors, defaults, env coercion.
import { describe, expect, test } from "bun:test";
import { storeOptions } from "../../../src/store/open.ts";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, configWarnings, loadConfig } from "../../../src/config/index.ts";

const NOFILE = "/nonexistent/portcullis.toml";

function tempFile(toml: string): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-config-"));
  const file = join(dir, "portcullis.toml");
  writeFileSync(file, toml);
  return { dir, file };
}

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("defaults", () => {
  test("PORTCULLIS_STORE_URL selects PostgreSQL; a malformed URL is refused without echoing it", () => {
    const url = "postgres://portcullis:s3cret@127.0.0.1:5432/portcullis";
    const { config } = loadConfig({ env: { PORTCULLIS_STORE_URL: url }, systemFile: NOFILE, cwd: "/srv" });
    expect(config.store.url).toBe(url);
    expect(storeOptions(config)).toMatchObject({ driver: "postgres", url, dataDir: "/srv/data" });
    expect(storeOptions(loadConfig({ env: {}, systemFile: NOFILE, cwd: "/srv" }).config).driver).toBe("sqlite");
    let message = "";
    try {
      loadConfig({ env: { PORTCULLIS_STORE_URL: "mysql://u:s3cret@h/db" }, systemFile: NOFILE, cwd: "/srv" });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain("store.url");
    expect(message).not.toContain("s3cret");
  });

  test("no file and no env start with built-in defaults", () => {
    const { config, file } = loadConfig({ env: {}, systemFile: NOFILE, cwd: "/srv" });
    expect(file).toBeUndefined();
    expect(config.data_dir).toBe("/srv/data");
    expect(config.store).toEqual({ driver: "sqlite", path: "/srv/data/portcullis.db", url: "", pool_size: 10, idempotency_records: true, synchronous: "normal", cache: true, busy_timeout_ms: 5000 });
    expect(config.keys.key_file).toBe("/srv/data/portcullis.key");
    expect(config.radius.listen).toEqual(["0.0.0.0:1812"]);
    expect(config.radius.challenge_ttl_s).toBe(120);
    expect(config.radius.realms).toBe("strip");
    expect(config.otp).toEqual({ window: 1, hotp_look_ahead: 10, issuer: "Portcullis", default_digits: 6, default_period: 30, default_algorithm: "SHA1" });
    expect(config.lockout).toEqual({
      password_threshold: 5,
      code_threshold: 5,
      base_delay_s: 2,
      max_delay_s: 900,
      reset_after_s: 900,
      password_identity_cap: 4,
      code_identity_cap: 5,
      known_source_days: 30,
      known_sources_per_user: 16,
    });
    expect(config.http.tls).toBe(true);
    expect(config.admin.listen).toBe("127.0.0.1:8444");
    expect(config.region).toBe("");
    expect(config.delivery.allowed_countries).toEqual([]);
  });

  test("allowed_countries defaults to [region]", () => {
    const { config } = loadConfig({ env: { PORTCULLIS_REGION: "se" }, systemFile: NOFILE });
    expect(config.region).toBe("SE");
    expect(config.delivery.allowed_countries).toEqual(["SE"]);
  });
});

describe("precedence", () => {
  const toml = `data_dir = "/from-file"\n[radius]\nchallenge_ttl_s = 60\ndedupe_ttl_s = 40\nlisten = ["192.0.2.1:1812"]\n`;

  test("file over defaults, env over file, flags over env", () => {
    const { file } = tempFile(toml);
    const fromFile = loadConfig({ configFile: file, env: {} }).config;
    expect(fromFile.radius.challenge_ttl_s).toBe(60);
    expect(fromFile.data_dir).toBe("/from-file");

    const env = { PORTCULLIS_RADIUS_CHALLENGE_TTL_S: "90", PORTCULLIS_DATA_DIR: "/from-env" };
    const fromEnv = loadConfig({ configFile: file, env }).config;
    expect(fromEnv.radius.challenge_ttl_s).toBe(90);
    expect(fromEnv.radius.dedupe_ttl_s).toBe(40);
    expect(fromEnv.data_dir).toBe("/from-env");

    const fromFlags = loadConfig({
      configFile: file,
      env,
      dataDir: "/from-flag",
      overrides: [{ path: "radius.listen", value: ["198.51.100.1:1812"], source: "--radius-listen" }],
    }).config;
    expect(fromFlags.data_dir).toBe("/from-flag");
    expect(fromFlags.radius.listen).toEqual(["198.51.100.1:1812"]);
    expect(fromFlags.radius.challenge_ttl_s).toBe(90);
  });

  test("$PORTCULLIS_CONFIG names the file; --config beats it", () => {
    const a = tempFile(`log_level = "debug"`);
    const b = tempFile(`log_level = "warn"`);
    expect(loadConfig({ env: { PORTCULLIS_CONFIG: a.file } }).config.log_level).toBe("debug");
    expect(loadConfig({ configFile: b.file, env: { PORTCULLIS_CONFIG: a.file } }).config.log_level).toBe("warn");
  });

  test("DATA_DIR/portcullis.toml is found before the system file", () => {
    const local = tempFile(`log_level = "error"`);
    const system = tempFile(`log_level = "debug"`);
    expect(loadConfig({ dataDir: local.dir, env: {}, systemFile: system.file }).file).toBe(local.file);
    expect(loadConfig({ dataDir: "/nonexistent", env: {}, systemFile: system.file }).config.log_level).toBe("debug");
  });

  test("store.path and keys.key_file are relative to the data directory", () => {
    const { file } = tempFile(`data_dir = "/var/lib/p"\n[store]\npath = "db/x.db"\n[keys]\nkey_file = "/etc/k"\n`);
    const { config } = loadConfig({ configFile: file, env: {} });
    expect(config.store.path).toBe("/var/lib/p/db/x.db");
    expect(config.keys.key_file).toBe("/etc/k");
  });
});

describe("environment coercion", () => {
  test.each([
    ["PORTCULLIS_RADIUS_CHALLENGE_TTL_S", "300", (c: any) => c.radius.challenge_ttl_s, 300],
    ["PORTCULLIS_HTTP_TLS", "false", (c: any) => c.http.tls, false],
    ["PORTCULLIS_HTTP_TLS", "yes", (c: any) => c.http.tls, true],
    ["PORTCULLIS_RADIUS_LISTEN", "192.0.2.1:1812, [2001:db8::1]:1812", (c: any) => c.radius.listen, ["192.0.2.1:1812", "[2001:db8::1]:1812"]],
    ["PORTCULLIS_HTTP_TRUSTED_PROXIES", "", (c: any) => c.http.trusted_proxies, []],
    ["PORTCULLIS_OTP_DEFAULT_DIGITS", "8", (c: any) => c.otp.default_digits, 8],
    ["PORTCULLIS_LOG_LEVEL", "debug", (c: any) => c.log_level, "debug"],
    ["PORTCULLIS_DELIVERY_ALLOWED_COUNTRIES", "se,no", (c: any) => c.delivery.allowed_countries, ["SE", "NO"]],
  ])("%s=%p", (name, value, get, expected) => {
    const { config } = loadConfig({ env: { [name]: value }, systemFile: NOFILE });
    expect(get(config)).toEqual(expected);
  });

  test("unrelated PORTCULLIS_ variables are ignored", () => {
    expect(() => loadConfig({ env: { PORTCULLIS_KEY: "x" }, systemFile: NOFILE })).not.toThrow();
  });
});

describe("errors", () => {
  test.each([
    [{ PORTCULLIS_RADIUS_CHALLENGE_TTL_S: "5" }, "config: radius.challenge_ttl_s must be a number between 10 and 600 (from PORTCULLIS_RADIUS_CHALLENGE_TTL_S)"],
    [{ PORTCULLIS_RADIUS_CHALLENGE_TTL_S: "soon" }, "config: radius.challenge_ttl_s must be a number between 10 and 600 (from PORTCULLIS_RADIUS_CHALLENGE_TTL_S)"],
    [{ PORTCULLIS_RADIUS_CHALENGE_TTL_S: "60" }, "config: PORTCULLIS_RADIUS_CHALENGE_TTL_S is not a known option"],
    [{ PORTCULLIS_HTTP_TLS: "maybe" }, "config: http.tls must be true or false (from PORTCULLIS_HTTP_TLS)"],
    [{ PORTCULLIS_RADIUS_LISTEN: "radius.example.com:1812" }, expect.stringContaining("config: radius.listen must be a list of an address and port")],
    [{ PORTCULLIS_REGION: "XX" }, expect.stringContaining("config: region must be")],
    [{ PORTCULLIS_LOCKOUT_BASE_DELAY_S: "100", PORTCULLIS_LOCKOUT_MAX_DELAY_S: "10" }, expect.stringContaining("lockout.max_delay_s must be at least")],
  ])("%p", (env, message) => {
    expect(errorOf(() => loadConfig({ env, systemFile: NOFILE })).message).toEqual(message);
  });

  test("an unknown key in the file is named, with the file", () => {
    const { file } = tempFile(`[radius]\nchalenge_ttl_s = 60\n`);
    expect(errorOf(() => loadConfig({ configFile: file, env: {} })).message).toBe(`config: radius.chalenge_ttl_s is not a known option (from ${file})`);
  });

  test("an unknown section is named", () => {
    const { file } = tempFile(`[radiuss]\nlisten = []\n`);
    expect(errorOf(() => loadConfig({ configFile: file, env: {} })).message).toContain("config: radiuss is not a known option");
  });

  test("errors never echo the value", () => {
    const secret = "s3cr3t-Value-that-must-not-leak";
    const { file } = tempFile(`[otp]\nissuer = "${secret}:x"\n[http]\npublic_url = "${secret}"\n`);
    const e = errorOf(() => loadConfig({ configFile: file, env: {} }));
    expect(e.message).toStartWith("config: otp.issuer must be");
    expect(e.message).not.toContain(secret);
    const e2 = errorOf(() => loadConfig({ env: { PORTCULLIS_HTTP_PUBLIC_URL: secret }, systemFile: NOFILE }));
    expect(e2.message).toBe("config: http.public_url must be empty or an http(s):// URL (from PORTCULLIS_HTTP_PUBLIC_URL)");
  });

  test("a TOML syntax error gives the position, not the line's text", () => {
    const { file } = tempFile(`[radius]\nsecret = "abc\n`);
    const e = errorOf(() => loadConfig({ configFile: file, env: {} }));
    expect(e.message).toStartWith(`config: ${file} is not valid TOML at line`);
    expect(e.message).not.toContain("abc");
  });

  test("a missing --config file", () => {
    expect(errorOf(() => loadConfig({ configFile: "/nonexistent/x.toml", env: {} })).message).toBe(
      "config: cannot read /nonexistent/x.toml (from --config): ENOENT",
    );
  });
});

describe("configWarnings", () => {
  test("defaults warn only about the wildcard RADIUS address", () => {
    const { config } = loadConfig({ env: {}, systemFile: NOFILE });
    expect(configWarnings(config)).toEqual([expect.stringContaining("radius.listen includes a wildcard address")]);
  });

  test("explicit addresses and no weakened setting: no warning", () => {
    const { config } = loadConfig({ env: { PORTCULLIS_RADIUS_LISTEN: "192.0.2.10:1812" }, systemFile: NOFILE });
    expect(configWarnings(config)).toEqual([]);
  });

  test("insecure settings each warn", () => {
    const env = {
      PORTCULLIS_RADIUS_LISTEN: "192.0.2.10:1812",
      PORTCULLIS_HTTP_TLS: "false",
      PORTCULLIS_ADMIN_LISTEN: "0.0.0.0:8444",
      PORTCULLIS_OTP_WINDOW: "5",
      PORTCULLIS_HTTP_TRUSTED_PROXIES: "0.0.0.0/0",
      PORTCULLIS_LOCKOUT_PASSWORD_IDENTITY_CAP: "10",
    };
    const warnings = configWarnings(loadConfig({ env, systemFile: NOFILE }).config);
    expect(warnings.length).toBe(5);
    expect(warnings).toContainEqual(expect.stringContaining("lockout.password_identity_cap"));
  });
});
