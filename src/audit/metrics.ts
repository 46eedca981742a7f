// Prometheus metrics: a small registry of counters, gauges and histograms with labels, rendered in
// the text exposition format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// Label values come from a closed set chosen by the code (outcome names, channel names, ISO country
// codes), never from request input verbatim: each distinct label set is a time series kept forever.
// A metric refuses new label sets beyond `maxSeries` (counted in portcullis_metrics_series_dropped_total).

export type Labels = Record<string, string>;

type Kind = "counter" | "gauge" | "histogram";

/** Default latency buckets in seconds: from 1 ms to 10 s. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function escapeHelp(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function escapeValue(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function formatNumber(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return String(n);
}

function renderLabels(names: readonly string[], values: readonly string[], extra?: [string, string]): string {
  const parts = names.map((n, i) => `${n}="${escapeValue(values[i]!)}"`);
  if (extra) parts.push(`${extra[0]}="${escapeValue(extra[1])}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

abstract class Metric {
  protected readonly series = new Map<string, { values: string[]; state: unknown }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    readonly kind: Kind,
    private readonly registry: MetricsRegistry,
  ) {}

  /** The label values in declared order. Throws TypeError when a label is missing or unknown (a programming error). */
  protected key(labels: Labels): { key: string; values: string[] } {
    const key = this.seriesKey(labels);
    return { key, values: this.labelNames.map((n) => labels[n]!) };
  }

  /**
   * The series key: the label values in declared order, joined by NUL. A plain loop without
   * allocations but the key itself: this runs several times per RADIUS request (counters, the
   * latency histogram).
   */
  private seriesKey(labels: Labels): string {
    const names = this.labelNames;
    let key = "";
    for (let i = 0; i < names.length; i++) {
      const v = labels[names[i]!];
      if (v === undefined) throw new TypeError(`metric ${this.name}: label ${names[i]} missing`);
      key = i === 0 ? v : `${key}\u0000${v}`;
    }
    let given = 0;
    for (const _ in labels) given++;
    if (given !== names.length) throw new TypeError(`metric ${this.name}: unexpected label in ${Object.keys(labels).join(",")}`);
    return key;
  }

  /** The state of a label set, created by `init` on first use; undefined past the registry's series bound. */
  protected slot<S>(labels: Labels, init: (metric: this) => S): S | undefined {
    const key = this.seriesKey(labels);
    let entry = this.series.get(key);
    if (!entry) {
      if (this.series.size >= this.registry.maxSeries) {
        this.registry.seriesDropped++;
        return undefined;
      }
      entry = { values: this.labelNames.map((n) => labels[n]!), state: init(this) };
      this.series.set(key, entry);
    }
    return entry.state as S;
  }

  /** Counts one use of a handle (Counter.handle, Histogram.handle) whose series was refused, as slot() counts a refusal. */
  protected refused(): void {
    this.registry.seriesDropped++;
  }

  /** Lines for this metric, without HELP/TYPE. */
  abstract samples(): string[];

  render(): string {
    return [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.kind}`, ...this.samples()].join("\n");
  }

  /** Every series as plain data (label values in declared order, and a copy of the state). */
  dump(): MetricDump {
    return { kind: this.kind, help: this.help, labelNames: [...this.labelNames], ...(this instanceof Histogram ? { buckets: [...this.buckets] } : {}), series: [...this.series.values()].map((e) => ({ values: [...e.values], state: structuredClone(e.state) as SeriesState })) };
  }

  /**
   * This metric with the series of `others` (the same metric in other processes) added in: values,
   * bucket counts, sums and counts are summed per label set. A dump of another shape is ignored.
   */
  renderWith(others: readonly MetricDump[]): string {
    const shaped = others.filter((d) => d.kind === this.kind && d.labelNames.join() === this.labelNames.join());
    if (shaped.length === 0) return this.render();
    const merged = this.cloneEmpty();
    for (const dump of [this.dump(), ...shaped]) merged.addDump(dump);
    return merged.render();
  }

  /** A metric of the same name and shape with no series, outside any registry's bound. */
  protected abstract cloneEmpty(): Metric;

  private addDump(dump: MetricDump): void {
    for (const { values, state } of dump.series) {
      if (!Array.isArray(values) || values.length !== this.labelNames.length) continue;
      const key = values.join("\u0000");
      const entry = this.series.get(key);
      if (!entry) {
        this.series.set(key, { values: [...values], state: structuredClone(state) });
        continue;
      }
      addState(entry.state as SeriesState, state);
    }
  }
}

/** The state of one series: a counter's or gauge's value, or a histogram's buckets. */
export type SeriesState = { v: number } | HistogramState;

/** One metric's series as plain data, for another process to add to its own (RADIUS workers → supervisor). */
export interface MetricDump {
  kind: Kind;
  help: string;
  labelNames: string[];
  /** A histogram's upper bounds. */
  buckets?: number[];
  series: { values: string[]; state: SeriesState }[];
}

/** A whole registry as plain data (structured-clone safe): metric name → its series. */
export interface RegistryDump {
  metrics: Record<string, MetricDump>;
  seriesDropped: number;
}

function addState(into: SeriesState, from: SeriesState): void {
  if ("v" in into && "v" in from) {
    into.v += Number(from.v) || 0;
    return;
  }
  if ("counts" in into && "counts" in from && into.counts.length === from.counts.length) {
    for (let i = 0; i < into.counts.length; i++) into.counts[i]! += Number(from.counts[i]) || 0;
    into.sum += Number(from.sum) || 0;
    into.count += Number(from.count) || 0;
  }
}

/** A monotonically increasing count. */
export class Counter extends Metric {
  /** Adds `by` (default 1, must be ≥ 0; a negative value is ignored). */
  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) return;
    const s = this.slot(labels, newValue);
    if (s) s.v += by;
  }
  /**
   * Sets the total to a value counted elsewhere (the RADIUS server's own counters, copied in a
   * collect hook). The source must itself only grow.
   */
  setTotal(labels: Labels, value: number): void {
    const s = this.slot(labels, newValue);
    if (s) s.v = value;
  }
  /** A pre-resolved series: `inc(by)` is inc(labels, by) without the per-call label lookup. */
  handle(labels: Labels = {}): CounterHandle {
    const s = this.slot(labels, newValue);
    if (!s) return { inc: () => this.refused() };
    return {
      inc(by = 1) {
        if (by >= 0) s.v += by;
      },
    };
  }
  /** Current value (0 when never incremented); for tests and snapshots. */
  get(labels: Labels = {}): number {
    return (this.series.get(this.key(labels).key)?.state as { v: number } | undefined)?.v ?? 0;
  }
  samples(): string[] {
    return [...this.series.values()].map((e) => `${this.name}${renderLabels(this.labelNames, e.values)} ${formatNumber((e.state as { v: number }).v)}`);
  }
  protected cloneEmpty(): Counter {
    return new Counter(this.name, this.help, this.labelNames, "counter", new MetricsRegistry(Infinity));
  }
}

/** A value that goes up and down. */
export class Gauge extends Metric {
  set(labels: Labels, value: number): void {
    const s = this.slot(labels, newValue);
    if (s) s.v = value;
  }
  get(labels: Labels = {}): number {
    return (this.series.get(this.key(labels).key)?.state as { v: number } | undefined)?.v ?? 0;
  }
  samples(): string[] {
    return [...this.series.values()].map((e) => `${this.name}${renderLabels(this.labelNames, e.values)} ${formatNumber((e.state as { v: number }).v)}`);
  }
  protected cloneEmpty(): Gauge {
    return new Gauge(this.name, this.help, this.labelNames, "gauge", new MetricsRegistry(Infinity));
  }
}

interface HistogramState {
  counts: number[];
  sum: number;
  count: number;
}

/** A counter series resolved once (Counter.handle). */
export interface CounterHandle {
  inc(by?: number): void;
}

/** A histogram series resolved once (Histogram.handle). */
export interface HistogramHandle {
  observe(value: number): void;
}

/** Adds one observation to cumulative buckets: every bucket whose upper bound is at least the value. */
function record(buckets: readonly number[], s: HistogramState, value: number): void {
  for (let i = 0; i < buckets.length; i++) if (value <= buckets[i]!) s.counts[i]!++;
  s.sum += value;
  s.count++;
}

const newValue = (): { v: number } => ({ v: 0 });
const newHistogramState = (h: Histogram): HistogramState => ({ counts: h.buckets.map(() => 0), sum: 0, count: 0 });

/** Observations in cumulative buckets (le), with _sum and _count. */
export class Histogram extends Metric {
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    registry: MetricsRegistry,
    readonly buckets: readonly number[],
  ) {
    super(name, help, labelNames, "histogram", registry);
  }
  observe(labels: Labels, value: number): void {
    if (!Number.isFinite(value)) return;
    const s = this.slot(labels, newHistogramState);
    if (s) record(this.buckets, s, value);
  }
  /** A pre-resolved series: `observe(value)` is observe(labels, value) without the per-call label lookup. */
  handle(labels: Labels = {}): HistogramHandle {
    const s = this.slot(labels, newHistogramState);
    if (!s) return { observe: () => this.refused() };
    const buckets = this.buckets;
    return {
      observe(value) {
        if (Number.isFinite(value)) record(buckets, s, value);
      },
    };
  }
  /** Observation count for a label set; for tests. */
  count(labels: Labels = {}): number {
    return (this.series.get(this.key(labels).key)?.state as HistogramState | undefined)?.count ?? 0;
  }
  samples(): string[] {
    const out: string[] = [];
    for (const e of this.series.values()) {
      const s = e.state as HistogramState;
      this.buckets.forEach((b, i) => out.push(`${this.name}_bucket${renderLabels(this.labelNames, e.values, ["le", formatNumber(b)])} ${s.counts[i]}`));
      out.push(`${this.name}_bucket${renderLabels(this.labelNames, e.values, ["le", "+Inf"])} ${s.count}`);
      out.push(`${this.name}_sum${renderLabels(this.labelNames, e.values)} ${formatNumber(s.sum)}`);
      out.push(`${this.name}_count${renderLabels(this.labelNames, e.values)} ${s.count}`);
    }
    return out;
  }
  protected cloneEmpty(): Histogram {
    return new Histogram(this.name, this.help, this.labelNames, new MetricsRegistry(Infinity), this.buckets);
  }
}

/** The content type of the exposition format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/**
 * Holds metrics by name and renders them. `collect` hooks run before each render, to copy values
 * that live elsewhere (the RADIUS server's counters) into gauges or counters.
 */
export class MetricsRegistry {
  private readonly metrics = new Map<string, Metric>();
  private readonly collectors: Array<() => void> = [];
  seriesDropped = 0;

  constructor(readonly maxSeries = 1000) {}

  private register<M extends Metric>(name: string, labelNames: readonly string[], make: () => M): M {
    if (!NAME.test(name)) throw new TypeError(`metric name ${name} is not valid`);
    for (const l of labelNames) if (!LABEL.test(l) || l === "le") throw new TypeError(`metric ${name}: label name ${l} is not valid`);
    const existing = this.metrics.get(name);
    if (existing) {
      if (existing.kind !== make().kind || existing.labelNames.join() !== labelNames.join()) throw new TypeError(`metric ${name} registered twice with different shapes`);
      return existing as M;
    }
    const m = make();
    this.metrics.set(name, m);
    return m;
  }

  /** Registers (or returns the same) counter. Throws TypeError for a bad name or a conflicting shape. */
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.register(name, labelNames, () => new Counter(name, help, labelNames, "counter", this));
  }

  /** Registers (or returns the same) gauge. Throws TypeError like counter(). */
  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.register(name, labelNames, () => new Gauge(name, help, labelNames, "gauge", this));
  }

  /** Registers (or returns the same) histogram. Throws TypeError like counter(). */
  histogram(name: string, help: string, labelNames: readonly string[] = [], buckets: readonly number[] = LATENCY_BUCKETS): Histogram {
    return this.register(name, labelNames, () => new Histogram(name, help, labelNames, this, buckets));
  }

  /** Runs `fn` before every render (it must not throw; a throw is swallowed). */
  onCollect(fn: () => void): void {
    this.collectors.push(fn);
  }

  private collect(): void {
    for (const fn of this.collectors) {
      try {
        fn();
      } catch {
        // a collector must not break the scrape
      }
    }
  }

  /**
   * The whole registry in the text exposition format 0.0.4, ending in a newline. `others` are the
   * dumps of the same registry in other processes (RADIUS workers): their series are added to this
   * registry's, label set by label set (see Metric.renderWith).
   */
  render(others: readonly RegistryDump[] = []): string {
    this.collect();
    const parts = [...this.metrics.values()].map((m) => {
      const theirs: MetricDump[] = [];
      for (const o of others) {
        const d = o.metrics[m.name];
        if (d) theirs.push(d);
      }
      return theirs.length ? m.renderWith(theirs) : m.render();
    });
    // Metrics only the other processes have (the RADIUS counters, when this process runs no RADIUS server).
    const absent = new Map<string, MetricDump[]>();
    for (const o of others) {
      for (const [name, d] of Object.entries(o.metrics)) {
        if (this.metrics.has(name)) continue;
        const list = absent.get(name);
        if (list) list.push(d);
        else absent.set(name, [d]);
      }
    }
    for (const [name, dumps] of absent) {
      const first = dumps[0]!;
      const scratch = new MetricsRegistry(Infinity);
      try {
        const m =
          first.kind === "histogram"
            ? scratch.histogram(name, first.help, first.labelNames, first.buckets ?? LATENCY_BUCKETS)
            : first.kind === "gauge"
              ? scratch.gauge(name, first.help, first.labelNames)
              : scratch.counter(name, first.help, first.labelNames);
        parts.push(m.renderWith(dumps));
      } catch {
        // a malformed dump must not break the scrape
      }
    }
    const dropped = others.reduce((sum, o) => sum + (Number(o.seriesDropped) || 0), this.seriesDropped);
    parts.push(
      `# HELP portcullis_metrics_series_dropped_total Label sets refused because a metric reached its series limit.\n# TYPE portcullis_metrics_series_dropped_total counter\nportcullis_metrics_series_dropped_total ${dropped}`,
    );
    return parts.join("\n") + "\n";
  }

  /** True when a metric of this name is registered. */
  has(name: string): boolean {
    return this.metrics.has(name);
  }

  /** Every metric's series as plain data (collect hooks run first), for render() in another process. */
  dump(): RegistryDump {
    this.collect();
    const metrics: Record<string, MetricDump> = {};
    for (const m of this.metrics.values()) metrics[m.name] = m.dump();
    return { metrics, seriesDropped: this.seriesDropped };
  }
}

