// The newest audit events of this process, kept in memory for the admin web UI's audit log and
// dashboard: a fixed-size ring, subscribed to the audit bus. Lost at restart; the full log is the
// process's standard output.

import type { AuditEvent } from "./events.ts";

export interface RecentEvent {
  /** Increasing per process: a stable key for paging. */
  seq: number;
  /** unix ms when it was emitted. */
  at: number;
  event: AuditEvent;
}

export class RecentEvents {
  private readonly ring: Array<RecentEvent | undefined>;
  private next = 0;

  constructor(
    readonly capacity: number,
    private readonly now: () => number = Date.now,
  ) {
    this.ring = new Array(Math.max(1, capacity));
  }

  /** The bus subscriber. */
  push = (event: AuditEvent): void => {
    this.ring[this.next % this.ring.length] = { seq: this.next, at: this.now(), event };
    this.next++;
  };

  /** Visits every kept event, newest first. */
  scan(visit: (e: RecentEvent) => void): void {
    const n = this.ring.length;
    for (let i = this.next - 1; i >= 0 && i >= this.next - n; i--) {
      const e = this.ring[i % n];
      if (e) visit(e);
    }
  }

  /** Newest first, at most `limit`, those `keep` accepts. */
  list(keep: (e: RecentEvent) => boolean = () => true, limit = 200): RecentEvent[] {
    const out: RecentEvent[] = [];
    const n = this.ring.length;
    for (let i = this.next - 1; i >= 0 && i >= this.next - n && out.length < limit; i--) {
      const e = this.ring[i % n];
      if (e && keep(e)) out.push(e);
    }
    return out;
  }
}
