// Second factors: what a challenge asks for after the first factor (or what a code-only client
// sends alone), which chain of them completes each authentication type, and the one check that
// refuses a type this release cannot complete.
//
// The factors are a TOTP/HOTP code from the user's tokens ("otp", codes.ts OTPCodes), a one-time
// code sent by SMS ("sms") and an approval on the phone ("approval"); phone.ts runs the last two.
// Each type names its chain: the factors tried in order, each one skipped when it cannot reach the
// user (no phone, delivery failed, no token) or needs a challenge the client cannot do, and, for an
// approval in challenge mode, when nobody answered in time (DESIGN "Approvals", Chains).
//
//   type             chain
//   totp, concatenated  otp
//   mobile (2)       sms → otp
//   touch (6)        approval
//   touch-plus (7)   approval → otp
//   touch-mobile (8) approval → sms → otp
//
// A new factor implements SecondFactor (or a step of phone.ts), is named in CHAINS for the types it
// completes (which makes those types implemented), and is named in ChallengeData.factor when it is
// asked over a challenge, so that the second leg checks the factor the State was issued for.

import type { AuthFailureReason } from "../audit/events.ts";
import { AUTH_TYPES, type AuthType } from "../domain/auth-types.ts";
import type { User } from "../store/types.ts";

/** A reason to refuse an attempt, with the detail its audit line carries. */
export interface Refusal {
  readonly reason: AuthFailureReason;
  readonly detail?: string;
}

/**
 * What checking a typed second factor found; anything but "ok" is a failure of the code counter.
 * "bad_code" may be tried again on a fresh State; the others end the flow.
 */
export type FactorResult = "ok" | "bad_code" | "replayed_code" | "no_token" | "too_many_codes" | "code_expired" | "state_mismatch";

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
export type FactorName = "otp" | "sms" | "approval";

const chain = (...factors: FactorName[]): readonly FactorName[] => Object.freeze(factors);

/** What completes each implemented type after the first factor: "password" nothing more, else its chain of factors. */
const CHAINS: Readonly<Partial<Record<AuthType, "password" | readonly FactorName[]>>> = {
  password: "password",
  concatenated: chain("otp"), // the code typed after the password, in the same field
  totp: chain("otp"),
  mobile: chain("sms", "otp"),
  touch: chain("approval"),
  "touch-plus": chain("approval", "otp"),
  "touch-mobile": chain("approval", "sms", "otp"),
};

/** One frozen refusal per type that is not implemented, and for "no type at all", built once. */
const NOT_IMPLEMENTED = new Map<AuthType | null, Refusal>();
for (const type of [...AUTH_TYPES, null]) {
  if (type !== null && CHAINS[type] !== undefined) continue;
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

/**
 * The chain of a type that uses the phone (mobile, touch, touch-plus, touch-mobile), undefined for
 * every other. These types type only their password into User-Password, also on a concatenated
 * client, and are run by phone.ts.
 */
export function phoneChain(type: AuthType | null): readonly FactorName[] | undefined {
  const chain = type === null ? undefined : CHAINS[type];
  return chain === undefined || chain === "password" || (chain.length === 1 && chain[0] === "otp") ? undefined : chain;
}

/** The second factors of one engine, and the one that completes a given type. */
export class SecondFactors {
  constructor(private readonly byName: Readonly<Record<"otp", SecondFactor>>) {}

  /**
   * The factor that completes a login of `type` after the first factor, for the types completed by
   * one code (totp, concatenated). Callers ask only for such a type: not "password", not a phone
   * type (phoneChain), and not refused by notImplemented; for any other it throws TypeError (a flow
   * asking out of order is a programming error).
   */
  of(type: AuthType | null): SecondFactor {
    const chain = type === null ? undefined : CHAINS[type];
    if (chain === undefined || chain === "password" || chain.length !== 1) throw new TypeError(`type ${type} has no single second factor`);
    return this.byName.otp;
  }
}
