// HTTP(S) listeners: the only place that opens HTTP sockets. Bun's node:http server is used rather
// than Bun.serve because it reports each accepted connection, which lets a listener close a
// connection beyond its caps as soon as it is accepted, before any request on it is read (a TLS
// handshake already under way in native code may still complete), and close a connection whose
// request head or body does not arrive in time (ConnectionGovernor).
//
// Requests are handed to the application as fetch-API Requests (Hono's `app.fetch`). A request
// body is read only when the application reads it, with backpressure: an unread body stays in the
// kernel's socket buffer, not in this process. A connection whose body was not read to its end is
// closed after the response, so that nobody can make the server drain an attacker's upload.

import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { readFileSync } from "node:fs";
import { isIPv6, type Socket } from "node:net";
import { ConnectionGovernor, type ConnectionLimits, type ConnectionPhase, type RefusalReason } from "./connection-governor.ts";

export type { ConnectionLimits, ConnectionPhase, RefusalReason } from "./connection-governor.ts";

/** What a listener reports about connections it closed on its own. */
export type ListenerEvent =
  | { kind: "refused"; reason: RefusalReason; address: string }
  | { kind: "timeout"; phase: ConnectionPhase; address: string }
  | { kind: "error"; error: string };

export interface HttpLimits extends ConnectionLimits {
  /** Largest request body the listener lets through, in bytes; the application sets smaller caps per route. */
  maxRequestBodySize: number;
}

export interface ServeHttpOptions {
  /** Literal address to bind ("127.0.0.1", "::1"); never a host name. */
  address: string;
  /** 0 asks the kernel for a free port (tests); the bound port is returned. */
  port: number;
  /** PEM certificate chain and private key; absent means plain HTTP. */
  tls?: { cert: string; key: string };
  /**
   * Answers one request. `env.remoteAddress` is the TCP peer's address (before any proxy header);
   * it is handed to Hono as `c.env`. The request's `signal` aborts when the client goes away.
   */
  fetch(request: Request, env: { remoteAddress?: string }): Response | Promise<Response>;
  limits: HttpLimits;
  /** Peers not held to the per-address cap (trusted reverse proxies); the overall cap still applies. */
  isExempt?: (address: string) => boolean;
  /** Connections refused or closed by a deadline, and errors outside the application. */
  onEvent?: (event: ListenerEvent) => void;
  /** Clock for deadlines (tests); default Date.now. */
  now?: () => number;
  /** How often deadlines are checked; default 500 ms. */
  sweepIntervalMs?: number;
}

export interface HttpListener {
  readonly address: string;
  readonly port: number;
  /** Connections open right now. */
  connections(): number;
  /** Stops accepting, and closes open connections (a blocked Magic Link call is cut off). */
  stop(): Promise<void>;
}

/** Defaults suited to a test or a small appliance; serve passes the configured values. */
export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  maxConnections: 1024,
  maxConnectionsPerAddress: 64,
  headerTimeoutMs: 10_000,
  bodyTimeoutMs: 5_000,
  responseTimeoutMs: 30_000,
  maxRequestBodySize: 64 * 1024,
};

/** A response whose body is a long-lived event stream is exempt from the response deadline. */
function isStream(response: Response): boolean {
  return (response.headers.get("content-type") ?? "").toLowerCase().startsWith("text/event-stream");
}

/** "::ffff:192.0.2.1" → "192.0.2.1"; the peer address as the rest of the application sees it. */
function peerAddress(socket: Socket): string {
  const a = socket.remoteAddress ?? "";
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(a) ? a.slice(7) : a;
}

/** The path and query of a request target: origin-form as is, absolute-form reduced (RFC 9112 §3.2). */
function pathOf(target: string | undefined): string | undefined {
  if (!target) return undefined;
  if (target.startsWith("/")) return target;
  if (/^https?:\/\//i.test(target) && URL.canParse(target)) {
    const u = new URL(target);
    return u.pathname + u.search;
  }
  return undefined;
}

/** A request with no body (RFC 9112 §6.3): neither Transfer-Encoding nor a non-zero Content-Length. */
function declaresBody(req: IncomingMessage): boolean {
  if (req.headers["transfer-encoding"] !== undefined) return true;
  const length = req.headers["content-length"];
  return length !== undefined && length !== "0";
}

/**
 * Binds an HTTP or HTTPS listener. Rejects when the address cannot be bound (EADDRINUSE, EACCES) or
 * the certificate and key do not load; nothing stays bound then.
 */
