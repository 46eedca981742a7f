// runtime/http.ts over real loopback sockets: the fetch adapter (bodies, headers, abort, HEAD,
// streams) and the connection governor at work (caps at accept, header and body deadlines, unread
// bodies never drained).

import { afterEach, describe, expect, test } from "bun:test";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type Socket } from "node:net";
import { DEFAULT_HTTP_LIMITS, serveHttp, type HttpLimits, type HttpListener, type ListenerEvent } from "../../../src/runtime/http.ts";

let listener: HttpListener | undefined;
afterEach(async () => {
  await listener?.stop();
  listener = undefined;
});

async function start(fetch: (req: Request, env: { remoteAddress?: string }) => Response | Promise<Response>, limits: Partial<HttpLimits> = {}) {
  const events: ListenerEvent[] = [];
  listener = await serveHttp({
    address: "127.0.0.1",
    port: 0,
    fetch,
    limits: { ...DEFAULT_HTTP_LIMITS, ...limits },
    onEvent: (e) => events.push(e),
    sweepIntervalMs: 50,
  });
  return { url: `http://127.0.0.1:${listener.port}`, events, port: listener.port };
}

/** A raw TCP connection that records what it receives and when it was closed. */
function raw(port: number, localAddress?: string): { socket: Socket; received: () => string; closed: Promise<number> } {
  const t0 = Date.now();
  const socket = connect({ host: "127.0.0.1", port, ...(localAddress ? { localAddress } : {}) });
  let text = "";
  socket.on("data", (d) => (text += d.toString("latin1")));
  socket.on("error", () => {});
  const closed = new Promise<number>((resolve) => socket.once("close", () => resolve(Date.now() - t0)));
  return { socket, received: () => text, closed };
}

const until = async (what: string, cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(10);
  }
};

