// What `serve` is started with, and the listen-address parsing both halves of it use (serve.ts, the
// RADIUS side, and serve-http.ts, the web side, which serve.ts loads later): a module of its own so
// that neither half imports the other.

import type { Config } from "../config/index.ts";

export interface ServeContext {
  config: Config;
  flags?: { radiusListen?: string[]; httpListen?: string };
  /**
   * Which HTTP listeners the administrator set (file, environment or flag). A listener left at its
   * built-in default that cannot be bound is logged as an error and skipped, so that the offline
   * appliance (RADIUS + TOTP) still starts on its defaults; an explicit one that cannot be bound
   * stops the start. Omitted: both count as explicit.
   */
  explicitListeners?: { http: boolean; admin: boolean };
}

/** Splits "192.0.2.1:1812" / "[::1]:1812" (already validated by the config schema). */
export function splitListen(text: string): { address: string; port: number } {
  const m = /^\[(.+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  if (!m) throw new TypeError(`radius.listen: "${text}" is not ADDR:PORT`);
  return { address: m[1]!, port: Number(m[2]) };
}
