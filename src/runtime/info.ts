// Which JavaScript runtime this process runs on, for the start-up log.

declare const Deno: { version: { deno: string } } | undefined;

/** "bun 1.4.5", "deno 2.9.6", else "node <version>". */
export function runtimeName(): string {
  if (typeof Bun !== "undefined") return `bun ${Bun.version}`;
  if (typeof Deno !== "undefined") return `deno ${Deno.version.deno}`;
  return `node ${process.versions.node}`;
}
