// Bounded pool of connections used ONLY for user binds (password checks and dummy binds); never for a search or a modify.
//
// FreeRADIUS's rlm_ldap keeps such a pool and rebinds; a new TCP (and TLS) session per login costs
// the server about twice the CPU and caps throughput at a third. Each bind on a pooled connection
// re-authenticates it: a successful bind replaces the previous user's identity, a failed one leaves
// the session anonymous (RFC 4511 §4.2.1, RFC 4513 §5.1). Either way the connection is used for
// nothing but the next bind: this class never hands its connections out, so no code can search,
// modify or change a password on a connection a user has bound (issue 3). Service operations go
// through ServicePool (pool.ts), a different pool object.
//
// A connection is discarded on any network error, timeout or TLS problem, and renewed after
// POOL_LIFETIME (uses, age, idle time). Each connection is one socket carrying the codec of wire.ts
// (login-pool.ts: Bun's own socket, else ldapts's), never reopened, so never without StartTLS.

import { DirectoryUnavailableError, type LdapProfile } from "../types.ts";
import { BoundedPool, POOL_LIFETIME, type PoolLimits, type PoolStats } from "./bounded-pool.ts";
import { reason, type LogFn, type UrlHealth } from "./connection.ts";
import { connectAnyLogin, type LoginConnection } from "./login-pool.ts";
import type { BindReply } from "./wire.ts";

/** User-bind connections per profile by default: enough for 64 logins in flight not to queue for a bind on a 2-core host. */
export const DEFAULT_BIND_POOL = 32;

export interface UserBindPoolOptions {
  /** Most user-bind connections open at once (default 32). */
  max?: number;
  log?: LogFn;
  /** Clock for connection lifetimes (Date.now by default). */
  now?: () => number;
  /** Overrides of the lifetime limits (tests). */
  limits?: Partial<Omit<PoolLimits, "max">>;
}

export class UserBindPool {
  readonly #pool: BoundedPool<LoginConnection>;
  readonly #log: LogFn | undefined;

  constructor(
    private readonly profile: LdapProfile,
    ca: string | undefined,
    private readonly health: UrlHealth,
    options: UserBindPoolOptions = {},
  ) {
    this.#log = options.log;
    const name = profile.name;
    const max = Math.max(1, options.max ?? DEFAULT_BIND_POOL);
    this.#pool = new BoundedPool<LoginConnection>(
      {
        open: () => connectAnyLogin(profile, ca, health, options.log),
        alive: (c) => c.alive(),
        close: (c) => c.close(),
        unavailable: (why) => new DirectoryUnavailableError(name, why === "busy" ? `ldap profile "${name}": all ${max} user-bind connections busy` : `ldap profile "${name}" closed`),
      },
      { max, waitMs: profile.timeoutMs, ...POOL_LIFETIME, ...options.limits },
      options.now,
    );
  }

  /**
   * One simple bind (RFC 4511 §4.2) as `dn` on a pooled connection, with the ppolicy request control
   * when asked, sent by the lean codec (wire.ts). Resolves with the server's answer, whatever its
   * result code (wrong password, AD sub-codes, ppolicy): the connection stays healthy and goes back
   * to the pool. An empty password is refused before anything is sent (TypeError). Throws
   * DirectoryUnavailableError on a network error, timeout, TLS failure or malformed reply (the
   * connection is discarded and the URL rests). A reused connection that fails other than by timing
   * out (the server had closed it) is replaced once; a timeout is never retried, because the server
   * may have counted that bind against the account. The password is never logged or put in an error.
   */
  async bind(dn: string, password: string, { ppolicy = false } = {}): Promise<BindReply> {
    if (password === "") throw new TypeError("refusing an unauthenticated bind (empty password)");
    for (let attempt = 0; ; attempt++) {
      const { conn: c, reused } = await this.#pool.acquire();
      try {
        const r = await c.wire.bind(dn, password, { ppolicy });
        this.#pool.release(c);
        return r;
      } catch (e) {
        this.#pool.drop(c);
        const timedOut = /timed? ?out/i.test(reason(e));
        if (reused && !timedOut && attempt === 0) continue;
        this.health.failed(c.url);
        this.#log?.("warn", "ldap.user_bind_failed", { profile: this.profile.name, url: c.url, reason: reason(e) });
        throw new DirectoryUnavailableError(this.profile.name, `ldap profile "${this.profile.name}": bind on ${c.url} failed: ${reason(e)}`);
      }
    }
  }

  stat(): PoolStats {
    return this.#pool.stat();
  }

  async close(): Promise<void> {
    await this.#pool.close();
  }
}