/**
 * The product's metrics, registered once in serve and handed to every part that counts something.
 * Other modules increment these; they do not register their own names ad hoc, so that docs/http.md
 * lists every metric.
 */
export interface PortcullisMetrics {
  registry: MetricsRegistry;
  /** Access-Request handling time (receipt to reply), by result: accept, reject, challenge, drop. */
  radiusRequestSeconds: Histogram;
  /** `portcullis_magiclink_outcomes_total{code}`: the code returned by /api/sfwa/auth (TOUCH_ACCEPTED…). */
  magiclinkOutcomes: Counter;
  /** `portcullis_deliveries_total{channel,result}`: result is "ok" or "failed" (or a short reason such as "rate_limited"). */
  deliveries: Counter;
  /** `portcullis_sms_messages_total{country}`: ISO 3166 alpha-2 of each SMS destination sent. */
  smsMessages: Counter;
  /** `portcullis_http_requests_total{listener,status}`: status class "2xx".."5xx". */
  httpRequests: Counter;
  /** `portcullis_http_connections{listener}`: connections open now (set before each scrape). */
  httpConnections: Gauge;
  /** `portcullis_http_connections_closed_total{listener,reason}`: connections the listener closed itself: refused at accept ("overall", "per_address") or past a deadline ("header", "body", "response"). */
  httpConnectionsClosed: Counter;
  /** `portcullis_uncaught_errors_total{origin}`: errors nothing caught (cli/uncaught.ts), by uncaughtException / unhandledRejection. */
  uncaughtErrors: Counter;
  /** `portcullis_approvals_total{kind,outcome}`: approvals ended, by kind (radius, magic-link, password-reset, self-service) and final state; counted once, by the process that committed it. */
  approvals: Counter;
  /** `portcullis_sms_codes_total{result}`: SMS one-time codes issued, not delivered, and checked (accepted, wrong, invalidated, expired, unknown, mismatch). */
  smsCodes: Counter;
  /** `portcullis_approval_hold_seconds{outcome}`: how long a held RADIUS request waited for its approval, by how the wait ended. */
  approvalHoldSeconds: Histogram;
  /**
   * Set in a supervisor of RADIUS workers: the workers' registries, added to this one's on /metrics
   * (each worker answers within a second, else its last dump counts).
   */
  others?: () => Promise<readonly RegistryDump[]>;
}

