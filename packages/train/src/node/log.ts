/**
 * train-log.jsonl: one JSON object a line — the run's start, every step, every evaluation, every save —
 * appended as they happen, so the file can be followed while training runs. A resumed run first drops
 * the lines after its checkpoint's step (steps that will be taken again), so the log of a run that was
 * stopped and resumed reads like the log of one that was not.
 */
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TRAIN_LOG_FILE } from '../checkpoint.js';
import { ioError } from './fs-util.js';

export type LogRecord = { readonly type: string; readonly step?: number } & Record<string, unknown>;

export class TrainLog {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  get path(): string {
    return join(this.dir, TRAIN_LOG_FILE);
  }

  async append(record: LogRecord): Promise<void> {
    try {
      await appendFile(this.path, `${JSON.stringify(record, finiteOrNull)}\n`);
    } catch (error) {
      throw ioError(this.path, 'append to', error);
    }
  }

  /** Every record, skipping a last line cut short by a kill. */
  async read(): Promise<LogRecord[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw ioError(this.path, 'read', error);
    }
    const records: LogRecord[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        records.push(JSON.parse(line) as LogRecord);
      } catch {
        /* a line cut short by a kill */
      }
    }
    return records;
  }

  /** Keeps only what happened up to `step` (the checkpoint a run resumes from). */
  async truncateAfter(step: number): Promise<void> {
    const kept = (await this.read()).filter((r) => r.step === undefined || r.step <= step);
    try {
      await writeFile(this.path, kept.map((r) => `${JSON.stringify(r)}\n`).join(''));
    } catch (error) {
      throw ioError(this.path, 'rewrite', error);
    }
  }
}

// JSON has no NaN or Infinity.
function finiteOrNull(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? null : value;
}
