// RFC 4180 CSV parsing edge cases: quotes, doubled quotes, embedded commas and newlines, CRLF, BOM.
import { describe, expect, test } from "bun:test";
import { CSVError, parseCSV } from "../../../src/util/csv.ts";

describe("parseCSV", () => {
  test.each([
    ["simple", "a,b,c\n1,2,3\n", [{ line: 1, fields: ["a", "b", "c"] }, { line: 2, fields: ["1", "2", "3"] }]],
    ["CRLF line breaks (RFC 4180 §2.1)", "a,b\r\n1,2\r\n", [{ line: 1, fields: ["a", "b"] }, { line: 2, fields: ["1", "2"] }]],
    ["no final line break (§2.2)", "a,b\n1,2", [{ line: 1, fields: ["a", "b"] }, { line: 2, fields: ["1", "2"] }]],
    ["UTF-8 BOM is skipped", "\uFEFFa,b\n", [{ line: 1, fields: ["a", "b"] }]],
    ["quoted comma (§2.6)", 'x,"a,b"\n', [{ line: 1, fields: ["x", "a,b"] }]],
    ["doubled quote (§2.7)", '"say ""hi""",y\n', [{ line: 1, fields: ['say "hi"', "y"] }]],
    ["embedded newline keeps the record's first line", 'h\n"one\ntwo",x\nlast\n', [
      { line: 1, fields: ["h"] },
      { line: 2, fields: ["one\ntwo", "x"] },
      { line: 4, fields: ["last"] },
    ]],
    ["embedded CRLF", '"a\r\nb"\r\nc\r\n', [{ line: 1, fields: ["a\r\nb"] }, { line: 3, fields: ["c"] }]],
    ["empty fields", ",,\n", [{ line: 1, fields: ["", "", ""] }]],
    ["trailing empty field at end of text", "a,", [{ line: 1, fields: ["a", ""] }]],
    ["empty quoted field", '"",x\n', [{ line: 1, fields: ["", "x"] }]],
    ["blank lines are skipped", "a\n\n\r\nb\n", [{ line: 1, fields: ["a"] }, { line: 4, fields: ["b"] }]],
    ["empty text", "", []],
  ])("%s", (_title, text, expected) => {
    expect(parseCSV(text)).toEqual(expected);
  });

  test.each([
    ["unterminated quote", 'a\n"open,x\n', 2],
    ["stray quote inside an unquoted field", 'a\nab"c,d\n', 2],
    ["text after a closing quote", 'a\n"ab"c,d\n', 2],
  ])("%s is a CSVError with its line", (_title, text, line) => {
    let err: unknown;
    try {
      parseCSV(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CSVError);
    expect((err as CSVError).line).toBe(line);
    expect((err as CSVError).message).toStartWith(`line ${line}: `);
  });
});
