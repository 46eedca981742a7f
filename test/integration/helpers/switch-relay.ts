// A switch relay (`portcullis switch serve`) for integration tests: its own data directory (an
// Appliance harness for the CLI), a free loopback port, and its process.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Appliance, ServerProcess, portcullisCommand } from "./appliance.ts";
import { DELIVERY_LIMITS_OFF, type SmsGateway } from "./sms-gateway.ts";

/** A free TCP port on 127.0.0.1 (bound and released). */
export function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

/** The `rest` of a relay's config that sends SMS through `gateway`: push to 127.0.0.1 only, every delivery limit off. */
export function smsRelayConfig(gateway: SmsGateway): string {
  return `
[push]
allowed_hosts = ["127.0.0.1"]
[delivery]
${DELIVERY_LIMITS_OFF}
${gateway.smsConfig()}
`;
}

export class Relay {
  readonly home = new Appliance();
  readonly port = freePort();
  proc?: ServerProcess;
  get url() {
    return `https://127.0.0.1:${this.port}`;
  }
  /** Writes the relay's config: its [switch_server] listener and public_url (plus `serverKeys`), then `rest` ([delivery], [push], …). */
  writeConfig(rest: string, serverKeys = "") {
    this.home.writeConfig(`
region = "SE"
[switch_server]
listen = "127.0.0.1:${this.port}"
public_url = "${this.url}"
per_appliance_per_minute = 0
per_appliance_per_hour = 0
${serverKeys}
${rest}
`);
  }
  async start(): Promise<ServerProcess> {
    const proc = Bun.spawn([...portcullisCommand(), "--data-dir", this.home.dataDir, "switch", "serve"], { env: { ...process.env, PORTCULLIS_CONFIG: join(this.home.dataDir, "portcullis.toml") }, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    this.proc = new ServerProcess(proc);
    this.home.servers.push(this.proc);
    await this.proc.waitForLog((l) => l.event === "switch.listening", { timeoutMs: 30_000 });
    return this.proc;
  }
  kill() {
    this.proc?.proc.kill("SIGKILL");
  }
  cert() {
    return readFileSync(join(this.home.dataDir, "http-cert.pem"), "utf8");
  }
  async token(name: string): Promise<string> {
    return (await this.home.cli(["switch", "appliance", "add", name])).trim();
  }
}
