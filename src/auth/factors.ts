// The authentication types this release can complete, and the one check that refuses the others.

import type { AuthFailureReason } from "../audit/events.ts";
import { AUTH_TYPES, type AuthType } from "../domain/auth-types.ts";

/** A reason to refuse an attempt, with the detail its audit line carries. */
export interface Refusal {
  readonly reason: AuthFailureReason;
  readonly detail?: string;
}

/** Types the offline core can complete today. Any other type is refused, never let in. */
const IMPLEMENTED_TYPES: ReadonlySet<AuthType> = new Set<AuthType>(["password", "concatenated", "totp"]);

/** One frozen refusal per type that is not implemented, and for "no type at all", built once. */
const NOT_IMPLEMENTED = new Map<AuthType | null, Refusal>();
for (const type of [...AUTH_TYPES, null]) {
  if (type !== null && IMPLEMENTED_TYPES.has(type)) continue;
  NOT_IMPLEMENTED.set(type, Object.freeze({ reason: "type_not_implemented", detail: `type ${type} is not implemented yet` }));
}

/**
 * The check every flow makes before it asks for a second factor: undefined when this release can
 * complete `type`, else the refusal (`type_not_implemented`, naming the type). null, a user with no
 * type at all, is refused too.
 */
export function notImplemented(type: AuthType | null): Refusal | undefined {
  return NOT_IMPLEMENTED.get(type);
}
