// The approver app's requests (device protocol versions 1 and 2; docs/app.md "Requests"), all signed:
//
//   GET  /app/api/v{n}/requests        → 200 {"requests":[{id,kind,user,service,source,created,expires,choices?,code?}]}
//   GET  /app/api/v{n}/events          → text/event-stream: `request` (the same objects), `gone` {"id"}
//   POST /app/api/v{n}/requests/{id}   {"decision":"approve"|"reject"|"report","pick"?:n} → 200 {"status"}
//                                      404 unknown, 403 another user's, 409 already ended
//
// The versions differ only in the kinds they show (APP_PROTOCOL_KINDS): a v1 client is never listed,
// streamed or allowed to answer a request of a kind v1 does not name (it is unknown to it: 404).
//
// Only the signing device's own user's requests are listed, streamed and answerable. The signature
// (each accepted once, over method, path, time and body) is what makes an answer unreplayable and
// unalterable: the request ID is in the path and the decision in the body.

import type { Context, Hono, MiddlewareHandler } from "hono";
import type { AppDecision, AppProtocolVersion, AppRequests, EventSink } from "../approvals/app.ts";
import { errorBody, type ValidationIssue } from "../http/middleware.ts";
import type { HttpDeps, HttpEnv } from "../http/types.ts";

type Ctx = Context<HttpEnv>;

/** Request IDs as the approvals store makes them (base64url). */
const REQUEST_ID = /^[A-Za-z0-9_-]{1,64}$/;
const DECISIONS: readonly string[] = ["approve", "reject", "report"];

/** How often an open stream re-reads the user's pending requests (answers and requests of other processes). */
export const STREAM_RESYNC_MS = 5_000;
/** A keep-alive comment at least this often, so that proxies and the app see the stream alive. */
export const STREAM_KEEPALIVE_MS = 15_000;
/** Events queued for a client that does not read; beyond it the stream is closed (the app reconnects). */
const STREAM_QUEUE_MAX = 256;

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

function unavailable(c: Ctx): Response {
  return c.json(errorBody(c, 503), 503);
}

/** Registers the request routes of protocol `version` under `prefix`, behind `signed` (the device-signature middleware). */
export function appRequestRoutes(app: Hono<HttpEnv>, deps: HttpDeps, signed: MiddlewareHandler<HttpEnv>, prefix: string, version: AppProtocolVersion): void {
  app.get(`${prefix}/requests`, signed, async (c) => {
    const svc = deps.app;
    if (!svc) return unavailable(c);
    const requests = await svc.list(c.get("deviceUser").username, version);
    c.header("Cache-Control", "no-store");
    return c.json({ requests });
  });

  app.post(`${prefix}/requests/:id`, signed, async (c) => {
    const svc = deps.app;
    if (!svc) return unavailable(c);
    const id = c.req.param("id");
    if (!REQUEST_ID.test(id)) return c.json({ ...errorBody(c, 404), reason: "unknown_request" }, 404);
    let body: unknown;
    if (/^application\/json\s*(;|$)/i.test(c.req.header("content-type") ?? "")) {
      try {
        body = await c.req.json();
      } catch {
        body = undefined;
      }
    }
    const issues: ValidationIssue[] = [];
    if (!isObject(body)) issues.push({ path: "", expected: "a JSON object (Content-Type: application/json)" });
    else {
      if (Object.keys(body).some((k) => k !== "decision" && k !== "pick")) issues.push({ path: "(unknown key)", expected: "never" });
      if (typeof body.decision !== "string" || !DECISIONS.includes(body.decision)) issues.push({ path: "decision", expected: '"approve", "reject" or "report"' });
      if (body.pick !== undefined && (typeof body.pick !== "number" || !Number.isInteger(body.pick) || body.pick < 0 || body.pick > 999)) {
        issues.push({ path: "pick", expected: "an integer 0-999 (one of the request's choices)" });
      }
    }
    if (issues.length > 0) return c.json({ ...errorBody(c, 400), issues }, 400);
    const b = body as { decision: AppDecision; pick?: number };
    const r = await svc.answer(c.get("device"), c.get("deviceUser"), id, b.decision, b.pick, version);
    if (!r.ok) return c.json({ ...errorBody(c, r.status), reason: r.reason }, r.status);
    return c.json({ status: r.status });
  });

  app.get(`${prefix}/events`, signed, (c) => {
    const svc = deps.app;
    if (!svc) return unavailable(c);
    return eventStream(c, svc, deps, version);
  });
}

