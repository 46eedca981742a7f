// The committed configuration reference must match the schema (regenerate with `bun scripts/gen-config-docs.ts`).
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CONFIG_FIELDS, renderConfigReference } from "../../../src/config/index.ts";

test("docs/configuration.md is up to date (run: bun scripts/gen-config-docs.ts)", () => {
  const committed = readFileSync(join(import.meta.dir, "../../../docs/configuration.md"), "utf8");
  expect(committed).toBe(renderConfigReference());
});

test("every option has a description and an environment variable", () => {
  for (const f of CONFIG_FIELDS) {
    expect(f.description.length).toBeGreaterThan(10);
    expect(f.env).toMatch(/^PORTCULLIS_[A-Z_]+$/);
  }
});
