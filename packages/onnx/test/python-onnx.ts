/**
 * ONNX's own checker (Python's onnx package; Debian's python3-onnx, which scripts/setup.sh installs)
 * run on files this package wrote. Absent outside CI, the tests that need it are skipped; in CI
 * (CI=true) its absence fails them, so the check cannot silently stop running.
 */
import { spawnSync } from 'node:child_process';

/** The first Python that imports onnx: the one on PATH, or Debian's own (pyenv and venvs hide it). */
export const pythonWithOnnx: string | null =
  ['python3', '/usr/bin/python3'].find(
    (python) => spawnSync(python, ['-c', 'import onnx'], { stdio: 'ignore' }).status === 0,
  ) ?? null;

export const requirePythonOnnx = process.env.CI === 'true';

/** Runs `script` (Python, with `onnx` imported) on `args`; returns its stdout parsed as JSON. */
export function runPython(script: string, args: readonly string[]): unknown {
  if (!pythonWithOnnx) throw new Error('no Python with the onnx package (Debian: apt-get install python3-onnx)');
  const r = spawnSync(pythonWithOnnx, ['-c', `import json, sys, onnx\n${script}`, ...args], { encoding: 'utf8' });
  if (r.status !== 0)
    throw new Error(`python exited ${r.status}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return JSON.parse(r.stdout);
}

/**
 * For each path given: onnx.checker.check_model with full_check (strict shape inference over every
 * node), then what the file holds: opset, IR version, inputs and outputs with their dims, and each
 * initializer's type, dims and the sum of its values (external data loaded). One process for all.
 */
export const CHECK_AND_DESCRIBE = `
from onnx import numpy_helper
def describe(path):
  onnx.checker.check_model(path, full_check=True)
  model = onnx.load(path)
  dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
  return {
    "ir_version": model.ir_version,
    "opsets": {o.domain: o.version for o in model.opset_import},
    "inputs": {v.name: dims(v) for v in model.graph.input},
    "outputs": {v.name: dims(v) for v in model.graph.output},
    "ops": sorted({n.op_type for n in model.graph.node}),
    "initializers": {t.name: [t.data_type, list(t.dims), float(numpy_helper.to_array(t).astype("float64").sum())]
                     for t in model.graph.initializer},
    "external": sum(1 for t in onnx.load(path, load_external_data=False).graph.initializer
                    if t.data_location == onnx.TensorProto.EXTERNAL),
  }
print(json.dumps([describe(path) for path in sys.argv[1:]]))
`;
