import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readParityFixture, runParityFixture } from '@diff-transformer/conformance';
import { DiffTransformerError, errorStats, generate, tidy, type Backend } from '@diff-transformer/core';
import { fileSource, loadModel, readSafetensorsFile } from '@diff-transformer/core/node';
import { parseFlags, parseNumberFlag } from '../args.js';
import { resolveBackend } from '../backends.js';
import { UsageError } from '../errors.js';
import { progress, table, writeJson, writeLine } from '../io.js';

/** float32 backends against float64 fixtures. */
const DEFAULT_PARITY_TOLERANCE = 1e-10;

export const parityHelp = `difftx parity FILE... [--backend NAME] [--tolerance NMSE] [--json]

Checks the core graph against the reference implementations. Each FILE is either
  - a parity fixture (.safetensors: one official attention module of microsoft/unilm Diff-Transformer,
    its weights, x, y and rotary tables; see fixtures/README.md): the module is rebuilt on the core
    graph with the fixture's own semantics (chosen by its "source" metadata), run on x and compared
    with y; or
  - a Hugging Face DiffLlama oracle folder (model/ and oracle.safetensors, written by
    tools/parity-fixtures/generate.py diffllama): the model folder's logits on the oracle's ids are
    compared with transformers' float64 logits, and its greedy continuation with transformers' ids.
Prints NMSE = Σ(out − ref)²/Σref² and the max abs error per file. Exit 0 only if every file is within
--tolerance (default ${DEFAULT_PARITY_TOLERANCE}, for float32 backends against float64 fixtures) and
every greedy continuation matches token for token; 1 otherwise.`;

interface Row {
  file: string;
  source: string;
  nmse: number | null;
  maxAbsError: number | null;
  pass: boolean;
  greedy?: { expected: number[]; actual: number[]; match: boolean };
  error?: string;
}

export async function parity(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    'parity',
    args,
    {
      backend: { type: 'string' },
      tolerance: { type: 'string' },
      json: { type: 'boolean' },
    },
    { positionals: true },
  );
  if (positionals.length === 0) throw new UsageError('parity: give at least one fixture file or oracle folder');
  const tolerance = parseNumberFlag('tolerance', values.tolerance) ?? DEFAULT_PARITY_TOLERANCE;
  if (!(tolerance >= 0)) throw new UsageError(`--tolerance: expected a number ≥ 0, got ${values.tolerance}`);
  const backend = await resolveBackend(values.backend);
  const rows: Row[] = [];
  for (const path of positionals) {
    try {
      const isDirectory = await stat(path).then(
        (s) => s.isDirectory(),
        () => false,
      );
      rows.push(isDirectory ? await oracle(path, backend, tolerance) : await fixture(path, backend, tolerance));
    } catch (error) {
      if (!(error instanceof DiffTransformerError)) throw error;
      rows.push({ file: path, source: '', nmse: null, maxAbsError: null, pass: false, error: error.message });
    }
    const r = rows[rows.length - 1];
    progress(
      `${r.pass ? 'pass' : 'FAIL'} ${r.file}` +
        `${r.nmse !== null ? ` nmse=${r.nmse.toExponential(2)}` : ''}${r.error ? ` — ${r.error}` : ''}`,
    );
  }
  const summary = { pass: rows.filter((r) => r.pass).length, fail: rows.filter((r) => !r.pass).length };
  if (values.json) {
    writeJson({ backend: backend.name, device: backend.device, tolerance, results: rows, summary });
  } else {
    writeLine(
      table(
        ['file', 'source', 'nmse', 'max abs error', 'status'],
        rows.map((r) => [
          r.file,
          r.source,
          r.nmse === null ? '-' : r.nmse.toExponential(2),
          r.maxAbsError === null ? '-' : r.maxAbsError.toExponential(2),
          r.pass
            ? 'pass'
            : r.error
              ? `FAIL: ${r.error}`
              : r.greedy && !r.greedy.match
                ? 'FAIL (greedy ids differ)'
                : 'FAIL',
        ]),
      ),
    );
    writeLine(`${summary.pass} passed, ${summary.fail} failed (backend ${backend.name}, NMSE tolerance ${tolerance})`);
  }
  return summary.fail > 0 ? 1 : 0;
}

async function fixture(path: string, backend: Backend, tolerance: number): Promise<Row> {
  const f = await readParityFixture(await fileSource(path));
  const r = await runParityFixture(f, { backend });
  return { file: path, source: f.source, nmse: r.nmse, maxAbsError: r.maxAbsError, pass: r.nmse <= tolerance };
}

/** A DiffLlama oracle folder: model/ (a Hugging Face folder) and oracle.safetensors (ids, logits, prompt, greedy). */
async function oracle(dir: string, backend: Backend, tolerance: number): Promise<Row> {
  const file = await readSafetensorsFile(join(dir, 'oracle.safetensors'));
  let ids: number[][];
  let expected: Float64Array;
  let prompt: number[];
  let greedy: number[];
  try {
    const rows = (name: string) => {
      const info = file.tensors.get(name);
      if (!info)
        throw new UsageError(
          `parity: ${file.name} has no tensor '${name}' (an oracle holds ids, logits, prompt, greedy)`,
        );
      return info;
    };
    const idsInfo = rows('ids');
    const flat = Array.from(await file.read('ids'), Number);
    ids = Array.from({ length: idsInfo.shape[0] }, (_, b) =>
      flat.slice(b * idsInfo.shape[1], (b + 1) * idsInfo.shape[1]),
    );
    rows('logits');
    expected = await file.readFloat64('logits');
    rows('prompt');
    prompt = Array.from(await file.read('prompt'), Number);
    rows('greedy');
    greedy = Array.from(await file.read('greedy'), Number);
  } finally {
    await file.close();
  }
  const model = await loadModel(join(dir, 'model'), { backend });
  try {
    const logits = tidy(() => model.forward(ids));
    let actual: Float32Array;
    try {
      actual = await logits.dataFloat();
    } finally {
      logits.dispose();
    }
    if (actual.length !== expected.length)
      throw new UsageError(
        `parity: ${dir}: the oracle's logits hold ${expected.length} values, the model gave ${actual.length}`,
      );
    const { nmse, maxAbsError } = errorStats(actual, expected);
    const produced: number[] = [];
    for await (const id of generate(model, prompt, { maxNewTokens: greedy.length, greedy: true })) produced.push(id);
    const match = produced.length === greedy.length && produced.every((id, i) => id === greedy[i]);
    return {
      file: dir,
      source: 'transformers DiffLlamaForCausalLM',
      nmse,
      maxAbsError,
      pass: nmse <= tolerance && match,
      greedy: { expected: greedy, actual: produced, match },
    };
  } finally {
    model.dispose();
  }
}
