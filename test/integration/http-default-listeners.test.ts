// The offline appliance starts on its defaults even when the default HTTP ports are taken; an
// HTTP listener the administrator configured explicitly that cannot be bound stops the start.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { Appliance, eventually, portcullisCommand, statusServer, UDPClient } from "./helpers/appliance.ts";

const secret = "default-listeners-secret-1";
const blockers: Array<{ stop(): void }> = [];
let app: Appliance;

/** Holds a TCP port so that the appliance cannot bind it (if something else holds it already, so much the better). */
function hold(hostname: string, port: number) {
  try {
    blockers.push(Bun.listen({ hostname, port, socket: { data() {} } }));
  } catch {
    // already in use: the port is taken either way
  }
}

beforeAll(async () => {
  hold("0.0.0.0", 8443); // [http] listen default
  hold("127.0.0.1", 8444); // [admin] listen default
  app = new Appliance();
  await app.cli(["client", "add", "lo", "--address", "127.0.0.1/32", "--secret-stdin"], { stdin: secret });
}, 30_000);

afterAll(async () => {
  await app[Symbol.asyncDispose]();
  for (const b of blockers) b.stop();
});

test("default HTTP ports taken: each listener is skipped with an error line and RADIUS still answers", async () => {
  const server = await app.serve({ defaultHttp: true });
  const skipped = await eventually("both http.not_listening lines", () => {
    const lines = server.logs.filter((l) => l.event === "http.not_listening");
    return lines.length === 2 ? lines : undefined;
  });
  expect(skipped.map((l) => l.listener).sort()).toEqual(["admin", "public"]);
  expect(skipped.every((l) => l.level === "error")).toBe(true);
  using udp = await UDPClient.open();
  const reply = await eventually("a Status-Server answer", async () => {
    const from = udp.received.length;
    const probe = statusServer(secret);
    udp.send(probe, server.port);
    return (await udp.next(probe[1]!, { from, timeoutMs: 300 })) ?? undefined;
  }, { tries: 30, timeoutMs: 10_000, everyMs: 0 });
  expect(reply[0]).toBe(2); // Access-Accept (RFC 5997 §3)
  await server.stop();
});

test("an explicit --http-listen that cannot be bound stops serve with one line and a non-zero exit", async () => {
  const proc = Bun.spawn([...portcullisCommand(), "--data-dir", app.dataDir, "serve", "--radius-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:8444"], {
    env: { ...process.env, PORTCULLIS_ADMIN_LISTEN: "127.0.0.1:0", PORTCULLIS_RADIUS_WORKERS: "1" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
  const code = await proc.exited;
  clearTimeout(timer);
  expect(code).not.toBe(0);
  const stderr = (await new Response(proc.stderr).text()).trim().split("\n");
  expect(stderr.at(-1)).toMatch(/^portcullis: /);
});
