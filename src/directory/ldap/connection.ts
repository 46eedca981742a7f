// One LDAP connection per ldapts Client: TLS (LDAPS or StartTLS, RFC 4513 §3) with hostname checks, timeouts, URL failover with health back-off.
//
// ldapts reconnects a dropped Client transparently and unauthenticated on the next operation; for
// a StartTLS profile that reconnect would even be plaintext. We therefore give each Client a
// transport that opens exactly one socket: a second connect attempt fails, and the caller
// discards the Client. A Client is thus one TCP (and TLS) session with one bind identity.

import { readFileSync } from "node:fs";
import net from "node:net";
import tls from "node:tls";
import { Client, ResultCodeError } from "ldapts";
import { DirectoryUnavailableError, type LdapProfile } from "../types.ts";

/** A connected (not yet bound) client and what it is connected to. */
export interface Connection {
  client: Client;
  url: string;
  /** LDAPS or StartTLS completed: the session is encrypted. */
  secure: boolean;
  /** The TLS socket, for diagnostics (protocol, cipher, certificate); undefined on plain LDAP. */
  tlsSocket?: tls.TLSSocket;
}

/** Exponential back-off per URL: a URL that failed is skipped for 1 s, 2 s, 4 s … up to maxMs. */
export class UrlHealth {
  readonly #state = new Map<string, { failures: number; until: number }>();
  constructor(
    private readonly now: () => number = Date.now,
    private readonly baseMs = 1000,
    private readonly maxMs = 60_000,
  ) {}

