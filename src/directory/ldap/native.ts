// Login-path LDAP connections on Bun's own sockets (Bun.connect), carrying the codec of wire.ts.
//
// The user searches and user binds of a login (login-pool.ts, bind-pool.ts) use these; everything
// else (group lookups, password changes, diagnostics) stays on ldapts over node:net / node:tls
// (connection.ts). Bun's socket skips the node:net stream layer, which costs CPU on every read and
// write. Where Bun's sockets do not exist (Deno), login-pool.ts opens ldapts's sockets instead.
//
// TLS is held to the rules connection.ts gives node:tls, and a connection is refused (closed,
// before any LDAP byte after the handshake) unless all of them hold:
//   - the server's chain verifies against the profile's ca_file, or the system roots without one;
//   - the server's certificate names the URL's host: Bun's own check, then node:tls's
//     checkServerIdentity run here again on the peer certificate;
//   - the session is TLS 1.2 or 1.3 (Bun has no minimum-version option: checked after the handshake);
//   - a StartTLS profile (ldap:// with start_tls) sends the StartTLS request (RFC 4511 §4.14) first
//     and nothing else until the server has accepted it and the upgraded session passed the checks
//     above; a refusal or a failed handshake fails the connection, never falls back to plaintext.
// Connecting (TCP, TLS, StartTLS) is bounded by the profile's timeout; a connection error is
// thrown with its code (ECONNREFUSED, ERR_TLS_CERT_ALTNAME_INVALID, …) as connection.ts's are.

import net from "node:net";
import tls from "node:tls";
import type { Socket, SocketHandler, TLSOptions } from "bun";
import type { LdapProfile } from "../types.ts";
import { WireChannel, WireError, type WireTransport } from "./wire.ts";

/** RFC 4511 §4.14.1: the StartTLS extended request's name. */
export const STARTTLS_OID = "1.3.6.1.4.1.1466.20037";

/** True where Bun's sockets are available (not under Deno). */
export const nativeSockets: boolean = typeof Bun !== "undefined" && typeof Bun.connect === "function";

/** A login-path connection: its codec, and how to tell it is still usable and to close it. */
export interface LoginConnection {
  url: string;
  /** LDAPS or StartTLS completed: the session is encrypted. */
  secure: boolean;
  wire: WireChannel;
  alive(): boolean;
  /** Unbinds (best effort) and closes. Never throws. */
  close(): Promise<void>;
}

export interface NativeOptions {
  /** Gather the requests written in one event-loop turn into one socket write (pipelined connections). */
  coalesceWrites?: boolean;
}

type Waiter = { resolve: () => void; reject: (e: Error) => void };

/** One Bun socket (plain, then possibly TLS after StartTLS) as a WireTransport, with its connect steps. */
class Link implements WireTransport {
  socket: Socket<Link> | undefined;
  channel: WireChannel | undefined;
  destroyed = false;
  /** StartTLS done: the plain socket's events are the TLS socket's raw records, not the session. */
  upgraded = false;
  /** The step in progress: TCP open, TLS handshake. */
  waiter: Waiter | undefined;
  /** For a TLS step: the host the certificate must name. */
  verifyHost: string | undefined;
  #out: Uint8Array[] = [];
  #blocked = false;
  #flushQueued = false;

  constructor(readonly coalesce: boolean) {}

  write(bytes: Uint8Array): void {
    if (this.destroyed) return;
    if (!this.coalesce && !this.#blocked && this.#out.length === 0) {
      this.#put(bytes);
      return;
    }
    this.#out.push(bytes);
    if (this.coalesce && !this.#blocked && !this.#flushQueued) {
      this.#flushQueued = true;
      setImmediate(() => {
        this.#flushQueued = false;
        this.#flush();
      });
    }
  }

  drain(): void {
    this.#blocked = false;
    this.#flush();
  }

  destroy(): void {
    this.#closed(new WireError("LDAP connection closed"));
    this.socket?.terminate();
  }

  /** Graceful close: what is queued leaves, then the socket ends. */
  end(): void {
    this.#flush();
    if (!this.destroyed) this.socket?.end();
    this.#closed(new WireError("LDAP connection closed"));
  }

  /** The socket closed or failed: the step in progress and every operation fail. */
  closedBy(e: Error | undefined): void {
    this.#closed(e ?? new WireError("LDAP connection closed"));
  }

  opened(s: Socket<Link>): void {
    this.socket = s;
    if (this.verifyHost !== undefined) return; // TLS: the handshake decides
    this.#settle();
  }

  handshake(s: Socket<Link>, ok: boolean, authorizationError: Error | null): void {
    this.socket = s;
    const host = this.verifyHost;
    if (host === undefined) return;
    // Bun reports a failed chain or name check here without closing; refuse it ourselves.
    let refusal: Error | undefined = authorizationError ?? (ok ? undefined : new WireError("TLS certificate not authorized"));
    if (!refusal) {
      const cert = s.getPeerCertificate();
      if (!cert || Object.keys(cert).length === 0) refusal = new WireError("TLS server sent no certificate");
      else refusal = tls.checkServerIdentity(host, cert);
    }
    if (!refusal) {
      const version = s.getTLSVersion();
      if (version !== "TLSv1.2" && version !== "TLSv1.3") refusal = new WireError(`TLS version ${String(version)} refused (TLS 1.2 or later required)`);
    }
    if (refusal) {
      this.#closed(refusal);
      s.terminate();
      return;
    }
    this.#settle();
  }

