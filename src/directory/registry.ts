// The configured user sources by name: LDAP/AD profiles in config order, plus "local" (the store's own users).

import type { Directory } from "./types.ts";

/** The name of the built-in source: users whose record in the store has no directory. */
export const LOCAL_SOURCE = "local";

/** The LDAP/AD profiles of one running appliance, and the order in which a client consults them. */
export class Directories {
  private readonly byName = new Map<string, Directory>();

  /**
   * @throws TypeError for two profiles with the same name or a profile named "local" (config
   *   validation refuses both first; this guards the composition root).
   */
  constructor(private readonly list: Directory[] = []) {
    for (const d of list) {
      if (d.name === LOCAL_SOURCE) throw new TypeError(`ldap profile name "${LOCAL_SOURCE}" is reserved for local users`);
      if (this.byName.has(d.name)) throw new TypeError(`ldap profile "${d.name}" is defined twice`);
      this.byName.set(d.name, d);
    }
  }

  /** The profile of that name, or undefined ("local" is not a Directory). */
  get(name: string): Directory | undefined {
    return this.byName.get(name);
  }

  /** Profile names in config order ("local" not included). */
  names(): string[] {
    return this.list.map((d) => d.name);
  }

  /**
   * The sources a client consults, in order. null (the client names none) → every profile in
   * config order, then "local". A named source that is not configured is left out: config
   * validation warns about it, and a removed profile must not stop the others from answering.
   */
  order(clientDirectories: string[] | null): string[] {
    if (clientDirectories === null) return [...this.names(), LOCAL_SOURCE];
    const out: string[] = [];
    for (const name of clientDirectories) {
      if ((name === LOCAL_SOURCE || this.byName.has(name)) && !out.includes(name)) out.push(name);
    }
    return out;
  }

  /** Closes every profile's connections; one failing close does not keep the others open. */
  async close(): Promise<void> {
    await Promise.allSettled(this.list.map((d) => d.close()));
  }
}
