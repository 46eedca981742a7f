// HTTP(S) listeners: the only place that touches Bun's HTTP server (Bun.serve).

import { isIPv6 } from "node:net";

export interface ServeHttpOptions {
  /** Literal address to bind ("127.0.0.1", "::1"); never a host name. */
  address: string;
  /** 0 asks the kernel for a free port (tests); the bound port is returned. */
  port: number;
  /** PEM certificate chain and private key; absent means plain HTTP. */
  tls?: { cert: string; key: string };
  /**
   * Answers one request. `env.remoteAddress` is the TCP peer's address (before any proxy header);
   * it is handed to Hono as `c.env`.
   */
  fetch(request: Request, env: { remoteAddress?: string }): Response | Promise<Response>;
  /** Largest request body accepted, in bytes; default 1 MiB. */
  maxRequestBodySize?: number;
}

export interface HttpListener {
  readonly address: string;
  readonly port: number;
  /** Stops accepting, and closes open connections (a blocked Magic Link call is cut off). */
  stop(): Promise<void>;
}

/**
 * Binds an HTTP or HTTPS listener. Throws when the address cannot be bound (EADDRINUSE, EACCES) or
 * the certificate and key do not load.
 */
export function serveHttp(options: ServeHttpOptions): HttpListener {
  const server = Bun.serve({
    hostname: options.address,
    port: options.port,
    reusePort: false,
    maxRequestBodySize: options.maxRequestBodySize ?? 1024 * 1024,
    // Blocking Magic Link calls wait up to 300 s for the user: never cut an idle-looking request
    // short (0 disables Bun's idle timeout).
    idleTimeout: 0,
    ...(options.tls ? { tls: { cert: options.tls.cert, key: options.tls.key } } : {}),
    fetch(request, srv) {
      return options.fetch(request, { remoteAddress: srv.requestIP(request)?.address });
    },
  });
  const port = server.port ?? options.port;
  return {
    address: options.address,
    port,
    async stop() {
      await server.stop(true);
    },
  };
}

/** "ADDR:PORT" for a log line or URL, bracketing IPv6. */
export function formatHostPort(address: string, port: number): string {
  return isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}
