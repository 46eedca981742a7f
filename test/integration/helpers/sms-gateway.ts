// The loopback SMS gateway of the integration tests, and the delivery settings that go with it.
//
// SmsGateway is one HTTP server on 127.0.0.1 (port 0) standing in for the HTTP SMS gateways the
// product sends to ([delivery.sms] and [[delivery.gateway]]): it takes the request the product
// really sends (form or JSON POST, or GET with the template as query string), records it, and
// answers in the gateway's real wire format. By default it answers as Vonage's SMS API accepting
// the message (HTTP 200, `"status":"0"`, a message-id); `mode` (or `queued`, one mode for each of
// the next requests) makes it fail, and `reply` gives any other answer (Twilio's 201 with a SID,
// 46elks, a redirect, ...). `hold()` leaves requests unanswered until `stop()`.
//
// It imports nothing from bun:test, so the benches in scripts/ can use it too.

/** One request as the gateway received it. */
export interface GatewayRequest {
  method: string;
  /** Path and query string, as on the request line. */
  url: string;
  /** Header names in lower case. */
  headers: Record<string, string>;
  body: string;
}

/** The `to` and `message` fields of a form-encoded request (the default body template). */
export interface SmsMessage {
  to: string;
  message: string;
}

/**
 * How the gateway answers: "ok" accepts (Vonage, 200 with status 0), "error-body" refuses the way
 * Vonage does (HTTP 200 with status 4: only success_match tells it from success), "down" is HTTP 503.
 */
export type GatewayMode = "ok" | "error-body" | "down";

export type GatewayReply = (req: GatewayRequest) => Response | Promise<Response>;

/** The approval link in a message's text. */
export const linkIn = (text: string) => /(https?:\/\/[^\s]+\/ml\/[A-Za-z0-9_-]{43})/.exec(text)?.[1];
/** The one-time code in a message's text. */
export const codeIn = (text: string) => /code is ([0-9A-Z]+)\./.exec(text)?.[1];

/** Vonage's answer to an accepted message. */
export const VONAGE_ACCEPTED = { messages: [{ status: "0", "message-id": "m1" }] };
/** Vonage's answer to a refused message: HTTP 200 all the same. */
export const VONAGE_REFUSED = { messages: [{ status: "4", "error-text": "Bad Credentials" }] };

/** A reply of `status` with `body` (an object is sent as JSON). */
export function answer(status: number, body: string | object = "", headers: Record<string, string> = {}): GatewayReply {
  return () =>
    typeof body === "string" ? new Response(body, { status, headers }) : new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
}

function modeAnswer(mode: GatewayMode): Response {
  if (mode === "down") return new Response("unavailable", { status: 503 });
  return Response.json(mode === "ok" ? VONAGE_ACCEPTED : VONAGE_REFUSED);
}

export class SmsGateway {
  /** Every request, in arrival order. */
  readonly received: GatewayRequest[] = [];
  /** Every request's `to` and `message` form fields, in arrival order ("" where a field is missing). */
  readonly messages: SmsMessage[] = [];
  /** How requests are answered while `queued` is empty and `reply` is not set. */
  mode: GatewayMode = "ok";
  /** Modes for the next requests, in order, before `mode` applies again. */
  queued: GatewayMode[] = [];
  /** When set, answers every request instead of `mode`. */
  reply: GatewayReply | undefined;
  private readonly held: Array<(res: Response) => void> = [];
  private readonly server: ReturnType<typeof Bun.serve>;

  /** `onRequest` sees each request as it arrives (e.g. to record the order across two gateways). */
  constructor(private readonly onRequest?: (req: GatewayRequest) => void) {
    this.server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: async (req) => {
        const u = new URL(req.url);
        const r: GatewayRequest = { method: req.method, url: u.pathname + u.search, headers: Object.fromEntries(req.headers), body: await req.text() };
        this.received.push(r);
        const form = new URLSearchParams(r.body);
        this.messages.push({ to: form.get("to") ?? "", message: form.get("message") ?? "" });
        this.onRequest?.(r);
        if (this.reply) return this.reply(r);
        return modeAnswer(this.queued.shift() ?? this.mode);
      },
    });
  }

  get port(): number {
    return this.server.port!;
  }

  /** http://127.0.0.1:PORT */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Leaves every request from now on unanswered (until `reply` is set again or `stop`). */
  hold(): void {
    this.reply = () => new Promise<Response>((resolve) => this.held.push(resolve));
  }

  /** Forgets what was received. */
  clear(): void {
    this.received.length = 0;
    this.messages.length = 0;
  }

  /** Messages to `to` from index `from` of `messages` on. */
  to(to: string, from = 0): SmsMessage[] {
    return this.messages.slice(from).filter((m) => m.to === to);
  }

  /** The text of the first message to `to` from index `from` on; waits for it (bounded: 400 looks, 20 s). */
  async waitFor(to: string, from: number): Promise<string> {
    const end = Date.now() + 20_000;
    for (let i = 0; i < 400 && Date.now() < end; i++) {
      const m = this.to(to, from)[0];
      if (m) return m.message;
      await Bun.sleep(50);
    }
    throw new Error(`timed out waiting for an SMS to ${to}`);
  }

  /**
   * The `[delivery.sms]` table for this gateway: the default form body, Vonage's success_match (so
   * "error-body" is a failure) and a 3 s timeout.
   */
  smsConfig(): string {
    return `[delivery.sms]
url = "${this.url}/sms"
body = "to={to}&message={message}"
success_match = '"status":\\s*"0"'
timeout_ms = 3000`;
  }

  /** Answers the held requests, then closes the server and every connection to it. */
  async stop(): Promise<void> {
    for (const resolve of this.held.splice(0)) resolve(new Response("stopped", { status: 503 }));
    await this.server.stop(true);
  }
}

/**
 * The `[delivery]` keys that turn every delivery limit off (per number, per API key, overall), for
 * tests and benches that send many messages to a few numbers. Put it under a `[delivery]` header.
 */
export const DELIVERY_LIMITS_OFF = `per_number_per_minute = 0
per_number_per_hour = 0
per_key_per_minute = 0
per_key_per_hour = 0
overall_per_minute = 0
overall_per_hour = 0`;
