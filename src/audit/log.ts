// Structured logging: one JSON object per line on stdout (journald-friendly). Never pass secrets in.

export type Level = "debug" | "info" | "warn" | "error";

const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
let threshold: number = ORDER.info;
/**
 * Lines are gathered and written once per event-loop turn: under load one write(2) carries many
 * lines instead of one system call per authentication. Pending lines are flushed on exit, and by
 * flushLog() (the RADIUS server calls it before each batch of replies leaves).
 */
let pending: string[] = [];
let scheduled = false;
const flush = (): void => {
  scheduled = false;
  flushLog();
};

/**
 * Writes the lines gathered so far now. The RADIUS server calls it before a batch of replies leaves,
 * so that no reply is ever ahead of its own audit line (a crash in between loses no line of an
 * answered request, and whoever reads the log sees a decision no later than the NAS does).
 */
export function flushLog(): void {
  if (pending.length === 0) return;
  if (chunkBytes === 0) {
    const text = pending.join("\n") + "\n";
    pending = [];
    process.stdout.write(text);
    return;
  }
  // Several processes share this stdout (RADIUS workers): each write holds whole lines and at most
  // PIPE_BUF octets where it can, so that a pipe never interleaves two processes' lines.
  const lines = pending;
  pending = [];
  let chunk = "";
  for (const line of lines) {
    if (chunk !== "" && chunk.length + line.length + 1 > chunkBytes) {
      process.stdout.write(chunk);
      chunk = "";
    }
    chunk += line + "\n";
  }
  if (chunk !== "") process.stdout.write(chunk);
}
/** 0: one write per flush; otherwise the size bound of each write (see flushLog). */
let chunkBytes = 0;
/** PIPE_BUF on Linux: a pipe write of at most this many octets is atomic. Lines are counted in UTF-16 units, so non-ASCII text may exceed it. */
const PIPE_BUF = 4096;

/**
 * Marks every line of this process with `"worker":N` (first field) and bounds each write to whole
 * lines of at most PIPE_BUF octets, for a RADIUS worker that shares its supervisor's stdout.
 */
export function setLogWorker(worker: number): void {
  chunkBytes = PIPE_BUF;
  const prefix = `{"worker":${worker},`;
  const inner = sink;
  sink = (line) => inner(line.startsWith("{") ? prefix + line.slice(1) : line);
}
process.on("exit", flushLog);
const batchedStdout = (line: string) => {
  pending.push(line);
  if (pending.length >= 512) return flushLog();
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
};
let sink: (line: string) => void = batchedStdout;

/** Sets the minimum level written. */
export function setLogLevel(level: Level): void {
  threshold = ORDER[level];
}

/** Redirects output (tests, or the CLI which keeps stdout for its own results). */
export function setLogSink(fn: (line: string) => void): void {
  sink = fn;
}

/**
 * Writes one event. `event` is a stable dotted name ("radius.drop", "store.key.created");
 * `fields` must never contain a password, code, seed, shared secret or key.
 */
export function log(level: Level, event: string, fields: Record<string, unknown> = {}): void {
  if (ORDER[level] < threshold) return;
  sink(JSON.stringify({ ts: timestamp(), level, event, ...fields }));
}

/** Whether a line of `level` is written at all (callers that build their own line check this first). */
export function logs(level: Level): boolean {
  return ORDER[level] >= threshold;
}

/**
 * Writes a line that the caller serialised itself; it must be the JSON object that log() would
 * write for the same event ({"ts","level","event",...fields}) and, like log(), hold no secret.
 * The hot authentication events use it to skip the intermediate object (audit/events.ts).
 */
export function logLine(level: Level, line: string): void {
  if (ORDER[level] < threshold) return;
  sink(line);
}

let stampMs = -1;
let stampText = "";
/** The ISO 8601 time of a line, formatted once per millisecond (many lines share one under load). */
export function timestamp(ms = Date.now()): string {
  if (ms !== stampMs) {
    stampMs = ms;
    stampText = new Date(ms).toISOString();
  }
  return stampText;
}

/**
 * Rate-limited logging: at most one line per `key` per `intervalMs`; the next line carries
 * `suppressed`, the number of lines swallowed in between. Used for per-source drop logs so a
 * flood cannot fill the disk.
 */
export class RateLimitedLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  constructor(private readonly intervalMs = 10_000, private readonly maxKeys = 10_000) {}

  log(level: Level, key: string, event: string, fields: Record<string, unknown>, now = Date.now()): void {
    const entry = this.last.get(key);
    if (entry && now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return;
    }
    if (!entry && this.last.size >= this.maxKeys) this.last.clear();
    log(level, event, entry?.suppressed ? { ...fields, suppressed: entry.suppressed } : fields);
    this.last.set(key, { at: now, suppressed: 0 });
  }
}
