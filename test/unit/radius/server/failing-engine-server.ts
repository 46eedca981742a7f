// Child process for internal-errors.test.ts: the real RADIUSServer on 127.0.0.1:0 with the real
// stdout logger, over an engine that fails as argv[2] says ("throws", "rejects", "unencodable").
// Logs test.ready with its port, and test.counters on SIGUSR1. Not a test file itself.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { log } from "../../../../src/audit/log.ts";
import type { Attempt, Decision, Engine } from "../../../../src/auth/engine.ts";
import { RADIUSServer } from "../../../../src/radius/server/server.ts";
import { openStore } from "../../../../src/store/open.ts";

const [mode, secret] = process.argv.slice(2) as ["throws" | "rejects" | "unencodable", string];
let calls = 0;
const engine = {
  authenticate(_attempt: Attempt): Promise<Decision> {
    calls++;
    if (mode === "throws") throw new TypeError("an engine bug");
    if (mode === "rejects") return Promise.reject(new RangeError("an engine bug"));
    // A State no attribute can hold (over 253 octets): encoding the reply throws.
    return Promise.resolve({ kind: "challenge", state: new Uint8Array(300), prompt: "Code?", timeoutS: 60 });
  },
} as unknown as Engine;

const dir = mkdtempSync(join(tmpdir(), "portcullis-failing-engine-"));
const store = await openStore({ driver: "sqlite", path: join(dir, "p.db"), dataDir: dir, env: { PORTCULLIS_KEY: Buffer.alloc(32, 7).toString("base64") } });
await store.clients.add({ name: "nas", address: "127.0.0.1/32", secret, firstFactor: "password", otpMode: "challenge", requireMessageAuthenticator: true, allowPasswordOnly: false, directories: null });
const server = new RADIUSServer(store, engine, { listen: [{ address: "127.0.0.1", port: 0 }], recvBufferBytes: 1 << 20, dedupeTtlMs: 30_000, dropLogIntervalMs: 60_000 });
const [endpoint] = await server.start();
log("info", "test.ready", { port: endpoint!.port });
process.on("SIGUSR1", () => log("info", "test.counters", { calls, received: server.stats.received, dropped: server.stats.dropped }));
process.on("SIGTERM", () => {
  void (async () => {
    await server.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  })();
});
