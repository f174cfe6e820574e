/**
 * A one-line progress bar on a terminal (rewritten in place with a carriage return), and nothing when
 * stderr is not a terminal: logs and pipes get whole lines only, from `note`.
 */
export class ProgressLine {
  readonly #enabled: boolean;
  #shown = false;

  constructor(enabled = process.stderr.isTTY === true) {
    this.#enabled = enabled;
  }

  /** Replaces the bar. */
  update(text: string): void {
    if (!this.#enabled) return;
    const width = Math.max(20, (process.stderr.columns ?? 120) - 1);
    process.stderr.write(`\r\x1b[2K${text.length > width ? text.slice(0, width) : text}`);
    this.#shown = true;
  }

  /** A line that stays, printed above the bar. */
  note(line: string): void {
    this.clear();
    process.stderr.write(`${line}\n`);
  }

  clear(): void {
    if (!this.#shown) return;
    process.stderr.write('\r\x1b[2K');
    this.#shown = false;
  }
}

/** [=====>    ] for a fraction in [0, 1]. */
export function bar(fraction: number, width = 24): string {
  const filled = Math.max(0, Math.min(width, Math.round(fraction * width)));
  return `[${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? '>' : ''}${' '.repeat(width - filled)}]`;
}

/** 95 s → "1m35s", 4000 s → "1h06m". */
export function duration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  if (seconds < 60) return `${Math.round(seconds)}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}

/** 1234567 → "1.23M". */
export function count(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n));
}
