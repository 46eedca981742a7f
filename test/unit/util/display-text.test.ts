// Displayed texts: which characters are refused (every Bidi_Control and control character but tab and
// line breaks, deprecated format controls, annotation controls), and which ordinary text keeps.
import { describe, expect, test } from "bun:test";
import { isSafeDisplayText, stripUnsafeDisplayText } from "../../../src/util/display-text.ts";

/** Every BMP code point (surrogates excluded) matching `re`. */
function codePoints(re: RegExp): number[] {
  const out: number[] = [];
  for (let c = 0; c <= 0xffff; c++) if (!(c >= 0xd800 && c <= 0xdfff) && re.test(String.fromCharCode(c))) out.push(c);
  return out;
}

const hex = (c: number) => `U+${c.toString(16).toUpperCase().padStart(4, "0")}`;

describe("isSafeDisplayText", () => {
  test("every Unicode Bidi_Control character is refused (U+061C, U+200E/F, U+202A-E, U+2066-9)", () => {
    const bidi = codePoints(/\p{Bidi_Control}/u);
    expect(bidi.map(hex)).toEqual(["U+061C", "U+200E", "U+200F", "U+202A", "U+202B", "U+202C", "U+202D", "U+202E", "U+2066", "U+2067", "U+2068", "U+2069"]);
    expect(bidi.filter((c) => isSafeDisplayText(`a${String.fromCharCode(c)}b`)).map(hex)).toEqual([]);
  });

  test("every control character (C0, DEL, C1) is refused but tab, line feed and carriage return", () => {
    const allowed = codePoints(/\p{Cc}/u).filter((c) => isSafeDisplayText(String.fromCharCode(c)));
    expect(allowed.map(hex)).toEqual(["U+0009", "U+000A", "U+000D"]);
  });

  test.each([
    ["U+206A-U+206F deprecated format controls", "\u206a\u206b\u206c\u206d\u206e\u206f"],
    ["U+FFF9-U+FFFB interlinear annotation", "\ufff9\ufffa\ufffb"],
  ])("%s are refused", (_, chars) => {
    for (const ch of chars) expect(isSafeDisplayText(`x${ch}`)).toBe(false);
  });

  test.each([
    ["plain text", "Sign in to Acme VPN?"],
    ["line breaks and a tab", "Line one\r\nLine two\tend"],
    ["right-to-left script (its order comes from the letters, not from controls)", "האם זה אתה?"],
    ["Arabic", "هل هذا أنت؟"],
    ["an emoji ZWJ sequence", "👩\u200d💻"],
    ["Persian with a zero-width non-joiner", "می\u200cخواهم"],
    ["accents and CJK", "Godkänn inloggningen 登录"],
  ])("%s is allowed", (_, s) => {
    expect(isSafeDisplayText(s)).toBe(true);
  });
});

test("stripUnsafeDisplayText removes exactly the refused characters", () => {
  expect(stripUnsafeDisplayText("moc.\u202eevil\u202c\u2066x\u2069\u200f\u0007\u0085ok\r\n\t👩\u200d💻")).toBe("moc.evilxok\r\n\t👩\u200d💻");
});
