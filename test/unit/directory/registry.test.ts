// Directories: profile lookup, the order a client consults its sources in, and closing every profile.
import { describe, expect, test } from "bun:test";
import { Directories } from "../../../src/directory/registry.ts";
import { FakeDirectory } from "../auth/fake-directory.ts";

describe("Directories", () => {
  const corp = new FakeDirectory("corp");
  const branch = new FakeDirectory("branch");
  const dirs = new Directories([corp, branch]);

  test("get and names keep config order", () => {
    expect(dirs.names()).toEqual(["corp", "branch"]);
    expect(dirs.get("branch")).toBe(branch);
    expect(dirs.get("local")).toBeUndefined();
  });

  test.each<[string, string[] | null, string[]]>([
    ["null: every profile in config order, then local", null, ["corp", "branch", "local"]],
    ["the client's own order", ["local", "branch"], ["local", "branch"]],
    ["unconfigured names are left out", ["gone", "corp"], ["corp"]],
    ["duplicates once", ["corp", "corp", "local"], ["corp", "local"]],
    ["empty list: nothing", [], []],
  ])("order: %s", (_l, input, expected) => {
    expect(dirs.order(input)).toEqual(expected);
  });

  test("no profiles: local only", () => {
    expect(new Directories([]).order(null)).toEqual(["local"]);
  });

  test.each([
    ["a duplicate name", [new FakeDirectory("x"), new FakeDirectory("x")]],
    ["the reserved name local", [new FakeDirectory("local")]],
  ])("%s is a TypeError", (_l, list) => {
    expect(() => new Directories(list)).toThrow(TypeError);
  });

  test("close closes every profile, even when one fails", async () => {
    const a = new FakeDirectory("a");
    const b = new FakeDirectory("b");
    a.close = async () => {
      throw new Error("boom");
    };
    await new Directories([a, b]).close();
    expect(b.calls).toEqual(["close"]);
  });
});