/** Buckets for approval holds in seconds: a tap takes seconds; NAS holds end near 25-60 s; Magic Link waits up to 300 s. */
export const HOLD_BUCKETS = [1, 2, 5, 10, 15, 20, 25, 30, 45, 60, 90, 120, 300] as const;

/** Creates the registry with every product metric registered. */
export function createMetrics(): PortcullisMetrics {
  const registry = new MetricsRegistry();
  return {
    registry,
    radiusRequestSeconds: registry.histogram("portcullis_radius_request_duration_seconds", "Access-Request handling time from receipt to reply, by result.", ["result"]),
    magiclinkOutcomes: registry.counter("portcullis_magiclink_outcomes_total", "Magic Link API answers, by code.", ["code"]),
    deliveries: registry.counter("portcullis_deliveries_total", "Delivery attempts, by channel and result.", ["channel", "result"]),
    smsMessages: registry.counter("portcullis_sms_messages_total", "SMS messages handed to a gateway, by destination country.", ["country"]),
    httpRequests: registry.counter("portcullis_http_requests_total", "HTTP requests answered, by listener and status class.", ["listener", "status"]),
    httpConnections: registry.gauge("portcullis_http_connections", "HTTP connections open now, by listener.", ["listener"]),
    httpConnectionsClosed: registry.counter(
      "portcullis_http_connections_closed_total",
      "HTTP connections the listener closed itself, by listener and reason: refused at accept (overall, per_address) or past a deadline (header, body, response).",
      ["listener", "reason"],
    ),
    uncaughtErrors: registry.counter("portcullis_uncaught_errors_total", "Errors that nothing caught, by origin (an uncaught exception also ends the process).", ["origin"]),
    approvals: registry.counter("portcullis_approvals_total", "Approvals ended, by kind and final state (approved, rejected, reported, expired, cancelled, failed).", ["kind", "outcome"]),
    smsCodes: registry.counter("portcullis_sms_codes_total", "SMS one-time codes, by result: issued, not_delivered, accepted, wrong, invalidated, expired, unknown, mismatch.", ["result"]),
    approvalHoldSeconds: registry.histogram("portcullis_approval_hold_seconds", "Time a held RADIUS request waited for its approval, by outcome.", ["outcome"], HOLD_BUCKETS),
  };
}

