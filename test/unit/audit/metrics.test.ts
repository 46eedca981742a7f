// The metrics registry and its text exposition (format 0.0.4).

import { describe, expect, test } from "bun:test";
import { collectRADIUS, createMetrics, MetricsRegistry, requestSeconds } from "../../../src/audit/metrics.ts";

describe("exposition", () => {
  test("counter, gauge and histogram render with HELP, TYPE, labels and cumulative buckets", () => {
    const r = new MetricsRegistry();
    const c = r.counter("t_requests_total", "Requests.\nSecond line \\ backslash", ["code"]);
    c.inc({ code: "OK" });
    c.inc({ code: "OK" }, 2);
    c.inc({ code: 'say "hi"\n' });
    c.inc({ code: "OK" }, -5); // ignored: counters only grow
    r.gauge("t_inflight", "In flight.").set({}, 7);
    const h = r.histogram("t_seconds", "Latency.", ["result"], [0.1, 1]);
    h.observe({ result: "accept" }, 0.05);
    h.observe({ result: "accept" }, 0.5);
    h.observe({ result: "accept" }, 3);
    h.observe({ result: "accept" }, Number.NaN); // ignored
    expect(r.render()).toBe(
      [
        "# HELP t_requests_total Requests.\\nSecond line \\\\ backslash",
        "# TYPE t_requests_total counter",
        't_requests_total{code="OK"} 3',
        't_requests_total{code="say \\"hi\\"\\n"} 1',
        "# HELP t_inflight In flight.",
        "# TYPE t_inflight gauge",
        "t_inflight 7",
        "# HELP t_seconds Latency.",
        "# TYPE t_seconds histogram",
        't_seconds_bucket{result="accept",le="0.1"} 1',
        't_seconds_bucket{result="accept",le="1"} 2',
        't_seconds_bucket{result="accept",le="+Inf"} 3',
        't_seconds_sum{result="accept"} 3.55',
        't_seconds_count{result="accept"} 3',
        "# HELP portcullis_metrics_series_dropped_total Label sets refused because a metric reached its series limit.",
        "# TYPE portcullis_metrics_series_dropped_total counter",
        "portcullis_metrics_series_dropped_total 0",
        "",
      ].join("\n"),
    );
  });

  test.each([
    ["bad metric name", (r: MetricsRegistry) => r.counter("1bad", "x")],
    ["bad label name", (r: MetricsRegistry) => r.counter("ok_total", "x", ["bad-label"])],
    ["reserved le", (r: MetricsRegistry) => r.histogram("ok_seconds", "x", ["le"])],
    ["same name, other shape", (r: MetricsRegistry) => (r.counter("dup_total", "x", ["a"]), r.counter("dup_total", "x", ["b"]))],
    ["missing label", (r: MetricsRegistry) => r.counter("m_total", "x", ["a"]).inc({})],
    ["extra label", (r: MetricsRegistry) => r.counter("e_total", "x", ["a"]).inc({ a: "1", b: "2" })],
  ])("%s throws TypeError", (_what, fn) => {
    expect(() => fn(new MetricsRegistry())).toThrow(TypeError);
  });

  test("registering the same shape twice returns the same metric", () => {
    const r = new MetricsRegistry();
    expect(r.counter("same_total", "x", ["a"])).toBe(r.counter("same_total", "x", ["a"]));
  });

  test("series beyond the limit are refused and counted", () => {
    const r = new MetricsRegistry(3);
    const c = r.counter("n_total", "x", ["v"]);
    for (let i = 0; i < 10; i++) c.inc({ v: String(i) });
    expect(r.render().match(/^n_total\{/gm)!.length).toBe(3);
    expect(r.render()).toContain("portcullis_metrics_series_dropped_total 7");
  });
});

test("product metrics and the RADIUS collector", () => {
  const m = createMetrics();
  m.magiclinkOutcomes.inc({ code: "TOUCH_ACCEPTED" });
  m.deliveries.inc({ channel: "sms", result: "ok" });
  m.smsMessages.inc({ country: "SE" });
  m.radiusRequestSeconds.observe({ result: "accept" }, 0.002);
  let received = 10;
  collectRADIUS(m, () => ({
    received,
    accepted: 4,
    rejected: 3,
    challenged: 2,
    statusServer: 1,
    duplicates: 0,
    dropped: { bad_message_authenticator: 5, unknown_client: 1 },
    rcvbufDrops: 0,
    dedupeEntries: 9,
  }));
  const first = m.registry.render();
  for (const line of [
    'portcullis_magiclink_outcomes_total{code="TOUCH_ACCEPTED"} 1',
    'portcullis_deliveries_total{channel="sms",result="ok"} 1',
    'portcullis_sms_messages_total{country="SE"} 1',
    'portcullis_radius_request_duration_seconds_count{result="accept"} 1',
    'portcullis_radius_packets_total{outcome="received"} 10',
    'portcullis_radius_packets_total{outcome="accept"} 4',
    'portcullis_radius_dropped_total{reason="bad_message_authenticator"} 5',
    "portcullis_radius_dedupe_entries 9",
  ]) {
    expect(first.split("\n")).toContain(line);
  }
  received = 12;
  expect(m.registry.render()).toContain('portcullis_radius_packets_total{outcome="received"} 12');
});

describe("handles (a series resolved once, for per-request counting)", () => {
  test("a counter or histogram handle counts into the same series as the labelled calls", () => {
    const r = new MetricsRegistry();
    const c = r.counter("t_total", "T.", ["result"]);
    const ok = c.handle({ result: "ok" });
    ok.inc();
    ok.inc(2);
    ok.inc(-1); // ignored, as inc(labels, -1)
    c.inc({ result: "ok" });
    expect(c.get({ result: "ok" })).toBe(4);
    const h = r.histogram("t_seconds", "T.", ["result"], [0.1, 1]);
    const accept = h.handle({ result: "accept" });
    accept.observe(0.05);
    accept.observe(Number.POSITIVE_INFINITY); // ignored
    h.observe({ result: "accept" }, 0.5);
    expect(h.count({ result: "accept" })).toBe(2);
    expect(r.render()).toContain('t_seconds_bucket{result="accept",le="0.1"} 1\nt_seconds_bucket{result="accept",le="1"} 2');
  });

  test("a handle past the series bound counts nothing and each use as a dropped series", () => {
    const r = new MetricsRegistry(1);
    const c = r.counter("t_total", "T.", ["result"]);
    c.inc({ result: "a" });
    const refused = c.handle({ result: "b" });
    refused.inc();
    refused.inc();
    expect(c.get({ result: "b" })).toBe(0);
    expect(r.render()).toContain("portcullis_metrics_series_dropped_total 3"); // the handle's refusal + two uses
  });

  test("requestSeconds observes each result into its own series", () => {
    const m = createMetrics();
    const observe = requestSeconds(m);
    observe("accept", 0.002);
    observe("accept", 0.004);
    observe("drop", 0.5);
    expect(m.radiusRequestSeconds.count({ result: "accept" })).toBe(2);
    expect(m.radiusRequestSeconds.count({ result: "drop" })).toBe(1);
    expect(m.radiusRequestSeconds.count({ result: "reject" })).toBe(0);
  });
});

describe("registries of several processes (RADIUS workers)", () => {
  test("render(others) adds the other registries' series to this one's, label set by label set", () => {
    const supervisor = createMetrics();
    const worker1 = createMetrics();
    const worker2 = createMetrics();
    supervisor.httpRequests.inc({ listener: "admin", status: "2xx" }, 4);
    worker1.radiusRequestSeconds.observe({ result: "accept" }, 0.002);
    worker2.radiusRequestSeconds.observe({ result: "accept" }, 0.5);
    worker2.radiusRequestSeconds.observe({ result: "reject" }, 0.5);
    worker1.uncaughtErrors.inc({ origin: "uncaughtException" });
    worker2.uncaughtErrors.inc({ origin: "uncaughtException" }, 2);
    const text = supervisor.registry.render([worker1.registry.dump(), worker2.registry.dump()]);
    expect(text).toContain('portcullis_http_requests_total{listener="admin",status="2xx"} 4');
    expect(text).toContain('portcullis_uncaught_errors_total{origin="uncaughtException"} 3');
    expect(text).toContain('portcullis_radius_request_duration_seconds_count{result="accept"} 2');
    expect(text).toContain('portcullis_radius_request_duration_seconds_bucket{result="accept",le="0.005"} 1');
    expect(text).toContain('portcullis_radius_request_duration_seconds_bucket{result="accept",le="0.5"} 2');
    expect(text).toContain('portcullis_radius_request_duration_seconds_count{result="reject"} 1');
    // Each family once (one HELP and one TYPE line), and this registry itself is unchanged.
    expect(text.match(/# TYPE portcullis_radius_request_duration_seconds /g)?.length).toBe(1);
    expect(supervisor.radiusRequestSeconds.count({ result: "accept" })).toBe(0);
  });

  test("a metric only the other processes registered (the RADIUS counters) is rendered from their dumps", () => {
    const supervisor = createMetrics();
    const worker = createMetrics();
    collectRADIUS(worker, () => ({ received: 7, accepted: 5, rejected: 1, challenged: 0, statusServer: 1, duplicates: 3, dropped: { malformed: 2 }, rcvbufDrops: 0, dedupeEntries: 6 }));
    const text = supervisor.registry.render([worker.registry.dump(), worker.registry.dump()]);
    expect(text).toContain("# TYPE portcullis_radius_packets_total counter");
    expect(text).toContain('portcullis_radius_packets_total{outcome="duplicate"} 6');
    expect(text).toContain('portcullis_radius_dropped_total{reason="malformed"} 4');
    expect(text).toContain("portcullis_radius_dedupe_entries 12");
    expect(supervisor.registry.has("portcullis_radius_packets_total")).toBe(false);
  });

  test("a dump survives structured cloning (the IPC channel) and a malformed one is ignored", () => {
    const supervisor = createMetrics();
    const worker = createMetrics();
    worker.deliveries.inc({ channel: "sms", result: "ok" });
    const cloned = structuredClone(worker.registry.dump());
    const broken = { metrics: { portcullis_deliveries_total: { kind: "gauge", help: "x", labelNames: ["other"], series: [] } }, seriesDropped: 0 } as never;
    const text = supervisor.registry.render([cloned, broken]);
    expect(text).toContain('portcullis_deliveries_total{channel="sms",result="ok"} 1');
  });
});
