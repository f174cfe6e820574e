/**
 * Typed errors of checkpoint reading and writing. Each names the file (and, where one is involved,
 * the tensor) so a user can find the broken piece without a hex editor.
 */
import { DiffTransformerError } from '../errors.js';

/** Base class of every checkpoint problem: `file` is the file at fault, `tensor` the tensor if any. */
export class CheckpointError extends DiffTransformerError {
  readonly file: string;
  readonly tensor: string | null;
  constructor(code: string, file: string, tensor: string | null, message: string, options?: { cause?: unknown }) {
    super(code, `${file}${tensor !== null ? `: tensor '${tensor}'` : ''}: ${message}`, options);
    this.file = file;
    this.tensor = tensor;
  }
}

/**
 * The safetensors header is unusable: its declared length runs past the end of the file (or past the
 * 100 MB the format allows), it is not valid UTF-8 JSON, or an entry is not of the form
 * {"dtype", "shape", "data_offsets"}.
 */
export class SafetensorsHeaderError extends CheckpointError {
  constructor(
    kind: 'length' | 'json' | 'entry' | 'metadata',
    file: string,
    tensor: string | null,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(
      {
        length: 'SAFETENSORS_HEADER_LENGTH',
        json: 'SAFETENSORS_HEADER_JSON',
        entry: 'SAFETENSORS_HEADER_ENTRY',
        metadata: 'SAFETENSORS_METADATA',
      }[kind],
      file,
      tensor,
      message,
      options,
    );
  }
}

/** A tensor's bytes are not where they can be: offsets outside the data, or overlapping another tensor. */
export class TensorOffsetError extends CheckpointError {
  constructor(kind: 'range' | 'overlap', file: string, tensor: string, message: string) {
    super(kind === 'range' ? 'SAFETENSORS_OFFSET_RANGE' : 'SAFETENSORS_OFFSET_OVERLAP', file, tensor, message);
  }
}

/** A tensor's byte length does not equal its element count times its dtype's width. */
export class TensorByteSizeError extends CheckpointError {
  readonly expectedBytes: number;
  readonly actualBytes: number;
  constructor(file: string, tensor: string, expectedBytes: number, actualBytes: number, detail: string) {
    super('SAFETENSORS_BYTE_SIZE', file, tensor, `holds ${actualBytes} bytes, but ${detail} needs ${expectedBytes}`);
    this.expectedBytes = expectedBytes;
    this.actualBytes = actualBytes;
  }
}

/** A dtype this reader does not know (or, when writing, cannot produce). */
export class UnknownDTypeError extends CheckpointError {
  readonly dtype: string;
  constructor(file: string, tensor: string, dtype: string, known: readonly string[]) {
    super(
      'SAFETENSORS_UNKNOWN_DTYPE',
      file,
      tensor,
      `unknown dtype ${JSON.stringify(dtype)}; supported: ${known.join(', ')}`,
    );
    this.dtype = dtype;
  }
}

/**
 * A tensor that must be there is not: the config needs it, or (`why`) a shard index lists it where the
 * shard does not hold it.
 */
export class MissingTensorError extends CheckpointError {
  constructor(file: string, tensor: string, detail = '', why = 'the model config needs it') {
    super('CHECKPOINT_MISSING_TENSOR', file, tensor, `missing: ${why}${detail ? ` (${detail})` : ''}`);
  }
}

/**
 * A tensor that has no place: the config has no parameter of that name, or (`why`) a shard holds it
 * where the shard index does not list it.
 */
export class UnexpectedTensorError extends CheckpointError {
  constructor(file: string, tensor: string, detail = '', why = 'the model config has no parameter of that name') {
    super('CHECKPOINT_UNEXPECTED_TENSOR', file, tensor, `unexpected: ${why}${detail ? ` (${detail})` : ''}`);
  }
}

/** A tensor's shape is not the one the config implies. */
export class TensorShapeMismatchError extends CheckpointError {
  readonly expected: readonly number[];
  readonly actual: readonly number[];
  constructor(file: string, tensor: string, expected: readonly number[], actual: readonly number[], detail = '') {
    super(
      'CHECKPOINT_SHAPE_MISMATCH',
      file,
      tensor,
      `shape [${actual.join(', ')}] does not match the config, ` +
        `which needs [${expected.join(', ')}]${detail ? ` (${detail})` : ''}`,
    );
    this.expected = expected;
    this.actual = actual;
  }
}

/**
 * Model parameters hold NaN or ±Infinity (a corrupt file, or a run that diverged): refused at load,
 * since the model would only produce NaN logits. `tensors` lists every offending tensor.
 */
export class NonFiniteTensorError extends CheckpointError {
  readonly tensors: ReadonlyArray<{ file: string; tensor: string; nan: number; infinite: number }>;
  constructor(tensors: ReadonlyArray<{ file: string; tensor: string; nan: number; infinite: number; size: number }>) {
    const [first, ...rest] = tensors;
    const count = (t: { nan: number; infinite: number }) =>
      [t.nan ? `${t.nan} NaN` : '', t.infinite ? `${t.infinite} ±Infinity` : ''].filter(Boolean).join(' and ');
    super(
      'CHECKPOINT_NON_FINITE',
      first.file,
      first.tensor,
      `holds ${count(first)} among its ${first.size} values` +
        (rest.length
          ? `; ${rest.length} more tensor${rest.length > 1 ? 's' : ''} too: ` +
            `${rest
              .slice(0, 5)
              .map((t) => `'${t.tensor}' (${count(t)})`)
              .join(', ')}${rest.length > 5 ? ', …' : ''}`
          : '') +
        '; the checkpoint is corrupt or its training diverged. ' +
        'Load it anyway with allowNonFinite: true (difftx: --allow-non-finite)',
    );
    this.tensors = tensors.map(({ file, tensor, nan, infinite }) => ({ file, tensor, nan, infinite }));
  }
}

/** A config file (config.json, the shard index, a fixture's metadata) is malformed or inconsistent. */
export class CheckpointConfigError extends CheckpointError {
  readonly field: string | null;
  constructor(file: string, field: string | null, message: string, options?: { cause?: unknown }) {
    super('CHECKPOINT_CONFIG', file, null, `${field !== null ? `${field}: ` : ''}${message}`, options);
    this.field = field;
  }
}

/** A well-formed checkpoint that uses a feature this project does not implement (named in the message). */
export class UnsupportedCheckpointError extends CheckpointError {
  readonly feature: string;
  constructor(file: string, feature: string, message: string) {
    super('CHECKPOINT_UNSUPPORTED', file, null, message);
    this.feature = feature;
  }
}

/** Reading or writing a file failed at the operating-system level (not found, permission, disk full). */
export class CheckpointIOError extends CheckpointError {
  constructor(file: string, message: string, cause?: unknown) {
    super('CHECKPOINT_IO', file, null, message, { cause });
  }
}
