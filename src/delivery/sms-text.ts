// SMS text rules: every text carries the approval link exactly once and fits a bounded length.
//
// A Magic Link caller may pass its own `sms-text`. Left unchecked, anyone holding an API key could
// send arbitrary text under the organisation's sender ID (phishing, or SMS pumping with long
// multi-part messages), so custom text is off unless an endpoint allows it, and then is cleaned, cut
// to fit, and always carries the link.

import { stripUnsafeDisplayText } from "../util/display-text.ts";

/** The template used when none is given (and when an endpoint disables custom text). */
export const DEFAULT_SMS_TEMPLATE = "Approve or reject the sign-in request: {link}";

const PLACEHOLDER = "{link}";
const ELLIPSIS = "…";

/**
 * The characters refused in every displayed text (util/display-text.ts: controls, bidirectional
 * formatting), plus tab and carriage return, which an SMS has no use for. Texts from the API and
 * the configuration are refused before they get here; this removes whatever a stored template
 * still holds.
 */
const smsSafe = (s: string) => stripUnsafeDisplayText(s).replace(/[\t\r]/g, "");

/**
 * The SMS text for `link`: `template` with its first `{link}` replaced (further placeholders are
 * removed), or the template followed by a space and the link when it has none. Control characters
 * and bidirectional overrides are removed. When the result is longer than `maxLen` (UTF-16 code
 * units, which is what a UCS-2 SMS counts), the text around the link is cut and marked with "…";
 * the link itself is never cut. An undefined or blank template means DEFAULT_SMS_TEMPLATE.
 *
 * @throws TypeError when the link alone (with one separating space) does not fit `maxLen`, or the
 *   link is empty: a configuration error (public_url too long for sms_max_length).
 */
export function buildSmsText(template: string | undefined, link: string, maxLen = 300): string {
  if (link === "" || /\s/.test(link)) throw new TypeError("buildSmsText: the link must be non-empty and without spaces");
  if (link.length + 1 > maxLen) throw new TypeError(`buildSmsText: the link (${link.length} characters) does not fit sms_max_length ${maxLen}`);
  const t = smsSafe(template ?? "").replaceAll(link, "");
  const source = t.trim() === "" ? DEFAULT_SMS_TEMPLATE : t;
  const at = source.indexOf(PLACEHOLDER);
  let before: string;
  let after: string;
  if (at < 0) {
    before = source.trimEnd() + " ";
    after = "";
  } else {
    before = source.slice(0, at);
    after = source.slice(at + PLACEHOLDER.length).replaceAll(PLACEHOLDER, "");
    before = before.replaceAll(PLACEHOLDER, "");
  }
  // Keep the link separated from neighbouring text so that phones recognise it.
  if (before !== "" && !/\s$/.test(before)) before += " ";
  if (after !== "" && !/^\s/.test(after)) after = " " + after;
  let budget = maxLen - link.length;
  if (before.length + after.length <= budget) return before + link + after;
  // Too long: keep the start of the text before the link, then what fits after it.
  const head = fitCodePoints(before.trimEnd(), Math.max(0, budget - 1 - ELLIPSIS.length));
  const headText = head === "" ? "" : (head.length < before.trimEnd().length ? head + ELLIPSIS : head) + " ";
  budget -= headText.length;
  const tail = after.length <= budget ? after : budget > 1 + ELLIPSIS.length ? fitCodePoints(after, budget - ELLIPSIS.length) + ELLIPSIS : "";
  return headText + link + tail;
}

/** The longest prefix of `s` of at most `max` UTF-16 units that does not split a surrogate pair. */
function fitCodePoints(s: string, max: number): string {
  let out = "";
  for (const ch of s) {
    if (out.length + ch.length > max) break;
    out += ch;
  }
  return out;
}

export interface EndpointSmsOptions {
  /** False: the caller's text is ignored and `defaultTemplate` used (the endpoint disables custom text). */
  allowCustom: boolean;
  /** The endpoint's (or [delivery] sms_template's) template; DEFAULT_SMS_TEMPLATE when undefined. */
  defaultTemplate?: string;
  maxLength?: number;
}

/**
 * The text for a Magic Link call: the caller's `sms-text` when the endpoint allows custom text and
 * one was given, else the default template; then buildSmsText's rules.
 *
 * @throws TypeError like buildSmsText.
 */
export function endpointSmsText(custom: string | undefined, link: string, { allowCustom, defaultTemplate, maxLength = 300 }: EndpointSmsOptions): string {
  const useCustom = allowCustom && custom !== undefined && custom.trim() !== "";
  return buildSmsText(useCustom ? custom : defaultTemplate, link, maxLength);
}
