// Store health for Status-Server and /readyz: a write probe repeated every `intervalMs`, whose last
// result is what both answer from. A node whose store cannot be written stops answering
// Status-Server and reports not ready at the next probe, and answers again at the first probe that
// succeeds, without a restart. Transitions are logged once each (store.unwritable, store.writable).

import { log as defaultLog, type Level } from "../audit/log.ts";
import type { Store } from "./types.ts";

export interface StoreHealthOptions {
  /** Probe period (ms). */
  intervalMs: number;
  log?: (level: Level, event: string, fields?: Record<string, unknown>) => void;
}

export class StoreHealth {
  private state: boolean | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private probing = false;
  private readonly log: NonNullable<StoreHealthOptions["log"]>;

  constructor(
    private readonly store: Pick<Store, "writable">,
    private readonly options: StoreHealthOptions,
  ) {
    this.log = options.log ?? defaultLog;
  }

  /** The last probe's result: true while the store could be written. */
  get ok(): boolean {
    return this.state === true;
  }

  /** Probes once (awaited) and then every intervalMs until stop(). */
  async start(): Promise<void> {
    await this.probe();
    if (this.timer) return;
    this.timer = setInterval(() => void this.probe(), this.options.intervalMs);
    (this.timer as unknown as { unref?: () => void }).unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One probe; a probe still running (the store's own timeout bounds it) is not overlapped. */
  async probe(): Promise<boolean> {
    if (this.probing) return this.state === true;
    this.probing = true;
    try {
      const ok = await this.store.writable().catch(() => false);
      if (ok !== this.state) {
        if (ok && this.state !== undefined) this.log("info", "store.writable", {});
        else if (!ok) this.log("error", "store.unwritable", { detail: "a write to the store failed or timed out; Status-Server and /readyz stop answering until one succeeds" });
      }
      this.state = ok;
      return ok;
    } finally {
      this.probing = false;
    }
  }
}
