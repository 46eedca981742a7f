// The admin app's error handler: the one place where the admin operations' error codes (and store
// failures) become HTTP statuses. Answers never echo input: an AdminError says only what its
// `expose` allows, a store error only its status.

import type { ErrorHandler } from "hono";
import { AdminError, type AdminErrorCode } from "../../admin/errors.ts";
import type { Level } from "../../audit/log.ts";
import { StoreError, type StoreErrorCode } from "../../store/types.ts";
import { errorBody, jsonErrors } from "../middleware.ts";
import type { HttpEnv } from "../types.ts";

/** The status of each admin error code. */
export const ADMIN_ERROR_STATUS = {
  invalid: 400,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  rate_limited: 429,
  unavailable: 503,
} as const satisfies Record<AdminErrorCode, number>;

/** The status of each store failure: a database that cannot be reached or locked in time is 503. */
export const STORE_ERROR_STATUS = {
  unavailable: 503,
  conflict: 409,
  network_taken: 409,
  not_found: 404,
  key_missing: 500,
  key_mismatch: 500,
  corrupt: 500,
} as const satisfies Record<StoreErrorCode, number>;

type Status = (typeof ADMIN_ERROR_STATUS)[AdminErrorCode] | (typeof STORE_ERROR_STATUS)[StoreErrorCode];

/**
 * app.onError for the admin app. AdminError: its code's status; `invalid` answers
 * `issues: [{path: field, expected}]`, the others `message` when the error exposes one. StoreError:
 * its code's status, no message (a store message may name a path or a key source). Anything else
 * as jsonErrors (HTTPException keeps its status, else 500). 5xx answers are logged by name only.
 */
export function adminOnError(log: (level: Level, event: string, fields?: Record<string, unknown>) => void): ErrorHandler<HttpEnv> {
  const fallback = jsonErrors(log).onError;
  return function adminErrorHandler(err, c) {
    let status: Status;
    let extra: Record<string, unknown> = {};
    if (err instanceof AdminError) {
      status = ADMIN_ERROR_STATUS[err.code];
      if (err.code === "invalid") extra = { issues: [{ path: err.field ?? "", expected: err.expose ?? null }] };
      else if (err.expose !== undefined) extra = { message: err.expose };
    } else if (err instanceof StoreError) {
      status = STORE_ERROR_STATUS[err.code];
    } else {
      return fallback(err, c);
    }
    if (status >= 500) log("error", "http.error", { requestId: c.get("requestId"), path: c.req.routePath, error: err.name, code: err.code });
    return c.json({ ...errorBody(c, status), ...extra }, status);
  };
}