  /** URLs in configured order, healthy ones first; when every URL is backing off, all of them (so the profile recovers). */
  order(urls: string[]): string[] {
    const t = this.now();
    const healthy = urls.filter((u) => (this.#state.get(u)?.until ?? 0) <= t);
    const resting = urls.filter((u) => !healthy.includes(u));
    return healthy.length > 0 ? healthy : resting;
  }

  failed(url: string): void {
    const failures = (this.#state.get(url)?.failures ?? 0) + 1;
    const delay = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(failures - 1, 30));
    this.#state.set(url, { failures, until: this.now() + delay });
  }

  succeeded(url: string): void {
    this.#state.delete(url);
  }

  /** For diagnostics and tests: ms until the URL is tried again (0 = healthy). */
  restingFor(url: string): number {
    return Math.max(0, (this.#state.get(url)?.until ?? 0) - this.now());
  }
}

/** Reads the profile's CA file once (PEM). Throws TypeError naming the file when it cannot be read (configuration error). */
export function loadCA(profile: LdapProfile): string | undefined {
  if (!profile.caFile) return undefined;
  try {
    return readFileSync(profile.caFile, "utf8");
  } catch (e) {
    throw new TypeError(`ldap profile "${profile.name}": cannot read ca_file ${profile.caFile}: ${(e as NodeJS.ErrnoException).code ?? "error"}`);
  }
}

/** A short, secret-free reason for a failed network step (node error code or ldapts message head). */
export function reason(e: unknown): string {
  if (e instanceof ResultCodeError) return `LDAP result ${e.code}`;
  const err = e as { code?: unknown; message?: unknown };
  if (typeof err?.code === "string") return err.code;
  const msg = typeof err?.message === "string" ? err.message.split("\n")[0]! : String(e);
  return msg.slice(0, 120);
}

/** True for a network-level failure (socket, TLS, timeout), false for an LDAP result from a healthy server. */
export function isNetworkError(e: unknown): boolean {
  return !(e instanceof ResultCodeError);
}

function isIP(host: string): boolean {
  return net.isIP(host.replace(/^\[|\]$/g, "")) !== 0;
}

export interface ConnectOptions {
  /** Gather the requests written in one event-loop turn into one socket write (pipelined connections). */
  coalesceWrites?: boolean;
}

type WriteCallback = (err?: Error | null) => void;

/**
 * Makes `s.write` gather what is written during one event-loop turn and send it in one write at the
 * end of the turn (setImmediate). Each write to a loopback or LAN socket costs a system call and,
 * on the server, a read and a wake-up; pipelined requests made by concurrent logins in the same
 * turn then share them. Order is kept; every callback runs when the combined write has been handed
 * to the socket, with its error if any. A socket destroyed before the flush drops the data (its
 * pending operations fail through the socket's close, as without coalescing).
 */
export function coalesce(s: net.Socket): void {
  const write = s.write.bind(s) as (chunk: Uint8Array, cb?: WriteCallback) => boolean;
  let chunks: Uint8Array[] = [];
  let callbacks: WriteCallback[] = [];
  const flush = () => {
    const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    const cbs = callbacks;
    chunks = [];
    callbacks = [];
    if (s.destroyed) {
      const err = new Error("socket closed before the write");
      for (const cb of cbs) cb(err);
      return;
    }
    write(data, (err) => {
      for (const cb of cbs) cb(err);
    });
  };
  s.write = ((chunk: Uint8Array | string, encodingOrCb?: BufferEncoding | WriteCallback, cb?: WriteCallback): boolean => {
    const callback = typeof encodingOrCb === "function" ? encodingOrCb : cb;
    const bytes = typeof chunk === "string" ? Buffer.from(chunk, typeof encodingOrCb === "string" ? encodingOrCb : "utf8") : chunk;
    if (chunks.length === 0) setImmediate(flush);
    chunks.push(bytes);
    if (callback) callbacks.push(callback);
    return true;
  }) as typeof s.write;
}

/**
 * Opens one connection to `url`: TCP or TLS connect within timeoutMs, StartTLS when the profile
 * asks for it on an ldap:// URL. Certificates are checked against `ca` (or the system roots) and the
 * URL's host name. Throws the underlying error (callers map it); never binds.
 */
export async function openConnection(profile: LdapProfile, url: string, ca: string | undefined, { coalesceWrites = false }: ConnectOptions = {}): Promise<Connection> {
  const parsed = new URL(url);
  const host = parsed.hostname.replace(/^\[|\]$/g, "");
  const ldaps = parsed.protocol === "ldaps:";
  const tlsBase: tls.ConnectionOptions = {
    ...(ca !== undefined ? { ca } : {}),
    host,
    ...(isIP(host) ? {} : { servername: host }),
    minVersion: "TLSv1.2",
    rejectUnauthorized: true,
  };
  let plainUsed = false;
  let secureUsed = false;
  let tlsSocket: tls.TLSSocket | undefined;
  const refuse = () => {
    const s = new net.Socket();
    process.nextTick(() => s.destroy(new Error("connection closed; a new session needs a new client")));
    return s;
  };
  const client = new Client({
    url,
    timeout: profile.timeoutMs,
    connectTimeout: profile.timeoutMs,
    // ldapts treats any tlsOptions as "connect with TLS", so only ldaps:// gets them here.
    ...(ldaps ? { tlsOptions: { ...tlsBase } } : {}),
    strictDN: false,
    createConnection: ((...args: Parameters<typeof net.connect>) => {
      if (plainUsed) return refuse();
      plainUsed = true;
      const s = net.connect(...args);
      // Under StartTLS the plain socket carries only the StartTLS request, then the TLS records.
      if (coalesceWrites && !(profile.startTLS && !ldaps)) coalesce(s);
      return s;
    }) as typeof net.connect,
    createSecureConnection: ((...args: unknown[]) => {
      if (secureUsed) return refuse() as unknown as tls.TLSSocket;
      secureUsed = true;
      // ldaps://: (port, host, options); StartTLS: (options with the plain socket).
      const s = typeof args[0] === "number" ? tls.connect(args[0], args[1] as string, args[2] as tls.ConnectionOptions) : tls.connect(args[0] as tls.ConnectionOptions);
      tlsSocket = s;
      if (coalesceWrites) coalesce(s);
      return s;
    }) as typeof tls.connect,
  });
  try {
    if (ldaps) {
      // ldapts connects lazily; a cheap no-op forces the TLS handshake so failures surface here.
      await (client as unknown as { _connect(): Promise<void> })._connect();
    } else if (profile.startTLS) {
      await client.startTLS({ ...tlsBase });
    } else {
      await (client as unknown as { _connect(): Promise<void> })._connect();
    }
  } catch (e) {
    await discard(client);
    throw e;
  }
  return { client, url, secure: ldaps || profile.startTLS, ...(tlsSocket ? { tlsSocket } : {}) };
}

/**
 * Opens a connection to the first reachable URL of the profile in health order. A URL that
 * fails is put to rest (UrlHealth). Throws DirectoryUnavailableError (no secret in it) when none answers.
 */
export async function connectAny(profile: LdapProfile, ca: string | undefined, health: UrlHealth, log?: LogFn, options?: ConnectOptions): Promise<Connection> {
  return await firstReachable(profile, health, log, (url) => openConnection(profile, url, ca, options));
}

/** connectAny's failover with another opener (login-pool.ts: the login path's connections). */
export async function firstReachable<C>(profile: LdapProfile, health: UrlHealth, log: LogFn | undefined, open: (url: string) => Promise<C>): Promise<C> {
  const reasons: string[] = [];
  for (const url of health.order(profile.urls)) {
    try {
      const c = await open(url);
      health.succeeded(url);
      return c;
    } catch (e) {
      health.failed(url);
      reasons.push(`${url}: ${reason(e)}`);
      log?.("warn", "ldap.url_failed", { profile: profile.name, url, reason: reason(e) });
    }
  }
  throw new DirectoryUnavailableError(profile.name, `ldap profile "${profile.name}": no server reachable (${reasons.join("; ")})`);
}

/** Unbinds (best effort, bounded by the client's timeout) and drops the socket. Never throws. */
export async function discard(client: Client): Promise<void> {
  try {
    if (client.isConnected) await client.unbind();
  } catch {
    // The session is being thrown away; nothing to report.
  }
}

export type LogFn = (level: "debug" | "info" | "warn" | "error", event: string, fields: Record<string, unknown>) => void;
