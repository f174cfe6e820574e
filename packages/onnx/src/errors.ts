import { DiffTransformerError } from '@diff-transformer/core';

/** A model the ONNX exporter cannot write as asked; names each thing that does not map. */
export class OnnxExportError extends DiffTransformerError {
  /** What does not map, one entry each. */
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super('ONNX_EXPORT', `this model cannot be exported as ONNX: ${problems.join('; ')}`);
    this.problems = problems;
  }
}
