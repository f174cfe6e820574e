/**
 * Output discipline: stdout carries the result (machine-readable with --json), stderr carries
 * progress and diagnostics, so `difftx … --json > out.json` always yields a clean document.
 */
export function writeJson(value: unknown): void {
  writeOut(`${JSON.stringify(value, jsonReplacer, 2)}\n`);
}

export function writeLine(line = ''): void {
  writeOut(`${line}\n`);
}

/**
 * Standard output cannot take more: its reader went away (EPIPE: `difftx … | head`) or the write
 * failed (ENOSPC: `> /dev/full`, a full disk). Thrown by the next write, so a command stops there.
 */
export class OutputClosedError extends Error {
  override name = 'OutputClosedError';
  readonly code: string | undefined;
  constructor(cause: NodeJS.ErrnoException) {
    const reason =
      cause.code === 'ENOSPC'
        ? 'no space left on device (ENOSPC)'
        : cause.code === 'EPIPE'
          ? 'its reader closed it (EPIPE)'
          : cause.message;
    super(`cannot write to standard output: ${reason}`, { cause });
    this.code = cause.code;
  }
}

let outputError: NodeJS.ErrnoException | null = null;
// Handled here, so a failed write is never an unhandled 'error' event with a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  outputError ??= error;
});

/** Writes to stdout; throws OutputClosedError once stdout has failed. */
export function writeOut(text: string): void {
  if (outputError) throw new OutputClosedError(outputError);
  process.stdout.write(text);
  // A pipe or file write fails synchronously: the stream is errored before write() returns, while
  // its 'error' event waits for a turn of the event loop that a busy generation loop may not give.
  const error = outputError ?? (process.stdout.errored as NodeJS.ErrnoException | null);
  if (error) throw new OutputClosedError(error);
}

export function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}

// JSON has no NaN/Infinity: an unmeasured or overflowing number is written as null.
function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? null : value;
}

/** Left-aligned plain-text table. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
