// Token imports of the admin web UI as jobs of this process: the upload starts one and answers at
// once with the job's page, which shows "N of M imported" while it runs and the result after.
// One running job per account; finished jobs are kept for `keepMs` (their page can be reloaded),
// and at most `max` jobs are held. A job lives in the process that took the upload (the admin
// listener is served by the supervisor process only).

import type { TokenImportProgress, TokensImported } from "../../admin/tokens.ts";

export interface ImportJob {
  id: string;
  account: string;
  state: "running" | "done" | "failed";
  phase: "reading" | "writing";
  done: number;
  total: number;
  result?: TokensImported;
  /** Why it failed, safe to show (never the file's content). */
  error?: string;
  startedAt: number;
  finishedAt?: number;
}

export class ImportJobs {
  private readonly jobs = new Map<string, ImportJob>();

  constructor(
    private readonly now: () => number,
    private readonly keepMs = 15 * 60_000,
    private readonly max = 50,
  ) {}

  /** The account's running job, if any. */
  running(account: string): ImportJob | undefined {
    for (const j of this.jobs.values()) if (j.account === account && j.state === "running") return j;
    return undefined;
  }

  /**
   * Starts `run` as job `id` of `account`. Refused (undefined) while the account has a job running,
   * or when `max` jobs are held and none can be dropped. `failure` turns an error into the text the
   * page shows (undefined: an unexpected error, shown as a generic failure and passed to `onCrash`).
   */
  start(id: string, account: string, run: (progress: TokenImportProgress) => Promise<TokensImported>, failure: (err: unknown) => string | undefined, onCrash: (err: unknown) => void): ImportJob | undefined {
    if (this.running(account)) return undefined;
    this.prune();
    if (this.jobs.size >= this.max) return undefined;
    const job: ImportJob = { id, account, state: "running", phase: "reading", done: 0, total: 0, startedAt: this.now() };
    this.jobs.set(id, job);
    const progress: TokenImportProgress = (phase, done, total) => {
      job.phase = phase;
      job.done = done;
      job.total = total;
    };
    void run(progress).then(
      (result) => {
        job.state = "done";
        job.result = result;
        job.done = result.imported;
        job.total = result.imported;
        job.finishedAt = this.now();
      },
      (err: unknown) => {
        job.state = "failed";
        const text = failure(err);
        if (text === undefined) onCrash(err);
        job.error = text ?? "The import failed; nothing was imported.";
        job.finishedAt = this.now();
      },
    );
    return job;
  }

  /** Job `id` if it is `account`'s (another account's job is not found). */
  get(id: string, account: string): ImportJob | undefined {
    const job = this.jobs.get(id);
    return job && job.account === account ? job : undefined;
  }

  /** Drops finished jobs older than keepMs; when still full, the oldest finished ones. */
  private prune(): void {
    const now = this.now();
    for (const [id, j] of this.jobs) if (j.finishedAt !== undefined && now - j.finishedAt >= this.keepMs) this.jobs.delete(id);
    if (this.jobs.size < this.max) return;
    const finished = [...this.jobs.values()].filter((j) => j.finishedAt !== undefined).sort((a, b) => a.finishedAt! - b.finishedAt!);
    for (const j of finished.slice(0, this.jobs.size - this.max + 1)) this.jobs.delete(j.id);
  }
}
