// Code matching and consumption: the TOTP/HOTP second factor. A code is matched against every
// active token of the user without any write (matchCode), and only then consumed: the token's
// high-water mark is advanced in the store (UPDATE … WHERE last_step < ?), and the answer waits
// for that write to commit. Two uses of one code race on that guard; exactly one wins.

import { verifyHOTP, verifyTOTP } from "../otp/index.ts";
import type { Store, Token, User } from "../store/types.ts";
import type { FactorResult, SecondFactor } from "./factors.ts";

/** A code that matched a token: the step (and drift) of a TOTP, the next counter of a HOTP, or a replay. */
export interface CodeMatch {
  token: Token;
  step?: number;
  drift?: number;
  next?: number;
  /** A TOTP step at or below the token's high-water mark: a used code. */
  replay?: true;
}

export interface CodeOptions {
  /** TOTP steps accepted either side of now. */
  window: number;
  hotpLookAhead: number;
  /** The Reply-Message of the Access-Challenge that asks for a code. */
  otpPrompt: string;
}

/**
 * What a match decides before any write: no match is a bad code, a match at or below the
 * high-water mark a replayed one; undefined: a fresh match, to be committed.
 */
export function refusedMatch(match: CodeMatch | undefined): "bad_code" | "replayed_code" | undefined {
  return match === undefined ? "bad_code" : match.replay ? "replayed_code" : undefined;
}

export class OTPCodes implements SecondFactor {
  readonly name = "otp";
  readonly prompt: string;
  private readonly window: number;
  private readonly lookAhead: number;

  constructor(
    private readonly store: Store,
    options: CodeOptions,
  ) {
    this.prompt = options.otpPrompt;
    this.window = options.window;
    this.lookAhead = options.hotpLookAhead;
  }

  async unavailable(user: User): Promise<"no_token" | undefined> {
    return (await this.store.tokens.activeForUser(user.id)).length === 0 ? "no_token" : undefined;
  }

  /** Matches `code` against the user's active tokens and consumes it. */
  async verify(user: User, code: string, now: number): Promise<Extract<FactorResult, "ok" | "bad_code" | "replayed_code" | "no_token">> {
    const tokens = await this.store.tokens.activeForUser(user.id);
    if (tokens.length === 0) return "no_token";
    return this.consume(this.match(tokens, code, now));
  }

  /** Pure check over every active token; no store write. A replay is reported only when no token matches afresh. */
  match(tokens: Token[], code: string, now: number): CodeMatch | undefined {
    let replay: CodeMatch | undefined;
    for (const token of tokens) {
      if (token.kind === "totp") {
        const r = verifyTOTP(token, code, { now, window: this.window });
        if (r.ok) return { token, step: r.step, drift: r.drift };
        if (r.reason === "replay") replay = { token, replay: true };
      } else {
        const r = verifyHOTP(token, code, { lookAhead: this.lookAhead });
        if (r.ok) return { token, next: r.next };
      }
    }
    return replay;
  }

  /** Commits the high-water mark of a match (undefined: a bad code); resolves only after the write committed. */
  consume(match: CodeMatch | undefined): Promise<"ok" | "bad_code" | "replayed_code"> {
    const refused = refusedMatch(match);
    if (refused) return Promise.resolve(refused);
    return this.advance(match!).then((ok) => (ok ? "ok" : "replayed_code"));
  }

  /** The store's guarded write of a match that is not a replay: true when this call moved the mark. */
  advance(match: CodeMatch): Promise<boolean> {
    return match.token.kind === "totp" ? this.store.tokens.advanceTOTP(match.token.id, match.step!, match.drift!) : this.store.tokens.advanceHOTP(match.token.id, match.next!);
  }
}
