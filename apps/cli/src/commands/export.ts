import { WEIGHT_DTYPES, type WeightDType } from '@diff-transformer/onnx';
import { EXPORT_FORMATS, type ExportFormat } from '@diff-transformer/train';
import { EXPORT_TOLERANCE, exportModel } from '@diff-transformer/train/node';
import { parseFlags, parseIntegerFlag } from '../args.js';
import { resolveBackend } from '../backends.js';
import { UsageError } from '../errors.js';
import { progress, writeJson, writeLine } from '../io.js';
import { MODEL_HELP, MODEL_REQUIRED, modelPath } from '../model-input.js';

export const exportHelp = `difftx export --model DIR --format diffllama|onnx --out DIR2 [--backend NAME] [--no-verify]
              [--dtype float32|float16] [--max-positions N] [--external-data auto|always|never] [--json]

--format diffllama (the default) writes the model in DIR as a Hugging Face DiffLlamaForCausalLM folder:
config.json (model_type diffllama), model.safetensors in its tensor names and q/k/v row order, and the
tokenizer (DIR's tokenizer.json, or for a byte-level model a tokenizer.json whose ids are the bytes).
Before DIR2 is swapped in, the export is loaded back through the DiffLlama loader and its logits
compared with the model's on the backend (NMSE ≤ ${EXPORT_TOLERANCE}; --no-verify skips it). Configs DiffLlama
cannot hold (the baseline, DIFF V2, an affine subln weight, interleaved rotary, two eps) are refused,
naming each. Then, in Python:  DiffLlamaForCausalLM.from_pretrained("DIR2");
AutoTokenizer.from_pretrained("DIR2")

--format onnx writes model.onnx for ONNX Runtime (any variant: DIFF V1, V2, the baseline, DiffLlama
folders): a decoder graph of standard ops (ai.onnx opset 17) with the KV cache as inputs and outputs
(input_ids, attention_mask, position_ids, past_key_values.N.key/value → logits, present.N.key/value),
genai_config.json for onnxruntime-genai, and the tokenizer. --dtype float16 stores the weight matrices
in half precision (half the files; the graph computes in float32). --max-positions sets the longest
context (the rotary tables' rows; default the model's). Weights past 2 GiB go to model.onnx.data
(--external-data auto), or always / never. The graph is checked structurally before it is written.

DIR2 must be new, empty, or a model folder or ONNX export (replaced as a whole).
${MODEL_HELP}`;

export async function exportCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags('export', args, {
    model: { type: 'string' },
    format: { type: 'string' },
    out: { type: 'string' },
    backend: { type: 'string' },
    'no-verify': { type: 'boolean' },
    dtype: { type: 'string' },
    'max-positions': { type: 'string' },
    'external-data': { type: 'string' },
    json: { type: 'boolean' },
  });
  if (positionals.length) throw new UsageError(`export: unexpected argument ${JSON.stringify(positionals[0])}`);
  if (values.model === undefined) throw new UsageError(`export: ${MODEL_REQUIRED}`);
  if (values.out === undefined) throw new UsageError('export: --out DIR2 is required');
  const format = (values.format ?? 'diffllama') as ExportFormat;
  if (!EXPORT_FORMATS.includes(format)) {
    throw new UsageError(
      `export: --format: expected ${EXPORT_FORMATS.join(', ')}, got ${JSON.stringify(values.format)}`,
    );
  }
  if (format === 'onnx') return exportOnnx(await modelPath('export', values.model), values.out, values);
  for (const flag of ['dtype', 'max-positions', 'external-data'] as const) {
    if (values[flag] !== undefined) throw new UsageError(`export: --${flag} is for --format onnx only`);
  }
  const verifyOn = values['no-verify'] ? undefined : await resolveBackend(values.backend);
  const result = await exportModel(await modelPath('export', values.model), values.out, { format, verifyOn });
  if (values.json) {
    writeJson({ ...result, backend: verifyOn?.name ?? null, tolerance: EXPORT_TOLERANCE });
    return 0;
  }
  writeLine(
    `wrote ${result.out}: DiffLlamaForCausalLM (${result.files.join(', ')})` +
      `${result.tokenizer === 'byte-level' ? '; tokenizer.json maps text to its bytes (ids 0–255)' : ''}`,
  );
  if (result.nmse !== null) {
    progress(
      `loaded back through the DiffLlama loader on ${verifyOn!.name}: ` +
        `logits NMSE ${result.nmse} (≤ ${EXPORT_TOLERANCE})`,
    );
  }
  progress(`in transformers: DiffLlamaForCausalLM.from_pretrained(${JSON.stringify(result.out)})`);
  return 0;
}

const EXTERNAL_DATA = { auto: 'auto', always: true, never: false } as const;

async function exportOnnx(
  model: string,
  out: string,
  values: { dtype?: string; 'max-positions'?: string; 'external-data'?: string; json?: boolean; backend?: string },
): Promise<number> {
  if (values.backend !== undefined) throw new UsageError('export: --backend is for --format diffllama only');
  const dtype = (values.dtype ?? 'float32') as WeightDType;
  if (!WEIGHT_DTYPES.includes(dtype)) {
    throw new UsageError(`export: --dtype: expected ${WEIGHT_DTYPES.join(', ')}, got ${JSON.stringify(values.dtype)}`);
  }
  const externalKey = (values['external-data'] ?? 'auto') as keyof typeof EXTERNAL_DATA;
  if (!Object.hasOwn(EXTERNAL_DATA, externalKey)) {
    throw new UsageError(
      `export: --external-data: expected auto, always, never, got ${JSON.stringify(values['external-data'])}`,
    );
  }
  const maxPositions =
    values['max-positions'] === undefined
      ? undefined
      : parseIntegerFlag('max-positions', values['max-positions'], 0, 1);
  const result = await exportModel(model, out, {
    format: 'onnx',
    dtype,
    maxPositions,
    externalData: EXTERNAL_DATA[externalKey],
  });
  if (values.json) {
    writeJson(result);
    return 0;
  }
  const onnx = result.onnx!;
  writeLine(
    `wrote ${result.out}: ONNX decoder with KV cache, weights ${onnx.dtype}` +
      `${onnx.externalData ? ' in model.onnx.data' : ''}, up to ${onnx.maxPositions} positions (${result.files.join(', ')})`,
  );
  progress(`in ONNX Runtime: InferenceSession.create(${JSON.stringify(`${result.out}/model.onnx`)})`);
  return 0;
}