/** The RADIUS server's counters as its snapshot() reports them (kept structural: audit does not import radius). */
export interface RADIUSCounters {
  received: number;
  accepted: number;
  rejected: number;
  challenged: number;
  statusServer: number;
  duplicates: number;
  dropped: Partial<Record<string, number>>;
  rcvbufDrops: number;
  dedupeEntries: number;
}

/**
 * Copies the RADIUS server's counters into the registry before each scrape:
 * `portcullis_radius_packets_total{outcome}` (received, accept, reject, challenge, status_server,
 * duplicate), `portcullis_radius_dropped_total{reason}`, `portcullis_radius_kernel_drops_total` and
 * `portcullis_radius_dedupe_entries`.
 */
export function collectRADIUS(metrics: PortcullisMetrics, snapshot: () => RADIUSCounters): void {
  const { registry } = metrics;
  const packets = registry.counter("portcullis_radius_packets_total", "RADIUS packets by outcome (received counts every datagram).", ["outcome"]);
  const dropped = registry.counter("portcullis_radius_dropped_total", "RADIUS packets silently discarded, by reason.", ["reason"]);
  const kernel = registry.counter("portcullis_radius_kernel_drops_total", "Datagrams the kernel dropped because a socket receive buffer was full.");
  const dedupe = registry.gauge("portcullis_radius_dedupe_entries", "Entries in the retransmission cache.");
  registry.onCollect(() => {
    const s = snapshot();
    packets.setTotal({ outcome: "received" }, s.received);
    packets.setTotal({ outcome: "accept" }, s.accepted);
    packets.setTotal({ outcome: "reject" }, s.rejected);
    packets.setTotal({ outcome: "challenge" }, s.challenged);
    packets.setTotal({ outcome: "status_server" }, s.statusServer);
    packets.setTotal({ outcome: "duplicate" }, s.duplicates);
    for (const [reason, n] of Object.entries(s.dropped)) dropped.setTotal({ reason }, n ?? 0);
    kernel.setTotal({}, s.rcvbufDrops);
    dedupe.set({}, s.dedupeEntries);
  });
}

