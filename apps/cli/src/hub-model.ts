/**
 * `--model hf:owner/name[@revision]`: the model's snapshot from the Hugging Face Hub (or the cache),
 * as the folder the model commands read. The download shows a bar on a terminal (file, bytes, rate,
 * time left) and whole lines elsewhere; neither ever shows the token.
 */
import { type DownloadProgress, isHubModel, snapshotDownload } from '@diff-transformer/hub/node';
import { bar, duration, ProgressLine } from './progress-line.js';

/** The folder a `--model` value names: itself, or for `hf:…` the downloaded snapshot. */
export async function modelFolderPath(value: string): Promise<string> {
  if (!isHubModel(value)) return value;
  const view = new DownloadView(value);
  try {
    const snapshot = await snapshotDownload(value, {
      progress: (p) => view.update(p),
      notice: (message) => view.line.note(`difftx: ${message}`),
    });
    view.finish(snapshot.commit, snapshot.path);
    return snapshot.path;
  } finally {
    view.line.clear();
  }
}

/** 2_780_000_000 → "2.78 GB" (decimal units, as the Hub shows sizes). */
export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0)} ${units[unit]}`;
}

/** The progress bar of one snapshot download. */
export class DownloadView {
  readonly line: ProgressLine;
  readonly #model: string;
  /** Bytes transferred by this run (not found in the cache), and when the first arrived. */
  #transferred = new Map<string, { from: number; now: number }>();
  #started = 0;

  constructor(model: string, line = new ProgressLine()) {
    this.#model = model;
    this.line = line;
  }

  update(p: DownloadProgress): void {
    if (p.status === 'downloading' || p.status === 'done') {
      const seen = this.#transferred.get(p.file);
      this.#transferred.set(p.file, { from: seen?.from ?? p.loaded, now: p.loaded });
      if (this.#started === 0) this.#started = performance.now();
    }
    if (p.status === 'done') {
      const t = this.#transferred.get(p.file)!;
      this.line.note(
        `${this.#model}: ${p.file} ${formatBytes(p.total)} downloaded (${formatBytes(t.now - t.from)} this run)`,
      );
      return;
    }
    if (p.status === 'cached') return;
    const rate = this.rate();
    const left = p.modelTotal - p.modelLoaded;
    const doing = p.status === 'waiting' ? 'another process is downloading' : 'downloading';
    this.line.update(
      `${this.#model} ${doing} ${p.file} ${bar(p.modelTotal > 0 ? p.modelLoaded / p.modelTotal : 0)} ` +
        `${formatBytes(p.modelLoaded)} / ${formatBytes(p.modelTotal)}` +
        (rate > 0 ? ` ${formatBytes(rate)}/s eta ${duration(left / rate)}` : ''),
    );
  }

  /** Bytes per second over this run's transfers. */
  rate(): number {
    const seconds = (performance.now() - this.#started) / 1000;
    let bytes = 0;
    for (const t of this.#transferred.values()) bytes += t.now - t.from;
    return seconds > 0.2 ? bytes / seconds : 0;
  }

  finish(commit: string, path: string): void {
    const bytes = [...this.#transferred.values()].reduce((n, t) => n + t.now - t.from, 0);
    const seconds = (performance.now() - this.#started) / 1000;
    this.line.note(
      `${this.#model}: commit ${commit.slice(0, 12)} in ${path}` +
        (bytes > 0
          ? ` (${formatBytes(bytes)} downloaded in ${seconds.toFixed(1)} s, ${formatBytes(bytes / Math.max(seconds, 1e-3))}/s)`
          : ' (from the cache)'),
    );
  }
}
