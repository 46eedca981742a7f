// What every admin operation gets: the configuration, the store, the audit port with its actor,
// the clock and the random source (parameters, so tests can fix them).

import type { Config } from "../config/index.ts";
import type { Store } from "../store/types.ts";
import type { AdminAudit } from "./audit.ts";

export interface AdminContext {
  config: Config;
  store: Store;
  audit: AdminAudit;
  /** unix ms. */
  now(): number;
  /** `n` cryptographically random bytes. */
  random(n: number): Uint8Array;
}
