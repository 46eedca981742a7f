// The Mideye Magic Link query parameters, parsed into a typed result (never thrown, never echoed).

import * as v from "valibot";
import { isSafeDisplayText } from "../util/display-text.ts";
import { MATCH_MAX, MATCH_MIN } from "./tokens.ts";

/** Shortest and longest `touch-timeout` in seconds (Mideye's range). */
export const TOUCH_TIMEOUT_MIN_S = 15;
export const TOUCH_TIMEOUT_MAX_S = 300;
/** Longest display text accepted per parameter (characters); longer is BAD_REQUEST. */
export const MAX_TEXT = 500;
/** Longest `sms-text` accepted before it is cut to `[delivery] sms_max_length` with the link kept. */
export const MAX_SMS_TEXT = 1600;

/** The parsed query of one call. Texts are undefined when not given (the endpoint's defaults apply). */
export interface MagicLinkParams {
  msisdn: string;
  smsText?: string;
  touchTimeoutS?: number;
  authenticationText?: string;
  touchAcceptText?: string;
  touchRejectText?: string;
  buttonAcceptText?: string;
  buttonRejectText?: string;
  titleText?: string;
  /** `match-number`: the number (10-99) the user must pick on the page. */
  matchNumber?: number;
}

// Every text reaches the approval page or the SMS: control and bidirectional formatting characters
// are refused (BAD_REQUEST naming the parameter), not cleaned, so the caller learns of it.
const text = (max: number) => v.optional(v.pipe(v.string(), v.maxLength(max), v.check(isSafeDisplayText)));
const intIn = (min: number, max: number) =>
  v.optional(v.pipe(v.string(), v.regex(/^\d{1,4}$/), v.transform(Number), v.minValue(min), v.maxValue(max)));

const querySchema = v.object({
  msisdn: v.pipe(v.string(), v.minLength(1), v.maxLength(32)),
  "sms-text": text(MAX_SMS_TEXT),
  "touch-timeout": intIn(TOUCH_TIMEOUT_MIN_S, TOUCH_TIMEOUT_MAX_S),
  "authentication-text": text(MAX_TEXT),
  "touch-accept-text": text(MAX_TEXT),
  "touch-reject-text": text(MAX_TEXT),
  "button-accept-text": text(80),
  "button-reject-text": text(80),
  "title-text": text(200),
  "match-number": intIn(MATCH_MIN, MATCH_MAX),
});

export type ParamsResult = { ok: true; params: MagicLinkParams } | { ok: false; fields: string[] };

/**
 * Parses the query parameters (first value of each; unknown parameters are ignored, as Mideye
 * clients may add their own). A `+` sent unencoded in `msisdn` arrives as a space and is restored.
 * Returns the names of the offending parameters on failure, never their values.
 */
export function parseParams(query: Record<string, string | undefined>): ParamsResult {
  const input: Record<string, string> = {};
  for (const key of Object.keys(querySchema.entries)) {
    const value = query[key];
    if (value !== undefined) input[key] = value;
  }
  if (typeof input.msisdn === "string") input.msisdn = input.msisdn.replace(/^ (?=\d)/, "+").trim();
  const r = v.safeParse(querySchema, input);
  if (!r.success) {
    return { ok: false, fields: [...new Set(r.issues.map((i) => String(i.path?.[0]?.key ?? "?")))] };
  }
  const o = r.output;
  return {
    ok: true,
    params: {
      msisdn: o.msisdn,
      smsText: o["sms-text"],
      touchTimeoutS: o["touch-timeout"],
      authenticationText: o["authentication-text"],
      touchAcceptText: o["touch-accept-text"],
      touchRejectText: o["touch-reject-text"],
      buttonAcceptText: o["button-accept-text"],
      buttonRejectText: o["button-reject-text"],
      titleText: o["title-text"],
      matchNumber: o["match-number"],
    },
  };
}

/** What the approval page shows: the endpoint's texts with the call's overrides. Stored as JSON on the approval. */
export type { ApprovalTexts as SessionTexts } from "../approvals/texts.ts";
