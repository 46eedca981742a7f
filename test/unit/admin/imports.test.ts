// Import rules of the admin layer and the adapters: the admin operations (src/admin) know neither
// the CLI nor HTTP, the HTTP adapter never imports the CLI adapter, and no module imports itself
// back through another (checked on relative imports: static, re-exports and dynamic import()). The
// Magic Link sessions (src/magiclink) know nothing of HTTP: their routes sit with the other public
// routes in src/http, so the two folders form no cycle.
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const SRC = resolve(import.meta.dir, "../../../src");

/** Every .ts/.tsx file under `folder` (relative to src/), as absolute paths. */
function sources(folder: string): string[] {
  return readdirSync(join(SRC, folder), { recursive: true, encoding: "utf8" })
    .filter((f) => /\.tsx?$/.test(f))
    .map((f) => join(SRC, folder, f));
}

/** The relative module specifiers a file imports, re-exports or loads with import(), resolved to files. */
function imports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const found: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s*"([^"]+)"|(?:^|\n)\s*import\s*"([^"]+)"|\bimport\(\s*"([^"]+)"\s*\)/g)) {
    const spec = (m[1] ?? m[2] ?? m[3])!;
    if (!spec.startsWith(".")) continue;
    const target = resolve(dirname(file), spec);
    if (existsSync(target)) found.push(target);
  }
  return found;
}

const rel = (f: string) => relative(SRC, f);

describe("admin layer and adapters", () => {
  test("src/http/** imports nothing from src/cli/**", () => {
    const offending = sources("http").flatMap((f) => imports(f).filter((t) => rel(t).startsWith("cli/")).map((t) => `${rel(f)} → ${rel(t)}`));
    expect(offending).toEqual([]);
  });

  test("src/admin/** imports neither adapter (src/cli, src/http) nor hono", () => {
    const offending = sources("admin").flatMap((f) => {
      const bad = imports(f).filter((t) => /^(cli|http)\//.test(rel(t))).map((t) => `${rel(f)} → ${rel(t)}`);
      if (/from\s*"hono/.test(readFileSync(f, "utf8"))) bad.push(`${rel(f)} → hono`);
      return bad;
    });
    expect(offending).toEqual([]);
  });

  test("no import cycle runs through src/cli (serve.ts ⇄ serve-http.ts was one)", () => {
    const graph = new Map<string, string[]>();
    for (const f of sources(".")) graph.set(f, imports(f));
    // Depth-first search from each cli module for a path back to itself.
    const cycles: string[] = [];
    for (const start of sources("cli")) {
      const seen = new Set<string>();
      const stack: Array<{ node: string; path: string[] }> = [{ node: start, path: [start] }];
      while (stack.length > 0 && cycles.length < 5) {
        const { node, path } = stack.pop()!;
        for (const next of graph.get(node) ?? []) {
          if (next === start) cycles.push([...path, next].map(rel).join(" → "));
          else if (!seen.has(next)) {
            seen.add(next);
            stack.push({ node: next, path: [...path, next] });
          }
        }
      }
    }
    expect(cycles).toEqual([]);
  });

  test("src/magiclink/** imports nothing from src/http/** (its routes live in src/http/magiclink.tsx)", () => {
    const offending = sources("magiclink").flatMap((f) => imports(f).filter((t) => rel(t).startsWith("http/")).map((t) => `${rel(f)} → ${rel(t)}`));
    expect(offending).toEqual([]);
  });

  test("no import cycle runs between src/http and src/magiclink", () => {
    const graph = new Map<string, string[]>();
    for (const f of sources(".")) graph.set(f, imports(f));
    const reaches = (from: string[], folder: string) => {
      const seen = new Set<string>();
      const stack = [...from];
      while (stack.length > 0) {
        const node = stack.pop()!;
        if (rel(node).startsWith(folder)) return rel(node);
        for (const next of graph.get(node) ?? []) if (!seen.has(next)) (seen.add(next), stack.push(next));
      }
      return undefined;
    };
    expect(reaches(sources("magiclink"), "http/")).toBeUndefined();
  });

  test("the scanner sees imports (so the checks above are not vacuous)", () => {
    expect(imports(join(SRC, "http/routes.ts")).map(rel)).toContain("http/magiclink.tsx");
    expect(imports(join(SRC, "http/magiclink.tsx")).map(rel)).toContain("magiclink/service.ts");
    expect(imports(join(SRC, "cli/serve.ts")).map(rel)).toContain("cli/serve-http.ts");
  });
});