/**
 * The user's pending requests as server-sent events: every pending request at once, then `request`
 * and `gone` as they happen (at once for this process, within STREAM_RESYNC_MS for others), and a
 * keep-alive comment. Ends when the client goes away, the device is removed, or the device opens
 * more streams than it may hold.
 */
function eventStream(c: Ctx, svc: AppRequests, deps: HttpDeps, version: AppProtocolVersion): Response {
  const user = c.get("deviceUser").username;
  const deviceId = c.get("device").id;
  const enc = new TextEncoder();
  let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  let closed = false;
  let timer: ReturnType<typeof setInterval> | undefined;
  let resyncing = false;
  let lastWrite = deps.now();

  const write = (text: string) => {
    if (closed || !controller) return;
    if ((controller.desiredSize ?? 0) < -STREAM_QUEUE_MAX) return sink.close();
    try {
      controller.enqueue(enc.encode(text));
      lastWrite = deps.now();
    } catch {
      cleanup();
    }
  };
  const cleanup = () => {
    if (closed) return;
    closed = true;
    if (timer) clearInterval(timer);
    svc.events.detach(user, sink);
  };
  const sink: EventSink = {
    device: deviceId,
    version,
    sent: new Set(),
    send: (event, data) => write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`),
    close: () => {
      if (closed) return;
      cleanup();
      try {
        controller?.close();
      } catch {
        // already closed by the reader
      }
    },
  };

  /** Re-reads the user's pending requests: new ones are sent, ones that ended elsewhere are `gone`. */
  const resync = async () => {
    if (resyncing || closed) return;
    resyncing = true;
    // Only requests shown before the read began can be judged gone by it (a later one may be newer than the read).
    const shown = [...sink.sent];
    try {
      const device = await deps.store.devices.get(deviceId);
      if (!device || device.removedAt !== null) return sink.close();
      const list = await svc.list(user, version);
      if (closed) return;
      const pending = new Set(list.map((v) => v.id));
      for (const v of list) svc.events.offer(sink, v);
      for (const id of shown) if (!pending.has(id)) svc.events.withdraw(sink, id);
    } catch {
      // A store failure: the stream stays, the next pass reads again.
    } finally {
      resyncing = false;
    }
  };

  if (!svc.events.attach(user, sink)) {
    closed = true;
    return c.json({ ...errorBody(c, 429), reason: "too_many_streams" }, 429);
  }
  const stream = new ReadableStream<Uint8Array>(
    {
      start(ctrl) {
        controller = ctrl;
        // retry: how long EventSource-style clients wait before reconnecting.
        write("retry: 3000\n\n");
        void resync();
        timer = setInterval(() => {
          if (deps.now() - lastWrite >= STREAM_KEEPALIVE_MS - STREAM_RESYNC_MS / 2) write(": keep-alive\n\n");
          void resync();
        }, STREAM_RESYNC_MS);
        (timer as unknown as { unref?: () => void }).unref?.();
      },
      cancel() {
        cleanup();
      },
    },
    new CountQueuingStrategy({ highWaterMark: 16 }),
  );
  c.req.raw.signal?.addEventListener("abort", () => cleanup(), { once: true });
  return new Response(stream, {
    status: 200,
    headers: { "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-store", "X-Accel-Buffering": "no" },
  });
}
