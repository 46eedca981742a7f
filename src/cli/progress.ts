// A one-line progress bar on standard error, drawn only when standard error is a terminal.

export class Progress {
  private last = "";
  private readonly enabled: boolean;
  private readonly write: (text: string) => void;

  constructor({ enabled, write }: { enabled: boolean; write: (text: string) => void }) {
    this.enabled = enabled;
    this.write = write;
  }

  /** Redraws the bar when the whole-percent value or the phase changes. */
  update(phase: string, done: number, total: number): void {
    if (!this.enabled || total <= 0) return;
    const pct = Math.min(100, Math.floor((done / total) * 100));
    const key = `${phase}:${pct}`;
    if (key === this.last) return;
    this.last = key;
    const width = 30;
    const filled = Math.round((pct / 100) * width);
    this.write(`\r${phase.padEnd(10)} [${"#".repeat(filled)}${" ".repeat(width - filled)}] ${String(pct).padStart(3)}% ${done}/${total}`);
  }

  /** Erases the bar. */
  clear(): void {
    if (!this.enabled || this.last === "") return;
    this.last = "";
    this.write("\r\x1b[2K");
  }
}
