/**
 * Typed errors of training. Each says what was expected, what came, and what to do; the CLI prints the
 * message as one line. All derive from core's DiffTransformerError, so one `instanceof` catches them.
 */
import { DiffTransformerError } from '@diff-transformer/core';

/** Training data that cannot be used: a missing path, an empty or binary file, too little text. */
export class DataError extends DiffTransformerError {
  /** The file or folder concerned. */
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('TRAINING_DATA', `${path}: ${message}`, options);
    this.path = path;
  }
}

/** A training option out of range, or options that do not fit the model (a context longer than its positions). */
export class TrainingConfigError extends DiffTransformerError {
  readonly option: string;
  constructor(option: string, expected: string, actual: unknown, hint?: string) {
    super(
      'TRAINING_CONFIG',
      `${option}: expected ${expected}, got ${typeof actual === 'string' ? JSON.stringify(actual) : String(actual)}` +
        `${hint ? `; ${hint}` : ''}`,
    );
    this.option = option;
  }
}

/** A checkpoint that cannot be resumed: no trainer state, another data set, a state that does not fit. */
export class ResumeError extends DiffTransformerError {
  constructor(dir: string, message: string, options?: { cause?: unknown }) {
    super('TRAINING_RESUME', `${dir}: ${message}`, options);
  }
}

/** A model that the asked export format cannot represent; names each thing that does not map. */
export class ExportError extends DiffTransformerError {
  /** What does not map, one entry each. */
  readonly problems: readonly string[];
  constructor(format: string, problems: readonly string[]) {
    super('EXPORT_UNSUPPORTED', `this model cannot be exported as ${format}: ${problems.join('; ')}`);
    this.problems = problems;
  }
}

/** The loss or the gradient norm became NaN or infinite: the step was not taken. */
export class DivergedError extends DiffTransformerError {
  readonly step: number;
  constructor(step: number, what: string) {
    super(
      'TRAINING_DIVERGED',
      `step ${step}: the ${what} is not finite, so the step was not taken; ` +
        'lower the learning rate (--lr) or raise the warm-up (--warmup), and resume from the last checkpoint',
    );
    this.step = step;
  }
}
