// The texts an approval page shows, and the context it shows beside them for a sign-in that is not
// the caller's own page (a RADIUS client's name, where the request came from, and when).

import { defaultEndpointProfile } from "../store/types.ts";
import { stripUnsafeDisplayText } from "../util/display-text.ts";

/** What the approval page shows; stored as JSON on the approval. */
export interface ApprovalTexts {
  title: string;
  authentication: string;
  accept: string;
  reject: string;
  buttonAccept: string;
  buttonReject: string;
}

/** The built-in texts (the "default" endpoint profile's), for approvals whose caller brings none. */
export function defaultApprovalTexts(): ApprovalTexts {
  const t = defaultEndpointProfile().texts;
  return {
    title: t.title_text,
    authentication: t.authentication_text,
    accept: t.touch_accept_text,
    reject: t.touch_reject_text,
    buttonAccept: t.button_accept_text,
    buttonReject: t.button_reject_text,
  };
}

/**
 * An approval's texts for the page. New texts are refused when they hold control or bidirectional
 * formatting characters (magiclink/params.ts, the endpoint schema); a profile stored through the
 * admin API before that rule may still hold some, so they are removed here, where every page text passes.
 */
export function parseTexts(json: string): ApprovalTexts {
  return JSON.parse(json, (_key, value: unknown) => (typeof value === "string" ? stripUnsafeDisplayText(value) : value)) as ApprovalTexts;
}

/** Longest client name or source shown on the page (characters); longer is cut with "…". */
export const CONTEXT_MAX = 64;

/**
 * Where a sign-in comes from, shown under the question so the user can tell their own sign-in from
 * someone else's: the service (RADIUS client or portal name), the source (Calling-Station-Id or
 * address, as the NAS reported it: an attacker's device chooses it, so it is cleaned and cut) and
 * the time the request arrived.
 */
export interface ApprovalContext {
  client: string;
  source: string | null;
  /** unix ms. */
  createdAt: number;
}

/** `s` without control or bidirectional formatting characters, cut to CONTEXT_MAX characters (code points). */
export function contextText(s: string): string {
  const clean = stripUnsafeDisplayText(s).trim();
  const chars = [...clean];
  return chars.length <= CONTEXT_MAX ? clean : chars.slice(0, CONTEXT_MAX - 1).join("") + "…";
}
