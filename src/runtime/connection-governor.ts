// Connection accounting for one HTTP listener: admission caps (overall and per source address) and
// the deadline of each connection's current phase. Pure bookkeeping: the listener (runtime/http.ts)
// owns the sockets and closes what `sweep` hands back.
//
//   accept ──► headers ──► body ──► handler ──► response ──► headers (keep-alive) …
//   deadline:  header      body     none        response     header
//
// A connection that has not delivered a complete request head within `headerTimeoutMs` of being
// accepted (or of its previous response ending), or whose declared body has not fully arrived within
// `bodyTimeoutMs` of its head, is closed. While the application handles a request there is no
// deadline: a Magic Link call legitimately waits minutes for a person. A finished handler's answer
// must be written within `responseTimeoutMs`, except a stream the handler marked as long-lived
// (server-sent events), which carries its own heartbeats.

export type ConnectionPhase = "header" | "body" | "handler" | "response" | "stream";

export type RefusalReason = "overall" | "per_address";

export interface ConnectionLimits {
  /** Open connections on the listener at once; the next one is closed on accept. */
  maxConnections: number;
  /** Open connections from one peer address at once. */
  maxConnectionsPerAddress: number;
  headerTimeoutMs: number;
  bodyTimeoutMs: number;
  responseTimeoutMs: number;
}

interface Entry {
  address: string;
  exempt: boolean;
  phase: ConnectionPhase;
  /** unix ms at which the connection is closed; Infinity while no deadline applies. */
  deadline: number;
}

/** Admission and deadlines of one listener's connections, keyed by an opaque connection ID. */
export class ConnectionGovernor {
  private readonly open = new Map<number, Entry>();
  private readonly perAddress = new Map<string, number>();
  private nextId = 1;

  constructor(private readonly limits: ConnectionLimits) {
    if (!(limits.maxConnections >= 1 && limits.maxConnectionsPerAddress >= 1)) throw new TypeError("connection limits must be at least 1");
  }

  /** Connections currently open. */
  get size(): number {
    return this.open.size;
  }

  /** Open connections from `address`. */
  countFrom(address: string): number {
    return this.perAddress.get(address) ?? 0;
  }

  /**
   * Admits a newly accepted connection from `address`, or says why it must be closed at once. An
   * `exempt` peer (a trusted reverse proxy, which carries many clients on its connections) is not
   * held to the per-address cap, only to the overall one.
   */
  admit(address: string, now: number, { exempt = false } = {}): { id: number } | { refused: RefusalReason } {
    if (this.open.size >= this.limits.maxConnections) return { refused: "overall" };
    const from = this.perAddress.get(address) ?? 0;
    if (!exempt && from >= this.limits.maxConnectionsPerAddress) return { refused: "per_address" };
    const id = this.nextId++;
    this.open.set(id, { address, exempt, phase: "header", deadline: now + this.limits.headerTimeoutMs });
    this.perAddress.set(address, from + 1);
    return { id };
  }

  /** Moves a connection to `phase`, starting that phase's deadline. Unknown IDs are ignored. */
  enter(id: number, phase: ConnectionPhase, now: number): void {
    const entry = this.open.get(id);
    if (!entry) return;
    entry.phase = phase;
    entry.deadline = now + this.timeoutOf(phase);
  }

  /** The phase of an open connection, or undefined once released. */
  phaseOf(id: number): ConnectionPhase | undefined {
    return this.open.get(id)?.phase;
  }

  /** Forgets a closed connection; releasing twice is harmless. */
  release(id: number): void {
    const entry = this.open.get(id);
    if (!entry) return;
    this.open.delete(id);
    const left = (this.perAddress.get(entry.address) ?? 1) - 1;
    if (left <= 0) this.perAddress.delete(entry.address);
    else this.perAddress.set(entry.address, left);
  }

  /** The connections whose deadline has passed, with the phase they were stuck in. They stay counted until released. */
  sweep(now: number): Array<{ id: number; phase: ConnectionPhase; address: string }> {
    const late: Array<{ id: number; phase: ConnectionPhase; address: string }> = [];
    for (const [id, entry] of this.open) if (entry.deadline <= now) late.push({ id, phase: entry.phase, address: entry.address });
    return late;
  }

  private timeoutOf(phase: ConnectionPhase): number {
    switch (phase) {
      case "header":
        return this.limits.headerTimeoutMs;
      case "body":
        return this.limits.bodyTimeoutMs;
      case "response":
        return this.limits.responseTimeoutMs;
      case "handler":
      case "stream":
        return Infinity;
    }
  }
}
