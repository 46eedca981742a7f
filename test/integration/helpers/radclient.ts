// Runs FreeRADIUS's radclient (Debian freeradius-utils) against the server and parses what it received.

/** Whether radclient-based tests run: always in CI (where its absence must fail), else only when installed. */
export const radclientPath = Bun.which("radclient");
export const runRadclientTests = radclientPath !== null || Boolean(process.env.CI);
if (!runRadclientTests) {
  console.warn("radclient not found: skipping radclient-based integration tests (apt-get install freeradius-utils)");
}

/** What radclient printed about the reply. */
export interface RadclientReply {
  /** "Access-Accept", "Access-Reject", "Access-Challenge", or null when no reply came. */
  code: string | null;
  /** Reply attributes as radclient printed them (string values unquoted), in order. */
  attributes: Array<[name: string, value: string]>;
  output: string;
}

/** Quotes a string value for radclient's attribute list. */
export function quote(value: string): string {
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/**
 * Sends one request with `radclient -x` (one try, `timeoutS` seconds, default 3: more for a request
 * the server holds until an approval). `attrs` is radclient's
 * `Name = value` list; Message-Authenticator=0x00 is added so radclient computes it.
 * Throws when radclient is missing.
 */
export async function radclient(port: number, secret: string, attrs: string[], { command = "auth", timeoutS = 3 } = {}): Promise<RadclientReply> {
  if (!radclientPath) throw new Error("radclient not found (apt-get install freeradius-utils)");
  const input = ["Message-Authenticator = 0x00", ...attrs].join(", ") + "\n";
  const p = Bun.spawn([radclientPath, "-x", "-r", "1", "-t", String(timeoutS), `127.0.0.1:${port}`, command, secret], {
    stdin: new TextEncoder().encode(input),
    stdout: "pipe",
    stderr: "pipe",
  });
  const t = setTimeout(() => p.kill("SIGKILL"), Math.max(20_000, (timeoutS + 10) * 1000));
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(t);
  const output = out + err;
  const lines = output.split("\n");
  const at = lines.findIndex((l) => l.startsWith("Received "));
  if (at < 0) return { code: null, attributes: [], output };
  const code = /^Received (\S+)/.exec(lines[at]!)![1]!;
  const attributes: Array<[string, string]> = [];
  for (const l of lines.slice(at + 1)) {
    const m = /^\s+([\w-]+) = (.*)$/.exec(l);
    if (!m) break;
    attributes.push([m[1]!, m[2]!.replace(/^"(.*)"$/, "$1")]);
  }
  return { code, attributes, output };
}

/** The first value of an attribute in a radclient reply. */
export function attr(reply: RadclientReply, name: string): string | undefined {
  return reply.attributes.find(([n]) => n === name)?.[1];
}
