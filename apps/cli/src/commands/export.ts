import { EXPORT_FORMATS, type ExportFormat } from '@diff-transformer/train';
import { exportModel, EXPORT_TOLERANCE } from '@diff-transformer/train/node';
import { parseFlags } from '../args.js';
import { resolveBackend } from '../backends.js';
import { UsageError } from '../errors.js';
import { progress, writeJson, writeLine } from '../io.js';
import { MODEL_HELP, MODEL_REQUIRED, modelPath } from '../model-input.js';

export const exportHelp = `difftx export --model DIR --format diffllama --out DIR2 [--backend NAME] [--no-verify]
              [--json]

Writes the model in DIR as a Hugging Face DiffLlamaForCausalLM folder: config.json (model_type
diffllama), model.safetensors in its tensor names and q/k/v row order, and the tokenizer (DIR's
tokenizer.json, or for a byte-level model a tokenizer.json whose ids are the bytes). Before DIR2 is
swapped in, the export is loaded back through the DiffLlama loader and its logits compared with the
model's on the backend (NMSE ≤ ${EXPORT_TOLERANCE}; --no-verify skips it). Configs DiffLlama cannot
hold (the baseline, DIFF V2, an affine subln weight, interleaved rotary, two eps) are refused, naming
each. DIR2 must be new, empty, or a model folder (replaced as a whole).

Then, in Python:  DiffLlamaForCausalLM.from_pretrained("DIR2"); AutoTokenizer.from_pretrained("DIR2")
${MODEL_HELP}`;

export async function exportCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags('export', args, {
    model: { type: 'string' },
    format: { type: 'string' },
    out: { type: 'string' },
    backend: { type: 'string' },
    'no-verify': { type: 'boolean' },
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
