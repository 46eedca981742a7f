// WebSocket transport for the switch relay: a TLS listener that serves HTTP and upgrades one path
// to WebSocket (Bun.serve), and the outbound client that pins the relay's CA (Bun's WebSocket with
// `tls.ca`). The only place the switch touches Bun's socket APIs.

/** One side's view of an open WebSocket. */
export interface WsPeer {
  send(text: string): void;
  close(code?: number, reason?: string): void;
}

/** What the application does with one accepted WebSocket. */
export interface WsSession {
  message(data: string | Uint8Array): void;
  close(code: number, reason: string): void;
}

export interface WsServerOptions {
  address: string;
  port: number;
  tls?: { cert: string; key: string };
  /** Path upgraded to WebSocket; every other request goes to `fetch`. */
  upgradePath: string;
  /** Largest frame accepted; a larger one closes the connection with 1009. */
  maxPayloadBytes: number;
  fetch(request: Request, env: { remoteAddress: string }): Response | Promise<Response>;
  open(peer: WsPeer, remoteAddress: string): WsSession;
}

export interface WsListener {
  readonly address: string;
  readonly port: number;
  stop(): Promise<void>;
}

type Data = { remoteAddress: string; session?: WsSession };

/** Binds the relay's listener; rejects when the address cannot be bound. */
export async function serveWebSocketHttp(o: WsServerOptions): Promise<WsListener> {
  const server = Bun.serve<Data, never>({
    hostname: o.address,
    port: o.port,
    ...(o.tls ? { tls: { cert: o.tls.cert, key: o.tls.key } } : {}),
    maxRequestBodySize: 64 * 1024,
    fetch(req, srv) {
      const remoteAddress = srv.requestIP(req)?.address ?? "";
      if (new URL(req.url).pathname === o.upgradePath) {
        if (srv.upgrade(req, { data: { remoteAddress } })) return undefined;
        return new Response("WebSocket upgrade required\n", { status: 426 });
      }
      return o.fetch(req, { remoteAddress });
    },
    websocket: {
      maxPayloadLength: o.maxPayloadBytes,
      idleTimeout: 120,
      sendPings: true,
      open(ws) {
        ws.data.session = o.open({ send: (t) => void ws.send(t), close: (code, reason) => ws.close(code, reason) }, ws.data.remoteAddress);
      },
      message(ws, message) {
        ws.data.session?.message(typeof message === "string" ? message : new Uint8Array(message));
      },
      close(ws, code, reason) {
        ws.data.session?.close(code, reason);
      },
    },
  });
  return {
    address: o.address,
    port: server.port ?? o.port,
    stop: async () => {
      await server.stop(true);
    },
  };
}

export interface WsClientOptions {
  /** PEM of the CA(s) the relay's certificate must chain to; the system roots are not used. */
  ca: string;
  maxPayloadBytes: number;
  onOpen(): void;
  onMessage(data: string): void;
  /** Once per connection, whatever ended it (including a failed connect). */
  onClose(code: number, reason: string): void;
}

/** Opens a WebSocket to `url` (wss:) and returns its peer; failures arrive as onClose. */
export function connectWebSocket(url: string, o: WsClientOptions): WsPeer {
  if (typeof Bun === "undefined") throw new TypeError("the switch connection needs Bun: its WebSocket client is the one that pins a CA");
  const ws = new WebSocket(url, { tls: { ca: o.ca } } as unknown as string[]);
  let closed = false;
  const end = (code: number, reason: string) => {
    if (closed) return;
    closed = true;
    o.onClose(code, reason);
  };
  ws.onopen = () => o.onOpen();
  ws.onmessage = (e) => {
    const data = typeof e.data === "string" ? e.data : "";
    if (data === "" || data.length > o.maxPayloadBytes) {
      ws.close(1009, "frame too large");
      end(1009, "frame too large");
      return;
    }
    o.onMessage(data);
  };
  ws.onerror = (e) => end(1006, (e as ErrorEvent).message?.slice(0, 200) ?? "error");
  ws.onclose = (e) => end(e.code, e.reason);
  return {
    send: (t) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(t);
    },
    close: (code = 1000, reason = "") => {
      try {
        ws.close(code, reason);
      } catch {
        // already closing
      }
      end(code, reason);
    },
  };
}
