// Bounded pool of service-bound LDAP connections for one profile; only ever bound as the service account.
//
// A connection enters the pool only after a successful service bind and is reused for searches and
// (AD) password modifies. User binds never use this pool (directory.ts opens a separate connection
// and discards it). A connection that saw a network error or a timeout is discarded, never reused.

import { InvalidCredentialsError } from "ldapts";
import { DirectoryUnavailableError, type LdapProfile } from "../types.ts";
import { connectAny, discard, isNetworkError, reason, type Connection, type LogFn, type UrlHealth } from "./connection.ts";

export interface ServicePoolOptions {
  /** Most service connections open at once (default 4). */
  max?: number;
  log?: LogFn;
}

/** Counters for tests and diagnostics. */
export interface PoolStats {
  opened: number;
  discarded: number;
  idle: number;
  busy: number;
}

export class ServicePool {
  readonly #idle: Connection[] = [];
  readonly #busy = new Set<Connection>();
  readonly #waiters: Array<(c: Connection | Error) => void> = [];
  #opening = 0;
  #closed = false;
  readonly #max: number;
  readonly #log: LogFn | undefined;
  readonly stats = { opened: 0, discarded: 0 };

  constructor(
    private readonly profile: LdapProfile,
    private readonly ca: string | undefined,
    private readonly health: UrlHealth,
    options: ServicePoolOptions = {},
  ) {
    this.#max = Math.max(1, options.max ?? 4);
    this.#log = options.log;
  }

  /**
   * Runs `fn` on a service-bound connection. A network failure or timeout inside `fn` discards the
   * connection and, when `retry` (idempotent operations: searches), runs `fn` once more on a new
   * connection (possibly another URL). Throws DirectoryUnavailableError when the profile cannot
   * answer; LDAP result errors from `fn` are passed through and the connection goes back to the pool.
   */
  async with<T>(fn: (c: Connection) => Promise<T>, { retry = true } = {}): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const c = await this.#acquire();
      try {
        const out = await fn(c);
        this.#release(c);
        return out;
      } catch (e) {
        if (!isNetworkError(e)) {
          this.#release(c);
          throw e;
        }
        this.health.failed(c.url);
        this.#drop(c);
        this.#log?.("warn", "ldap.operation_failed", { profile: this.profile.name, url: c.url, reason: reason(e) });
        if (!retry || attempt >= 1) throw new DirectoryUnavailableError(this.profile.name, `ldap profile "${this.profile.name}": ${c.url}: ${reason(e)}`);
      }
    }
  }

  stat(): PoolStats {
    return { ...this.stats, idle: this.#idle.length, busy: this.#busy.size };
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) w(new DirectoryUnavailableError(this.profile.name, `ldap profile "${this.profile.name}" closed`));
    const all = [...this.#idle.splice(0), ...this.#busy];
    this.#busy.clear();
    await Promise.all(all.map((c) => discard(c.client)));
  }

  async #acquire(): Promise<Connection> {
    if (this.#closed) throw new DirectoryUnavailableError(this.profile.name, `ldap profile "${this.profile.name}" closed`);
    while (this.#idle.length > 0) {
      const c = this.#idle.pop()!;
      // A session the server closed (idle timeout, restart) is gone for good: see connection.ts.
      if (c.client.isConnected && c.client.isBound) {
        this.#busy.add(c);
        return c;
      }
      this.#drop(c);
    }
    if (this.#busy.size + this.#opening < this.#max) {
      this.#opening++;
      try {
        const c = await this.#open();
        this.#busy.add(c);
        return c;
      } finally {
        this.#opening--;
      }
    }
    // Full: wait for a release, bounded by the profile's timeout.
    return await new Promise<Connection>((resolve, reject) => {
      const waiter = (c: Connection | Error) => {
        clearTimeout(timer);
        if (c instanceof Error) reject(c);
        else resolve(c);
      };
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new DirectoryUnavailableError(this.profile.name, `ldap profile "${this.profile.name}": all ${this.#max} service connections busy`));
      }, this.profile.timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  async #open(): Promise<Connection> {
    const c = await connectAny(this.profile, this.ca, this.health, this.#log);
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
    this.stats.opened++;
    return c;
  }

  #release(c: Connection): void {
    this.#busy.delete(c);
    if (this.#closed || !c.client.isConnected) {
      this.#drop(c);
      return;
    }
    const w = this.#waiters.shift();
    if (w) {
      this.#busy.add(c);
      w(c);
    } else this.#idle.push(c);
  }

  #drop(c: Connection): void {
    this.#busy.delete(c);
    this.stats.discarded++;
    void discard(c.client);
    // A waiter was counting on this slot: open a fresh connection for it.
    const w = this.#waiters.shift();
    if (w && !this.#closed) {
      this.#opening++;
      this.#open()
        .then((nc) => {
          this.#busy.add(nc);
          w(nc);
        }, (e: unknown) => w(e instanceof Error ? e : new Error(String(e))))
        .finally(() => this.#opening--);
    }
  }
}
