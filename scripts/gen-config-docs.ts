// Writes docs/configuration.md from the config schema: `bun scripts/gen-config-docs.ts`.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderConfigReference } from "../src/config/reference.ts";

const target = join(import.meta.dir, "..", "docs", "configuration.md");
writeFileSync(target, renderConfigReference());
console.log(`wrote ${target}`);
