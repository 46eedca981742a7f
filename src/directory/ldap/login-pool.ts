// The login path's connections: the user search and the user bind of a password login, on the codec
// of wire.ts, over Bun's own sockets (native.ts) or, where those do not exist (Deno), over ldapts's
// node:net / node:tls socket (connection.ts). Both check TLS the same way (see those files).
//
// SearchPool holds service-bound connections used ONLY for the login's user search (and the
// rootDSE probe that tells AD from other servers): pipelined (up to `pipeline` searches at once,
// answered by message ID), never bound as anyone but the service account after the first bind, so
// pipelining never mixes identities. Other service operations (group lookups, password changes)
// go through ServicePool (pool.ts) on ldapts; user binds through UserBindPool (bind-pool.ts). A
// connection that saw a network error or a timeout is discarded, never reused; every connection is
// renewed after POOL_LIFETIME; each search is retried once on a fresh connection.

import { DirectoryUnavailableError, type LdapProfile } from "../types.ts";
import { BoundedPool, POOL_LIFETIME, type PoolLimits, type PoolStats } from "./bounded-pool.ts";
import { discard, firstReachable, openConnection, reason, type LogFn, type UrlHealth } from "./connection.ts";
import { leaseWithRetry } from "./pool.ts";
import { nativeSockets, openNative, type LoginConnection } from "./native.ts";
import { FilterSyntaxError, WireChannel } from "./wire.ts";

export type { LoginConnection } from "./native.ts";

/** Opens one login-path connection to `url` (Bun's socket where available, else ldapts's). */
export async function openLoginConnection(profile: LdapProfile, url: string, ca: string | undefined, { coalesceWrites = false } = {}): Promise<LoginConnection> {
  if (nativeSockets) return await openNative(profile, url, ca, { coalesceWrites });
  const c = await openConnection(profile, url, ca, { coalesceWrites });
  let wire: WireChannel;
  try {
    wire = WireChannel.attach(c.client, profile.timeoutMs);
  } catch (e) {
    await discard(c.client);
    throw e;
  }
  return { url, secure: c.secure, wire, alive: () => c.client.isConnected && !wire.failed, close: () => discard(c.client) };
}

/** A login-path connection to the first reachable URL in health order (connectAny's failover). */
export async function connectAnyLogin(profile: LdapProfile, ca: string | undefined, health: UrlHealth, log?: LogFn, options?: { coalesceWrites?: boolean }): Promise<LoginConnection> {
  return await firstReachable(profile, health, log, (url) => openLoginConnection(profile, url, ca, options));
}

declare const searchBound: unique symbol;
/** A login-path connection bound as the service account. Only SearchPool makes one. */
export type SearchConnection = LoginConnection & { readonly [searchBound]: true };

export interface SearchPoolOptions {
  /** Most connections open at once (default 4). */
  max?: number;
  /** Searches one connection carries at once (default 8). */
  pipeline?: number;
  log?: LogFn;
  now?: () => number;
  limits?: Partial<Omit<PoolLimits, "max">>;
}

export class SearchPool {
  readonly #pool: BoundedPool<SearchConnection>;
  readonly #log: LogFn | undefined;
  readonly #pipeline: number;

  constructor(
    private readonly profile: LdapProfile,
    private readonly ca: string | undefined,
    private readonly health: UrlHealth,
    options: SearchPoolOptions = {},
  ) {
    this.#log = options.log;
    this.#pipeline = Math.max(1, options.pipeline ?? 8);
    const name = profile.name;
    const max = Math.max(1, options.max ?? 4);
    this.#pool = new BoundedPool<SearchConnection>(
      {
        open: () => this.#open(),
        alive: (c) => c.alive(),
        close: (c) => c.close(),
        unavailable: (why) => new DirectoryUnavailableError(name, why === "busy" ? `ldap profile "${name}": all ${max} search connections busy` : `ldap profile "${name}" closed`),
      },
      { max, maxLeases: this.#pipeline, waitMs: profile.timeoutMs, ...POOL_LIFETIME, ...options.limits },
      options.now,
    );
  }

  /**
   * Runs `fn` on a service-bound connection; a network failure or timeout discards the connection
   * and runs `fn` once more on a new one (searches are idempotent). LDAP result errors and
   * FilterSyntaxError from `fn` pass through and the connection goes back to the pool. Throws DirectoryUnavailableError when
   * the profile cannot answer.
   */
  async with<T>(fn: (c: SearchConnection) => Promise<T>): Promise<T> {
    // A filter the codec does not parse fails before anything is sent: the connection is fine.
    return await leaseWithRetry(this.#pool, this.profile, this.health, this.#log, fn, { keep: (e) => e instanceof FilterSyntaxError });
  }

  stat(): PoolStats {
    return this.#pool.stat();
  }

  async close(): Promise<void> {
    await this.#pool.close();
  }

  async #open(): Promise<SearchConnection> {
    // Pipelined searches made in the same event-loop turn leave in one write; with one at a time
    // there is nothing to gather, and waiting for the end of the turn would only add latency.
    const c = await connectAnyLogin(this.profile, this.ca, this.health, this.#log, { coalesceWrites: this.#pipeline > 1 });
    let code: number;
    try {
      code = (await c.wire.bind(this.profile.bindDN, this.profile.bindPassword)).code;
    } catch (e) {
      await c.close();
      this.health.failed(c.url);
      throw new DirectoryUnavailableError(this.profile.name, `ldap profile "${this.profile.name}": service bind on ${c.url} failed: ${reason(e)}`);
    }
    if (code !== 0) {
      await c.close();
      if (code === 49) {
        this.#log?.("error", "ldap.service_bind_refused", { profile: this.profile.name, url: c.url });
        throw new DirectoryUnavailableError(this.profile.name, `ldap profile "${this.profile.name}": service bind refused by ${c.url} (check bind_dn and the bind password)`);
      }
      this.health.failed(c.url);
      throw new DirectoryUnavailableError(this.profile.name, `ldap profile "${this.profile.name}": service bind on ${c.url} failed: LDAP result ${code}`);
    }
    return c as SearchConnection;
  }
}
