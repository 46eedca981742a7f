// Texts shown to a user (the approval page, an SMS, an e-mail subject): the characters they may not hold.
//
// Bidirectional formatting characters make text display in another order than it is stored, so a
// text can show one thing and say another ("Trojan Source", CVE-2021-42574; Unicode UAX #9 §2): a
// right-to-left override turns "moc.elgoog//:sptth" into a familiar link, and an isolate can move
// "Reject" wording under the Approve button. Control characters change how a phone or browser lays
// the text out. Neither has a place in a sign-in question, a button label or an SMS.

/**
 * The refused characters:
 * - C0 controls other than tab, line feed and carriage return (which texts legitimately use), DEL,
 *   and the C1 controls U+0080-U+009F;
 * - every Bidi_Control character: U+061C ARABIC LETTER MARK, U+200E/U+200F LEFT-TO-RIGHT and
 *   RIGHT-TO-LEFT MARK, U+202A-U+202E embeddings and overrides, U+2066-U+2069 isolates;
 * - U+206A-U+206F, the deprecated format controls (symmetric swapping, Arabic shaping, national
 *   digit shapes: the last can make digits display as other digits, which number matching relies on);
 * - U+FFF9-U+FFFB, interlinear annotation controls (renderers may hide the annotated text).
 *
 * Zero-width joiners and non-joiners (U+200C, U+200D) stay allowed: emoji sequences and Persian and
 * Indic scripts need them, and they do not reorder anything.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u206f\ufff9-\ufffb]/;
// eslint-disable-next-line no-control-regex
const UNSAFE_ALL = new RegExp(UNSAFE.source, "g");

/** True when `s` holds none of the refused characters (see UNSAFE above). */
export function isSafeDisplayText(s: string): boolean {
  return !UNSAFE.test(s);
}

/**
 * `s` without the refused characters. For text that must be shown anyway (stored before the rule,
 * or an SMS built from a template): input is refused with isSafeDisplayText, not cleaned.
 */
export function stripUnsafeDisplayText(s: string): string {
  return s.replace(UNSAFE_ALL, "");
}

/** The rule in words, for "X must be …" messages. */
export const SAFE_DISPLAY_TEXT_MUST = "without control characters (other than tab and line breaks) or bidirectional formatting characters";
