// user import: row validation with line numbers, password handling, and all-or-nothing against a real store.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ImportError, prepareImportRows, USER_CSV_COLUMNS, validateUserCSV } from "../../../src/cli/user-import.ts";
import { setLogSink } from "../../../src/audit/log.ts";
import { openStore } from "../../../src/store/open.ts";

setLogSink(() => {});

const HEADER = USER_CSV_COLUMNS.join(",");
const SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"; // 20 bytes
const FIXTURES = join(import.meta.dirname, "../../fixtures/users");
const options = { region: "", realms: "strip" as const, defaults: { algorithm: "SHA1" as const, digits: 6 as const, period: 30 } };

function errorOf(text: string, opts = options): ImportError {
  try {
    validateUserCSV(text, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(ImportError);
    return e as ImportError;
  }
  throw new Error("expected an ImportError");
}

describe("validateUserCSV", () => {
  test("the fixture: quotes, newlines, hashes, normalised names", () => {
    const rows = validateUserCSV(readFileSync(join(FIXTURES, "valid.csv"), "utf8"), options);
    expect(rows.map((r) => [r.line, r.username, r.type, r.password.kind])).toEqual([
      [2, "alice", "totp", "plain"],
      [4, "bob", "password", "hash"],
      [5, "carol", "totp", "none"],
      [6, "dave", "concatenated", "hash"],
    ]);
    expect(rows[0]!.password).toEqual({ kind: "plain", value: 'pass,with "quotes"\nand a newline' });
    expect(rows[0]!.phone).toBe("+46701234567");
    expect(rows[2]!.totp).toMatchObject({ algorithm: "SHA256", digits: 8, period: 60 });
    expect(rows[2]!.totp!.secret.length).toBe(40);
    expect(rows[1]!.totp).toBeUndefined();
  });

  test("defaults apply when only a secret is given", () => {
    const rows = validateUserCSV(`${HEADER}\nx,,,,,${SECRET},,,\n`, options);
    expect(rows[0]!.totp).toMatchObject({ algorithm: "SHA1", digits: 6, period: 30 });
  });

  test("a local number is read in `region`", () => {
    const rows = validateUserCSV(`${HEADER}\nx,,,070-123 45 67,,,,,\n`, { ...options, region: "SE" });
    expect(rows[0]!.phone).toBe("+46701234567");
  });

  test.each([
    ["digits", `x,,,,,${SECRET},SHA1,7,30`, "totp_digits must be 6 or 8"],
    ["algorithm", `x,,,,,${SECRET},MD5,6,30`, "totp_algorithm must be SHA1, SHA256 or SHA512"],
    ["period", `x,,,,,${SECRET},SHA1,6,5`, "totp_period must be a number of seconds between 10 and 300"],
    ["secret not base32", "x,,,,,not*base32,,,", "totp_secret must be base32 (RFC 4648) of 10 to 64 bytes"],
    ["secret too short (40 bits)", "x,,,,,JBSWY3DP,,,", "totp_secret must be base32 (RFC 4648) of 10 to 64 bytes"],
    ["parameters without a secret", "x,,,,,,SHA1,,", "totp_algorithm, totp_digits and totp_period need a totp_secret"],
    ["type", "x,,superuser,,,,,,", "type must be an authentication type name or number 1-11"],
    ["type number", "x,,12,,,,,,", "type must be an authentication type name or number 1-11"],
    ["phone not E.164 without region", "x,,,0701234567,,,,,", "phone must be a valid phone number in E.164 form (+46701234567)"],
    ["email", "x,,,,not-an-address,,,,", "email must be an e-mail address"],
    ["empty username", ",,,,,,,,", "username must not be empty, longer than 253 characters or contain control characters"],
    ["realm-only username", "@corp,,,,,,,,", "username must not be empty, longer than 253 characters or contain control characters"],
    ["malformed hash", "x,$argon2id$v=19$broken,,,,,,,", "password looks like a hash but is not a well-formed argon2id or bcrypt ($2a$/$2b$/$2y$) value"],
    ["column count", "x,,,", "expected 9 columns, found 4"],
  ])("%s", (_title, row, reason) => {
    const e = errorOf(`${HEADER}\nok,,,,,,,,\n${row}\n`);
    expect(e.line).toBe(3);
    expect(e.reason).toBe(reason);
    expect(e.message).toBe(`line 3: ${reason}`);
  });

  test("duplicates after normalisation name the earlier line", () => {
    const e = errorOf(`${HEADER}\nalice,,,,,,,,\nbob,,,,,,,,\nALICE@corp,,,,,,,,\n`);
    expect(e.message).toBe("line 4: username is a duplicate of line 2 after normalisation");
  });

  test("a wrong header is refused", () => {
    expect(errorOf("username,password\nx,y\n").message).toStartWith("line 1: the header must be exactly username,password,type");
  });

  test("line numbers count physical lines, across embedded newlines", () => {
    const e = errorOf(`${HEADER}\nx,"multi\nline\npassword",,,,,,,\ny,,,,,${SECRET},,9,\n`);
    expect(e.line).toBe(5);
  });

  test("error messages never echo the value", () => {
    const secretish = "Sup3rS3cretValue";
    const e = errorOf(`${HEADER}\nx,,,,${secretish},,,,\n`);
    expect(e.message).not.toContain(secretish);
  });
});

describe("prepareImportRows", () => {
  test("hashes plaintext only, keeps pre-hashed values, builds TOTP tokens with unique serials", async () => {
    const users = validateUserCSV(readFileSync(join(FIXTURES, "valid.csv"), "utf8"), options);
    const hashed: string[] = [];
    let n = 0;
    const rows = await prepareImportRows(users, {
      hash: async (p) => {
        hashed.push(p);
        return "$argon2id$fake";
      },
      serial: () => `S${n++ % 2}`, // forces a collision that must be redrawn
    });
    expect(hashed).toEqual(['pass,with "quotes"\nand a newline']);
    expect(rows.map((r) => r.user.passwordHash)).toEqual([
      "$argon2id$fake",
      "$2b$10$abcdefghijklmnopqrstuu5bi8Y3gq0yNdw2n3Tz6TKv3z7f5aQKa",
      null,
      "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$JXEhH1bd9zv9Ox1v2rwZeOx0rWVLhMSYW0hCAbjjSOw",
    ]);
    const serials = rows.flatMap((r) => r.tokens.map((t) => t.serial));
    expect(serials.length).toBe(2);
    expect(new Set(serials).size).toBe(2);
  });
});

describe("against a real store", () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  test("importMany writes every row; a bad file leaves the store untouched", async () => {
    dir = mkdtempSync(join(tmpdir(), "portcullis-import-"));
    const store = await openStore({ driver: "sqlite", path: join(dir, "p.db"), dataDir: dir });
    try {
      const bad = readFileSync(join(FIXTURES, "bad-digits.csv"), "utf8");
      expect(() => validateUserCSV(bad, options)).toThrow("line 3: totp_digits must be 6 or 8");
      expect(await store.users.count()).toBe(0);

      const users = validateUserCSV(readFileSync(join(FIXTURES, "valid.csv"), "utf8"), options);
      await store.users.importMany(await prepareImportRows(users, { hash: async () => "$argon2id$fake" }));
      expect((await store.users.list()).map((u) => u.username).sort()).toEqual(["alice", "bob", "carol", "dave"]);
      const carol = await store.users.findByName("carol");
      const tokens = await store.tokens.list(carol!.id);
      expect(tokens.map((t) => [t.kind, t.algorithm, t.digits, t.period])).toEqual([["totp", "SHA256", 8, 60]]);
    } finally {
      await store.close();
    }
  });
});