export async function serveHttp(options: ServeHttpOptions): Promise<HttpListener> {
  const now = options.now ?? Date.now;
  const limits = options.limits;
  const governor = new ConnectionGovernor(limits);
  const sockets = new Map<number, Socket>();
  const ids = new WeakMap<Socket, number>();
  const report = (event: ListenerEvent) => {
    try {
      options.onEvent?.(event);
    } catch {
      // Reporting never breaks serving.
    }
  };

  const server: Server = options.tls
    ? (createHttpsServer({ cert: options.tls.cert, key: options.tls.key }) as unknown as Server)
    : createHttpServer();

  // Per-connection and per-request handlers are shared functions keyed through WeakMaps, not
  // closures: thousands of Magic Link calls may wait at once, and each closure costs memory.
  function onSocketClose(this: Socket): void {
    const id = ids.get(this);
    if (id === undefined) return;
    governor.release(id);
    sockets.delete(id);
  }
  function onSocketError(): void {
    // A reset by the peer; "close" follows and releases the slot.
  }

  server.on("connection", (socket: Socket) => {
    const address = peerAddress(socket);
    const admitted = governor.admit(address, now(), { exempt: options.isExempt?.(address) ?? false });
    if ("refused" in admitted) {
      report({ kind: "refused", reason: admitted.refused, address });
      socket.destroy();
      return;
    }
    sockets.set(admitted.id, socket);
    ids.set(socket, admitted.id);
    socket.once("close", onSocketClose);
    socket.on("error", onSocketError);
  });

  /** One request and its answer in progress. */
  interface Exchange {
    id: number;
    socket: Socket;
    req: IncomingMessage;
    res: ServerResponse;
    abort: AbortController;
    /** The request body was read to its end (or there was none). */
    bodyDone: boolean;
    /** The connection ends once this answer is written (its body was not read to the end). */
    closeAfter: boolean;
  }
  const exchanges = new WeakMap<ServerResponse, Exchange>();

  function onResponseClose(this: ServerResponse): void {
    if (!this.writableFinished) exchanges.get(this)?.abort.abort();
  }
  function onResponseFinish(this: ServerResponse): void {
    const x = exchanges.get(this);
    if (!x) return;
    if (x.closeAfter) x.socket.destroy();
    else if (governor.phaseOf(x.id) !== undefined) governor.enter(x.id, "header", now());
  }
  function failed(res: ServerResponse, err: unknown): void {
    report({ kind: "error", error: err instanceof Error ? err.name : "error" });
    if (res.destroyed) return;
    if (!res.headersSent) {
      res.writeHead(500, { "content-type": "application/json", connection: "close" });
      res.end('{"error":"internal_error"}');
    } else {
      res.destroy();
    }
  }

  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    let x: Exchange | undefined;
    let request: Request | undefined;
    try {
      [x, request] = begin(req, res) ?? [];
    } catch (err) {
      failed(res, err);
      return;
    }
    if (!x || !request) return;
    const exchange = x;
    let answer: Response | Promise<Response>;
    try {
      answer = options.fetch(request, { remoteAddress: peerAddress(exchange.socket) });
    } catch (err) {
      failed(res, err);
      return;
    }
    Promise.resolve(answer).then(
      (response) => send(exchange, response).catch((err: unknown) => failed(res, err)),
      (err: unknown) => failed(res, err),
    );
  });

  /** Checks the request line, moves the connection to its body or handler phase and builds the fetch Request; undefined when already answered. */
  function begin(req: IncomingMessage, res: ServerResponse): [Exchange, Request] | undefined {
    const socket = req.socket as Socket;
    const id = ids.get(socket);
    if (id === undefined) {
      // A connection the governor never admitted (refused, already closed): nothing to serve.
      socket.destroy();
      return undefined;
    }
    const hasBody = declaresBody(req) && req.method !== "GET" && req.method !== "HEAD";
    governor.enter(id, hasBody ? "body" : "handler", now());
    const path = pathOf(req.url);
    if (path === undefined) {
      res.writeHead(400, { "content-type": "application/json", "x-content-type-options": "nosniff", "cache-control": "no-store", connection: "close" });
      res.end('{"error":"bad_request"}');
      return undefined;
    }
    const x: Exchange = { id, socket, req, res, abort: new AbortController(), bodyDone: !hasBody, closeAfter: false };
    exchanges.set(res, x);
    res.once("close", onResponseClose);

    const headers = new Headers();
    const raw = req.rawHeaders;
    for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
    const base = options.tls ? "https://" : "http://";
    const request = new Request(base + formatHostPort(options.address, listener.port) + path, {
      method: req.method ?? "GET",
      headers,
      body: hasBody ? bodyStream(x) : null,
      signal: x.abort.signal,
      duplex: "half", // a streamed request body (fetch spec)
    });
    return [x, request];
  }

  /** The request body as a stream read on demand (backpressure: unread bytes stay in the kernel), capped at the listener's limit. */
  function bodyStream(x: Exchange): ReadableStream<Uint8Array> {
    const chunks = x.req[Symbol.asyncIterator]();
    let received = 0;
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        const next = await chunks.next();
        if (next.done) {
          x.bodyDone = true;
          if (governor.phaseOf(x.id) === "body") governor.enter(x.id, "handler", now());
          controller.close();
          return;
        }
        const chunk = next.value as Buffer;
        received += chunk.length;
        if (received > limits.maxRequestBodySize) {
          controller.error(new RangeError("request body exceeds the listener's limit"));
          return;
        }
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      },
      cancel() {
        // The application stopped reading: the rest is never drained (the connection closes after the response).
      },
    });
  }

  /** Writes the application's answer: whole with a Content-Length, or as it comes for an event stream. */
  async function send(x: Exchange, response: Response): Promise<void> {
    const { req, res } = x;
    if (res.destroyed) return;
    const stream = isStream(response);
    governor.enter(x.id, stream ? "stream" : "response", now());
    const out: Record<string, string | string[]> = {};
    response.headers.forEach((value, name) => {
      if (name !== "set-cookie") out[name] = value;
    });
    const cookies = response.headers.getSetCookie();
    if (cookies.length > 0) out["set-cookie"] = cookies;
    // A body the application did not read to its end is not drained: the connection ends here.
    x.closeAfter = !x.bodyDone;
    if (x.closeAfter) out["connection"] = "close";
    res.once("finish", onResponseFinish);

    if (!stream) {
      // Answers other than event streams are small: sent whole, with a Content-Length.
      const bytes = response.body === null ? new Uint8Array(0) : new Uint8Array(await response.arrayBuffer());
      if (res.destroyed) return;
      if (response.status === 204 || response.status === 304) delete out["content-length"];
      else out["content-length"] = String(bytes.byteLength);
      res.writeHead(response.status, out);
      res.end(req.method === "HEAD" ? undefined : bytes);
      return;
    }
    res.writeHead(response.status, out);
    const reader = response.body!.getReader();
    x.abort.signal.addEventListener("abort", () => void reader.cancel().catch(() => {}), { once: true });
    for (;;) {
      const { value, done } = await reader.read();
      if (done || res.destroyed) break;
      if (!res.write(value)) {
        await new Promise<void>((resolve) => {
          const go = () => {
            res.off("drain", go);
            res.off("close", go);
            resolve();
          };
          res.on("drain", go);
          res.on("close", go);
        });
      }
    }
    if (!res.destroyed) res.end();
  }

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => {
      server.off("listening", onListening);
      reject(err);
    };
    const onListening = () => {
      server.off("error", onError);
      resolve();
    };
    server.once("error", onError);
    server.once("listening", onListening);
    // A burst of connections (thousands of Magic Link callers at once) must queue, not overflow the
    // accept queue: the kernel caps this at net.core.somaxconn.
    server.listen({ host: options.address, port: options.port, exclusive: true, backlog: 4096 });
  });
  server.on("error", (err) => report({ kind: "error", error: (err as NodeJS.ErrnoException).code ?? err.name }));

  const sweeper = setInterval(() => {
    for (const late of governor.sweep(now())) {
      report({ kind: "timeout", phase: late.phase, address: late.address });
      const socket = sockets.get(late.id);
      governor.release(late.id);
      sockets.delete(late.id);
      socket?.destroy();
    }
  }, options.sweepIntervalMs ?? 500);
  sweeper.unref?.();

  const bound = server.address();
  const listener: HttpListener = {
    address: options.address,
    port: typeof bound === "object" && bound ? bound.port : options.port,
    connections: () => governor.size,
    async stop() {
      clearInterval(sweeper);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets.values()) socket.destroy();
      sockets.clear();
      await closed;
    },
  };
  return listener;
}

/** "ADDR:PORT" for a log line or URL, bracketing IPv6. */
export function formatHostPort(address: string, port: number): string {
  return isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}

/** The process's soft limit on open files (RLIMIT_NOFILE) from /proc/self/limits; undefined where unknown or unlimited. */
export function openFileLimit(): number | undefined {
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"));
    const soft = line ? /^Max open files\s+(\d+)/.exec(line)?.[1] : undefined;
    return soft === undefined ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}
