// The known-user rule for delivery: does a phone number belong to a user in the store? Also finds
// that user's e-mail address for the e-mail channel. An index by E.164 is rebuilt when the store's
// generation changes (a CLI or admin change) and at most every `maxAgeMs` otherwise.

import { parseDestination } from "../delivery/phone.ts";
import type { Store, User } from "../store/types.ts";

interface Entry {
  email: string | null;
  /** The user holding the number (the first one listed, when several share it). */
  user: { id: number; username: string };
}

/**
 * Phone numbers of the store's users: `phone` (E.164) and, for directory-linked records, the
 * directory's phone as last seen (read in `region`). Disabled users do not count. LDAP users who
 * never signed in have no record and are not known: searching every directory profile by phone
 * on each call is not cheap (see docs/magiclink.md).
 */
export class KnownNumbers {
  private index: Map<string, Entry> | undefined;
  private builtAt = 0;
  private generation: number | undefined;
  private building: Promise<Map<string, Entry>> | undefined;

  constructor(
    private readonly store: Store,
    private readonly region: string,
    private readonly now: () => number = Date.now,
    private readonly maxAgeMs = 30_000,
  ) {}

  /** True when `e164` belongs to an enabled user. A store failure propagates (the dispatcher then refuses). */
  async isKnown(e164: string): Promise<boolean> {
    return (await this.current()).has(e164);
  }

  /** The enabled user holding `e164` (the Magic Link API's app path), if any. */
  async userFor(e164: string): Promise<{ id: number; username: string } | undefined> {
    return (await this.current()).get(e164)?.user;
  }

  /** The e-mail address of the user holding `e164`, if any. */
  async emailFor(e164: string): Promise<string | undefined> {
    return (await this.current()).get(e164)?.email ?? undefined;
  }

  private async current(): Promise<Map<string, Entry>> {
    const gen = await this.store.generation();
    if (this.index && gen === this.generation && this.now() - this.builtAt < this.maxAgeMs) return this.index;
    this.building ??= this.build(gen).finally(() => (this.building = undefined));
    return this.building;
  }

  private async build(gen: number): Promise<Map<string, Entry>> {
    const index = new Map<string, Entry>();
    const add = (raw: string | null, u: User) => {
      if (!raw) return;
      const d = parseDestination(raw, this.region);
      if (d && !index.has(d.e164)) index.set(d.e164, { email: u.email, user: { id: u.id, username: u.username } });
    };
    for (const u of await this.store.users.list()) {
      if (u.disabled || (u.expiresAt !== null && u.expiresAt <= this.now())) continue;
      add(u.phone, u);
      if (u.phone === null) add(u.directoryPhone, u);
    }
    this.index = index;
    this.generation = gen;
    this.builtAt = this.now();
    return index;
  }
}