  /** Waits for the current step (open or handshake); fails with what closes the socket first. */
  step(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.destroyed) return reject(new WireError("LDAP connection closed"));
      this.waiter = { resolve, reject };
    });
  }

  #settle(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.resolve();
  }

  #closed(e: Error): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.#out = [];
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(e);
    this.channel?.closed(e instanceof WireError ? e.message : `LDAP connection failed: ${e.message}`);
  }

  #flush(): void {
    if (this.destroyed || this.#blocked || this.#out.length === 0) return;
    const data = this.#out.length === 1 ? this.#out[0]! : Buffer.concat(this.#out);
    this.#out = [];
    this.#put(data);
  }

  #put(data: Uint8Array): void {
    const s = this.socket;
    if (!s) return this.destroy();
    const n = s.write(data);
    if (n < 0) return this.destroy();
    if (n < data.length) {
      // The kernel took part of it: the rest leaves first when the socket drains.
      this.#out.unshift(data.subarray(n));
      this.#blocked = true;
    }
  }
}

/** Handlers of a TLS socket (LDAPS, or the session StartTLS upgraded to). */
const handlers: SocketHandler<Link> = {
  open(s) {
    s.data.opened(s);
  },
  handshake(s, ok, err) {
    s.data.handshake(s, ok, err);
  },
  data(s, d) {
    const link = s.data;
    if (link.channel) link.channel.received(d);
    else link.destroy(); // nothing is expected before the session is set up
  },
  drain(s) {
    s.data.drain();
  },
  close(s, err) {
    s.data.closedBy(err);
  },
  error(s, err) {
    s.data.closedBy(err);
  },
  connectError(s, err) {
    s.data.closedBy(err);
  },
};

/**
 * Handlers of a plain TCP socket. After StartTLS the plain socket still reports the raw TLS records
 * (and its close) here, while the TLS socket reports the session: those events are ignored.
 */
const plainHandlers: SocketHandler<Link> = {
  open(s) {
    s.data.opened(s);
  },
  data(s, d) {
    if (!s.data.upgraded) handlers.data!(s, d);
  },
  drain(s) {
    if (!s.data.upgraded) s.data.drain();
  },
  close(s, err) {
    if (!s.data.upgraded) s.data.closedBy(err);
  },
  error(s, err) {
    if (!s.data.upgraded) s.data.closedBy(err);
  },
  connectError(s, err) {
    s.data.closedBy(err);
  },
};

function isIP(host: string): boolean {
  return net.isIP(host) !== 0;
}

/**
 * Opens one login-path connection to `url` on Bun's sockets: TCP or TLS, StartTLS when the profile
 * asks for it on an ldap:// URL, all within the profile's timeout, TLS checked as the file comment
 * says. Throws the underlying error (callers map it); never binds.
 */
export async function openNative(profile: LdapProfile, url: string, ca: string | undefined, { coalesceWrites = false }: NativeOptions = {}): Promise<LoginConnection> {
  const parsed = new URL(url);
  const host = parsed.hostname.replace(/^\[|\]$/g, "");
  const ldaps = parsed.protocol === "ldaps:";
  const port = parsed.port ? Number(parsed.port) : ldaps ? 636 : 389;
  const tlsOptions: TLSOptions = { ...(ca !== undefined ? { ca } : {}), ...(isIP(host) ? {} : { serverName: host }), rejectUnauthorized: true };
  const link = new Link(coalesceWrites);
  const timer = setTimeout(() => link.closedBy(new WireError(`LDAP connect to ${url} timed out after ${profile.timeoutMs} ms`)), profile.timeoutMs);
  try {
    if (ldaps) link.verifyHost = host;
    const opened = link.step();
    Bun.connect<Link>({ hostname: host, port, data: link, ...(ldaps ? { socket: handlers, tls: tlsOptions } : { socket: plainHandlers }) }).then(
      (s) => {
        // A connection that timed out meanwhile is not used.
        if (link.destroyed) s.terminate();
      },
      (e: unknown) => link.closedBy(e instanceof Error ? e : new Error(String(e))),
    );
    await opened;
    if (!ldaps && profile.startTLS) {
      const plain = new WireChannel(link, profile.timeoutMs);
      link.channel = plain;
      const r = await plain.extended(STARTTLS_OID);
      if (r.code !== 0) throw new WireError(`StartTLS refused by the server (LDAP result ${r.code})`);
      link.channel = undefined;
      link.verifyHost = host;
      const upgraded = link.step();
      link.upgraded = true;
      const [, secure] = link.socket!.upgradeTLS<Link>({ data: link, tls: tlsOptions, socket: handlers });
      link.socket = secure;
      await upgraded;
    }
  } catch (e) {
    link.destroy();
    throw e;
  } finally {
    clearTimeout(timer);
  }
  const wire = new WireChannel(link, profile.timeoutMs);
  link.channel = wire;
  return {
    url,
    secure: ldaps || profile.startTLS,
    wire,
    alive: () => !link.destroyed && !wire.failed,
    close: () => {
      wire.unbind();
      link.end();
      return Promise.resolve();
    },
  };
}
