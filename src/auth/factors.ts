// Second factors: what a challenge asks for after the first factor (or what a code-only client
// sends alone), which one completes each authentication type, and the one check that refuses a
// type this release cannot complete.
//
// Today there is one second factor, a TOTP/HOTP code from the user's tokens (codes.ts OTPCodes).
// A new one (an SMS code, an approval) implements SecondFactor, is named in COMPLETED_BY for the
// types it completes (which makes those types implemented), and is handed to SecondFactors.
// Three places take the code factor directly and need a look then: the code-only flow and its warm
// path, and concatenated logins, are code-only by nature; and the second leg (and the change flow's
// last step) verify a code because a challenge row does not yet name the factor it asked for, so a
// factor asked for over a challenge adds its name to ChallengeData (challenge.ts).

import type { AuthFailureReason } from "../audit/events.ts";
import { AUTH_TYPES, type AuthType } from "../domain/auth-types.ts";
import type { User } from "../store/types.ts";

/** A reason to refuse an attempt, with the detail its audit line carries. */
export interface Refusal {
  readonly reason: AuthFailureReason;
  readonly detail?: string;
}

/** What checking a second factor found; anything but "ok" is a failure of the code counter. */
export type FactorResult = "ok" | "bad_code" | "replayed_code" | "no_token";

export interface SecondFactor {
  /** Its name among the accepted factors of auth.success ("otp"). */
  readonly name: string;
  /** The Reply-Message of the Access-Challenge that asks for it. */
  readonly prompt: string;
  /** Why the user cannot be asked for it (no active token), checked before a challenge is sent; undefined when it can. */
  unavailable(user: User): Promise<AuthFailureReason | undefined>;
  /** Checks what the user typed and consumes it; resolves only after that write committed. */
  verify(user: User, typed: string, now: number): Promise<FactorResult>;
}

/** The factors this release has, by name. */
export type FactorName = "otp";

/** What completes each implemented type after the first factor: "password" nothing more, else a factor. */
const COMPLETED_BY: Readonly<Partial<Record<AuthType, "password" | FactorName>>> = {
  password: "password",
  concatenated: "otp", // the code typed after the password, in the same field
  totp: "otp",
};

/** One frozen refusal per type that is not implemented, and for "no type at all", built once. */
const NOT_IMPLEMENTED = new Map<AuthType | null, Refusal>();
for (const type of [...AUTH_TYPES, null]) {
  if (type !== null && COMPLETED_BY[type] !== undefined) continue;
  NOT_IMPLEMENTED.set(type, Object.freeze({ reason: "type_not_implemented", detail: `type ${type} is not implemented yet` }));
}

/**
 * The check every flow makes before it asks for a second factor: undefined when this release can
 * complete `type`, else the refusal (`type_not_implemented`, naming the type). null, a user with no
 * type at all, is refused too: such a user is never let in.
 */
export function notImplemented(type: AuthType | null): Refusal | undefined {
  return NOT_IMPLEMENTED.get(type);
}

/** The second factors of one engine, and the one that completes a given type. */
export class SecondFactors {
  constructor(private readonly byName: Readonly<Record<FactorName, SecondFactor>>) {}

  /**
   * The factor that completes a login of `type` after the first factor. Callers ask only for a
   * type that needs one: not "password", and not refused by notImplemented; for any other it
   * throws TypeError (a flow asking out of order is a programming error).
   */
  of(type: AuthType | null): SecondFactor {
    const completedBy = type === null ? undefined : COMPLETED_BY[type];
    if (completedBy === undefined || completedBy === "password") throw new TypeError(`type ${type} has no second factor`);
    return this.byName[completedBy];
  }
}
