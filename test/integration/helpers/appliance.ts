// Integration-test harness: a temp data dir, the admin CLI, and the real server process (compiled binary or source).

import { expect } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { Attr, Code, buildAccessRequest, checkReply, type CheckedReply, type RawAttribute } from "../../../scripts/bench/radius-wire.ts";

const root = resolve(import.meta.dir, "../../..");

/**
 * The command that runs Portcullis: $PORTCULLIS_BIN (split on spaces, e.g. "bun src/main.ts"),
 * else dist/portcullis when built, else `bun src/main.ts` from source.
 */
export function portcullisCommand(): string[] {
  const fromEnv = process.env.PORTCULLIS_BIN?.trim();
  if (fromEnv) return fromEnv.split(/\s+/);
  const dist = join(root, "dist/portcullis");
  if (existsSync(dist)) return [dist];
  return [process.execPath, join(root, "src/main.ts")];
}

/** A JSON log line from the server's stdout. */
export type LogLine = Record<string, unknown> & { event?: string };

/** The `radius.stats` counters (DESIGN: printed on SIGUSR1). */
export interface Stats {
  received: number;
  accepted: number;
  rejected: number;
  challenged: number;
  duplicates: number;
  dropped: Record<string, number>;
  rcvbuf_drops: number;
}

/** Result of one CLI run. */
export interface CLIResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Polls `probe` until it returns a non-undefined value; bounded by `tries` and `timeoutMs`. Throws with `what` on expiry. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, { tries = 100, timeoutMs = 10_000, everyMs = 50 } = {}): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (let i = 0; i < tries && Date.now() < end; i++) {
    const v = await probe();
    if (v !== undefined) return v;
    await Bun.sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A running `portcullis serve`. Dispose (or call stop) to SIGTERM it. */
export class ServerProcess implements AsyncDisposable {
  readonly logs: LogLine[] = [];
  private stderrText = "";
  private waiters: Array<() => void> = [];
  port = 0;
  address = "127.0.0.1";
  /** Bound ports of the public (HTTPS by default) and admin HTTP listeners, from their `http.listening` lines. */
  httpPort = 0;
  adminPort = 0;

  constructor(readonly proc: Bun.Subprocess<"ignore", "pipe", "pipe">) {
    void this.pump();
    void (async () => {
      for await (const chunk of proc.stderr) this.stderrText += new TextDecoder().decode(chunk);
    })();
  }

  private async pump() {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of this.proc.stdout) {
      buf += dec.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          this.logs.push({ event: "non_json", text: line });
        }
      }
      for (const w of this.waiters.splice(0)) w();
    }
    for (const w of this.waiters.splice(0)) w();
  }

  /** The last lines of stderr, for failure messages. */
  stderrTail(n = 20): string {
    return this.stderrText.split("\n").slice(-n).join("\n");
  }

  /** Waits for a log line (from index `from`) matching `pred`. Throws after `timeoutMs` or when the process exits first. */
  async waitForLog(pred: (l: LogLine) => boolean, { from = 0, timeoutMs = 10_000 } = {}): Promise<LogLine> {
    const end = Date.now() + timeoutMs;
    let seen = from;
    for (;;) {
      for (; seen < this.logs.length; seen++) if (pred(this.logs[seen]!)) return this.logs[seen]!;
      if (this.proc.exitCode !== null) throw new Error(`server exited (${this.proc.exitCode}) before the expected log line; stderr:\n${this.stderrTail()}`);
      const left = end - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for a log line; stderr:\n${this.stderrTail()}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 250));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Sends SIGUSR1 and returns the `radius.stats` line it produces. */
  async stats(): Promise<Stats> {
    const from = this.logs.length;
    this.proc.kill("SIGUSR1");
    const line = await this.waitForLog((l) => l.event === "radius.stats", { from, timeoutMs: 5000 });
    return { dropped: {}, duplicates: 0, rcvbuf_drops: 0, ...line } as unknown as Stats;
  }

  /** Polls the stats (SIGUSR1) until `pred` holds; bounded. */
  async statsUntil(what: string, pred: (s: Stats) => boolean): Promise<Stats> {
    return eventually(what, async () => {
      const s = await this.stats();
      return pred(s) ? s : undefined;
    }, { tries: 50, timeoutMs: 10_000, everyMs: 20 });
  }

  /** SIGTERM; resolves with the exit code (SIGKILL after 10 s). */
  async stop(): Promise<number> {
    if (this.proc.exitCode !== null) return this.proc.exitCode;
    this.proc.kill("SIGTERM");
    const t = setTimeout(() => this.proc.kill("SIGKILL"), 10_000);
    const code = await this.proc.exited;
    clearTimeout(t);
    return code;
  }

  async [Symbol.asyncDispose]() {
    await this.stop();
  }
}

