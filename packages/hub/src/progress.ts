/** What a download reports as it goes, for a progress bar. Byte counts only: never a URL or a header. */

export interface DownloadProgress {
  /** `owner/name`. */
  readonly repo: string;
  /** The repository file this event is about. */
  readonly file: string;
  /**
   * cached: already in the cache (no transfer); waiting: another process is downloading it (the
   * counts follow its partial file); downloading: bytes arriving; done: checked and in the cache.
   */
  readonly status: 'cached' | 'waiting' | 'downloading' | 'done';
  /** Bytes of this file present so far, and its size. */
  readonly loaded: number;
  readonly total: number;
  /** Over every file of the model known so far (shards join once the index is read). */
  readonly modelLoaded: number;
  readonly modelTotal: number;
}

export type ProgressCallback = (progress: DownloadProgress) => void;

/** Sums per-file counts into model totals and reports each change. */
export class ProgressTally {
  readonly #files = new Map<string, { loaded: number; total: number }>();
  readonly #repo: string;
  readonly #callback: ProgressCallback | undefined;

  constructor(repo: string, callback: ProgressCallback | undefined) {
    this.#repo = repo;
    this.#callback = callback;
  }

  /** Counts a file in the totals before its bytes come, so the bar's total is right from the start. */
  expect(file: string, total: number): void {
    if (!this.#files.has(file)) this.#files.set(file, { loaded: 0, total: Math.max(0, total) });
  }

  report(file: string, status: DownloadProgress['status'], loaded: number, total: number): void {
    this.#files.set(file, { loaded, total: Math.max(0, total) });
    if (!this.#callback) return;
    let modelLoaded = 0;
    let modelTotal = 0;
    for (const f of this.#files.values()) {
      modelLoaded += f.loaded;
      modelTotal += f.total;
    }
    this.#callback({ repo: this.#repo, file, status, loaded, total, modelLoaded, modelTotal });
  }
}
