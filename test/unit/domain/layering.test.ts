// The import rules of DESIGN.md's layout: domain/ is a leaf that imports nothing of ours, and the
// folders below policy (store/, directory/, config/) take the shared vocabulary from domain/,
// never from auth/ (storage importing policy is the upward import STYLE.md warns against).
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const SRC = resolve(import.meta.dirname, "../../../src");

/** Every .ts/.tsx file under `folder` (relative to src/). */
function sources(folder: string): string[] {
  return readdirSync(join(SRC, folder), { recursive: true, encoding: "utf8" })
    .filter((f) => /\.tsx?$/.test(f))
    .map((f) => join(SRC, folder, f));
}

/** The module specifiers a file imports or re-exports, static and dynamic. */
function specifiers(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const found: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s*"([^"]+)"|(?:^|\n)\s*import\s*"([^"]+)"|\bimport\(\s*"([^"]+)"\s*\)/g)) {
    found.push((m[1] ?? m[2] ?? m[3])!);
  }
  return found;
}

/** The folder of src/ a relative specifier lands in ("auth", "domain", …); undefined for a package. */
function targetFolder(file: string, specifier: string): string | undefined {
  if (!specifier.startsWith(".")) return undefined;
  return relative(SRC, resolve(dirname(file), specifier)).split("/")[0];
}

describe("layering", () => {
  test("src/domain imports nothing of ours: only node: built-ins", () => {
    const files = sources("domain");
    expect(files.length).toBeGreaterThan(0);
    const offending = files.flatMap((f) => specifiers(f).filter((s) => !s.startsWith("node:")).map((s) => `${relative(SRC, f)} → ${s}`));
    expect(offending).toEqual([]);
  });

  test.each(["store", "directory", "config"])("src/%s does not import auth/", (folder) => {
    const offending = sources(folder).flatMap((f) => specifiers(f).filter((s) => targetFolder(f, s) === "auth").map((s) => `${relative(SRC, f)} → ${s}`));
    expect(offending).toEqual([]);
  });

  test("the import scanner sees relative imports (so the checks above are not vacuous)", () => {
    expect(specifiers(join(SRC, "store/types.ts")).some((s) => targetFolder(join(SRC, "store/types.ts"), s) === "domain")).toBe(true);
  });
});
