// CSV token import: fixtures, RFC 4180 quoting, unambiguous secret encodings, line-numbered errors.
import { describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { OTPError, parseTokenCSV, type ImportedToken } from "../../../src/otp/index.ts";

const fixtures = path.join(import.meta.dirname, "../../fixtures/tokens");
const view = (tokens: ImportedToken[]) => tokens.map(({ secret, ...rest }) => ({ ...rest, secretHex: Buffer.from(secret).toString("hex") }));
const SEED20 = "3132333435363738393031323334353637383930";

function errorOf(fn: () => unknown): OTPError {
  try {
    fn();
  } catch (e) {
    if (e instanceof OTPError) return e;
    throw e;
  }
  throw new Error("expected an OTPError");
}

describe("parseTokenCSV fixtures", () => {
  test("tokens.csv: prefixes, defaults, quoted comma, escaped quote, blank line", () => {
    const tokens = parseTokenCSV(fs.readFileSync(path.join(fixtures, "tokens.csv"), "utf8"));
    expect(view(tokens)).toEqual([
      { serial: "TOTP-0001", kind: "totp", algorithm: "SHA1", digits: 6, period: 30, counter: 0, userId: "alice", secretHex: SEED20 },
      { serial: "HOTP-0002", kind: "hotp", algorithm: "SHA1", digits: 8, period: 30, counter: 5, userId: "bob", secretHex: SEED20 },
      { serial: "TOTP,0003", kind: "totp", algorithm: "SHA512", digits: 8, period: 60, counter: 0, userId: 'Carol "C" Smith', secretHex: Buffer.from("1234567890".repeat(6) + "1234").toString("hex") },
      { serial: "TOTP-0004", kind: "totp", algorithm: "SHA1", digits: 6, period: 30, counter: 0, secretHex: "31323334353637383930313233343536" },
    ]);
  });

  test("tokens-secret-hex.csv: secret_hex column, CRLF line ends, missing optional columns", () => {
    const tokens = parseTokenCSV(fs.readFileSync(path.join(fixtures, "tokens-secret-hex.csv"), "utf8"));
    expect(view(tokens)).toEqual([
      { serial: "A1", kind: "hotp", algorithm: "SHA1", digits: 6, period: 30, counter: 0, secretHex: SEED20 },
      { serial: "A2", kind: "totp", algorithm: "SHA1", digits: 6, period: 30, counter: 0, secretHex: "31323334353637383930313233343536" },
    ]);
  });

  test("secret_base32 column and a quoted field spanning lines keeps later line numbers right", () => {
    const csv = 'serial,secret_base32,user\nS1,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,"multi\nline"\nX,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,u,extra\n';
    expect(errorOf(() => parseTokenCSV(csv)).message).toBe("line 4: expected 3 fields, found 4");
    expect(parseTokenCSV(csv.split("\nX,")[0] + "\n")[0]!.userId).toBe("multi\nline");
  });
});

const HEADER = "serial,secret,kind,algorithm,digits,period,counter,user";
const OK = `S1,hex:${SEED20},totp,SHA1,6,30,,`;

describe("parseTokenCSV errors carry the line number and never the secret", () => {
  test.each([
    ["digits 7", `${HEADER}\n${OK}\nS2,hex:${SEED20},totp,SHA1,7,30,,`, "line 3: digits must be 6 or 8"],
    ["no prefix (ambiguous encoding)", `${HEADER}\nS2,${SEED20},totp,SHA1,6,30,,`, 'line 2: secret needs a "hex:" or "base32:" prefix (or name the column secret_hex / secret_base32)'],
    ["bad hex", `${HEADER}\nS2,hex:${SEED20}zz,totp,SHA1,6,30,,`, "line 2: secret is not valid hex"],
    ["bad base32", `${HEADER}\nS2,base32:GEZDGNBVGY3TQOJQ1EZDGNBVGY3TQOJQ,totp,SHA1,6,30,,`, "line 2: secret is not valid base32"],
    ["short secret", `${HEADER}\nS2,hex:313233343536373839,totp,SHA1,6,30,,`, "line 2: secret must be 10-64 bytes"],
    ["kind", `${HEADER}\nS2,hex:${SEED20},motp,SHA1,6,30,,`, "line 2: kind must be totp or hotp"],
    ["algorithm", `${HEADER}\nS2,hex:${SEED20},totp,MD5,6,30,,`, "line 2: algorithm must be SHA1, SHA256 or SHA512"],
    ["period 0", `${HEADER}\nS2,hex:${SEED20},totp,SHA1,6,0,,`, "line 2: period must be between 1 and 86400"],
    ["counter on totp", `${HEADER}\nS2,hex:${SEED20},totp,SHA1,6,30,4,`, "line 2: counter applies to hotp tokens only"],
    ["negative counter", `${HEADER}\nS2,hex:${SEED20},hotp,SHA1,6,30,-1,`, "line 2: counter must be an integer"],
    ["duplicate serial", `${HEADER}\n${OK}\n\n${OK}`, "line 4: duplicate serial S1"],
    ["field count", `${HEADER}\n${OK},x`, "line 2: expected 8 fields, found 9"],
    ["unterminated quote", `${HEADER}\n"S2,hex:${SEED20},totp,SHA1,6,30,,`, "line 2: a quoted field is not closed"],
    ["stray quote", `${HEADER}\nS"2,hex:${SEED20},totp,SHA1,6,30,,`, "line 2: a field containing a quote must be enclosed in quotes"],
    ["unknown column", `serial,secret,colour\n`, 'line 1: unknown column "colour"'],
    ["two secret columns", `serial,secret,secret_hex\n`, "line 1: exactly one of secret, secret_hex, secret_base32 is required"],
    ["no serial column", `secret\n`, "line 1: a serial column is required"],
    ["empty", ``, "line 1: empty file: a header line is required"],
  ])("%s", (_name, csv, message) => {
    const e = errorOf(() => parseTokenCSV(csv));
    expect(e.code).toBe("csv_format");
    expect(e.message).toBe(message);
    expect(e.message).not.toContain(SEED20);
  });

  test("a UTF-8 BOM before the header is ignored", () => {
    expect(parseTokenCSV(`\uFEFF${HEADER}\n${OK}\n`)).toHaveLength(1);
  });
});
