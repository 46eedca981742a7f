// A RADIUS client's phone-factor settings, checked once for the CLI (`client add|set`) and the admin
// API (POST and PATCH /clients): the approval hold and mode, number matching, and the SMS code format.

import type { ApprovalMode, ClientPhoneSettings, OTPMode, SmsCodeAlphabetName } from "../store/types.ts";

/** The hold a client may set (seconds): at least a tap's time, at most what any NAS can be made to wait. */
export const APPROVAL_HOLD_MIN_S = 5;
export const APPROVAL_HOLD_MAX_S = 120;
export const APPROVAL_MODES: readonly ApprovalMode[] = ["hold", "challenge"];
export const SMS_CODE_ALPHABETS_ALLOWED: readonly SmsCodeAlphabetName[] = ["numeric", "alphabetic", "alphanumeric"];
export const SMS_CODE_LENGTH_MIN = 4;
export const SMS_CODE_LENGTH_MAX = 12;

/** A refused setting: the field ("approvalHoldS") and a message that never echoes the input. */
export class ClientPhoneError extends Error {
  constructor(
    readonly field: keyof ClientPhoneSettings | "otpMode",
    message: string,
  ) {
    super(message);
    this.name = "ClientPhoneError";
  }
}

/**
 * Merges `patch` over `current` and checks the result: the hold 5-120 s, a known mode, the code
 * length 4-12 and a known alphabet (null: the `[delivery]` default), and the combinations that cannot
 * work. Number matching needs challenge mode (a held request shows the user nothing, so there is no
 * number to match). Challenge mode needs a client that can do challenges (`--otp-mode concat`
 * cannot). Throws ClientPhoneError naming the first bad field.
 */
export function checkClientPhone(current: ClientPhoneSettings, patch: Partial<ClientPhoneSettings>, otpMode: OTPMode): ClientPhoneSettings {
  const next: ClientPhoneSettings = {
    approvalHoldS: patch.approvalHoldS ?? current.approvalHoldS,
    approvalMode: patch.approvalMode ?? current.approvalMode,
    approvalNumberMatch: patch.approvalNumberMatch ?? current.approvalNumberMatch,
    smsCodeLength: patch.smsCodeLength === undefined ? current.smsCodeLength : patch.smsCodeLength,
    smsCodeAlphabet: patch.smsCodeAlphabet === undefined ? current.smsCodeAlphabet : patch.smsCodeAlphabet,
  };
  if (!Number.isInteger(next.approvalHoldS) || next.approvalHoldS < APPROVAL_HOLD_MIN_S || next.approvalHoldS > APPROVAL_HOLD_MAX_S) {
    throw new ClientPhoneError("approvalHoldS", `the approval hold must be ${APPROVAL_HOLD_MIN_S}-${APPROVAL_HOLD_MAX_S} seconds`);
  }
  if (!APPROVAL_MODES.includes(next.approvalMode)) throw new ClientPhoneError("approvalMode", "the approval mode must be hold or challenge");
  if (next.smsCodeLength !== null && (!Number.isInteger(next.smsCodeLength) || next.smsCodeLength < SMS_CODE_LENGTH_MIN || next.smsCodeLength > SMS_CODE_LENGTH_MAX)) {
    throw new ClientPhoneError("smsCodeLength", `an SMS code must be ${SMS_CODE_LENGTH_MIN}-${SMS_CODE_LENGTH_MAX} characters long`);
  }
  if (next.smsCodeAlphabet !== null && !SMS_CODE_ALPHABETS_ALLOWED.includes(next.smsCodeAlphabet)) {
    throw new ClientPhoneError("smsCodeAlphabet", "the SMS code alphabet must be numeric, alphabetic or alphanumeric");
  }
  if (next.approvalMode === "challenge" && otpMode === "concat") {
    throw new ClientPhoneError("approvalMode", "challenge mode needs a client that can do challenges; --otp-mode concat cannot");
  }
  if (next.approvalNumberMatch && next.approvalMode !== "challenge") {
    throw new ClientPhoneError("approvalNumberMatch", "number matching needs challenge mode: a held request shows the user no number to match");
  }
  return next;
}

/** The names of the settings `patch` changes against `current` (for the admin event). */
export function changedPhoneFields(current: ClientPhoneSettings, next: ClientPhoneSettings): string[] {
  return (Object.keys(next) as (keyof ClientPhoneSettings)[]).filter((k) => current[k] !== next[k]);
}
