/**
 * Typed errors. Every message says what was expected, what was given, and where possible what to do,
 * so a user can act on it without reading our source.
 */

/** Base class of every error this project throws on purpose. `code` is stable; messages may improve. */
export class DiffTransformerError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** A tensor had the wrong shape: names the operand, the shape expected and the shape given. */
export class ShapeError extends DiffTransformerError {
  readonly expected: string;
  readonly actual: readonly number[];
  constructor(what: string, expected: string, actual: readonly number[], hint?: string) {
    super(
      'SHAPE_MISMATCH',
      `${what}: expected shape ${expected}, got ${formatShape(actual)}${hint ? ` (${hint})` : ''}`,
    );
    this.expected = expected;
    this.actual = actual;
  }
}

/** A tensor had the wrong dtype. */
export class DTypeError extends DiffTransformerError {
  constructor(what: string, expected: string, actual: string) {
    super('DTYPE_MISMATCH', `${what}: expected dtype ${expected}, got ${actual}`);
  }
}

/** A value (an attribute, an argument) is out of its allowed range. */
export class ArgumentError extends DiffTransformerError {
  constructor(what: string, expected: string, actual: unknown) {
    super('INVALID_ARGUMENT', `${what}: expected ${expected}, got ${describeValue(actual)}`);
  }
}

/** A tensor was used after `dispose()` (or after the scope that owned it ended). */
export class DisposedTensorError extends DiffTransformerError {
  constructor(description: string) {
    super(
      'TENSOR_DISPOSED',
      `${description} was used after it was disposed; keep it with keep(t) or return it from tidy() to use it later`,
    );
  }
}

/** Inputs of one kernel live on different backends; moving data between backends is explicit. */
export class BackendMismatchError extends DiffTransformerError {
  constructor(kernel: string, expected: string, actual: string) {
    super(
      'BACKEND_MISMATCH',
      `kernel '${kernel}': every input must live on backend '${expected}', but one lives on '${actual}'; ` +
        `move it explicitly with await tensor.to('${expected}')`,
    );
  }
}

/** A backend name that nobody registered. */
export class UnknownBackendError extends DiffTransformerError {
  constructor(name: string, registered: readonly string[]) {
    super(
      'UNKNOWN_BACKEND',
      `unknown backend '${name}'; registered backends: ${registered.length ? registered.join(', ') : '(none)'}` +
        `; install and import a backend package such as @diff-transformer/backend-cpu`,
    );
  }
}

/** A registered backend failed to initialise (no device, no driver, missing binary, ...). */
export class BackendUnavailableError extends DiffTransformerError {
  readonly backend: string;
  readonly reason: string;
  constructor(backend: string, reason: string, cause?: unknown) {
    super('BACKEND_UNAVAILABLE', `backend '${backend}' is unavailable: ${reason}`, { cause });
    this.backend = backend;
    this.reason = reason;
  }
}

/** No registered backend initialised; lists every backend's reason. */
export class NoBackendError extends DiffTransformerError {
  readonly reasons: ReadonlyArray<{ backend: string; reason: string }>;
  constructor(reasons: ReadonlyArray<{ backend: string; reason: string }>) {
    super(
      'NO_BACKEND',
      reasons.length === 0
        ? 'no backend is registered; install and import one, e.g. import "@diff-transformer/backend-cpu"'
        : `no backend could be initialised:\n${reasons.map((r) => `  - ${r.backend}: ${r.reason}`).join('\n')}`,
    );
    this.reasons = reasons;
  }
}

/** The backend does not implement a kernel, or not for a dtype. Never silently computed elsewhere. */
export class UnsupportedKernelError extends DiffTransformerError {
  readonly kernel: string;
  readonly backend: string;
  constructor(kernel: string, backend: string, reason: string) {
    super('UNSUPPORTED_KERNEL', `kernel '${kernel}' is not supported by backend '${backend}': ${reason}`);
    this.kernel = kernel;
    this.backend = backend;
  }
}

/** An invalid model configuration; names every offending field. */
export class ConfigError extends DiffTransformerError {
  readonly fields: readonly string[];
  constructor(problems: ReadonlyArray<{ field: string; message: string }>) {
    super('INVALID_CONFIG', `invalid model config:\n${problems.map((p) => `  - ${p.field}: ${p.message}`).join('\n')}`);
    this.fields = problems.map((p) => p.field);
  }
}

/** A device-level failure (out of memory, device lost, driver error) reported by a backend. */
export class DeviceError extends DiffTransformerError {
  readonly backend: string;
  constructor(backend: string, kind: 'out-of-memory' | 'device-lost' | 'internal', message: string, cause?: unknown) {
    super(
      kind === 'out-of-memory' ? 'DEVICE_OUT_OF_MEMORY' : kind === 'device-lost' ? 'DEVICE_LOST' : 'DEVICE_ERROR',
      `backend '${backend}': ${message}`,
      { cause },
    );
    this.backend = backend;
  }
}

/**
 * A tensor was used after `disposeBackend()` released its backend: its storage went with it. The same
 * error on every backend (a DeviceError of kind device-lost, as a lost GPU gives).
 */
export class BackendDisposedError extends DeviceError {
  constructor(backend: string, what: string) {
    super(
      backend,
      'device-lost',
      `${what} was used after disposeBackend('${backend}') released its backend, and its storage with it; ` +
        'make it again (the backend is created afresh on next use), or move it off before disposing (tensor.to)',
    );
  }
}

/**
 * A gradient that cannot be computed: an op without a rule on an input that requires a gradient, an
 * in-place write on the tape, a nested valueAndGrads. Names the op and says what to do instead.
 */
export class GradientError extends DiffTransformerError {
  readonly op: string;
  constructor(op: string, reason: string) {
    super('GRADIENT', `${op}: ${reason}`);
    this.op = op;
  }
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(describeValue).join(', ')}]`;
  return String(value);
}
