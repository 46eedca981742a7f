// Magic Link: sessions, the Mideye-compatible API and the approval pages.
export { MagicLinkService, MAGICLINK_CODES, REFUSAL_CODE, endpointBuckets, type AnswerForm, type AnswerResult, type AuthCall, type LinkView, type MagicLinkCode, type MagicLinkServiceOptions, type SessionOutcome } from "./service.ts";
export { KnownNumbers } from "./known-users.ts";
export { dispatcherPool } from "./dispatchers.ts";
export { parseParams, TOUCH_TIMEOUT_MAX_S, TOUCH_TIMEOUT_MIN_S, type MagicLinkParams, type ParamsResult, type SessionTexts } from "./params.ts";
export { csrfToken, generateLinkToken, hashLinkToken, matchChoices, verifyCsrfToken, LINK_TOKEN_BYTES, MATCH_MAX, MATCH_MIN } from "./tokens.ts";
