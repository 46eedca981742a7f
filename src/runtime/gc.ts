// Garbage-collection hints: the only place that asks the runtime for a collection.

/**
 * Asks for a non-blocking (young-generation) garbage collection where the runtime offers one: Bun's
 * Bun.gc(false). Elsewhere (Deno, unless started with --v8-flags=--expose-gc, where V8's gc() is
 * used) it does nothing and collection stays entirely V8's choice.
 */
export function gcHint(): void {
  if (typeof Bun !== "undefined") {
    Bun.gc(false);
    return;
  }
  const gc = (globalThis as { gc?: (options?: { type: "minor"; execution: "async" }) => void }).gc;
  if (typeof gc === "function") gc({ type: "minor", execution: "async" });
}
