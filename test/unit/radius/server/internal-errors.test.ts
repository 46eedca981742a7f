// An exception on the packet path, driven through the real RADIUSServer in its own process (so that
// whatever reaches stdout and stderr is seen, and an uncaught error would end it): the request gets
// no reply, stdout gets exactly one JSON line, `internal_error` is counted, and the retransmission
// is dropped and counted the same way without a second evaluation.

import { expect, test } from "bun:test";
import dgram from "node:dgram";
import { join } from "node:path";
import { Attr, Code, encodeRequest, textAttribute } from "../../../../src/radius/codec/index.ts";

const SECRET = "unit-test-shared-secret";
const secret = new TextEncoder().encode(SECRET);
type Line = Record<string, unknown>;

/** The child's stdout as parsed lines; a line that is not JSON is kept as {nonJSON: text}. */
function readLines(stream: ReadableStream<Uint8Array>, lines: Line[]): Promise<void> {
  return (async () => {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of stream) {
      buf += dec.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          lines.push(JSON.parse(text) as Line);
        } catch {
          lines.push({ nonJSON: text });
        }
      }
    }
    if (buf.trim()) lines.push({ nonJSON: buf });
  })();
}

async function until<T>(what: string, probe: () => T | undefined): Promise<T> {
  for (let i = 0; i < 400; i++) {
    const v = probe();
    if (v !== undefined) return v;
    await Bun.sleep(10);
  }
  throw new Error(`timed out waiting for ${what}`);
}

test.each([
  ["throws synchronously", "throws", "handler", "TypeError"],
  ["rejects", "rejects", "handler", "RangeError"],
  ["decides a reply that cannot be encoded", "unencodable", "reply", "TypeError"],
])("an engine that %s: no reply, one JSON line, internal_error counted twice, evaluated once", async (_name, mode, stage, error) => {
  const child = Bun.spawn([process.execPath, join(import.meta.dirname, "failing-engine-server.ts"), mode, SECRET], { stdout: "pipe", stderr: "pipe" });
  const lines: Line[] = [];
  const reading = readLines(child.stdout, lines);
  const client = dgram.createSocket("udp4");
  const replies: Buffer[] = [];
  client.on("message", (m) => replies.push(m));
  try {
    await new Promise<void>((r) => client.bind(0, "127.0.0.1", () => r()));
    const ready = await until("test.ready", () => lines.find((l) => l.event === "test.ready"));
    const from = lines.indexOf(ready) + 1;
    const request = encodeRequest({ code: Code.AccessRequest, identifier: 5, attributes: [textAttribute(Attr.UserName, "alice")] }, secret, { userPassword: new TextEncoder().encode("pw") });

    client.send(request, Number(ready.port), "127.0.0.1");
    await until("the drop line", () => lines.slice(from).find((l) => l.event === "radius.drop"));
    client.send(request, Number(ready.port), "127.0.0.1"); // the NAS's retransmission
    const counters = await until("two internal_error drops", () => {
      child.kill("SIGUSR1");
      const c = lines.slice(from).findLast((l) => l.event === "test.counters") as { dropped?: Record<string, number> } | undefined;
      return c?.dropped?.internal_error === 2 ? c : undefined;
    });

    expect(counters).toMatchObject({ calls: 1, received: 2, dropped: { internal_error: 2 } });
    const logged = lines.slice(from).filter((l) => l.event !== "test.counters");
    expect(logged).toEqual([{ ts: expect.any(String), level: "error", event: "radius.drop", reason: "internal_error", source: "127.0.0.1", stage, error }]);
    expect(replies).toEqual([]);
  } finally {
    client.close();
    child.kill("SIGTERM");
  }
  expect(await child.exited).toBe(0);
  await reading;
  expect(lines.filter((l) => "nonJSON" in l)).toEqual([]);
  expect(await new Response(child.stderr).text()).toBe("");
});
