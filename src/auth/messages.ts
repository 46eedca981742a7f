// The texts users see in Reply-Message: change-flow prompts and the few clear reject texts that may
// follow a proven password. Everything else is the handler's one generic reject text.
//
// Why only after a proven password: a reject text that names the account's state tells whoever
// typed the name that the account exists (DESIGN "Generic rejects"). Active Directory returns the
// bind sub-codes 530, 531, 532, 533, 701 and 773 only when the password was right, so those (and
// states read after a successful bind) may be shown. 52e (bad password) and 775 (locked) are
// returned whatever the password, so they stay generic, as does every reject of a code-only client
// (no password is checked there).

import type { AuthFailureReason } from "../audit/events.ts";

/** Prompts of the expired / must-change password flow over RADIUS PAP (password-change.ts). */
export const CHANGE_PROMPTS = {
  /** After a bind that proved the password but reported it expired (AD 532) or to be changed (AD 773). */
  newPassword: "Your password has expired. Enter a new password.",
  confirm: "Enter the new password again.",
  mismatch: "The passwords did not match. Enter a new password.",
  /** The directory refused the new password: its own readable reason, then this. */
  retry: "Enter a new password.",
} as const;

/**
 * Reject texts for reasons that can only be reached with a proven password. Keys absent here get
 * the generic reject text; so does any of these reasons reached without a proven password.
 */
export const PROVEN_PASSWORD_MESSAGES: Partial<Record<AuthFailureReason, string>> = {
  account_disabled: "Your account is disabled. Contact your administrator.",
  account_expired: "Your account has expired. Contact your administrator.",
  not_permitted: "You are not permitted to log on at this time or from this place.",
  password_expired: "Your password has expired. Change it, then log in again.",
  must_change: "You must change your password before you can log in here.",
  not_in_group: "You are not allowed to use this service. Contact your administrator.",
  challenge_unsupported: "This connection cannot ask for the second factor your account uses (it does not support challenges). Contact your administrator.",
};

/**
 * Prompts of the phone factors (phone.ts), sent as the Access-Challenge's Reply-Message. They name
 * no username, and a number only masked ("+46…67").
 */
export const PHONE_PROMPTS = {
  /** An SMS code went out; `to` is the masked number, or "your e-mail address". */
  smsCode: (to: string) => `Enter the code sent to ${to}`,
  /** Challenge mode: the approval link went out (or one was already pending). */
  approve: "Approve the request on your phone, then press OK",
  /** Challenge mode with number matching: the number to choose on the page. */
  approveMatching: (n: number) => `Approve the request on your phone and choose ${n}, then press OK`,
  /** Challenge mode: OK was pressed before the approval came in. */
  notYet: "Not approved yet. Approve the request on your phone, then press OK",
  notYetMatching: (n: number) => `Not approved yet. Approve the request on your phone and choose ${n}, then press OK`,
  /** Appended in challenge mode when the approver app also shows a code (code to phone). */
  orAppCode: ", or enter the code shown in the app",
  /** The phone could not be reached (no number, delivery failed): the token instead. */
  unreachable: "Phone not reachable; enter the code from your authenticator app",
  /** Challenge mode: nobody answered the approval in time: the token instead. */
  noAnswer: "No answer on the phone; enter the code from your authenticator app",
} as const;
