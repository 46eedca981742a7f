// The hand-built auth.success line and the per-millisecond timestamp: byte for byte what log() writes.

import { afterEach, describe, expect, test } from "bun:test";
import { logSink, type AuditEvent } from "../../../src/audit/events.ts";
import { log, setLogLevel, setLogSink, timestamp } from "../../../src/audit/log.ts";

afterEach(() => {
  setLogLevel("info");
  setLogSink(() => {});
});

function capture(fn: () => void): string[] {
  const lines: string[] = [];
  setLogSink((line) => void lines.push(line));
  fn();
  setLogSink(() => {});
  return lines;
}

describe("auth.success line", () => {
  const events: Extract<AuditEvent, { type: "auth.success" }>[] = [
    { type: "auth.success", channel: "radius", client: "vpn", user: "alice", factors: ["otp"] },
    { type: "auth.success", channel: "radius", client: "fw \"edge\"\n", user: "bö\u0000b\\\u2028x", factors: ["password", "otp"] },
    { type: "auth.success", channel: "radius", client: "", user: "u", factors: [] },
    // every printable ASCII character (quote and backslash among them), then DEL and a tab
    { type: "auth.success", channel: "radius", client: "a/b", user: Array.from({ length: 95 }, (_, i) => String.fromCharCode(0x20 + i)).join(""), factors: ["otp"] },
    { type: "auth.success", channel: "radius", client: "del\u007f", user: "tab\there", factors: ["otp"] },
  ];
  test.each(events)("equals the generic serialisation for %o", (event) => {
    const [fast] = capture(() => logSink(event));
    const { type, ...fields } = event;
    const [generic] = capture(() => log("info", type, fields));
    const a = JSON.parse(fast!);
    const b = JSON.parse(generic!);
    // the two lines may straddle a millisecond: compare everything but the time, then the text shape
    expect({ ...a, ts: 0 }).toEqual({ ...b, ts: 0 });
    expect(fast!.replace(/"ts":"[^"]*"/, "")).toBe(generic!.replace(/"ts":"[^"]*"/, ""));
    expect(Object.keys(a)).toEqual(["ts", "level", "event", "channel", "client", "user", "factors"]);
  });

  test("not written below the threshold", () => {
    setLogLevel("warn");
    expect(capture(() => logSink(events[0]!))).toEqual([]);
  });
});

describe("timestamp", () => {
  test("is the ISO 8601 text of that millisecond, also after the millisecond changes", () => {
    for (const ms of [0, 1_700_000_000_123, 1_700_000_000_123, 1_700_000_000_124, 86_399_999]) {
      expect(timestamp(ms)).toBe(new Date(ms).toISOString());
    }
  });
});
