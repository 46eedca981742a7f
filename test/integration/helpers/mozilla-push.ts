// A push service speaking Mozilla's autopush protocols on 127.0.0.1, so that headless Firefox can
// subscribe and receive Web Push here without Mozilla's servers:
// - towards Firefox, the WebSocket protocol of Firefox's PushServiceWebSocket ("push-notification"
//   subprotocol): hello → uaid, register → channelID + pushEndpoint, notification → ack;
// - towards the appliance, RFC 8030 §5 on each pushEndpoint: a POST with a VAPID token (RFC 8292:
//   ES256 by the key Firefox registered with the channel, aud = this origin) and an aes128gcm body,
//   answered 201 and passed on to Firefox unopened (Firefox decrypts it with its own keys).
// Firefox finds it through the preferences `dom.push.serverURL` and
// `dom.push.testing.allowInsecureServerURL` (ws:// on loopback).

import type { ServerWebSocket } from "bun";
import { parseVapidAuthorization, verifyVapidToken } from "./push-service.ts";

interface Channel {
  id: string;
  /** The applicationServerKey Firefox registered the channel with (base64url), or "" for none. */
  key: string;
  socket: ServerWebSocket<unknown>;
}

export interface ForwardedPush {
  channelID: string;
  ttl: string | null;
  urgency: string | null;
  bytes: number;
}

export class MozillaPushService implements Disposable {
  private readonly server: ReturnType<typeof Bun.serve>;
  private readonly channels = new Map<string, Channel>();
  readonly forwarded: ForwardedPush[] = [];
  readonly refused: string[] = [];
  readonly acks: string[] = [];
  private version = 0;

  constructor() {
    this.server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (req, server) => {
        const url = new URL(req.url);
        if (url.pathname === "/" && req.headers.get("upgrade")?.toLowerCase() === "websocket") {
          return server.upgrade(req, { headers: { "Sec-WebSocket-Protocol": "push-notification" }, data: undefined }) ? undefined : new Response("upgrade failed", { status: 400 });
        }
        if (req.method === "POST" && url.pathname.startsWith("/wpush/")) return this.push(url.pathname.slice("/wpush/".length), req);
        return new Response("not found", { status: 404 });
      },
      websocket: {
        message: (ws, raw) => this.onMessage(ws, String(raw)),
        close: (ws) => {
          for (const [id, c] of this.channels) if (c.socket === ws) this.channels.delete(id);
        },
      },
    });
  }

  /** The value for Firefox's `dom.push.serverURL`. */
  get serverURL(): string {
    return `ws://127.0.0.1:${this.server.port}/`;
  }

  get origin(): string {
    return `http://127.0.0.1:${this.server.port}`;
  }

  private onMessage(ws: ServerWebSocket<unknown>, raw: string): void {
    if (process.env.MOZPUSH_DEBUG) console.error("mozpush <", raw);
    const m = JSON.parse(raw) as { messageType?: string; uaid?: string; channelID?: string; key?: string; updates?: Array<{ channelID: string; version: string }> };
    switch (m.messageType) {
      case "hello":
        ws.send(JSON.stringify({ messageType: "hello", uaid: m.uaid || crypto.randomUUID().replaceAll("-", ""), status: 200, use_webpush: true, broadcasts: {} }));
        return;
      case "register": {
        const id = m.channelID!;
        this.channels.set(id, { id, key: m.key ?? "", socket: ws });
        ws.send(JSON.stringify({ messageType: "register", channelID: id, status: 200, pushEndpoint: `${this.origin}/wpush/${id}` }));
        return;
      }
      case "unregister":
        this.channels.delete(m.channelID!);
        ws.send(JSON.stringify({ messageType: "unregister", channelID: m.channelID, status: 200 }));
        return;
      case "ack":
        for (const u of m.updates ?? []) this.acks.push(u.version);
        return;
      default:
        // Pings ({}) are answered in kind.
        ws.send("{}");
    }
  }

  private async push(channelID: string, req: Request): Promise<Response> {
    const body = new Uint8Array(await req.arrayBuffer());
    const channel = this.channels.get(channelID);
    const refuse = (status: number, why: string) => {
      this.refused.push(why);
      return new Response(why, { status });
    };
    if (!channel) return refuse(410, "no such subscription");
    const auth = parseVapidAuthorization(req.headers.get("authorization") ?? "");
    if (!auth) return refuse(401, "no VAPID authorization");
    if (channel.key && auth.k.replace(/=+$/, "") !== channel.key.replace(/=+$/, "")) return refuse(403, "VAPID key is not the one the subscription was made with");
    try {
      const { claims } = verifyVapidToken(auth.t, auth.k);
      if (claims.aud !== this.origin) return refuse(403, `VAPID aud ${claims.aud}`);
    } catch (e) {
      return refuse(403, `VAPID token: ${(e as Error).message}`);
    }
    if (req.headers.get("content-encoding") !== "aes128gcm") return refuse(415, "not aes128gcm");
    const version = String(++this.version);
    channel.socket.send(JSON.stringify({ messageType: "notification", channelID, version, data: Buffer.from(body).toString("base64url"), headers: { encoding: "aes128gcm" } }));
    this.forwarded.push({ channelID, ttl: req.headers.get("ttl"), urgency: req.headers.get("urgency"), bytes: body.length });
    return new Response(null, { status: 201, headers: { Location: `${this.origin}/m/${version}` } });
  }

  [Symbol.dispose](): void {
    this.server.stop(true);
  }
}
