// Bounded pool of service-bound LDAP connections for one profile; only ever bound as the service account.
//
// A connection enters this pool only after a successful service bind and is used for searches and
// (AD) password modifies. User binds never touch it: they go through UserBindPool (bind-pool.ts),
// a different pool whose connections are never handed out. A connection that saw a network error
// or a timeout is discarded, never reused; every connection is renewed after POOL_LIFETIME.
//
// Requests are pipelined: one connection carries up to `pipeline` operations at once (the server
// answers each by its message ID, in any order; ldapts matches them). Only the service identity
// ever runs on these connections, and no bind is sent after the first, so pipelining never mixes
// identities (RFC 4511 §4.2.1 forbids other requests while a bind is outstanding). A network error,
// a timeout or the server closing the socket fails every operation then on the connection; each
// search is retried once on a fresh connection, a password change is not.

import { InvalidCredentialsError } from "ldapts";
import { DirectoryUnavailableError, type LdapProfile } from "../types.ts";
import { BoundedPool, POOL_LIFETIME, type PoolLimits, type PoolStats } from "./bounded-pool.ts";
import { connectAny, discard, isNetworkError, reason, type Connection, type LogFn, type UrlHealth } from "./connection.ts";

export type { PoolStats } from "./bounded-pool.ts";

/** Requests in flight on one service connection by default (RFC 4511 §4.1.1: answers carry the request's message ID). */
export const DEFAULT_PIPELINE = 8;

declare const serviceBound: unique symbol;
/** A connection bound as the service account. Only ServicePool makes one, so a user-bound connection can never be passed where this is expected. */
export type ServiceConnection = Connection & { readonly [serviceBound]: true };

export interface ServicePoolOptions {
  /** Most service connections open at once (default 4). */
  max?: number;
  /** Requests one service connection carries at once (pipelining, answered by message ID); default 8. */
  pipeline?: number;
  log?: LogFn;
  /** Clock for connection lifetimes (Date.now by default). */
  now?: () => number;
  /** Overrides of the lifetime limits (tests). */
  limits?: Partial<Omit<PoolLimits, "max">>;
}

/**
 * Runs `fn` on a connection leased from `pool`. A network failure or timeout inside `fn` (one that
 * `keep` does not claim) marks the URL failed, discards the connection and, when `retry`
 * (idempotent operations), runs `fn` once more on a new connection (possibly another URL); then
 * throws DirectoryUnavailableError. Any other error from `fn` passes through and the connection
 * goes back to the pool.
 */
export async function leaseWithRetry<C extends { url: string }, T>(
  pool: BoundedPool<C>,
  profile: LdapProfile,
  health: UrlHealth,
  log: LogFn | undefined,
  fn: (c: C) => Promise<T>,
  { retry = true, keep }: { retry?: boolean; keep?: (e: unknown) => boolean } = {},
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const { conn: c } = await pool.acquire();
    try {
      const out = await fn(c);
      pool.release(c);
      return out;
    } catch (e) {
      if (!isNetworkError(e) || keep?.(e)) {
        pool.release(c);
        throw e;
      }
      health.failed(c.url);
      pool.drop(c);
      log?.("warn", "ldap.operation_failed", { profile: profile.name, url: c.url, reason: reason(e) });
      if (!retry || attempt >= 1) throw new DirectoryUnavailableError(profile.name, `ldap profile "${profile.name}": ${c.url}: ${reason(e)}`);
    }
  }
}

export class ServicePool {
  readonly #pool: BoundedPool<ServiceConnection>;
  readonly #log: LogFn | undefined;
  readonly #pipeline: number;

  constructor(
    private readonly profile: LdapProfile,
    private readonly ca: string | undefined,
    private readonly health: UrlHealth,
    options: ServicePoolOptions = {},
  ) {
    this.#log = options.log;
    this.#pipeline = Math.max(1, options.pipeline ?? DEFAULT_PIPELINE);
    const name = profile.name;
    this.#pool = new BoundedPool<ServiceConnection>(
      {
        open: () => this.#open(),
        // A session the server closed (idle timeout, restart) is gone for good: see connection.ts.
        alive: (c) => c.client.isConnected && c.client.isBound,
        close: (c) => discard(c.client),
        unavailable: (why) =>
          new DirectoryUnavailableError(name, why === "busy" ? `ldap profile "${name}": all ${Math.max(1, options.max ?? 4)} service connections busy` : `ldap profile "${name}" closed`),
      },
      { max: Math.max(1, options.max ?? 4), maxLeases: this.#pipeline, waitMs: profile.timeoutMs, ...POOL_LIFETIME, ...options.limits },
      options.now,
    );
  }

  /**
   * Runs `fn` on a service-bound connection. A network failure or timeout inside `fn` discards the
   * connection and, when `retry` (idempotent operations: searches), runs `fn` once more on a new
   * connection (possibly another URL). Throws DirectoryUnavailableError when the profile cannot
   * answer; LDAP result errors from `fn` are passed through and the connection goes back to the pool.
   */
  async with<T>(fn: (c: ServiceConnection) => Promise<T>, { retry = true } = {}): Promise<T> {
    return await leaseWithRetry(this.#pool, this.profile, this.health, this.#log, fn, { retry });
  }

  stat(): PoolStats {
    return this.#pool.stat();
  }

  async close(): Promise<void> {
    await this.#pool.close();
  }

  async #open(): Promise<ServiceConnection> {
    // Pipelined searches made in the same event-loop turn leave in one write. With one request at a
    // time there is nothing to gather, and waiting for the end of the turn would only add latency.
    const c = await connectAny(this.profile, this.ca, this.health, this.#log, { coalesceWrites: this.#pipeline > 1 });
    try {
      await c.client.bind(this.profile.bindDN, this.profile.bindPassword);
    } catch (e) {
      await discard(c.client);
      if (e instanceof InvalidCredentialsError) {
        this.#log?.("error", "ldap.service_bind_refused", { profile: this.profile.name, url: c.url });
        throw new DirectoryUnavailableError(this.profile.name, `ldap profile "${this.profile.name}": service bind refused by ${c.url} (check bind_dn and the bind password)`);
      }
      this.health.failed(c.url);
      throw new DirectoryUnavailableError(this.profile.name, `ldap profile "${this.profile.name}": service bind on ${c.url} failed: ${reason(e)}`);
    }
    return c as ServiceConnection;
  }
}