describe("fetch adapter", () => {
  test("method, path with query, headers, peer address and a streamed body reach the application", async () => {
    const { url } = await start(async (req, env) =>
      Response.json({ method: req.method, url: new URL(req.url).pathname + new URL(req.url).search, x: req.headers.get("x-test"), peer: env.remoteAddress, body: await req.text() }),
    );
    const r = await fetch(`${url}/a/b?c=1&d=2`, { method: "POST", headers: { "x-test": "yes" }, body: "hello" });
    expect(await r.json()).toEqual({ method: "POST", url: "/a/b?c=1&d=2", x: "yes", peer: "127.0.0.1", body: "hello" });
  });

  test("several Set-Cookie headers stay separate; HEAD gets headers without a body", async () => {
    const { url } = await start(() => {
      const h = new Headers({ "content-type": "text/plain" });
      h.append("set-cookie", "a=1");
      h.append("set-cookie", "b=2");
      return new Response("body", { headers: h });
    });
    const r = await fetch(url);
    expect(r.headers.getSetCookie()).toEqual(["a=1", "b=2"]);
    expect(await r.text()).toBe("body");
    const head = await fetch(url, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
  });

  test("an absolute-form request target is reduced to its path; anything else is 400", async () => {
    const { port } = await start((req) => new Response(new URL(req.url).pathname));
    const a = raw(port);
    a.socket.write("GET http://elsewhere.example/x/y HTTP/1.1\r\nHost: elsewhere.example\r\nConnection: close\r\n\r\n");
    await a.closed;
    expect(a.received()).toMatch(/^HTTP\/1\.1 200[\s\S]*\r\n\r\n\/x\/y$/);
    const b = raw(port);
    b.socket.write("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
    await b.closed;
    expect(a.received()).not.toContain("elsewhere");
    expect(b.received()).toMatch(/^HTTP\/1\.1 400/);
  });

  test("the request's signal aborts when the client goes away while the application waits", async () => {
    let aborted = false;
    const { port } = await start(
      (req) =>
        new Promise<Response>((resolve) => {
          req.signal.addEventListener("abort", () => {
            aborted = true;
            resolve(new Response("late"));
          });
        }),
    );
    const c = raw(port);
    c.socket.write("GET /wait HTTP/1.1\r\nHost: x\r\n\r\n");
    await sleep(100);
    c.socket.destroy();
    await until("abort", () => aborted);
  });

  test("an event stream is written as it is produced and is not cut by the response deadline", async () => {
    const { url } = await start(
      () => {
        let n = 0;
        const body = new ReadableStream<Uint8Array>({
          async pull(ctl) {
            await sleep(150);
            ctl.enqueue(new TextEncoder().encode(`data: ${n}\n\n`));
            if (++n === 4) ctl.close();
          },
        });
        return new Response(body, { headers: { "content-type": "text/event-stream" } });
      },
      { responseTimeoutMs: 200 },
    );
    const r = await fetch(url);
    expect(await r.text()).toBe("data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\n");
  });

  test("a response the client does not read is cut after the response deadline", async () => {
    const big = new Uint8Array(32 * 1024 * 1024);
    const { port, events } = await start(() => new Response(big), { responseTimeoutMs: 300 });
    const c = raw(port);
    c.socket.pause();
    c.socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    await until("the response deadline", () => events.some((e) => e.kind === "timeout" && e.phase === "response"));
    await until("released", () => listener!.connections() === 0);
    c.socket.destroy();
  });
});

describe("bodies", () => {
  test("an unread body is never drained: the answer carries Connection: close and the connection ends", async () => {
    const { port } = await start(() => new Response("no", { status: 404 }));
    const c = raw(port);
    c.socket.write("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n");
    c.socket.write(Buffer.alloc(100_000, 0x61));
    await c.closed;
    expect(c.received()).toMatch(/^HTTP\/1\.1 404/);
    expect(c.received().toLowerCase()).toContain("connection: close");
  });

  test("a read body keeps the connection alive for the next request", async () => {
    const { port } = await start(async (req) => new Response(`got ${(await req.text()).length}`));
    const c = raw(port);
    c.socket.write("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
    await until("first answer", () => c.received().includes("got 3"));
    c.socket.write("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nde");
    await c.closed;
    expect(c.received().match(/HTTP\/1\.1 200/g)?.length).toBe(2);
    expect(c.received()).toContain("got 2");
  });

  test("a body that does not arrive within the body deadline closes the connection", async () => {
    let failed: unknown;
    const { port, events } = await start(
      async (req) => {
        try {
          await req.text();
        } catch (e) {
          failed = e;
        }
        return new Response("late");
      },
      { bodyTimeoutMs: 300 },
    );
    const c = raw(port);
    c.socket.write("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc");
    const ms = await c.closed;
    expect(ms).toBeLessThan(3000);
    expect(c.received()).toBe("");
    expect(events).toContainEqual({ kind: "timeout", phase: "body", address: "127.0.0.1" });
    await until("the reader failed", () => failed !== undefined);
  });

  test("a chunked body past the listener's limit fails the application's read", async () => {
    let error = "";
    const { url } = await start(
      async (req) => {
        try {
          await req.arrayBuffer();
          return new Response("read");
        } catch (e) {
          error = (e as Error).name;
          return new Response("too large", { status: 413 });
        }
      },
      { maxRequestBodySize: 1024 },
    );
    const body = new ReadableStream<Uint8Array>({
      start(ctl) {
        ctl.enqueue(new Uint8Array(4096));
        ctl.close();
      },
    });
    const r = await fetch(url, { method: "POST", body, duplex: "half" } as RequestInit);
    expect(r.status).toBe(413);
    expect(error).toBe("RangeError");
  });
});

describe("connections", () => {
  test("a head that does not arrive within the header deadline closes the connection (slow headers)", async () => {
    const { port, events } = await start(() => new Response("x"), { headerTimeoutMs: 300 });
    const c = raw(port);
    c.socket.write("GET / HTTP/1.1\r\nHost: x");
    const ms = await c.closed;
    expect(ms).toBeGreaterThanOrEqual(250);
    expect(ms).toBeLessThan(3000);
    expect(events).toContainEqual({ kind: "timeout", phase: "header", address: "127.0.0.1" });
  });

  test("an idle keep-alive connection is closed by the header deadline after its answer", async () => {
    const { port } = await start(() => new Response("x"), { headerTimeoutMs: 300 });
    const c = raw(port);
    c.socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    const ms = await c.closed;
    expect(c.received()).toMatch(/^HTTP\/1\.1 200/);
    expect(ms).toBeLessThan(3000);
  });

  test("the per-address cap closes the next connection from that address at once; another address still gets in", async () => {
    const { port, events, url } = await start(() => new Response("ok"), { maxConnectionsPerAddress: 3 });
    const held = [raw(port), raw(port), raw(port)];
    await until("three open", () => listener!.connections() === 3);
    const fourth = raw(port);
    await fourth.closed;
    expect(fourth.received()).toBe("");
    expect(events).toContainEqual({ kind: "refused", reason: "per_address", address: "127.0.0.1" });
    const other = raw(port, "127.0.0.2");
    other.socket.write("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    await other.closed;
    expect(other.received()).toMatch(/^HTTP\/1\.1 200/);
    for (const h of held) h.socket.destroy();
    await until("released", () => listener!.connections() === 0);
    expect((await fetch(url)).status).toBe(200);
  });

  test("the overall cap holds for every address, exempt ones included", async () => {
    const events: ListenerEvent[] = [];
    listener = await serveHttp({
      address: "127.0.0.1",
      port: 0,
      fetch: () => new Response("ok"),
      limits: { ...DEFAULT_HTTP_LIMITS, maxConnections: 2, maxConnectionsPerAddress: 1 },
      isExempt: (a) => a === "127.0.0.1",
      onEvent: (e) => events.push(e),
    });
    const port = listener.port;
    const held = [raw(port), raw(port)];
    await until("two open", () => listener!.connections() === 2);
    const third = raw(port, "127.0.0.3");
    await third.closed;
    expect(events).toContainEqual({ kind: "refused", reason: "overall", address: "127.0.0.3" });
    for (const h of held) h.socket.destroy();
  });

  test("stop() closes open connections and frees the port", async () => {
    const { port } = await start(() => new Promise<Response>(() => {}));
    const c = raw(port);
    c.socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    await until("open", () => listener!.connections() === 1);
    await listener!.stop();
    listener = undefined;
    await c.closed;
    listener = await serveHttp({ address: "127.0.0.1", port, fetch: () => new Response("again"), limits: DEFAULT_HTTP_LIMITS });
    expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe("again");
  });

  test("an address in use is an error and nothing stays bound", async () => {
    const { port } = await start(() => new Response("x"));
    await expect(serveHttp({ address: "127.0.0.1", port, fetch: () => new Response("y"), limits: DEFAULT_HTTP_LIMITS })).rejects.toMatchObject({ code: "EADDRINUSE" });
  });
});