/**
 * The RADIUS server's `observe` hook: Access-Request handling time into
 * portcullis_radius_request_duration_seconds{result}, through one pre-resolved series per result.
 */
export function requestSeconds(metrics: PortcullisMetrics): (result: "accept" | "reject" | "challenge" | "drop", seconds: number) => void {
  const h = metrics.radiusRequestSeconds;
  const byResult = { accept: h.handle({ result: "accept" }), reject: h.handle({ result: "reject" }), challenge: h.handle({ result: "challenge" }), drop: h.handle({ result: "drop" }) };
  return (result, seconds) => byResult[result].observe(seconds);
}

/** `portcullis_auth_total{channel,result}` and `portcullis_auth_failures_total{reason}` from the audit bus. */
export function auditCounters(metrics: PortcullisMetrics): (event: { type: string; channel?: string; reason?: string }) => void {
  const auth = metrics.registry.counter("portcullis_auth_total", "Authentication decisions from the audit bus, by channel and result.", ["channel", "result"]);
  const failures = metrics.registry.counter("portcullis_auth_failures_total", "Authentication failures by reason.", ["reason"]);
  // Handles resolved on first use, per channel (its three results) and per reason: channels and
  // reasons are closed sets named by the code, and this runs once per authentication.
  type ByResult = Record<"success" | "challenge" | "failure", CounterHandle>;
  const byChannel = new Map<string, ByResult>();
  const channelHandles = (channel: string): ByResult => {
    let h = byChannel.get(channel);
    if (!h) {
      h = { success: auth.handle({ channel, result: "success" }), challenge: auth.handle({ channel, result: "challenge" }), failure: auth.handle({ channel, result: "failure" }) };
      byChannel.set(channel, h);
    }
    return h;
  };
  const failureHandles = new Map<string, CounterHandle>();
  return function countAuditEvent(event) {
    if (event.type === "auth.success") channelHandles(event.channel ?? "").success.inc();
    else if (event.type === "auth.challenge") channelHandles(event.channel ?? "").challenge.inc();
    else if (event.type === "auth.failure") {
      channelHandles(event.channel ?? "").failure.inc();
      const reason = event.reason ?? "";
      let h = failureHandles.get(reason);
      if (!h) failureHandles.set(reason, (h = failures.handle({ reason })));
      h.inc();
    }
  };
}
