// The shipped systemd unit: its memory bounds and open-file limit agree with what serve needs.

import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { listenerLimits } from "../../../src/cli/serve-http.ts";
import { runtimeAccepts } from "../../../src/cli/workers.ts";
import { testConfig } from "../http/helpers.ts";

const unit = readFileSync(join(import.meta.dirname, "../../../appliance/portcullis.service"), "utf8");
const directive = (name: string) => new RegExp(`^${name}=(.+)$`, "m").exec(unit)?.[1];
const bytes = (v: string | undefined) => {
  const m = /^(\d+)([KMG])$/.exec(v ?? "");
  if (!m) throw new Error(`not a size: ${v}`);
  return Number(m[1]) * 1024 ** { K: 1, M: 2, G: 3 }[m[2] as "K" | "M" | "G"];
};

describe("appliance/portcullis.service", () => {
  test("bounds memory: MemoryHigh below MemoryMax, both above 10,000 waiting Magic Link calls (about 300 MB)", () => {
    const high = bytes(directive("MemoryHigh"));
    const max = bytes(directive("MemoryMax"));
    expect(high).toBeLessThan(max);
    expect(high).toBeGreaterThan(300 * 1024 ** 2);
  });

  test("the JSC warm-up thread is off for serve, as serve turns it off for its RADIUS workers; this Bun accepts every BUN_JSC_ option of the unit", () => {
    expect(unit).toMatch(/^Environment=BUN_JSC_useWarmUpMarkedBlocks=false$/m);
    // Bun refuses to start with a BUN_JSC_ option it does not know: a Bun upgrade that drops one must fail here, not in production.
    const options = Object.fromEntries([...unit.matchAll(/^Environment=(BUN_JSC_\w+)=(\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
    if (typeof Bun !== "undefined") expect(runtimeAccepts([process.execPath, "-e", "0"], options)).toBe(true);
  });

  test("LimitNOFILE holds both listeners at their default caps, so serve does not lower them", () => {
    const limit = Number(directive("LimitNOFILE"));
    expect(listenerLimits(testConfig("/nonexistent-portcullis-test"), limit).lowered).toBeUndefined();
  });
});