/** A temp data dir plus helpers to run the CLI and the server against it. */
export class Appliance implements AsyncDisposable {
  readonly dataDir = mkdtempSync(join(tmpdir(), "portcullis-it-"));
  readonly env: Record<string, string>;
  readonly servers: ServerProcess[] = [];

  /** The command that runs Portcullis for this appliance (default: portcullisCommand()). */
  readonly command: string[];

  constructor(env: Record<string, string> = {}, { command }: { command?: string[] } = {}) {
    // One RADIUS process unless a test asks for workers (the product's default is one per CPU).
    this.env = { PORTCULLIS_KEY: randomBytes(32).toString("base64"), PORTCULLIS_RADIUS_WORKERS: "1", ...env };
    this.command = command ?? portcullisCommand();
  }

  private spawnEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
    const env: Record<string, string | undefined> = { ...process.env, ...this.env, ...extra };
    delete env.PORTCULLIS_CONFIG;
    delete env.PORTCULLIS_DATA_DIR;
    return env;
  }

  /**
   * Writes `DATA_DIR/portcullis.toml` (the config file the CLI and `serve` read when no --config is
   * given), e.g. `[[ldap]]` profiles, which come only from a file. Write it before `serve`: the
   * server reads its config once at start-up.
   */
  writeConfig(toml: string): string {
    const path = join(this.dataDir, "portcullis.toml");
    writeFileSync(path, toml, { mode: 0o600 });
    return path;
  }

  /** Runs `portcullis --data-dir D ...args`; bounded to 60 s. Never throws on a non-zero exit. */
  async run(args: string[], { stdin, env }: { stdin?: string; env?: Record<string, string> } = {}): Promise<CLIResult> {
    const p = Bun.spawn([...this.command, "--data-dir", this.dataDir, ...args], {
      cwd: root,
      env: this.spawnEnv(env),
      stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin),
      stdout: "pipe",
      stderr: "pipe",
    });
    const t = setTimeout(() => p.kill("SIGKILL"), 60_000);
    const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    clearTimeout(t);
    return { code, stdout, stderr };
  }

  /** Like {@link run} but throws (with the command's stderr) on a non-zero exit. */
  async cli(args: string[], opts: { stdin?: string; env?: Record<string, string> } = {}): Promise<string> {
    const r = await this.run(args, opts);
    if (r.code !== 0) throw new Error(`portcullis ${args.join(" ")} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
    return r.stdout;
  }

  /**
   * Starts `serve --radius-listen 127.0.0.1:0 --http-listen 127.0.0.1:0` (admin listener on
   * 127.0.0.1:0 too) and waits for its `radius.listening` and both `http.listening` lines (ports
   * parsed from them).
   */
  async serve({
    env,
    listen = "127.0.0.1:0",
    httpListen = "127.0.0.1:0",
    defaultHttp = false,
  }: { env?: Record<string, string>; listen?: string; httpListen?: string; /** Leave both HTTP listeners on their built-in defaults and do not wait for them. */ defaultHttp?: boolean } = {}): Promise<ServerProcess> {
    const args = defaultHttp ? ["serve", "--radius-listen", listen] : ["serve", "--radius-listen", listen, "--http-listen", httpListen];
    const proc = Bun.spawn([...this.command, "--data-dir", this.dataDir, ...args], {
      cwd: root,
      env: this.spawnEnv(defaultHttp ? { ...env } : { PORTCULLIS_ADMIN_LISTEN: "127.0.0.1:0", ...env }),
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const server = new ServerProcess(proc);
    this.servers.push(server);
    const line = await server.waitForLog((l) => l.event === "radius.listening", { timeoutMs: 30_000 });
    server.port = Number(line.port);
    server.address = String(line.address);
    if (defaultHttp) return server;
    const pub = await server.waitForLog((l) => l.event === "http.listening" && l.listener === "public", { timeoutMs: 30_000 });
    const adm = await server.waitForLog((l) => l.event === "http.listening" && l.listener === "admin", { timeoutMs: 30_000 });
    server.httpPort = Number(pub.port);
    server.adminPort = Number(adm.port);
    return server;
  }

  async [Symbol.asyncDispose]() {
    await Promise.all(this.servers.map((s) => s.stop()));
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** A TOML basic string (JSON string escapes are valid TOML escapes for these values). */
export function tomlString(value: string): string {
  return JSON.stringify(value);
}

/** A datagram received by a {@link UDPClient}. */
export interface Datagram {
  data: Uint8Array;
  port: number;
  address: string;
}

/** One UDP socket on a loopback address (127.0.0.1 by default; any 127/8 address works on Linux). */
export class UDPClient implements Disposable {
  readonly received: Datagram[] = [];
  private waiters: Array<() => void> = [];
  private socket!: Bun.udp.Socket<"buffer">;

  private constructor() {}

  /** Binds a socket on `hostname`, port 0. */
  static async open(hostname = "127.0.0.1"): Promise<UDPClient> {
    const c = new UDPClient();
    c.socket = await Bun.udpSocket({
      hostname,
      port: 0,
      socket: {
        data(_s, data, port, address) {
          c.received.push({ data: new Uint8Array(data), port, address });
          for (const w of c.waiters.splice(0)) w();
        },
        error() {
          // ICMP errors (ECONNREFUSED) surface here; a missing reply is what the tests assert on.
        },
      },
    });
    return c;
  }

  send(packet: Uint8Array, port: number, address = "127.0.0.1"): void {
    this.socket.send(packet, port, address);
  }

  /** Waits for a datagram (from index `from`) whose Identifier is `identifier`; null after `timeoutMs`. */
  async next(identifier: number, { from = 0, timeoutMs = 5000 } = {}): Promise<Uint8Array | null> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.received.slice(from).find((d) => d.data[1] === identifier);
      if (hit) return hit.data;
      const left = end - Date.now();
      if (left <= 0) return null;
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Sends `packet` and returns its checked reply; throws when none arrives within `timeoutMs`. */
  async exchange(packet: Uint8Array, port: number, secret: string, { timeoutMs = 5000 } = {}): Promise<CheckedReply & { raw: Uint8Array }> {
    const from = this.received.length;
    this.send(packet, port);
    const raw = await this.next(packet[1]!, { from, timeoutMs });
    if (!raw) throw new Error(`no reply to Identifier ${packet[1]} within ${timeoutMs} ms`);
    const r = checkReply(raw, packet, secret);
    if (!r) throw new Error("malformed reply");
    return { ...r, raw };
  }

  [Symbol.dispose]() {
    this.socket.close();
  }
}

let nextIdentifier = Math.floor(Math.random() * 256);
/** A fresh Identifier (cycles through 0-255). */
export function identifier(): number {
  nextIdentifier = (nextIdentifier + 1) & 0xff;
  return nextIdentifier;
}

/** A Status-Server packet with Message-Authenticator (RFC 5997 §3). */
export function statusServer(secret: string, id = identifier()): Uint8Array {
  return buildAccessRequest({ code: Code.StatusServer, identifier: id, secret, attributes: [[Attr.NASIdentifier, new TextEncoder().encode("it")]] });
}

/**
 * Sends `packet` from `sender`, which the server must drop: waits until the stats count the drop
 * (`reason`, or any reason), then proves with a Status-Server from `probe` that the server still
 * answers and that nothing came back for the dropped packet. Throws on any violation.
 */
export async function expectDropped(
  server: ServerProcess,
  sender: UDPClient,
  packet: Uint8Array,
  { reason, probe }: { reason?: string; probe: { client: UDPClient; secret: string } },
): Promise<void> {
  const droppedTotal = (s: Stats) => Object.values(s.dropped ?? {}).reduce((a, b) => a + Number(b), 0);
  const before = await server.stats();
  const from = sender.received.length;
  sender.send(packet, server.port);
  await server.statsUntil(`a ${reason ?? "drop"} to be counted`, (s) =>
    reason ? (s.dropped?.[reason] ?? 0) > (before.dropped?.[reason] ?? 0) : droppedTotal(s) > droppedTotal(before),
  );
  const status = statusServer(probe.secret, (packet[1]! + 128) & 0xff);
  const reply = await probe.client.exchange(status, server.port, probe.secret);
  if (reply.code !== Code.AccessAccept) throw new Error(`Status-Server answered with code ${reply.code}`);
  const stray = sender.received.slice(from).filter((d) => d.data[1] === packet[1]);
  if (stray.length > 0) throw new Error(`the dropped packet got ${stray.length} reply datagram(s)`);
}

export { Attr, Code, buildAccessRequest, checkReply, type RawAttribute };

const textDecoder = new TextDecoder();
const textEncoder = new TextEncoder();

/** Reply attribute values of one type, decoded as UTF-8. */
export function attributeValues(attrs: readonly RawAttribute[], type: number): string[] {
  return attrs.filter(([t]) => t === type).map(([, v]) => textDecoder.decode(v));
}

/** Vendor-Specific sub-attributes (RFC 2865 §5.26: vendor id, then type, length, value), decoded byte by byte. */
export function vendorAttributes(attrs: readonly RawAttribute[]): Array<{ vendor: number; type: number; value: string }> {
  const out: Array<{ vendor: number; type: number; value: string }> = [];
  for (const [t, v] of attrs) {
    if (t !== 26) continue; // Vendor-Specific
    const vendor = new DataView(v.buffer, v.byteOffset, v.byteLength).getUint32(0);
    for (let off = 4; off + 2 <= v.length; ) {
      const type = v[off]!, len = v[off + 1]!;
      if (len < 2 || off + len > v.length) throw new Error("malformed VSA");
      out.push({ vendor, type, value: textDecoder.decode(v.subarray(off + 2, off + len)) });
      off += len;
    }
  }
  return out;
}

/**
 * One PAP Access-Request over a raw socket (Message-Authenticator first) to `port`; the reply's
 * Response Authenticator and Message-Authenticator are checked before it is returned.
 */
export async function pap(
  udp: UDPClient,
  port: number,
  secret: string,
  user: string,
  password: string,
  { state, timeoutMs }: { state?: Uint8Array; timeoutMs?: number } = {},
): Promise<CheckedReply> {
  const attributes: RawAttribute[] = [[Attr.UserName, textEncoder.encode(user)], [Attr.UserPassword, textEncoder.encode(password)]];
  if (state) attributes.push([Attr.State, state]);
  const request = buildAccessRequest({ identifier: identifier(), secret, attributes });
  const reply = await udp.exchange(request, port, secret, timeoutMs === undefined ? {} : { timeoutMs });
  expect(reply.responseAuthenticatorValid).toBe(true);
  expect(reply.messageAuthenticatorValid).toBe(true);
  return reply;
}

/**
 * Waits until `server` answers a Status-Server with `secret` from `address` (bounded: `tries`
 * probes, each waiting `probeMs` for its answer, within `timeoutMs`).
 */
export async function untilServed(server: ServerProcess, secret: string, what: string, { address = "127.0.0.1", tries = 50, timeoutMs = 10_000, probeMs = 200 } = {}): Promise<void> {
  using udp = await UDPClient.open(address);
  await eventually(what, async () => {
    const from = udp.received.length;
    const probe = statusServer(secret);
    udp.send(probe, server.port);
    return (await udp.next(probe[1]!, { from, timeoutMs: probeMs })) ?? undefined;
  }, { tries, timeoutMs, everyMs: 0 });
}

/** Adds a client from `address` with a fresh secret and waits until the running server answers it (clients reload without a restart). */
export async function addLiveClient(app: Appliance, server: ServerProcess, name: string, address: string, flags: string[] = []): Promise<string> {
  const secret = `it-${randomBytes(12).toString("hex")}`;
  await app.cli(["client", "add", name, "--address", `${address}/32`, "--secret", secret, ...flags]);
  await untilServed(server, secret, `client ${name} to be served`, { address });
  return secret;
}
