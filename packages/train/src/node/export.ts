/**
 * `difftx export`: a model folder (a checkpoint, native or DiffLlama) to another runtime's format,
 * written as a whole:
 *   - diffllama: a Hugging Face DiffLlamaForCausalLM folder, checked before it is swapped in: loaded
 *     back through core's DiffLlama loader, its logits must match the model's (NMSE ≤ 1e-12);
 *   - onnx: model.onnx (+ model.onnx.data past 2 GiB) and genai_config.json for ONNX Runtime, through
 *     @diff-transformer/onnx, whose graph is checked structurally before anything is written (the
 *     logits against ONNX Runtime are checked in CI: this package does not load onnxruntime).
 * Both carry the model's tokenizer files.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DiffTransformer, errorStats, tidy, type Backend, type ModelConfig } from '@diff-transformer/core';
import { loadModel, readModel, settleFolder, writeFolderAtomic } from '@diff-transformer/core/node';
import { onnxExport, type SpecialTokens, type WeightDType } from '@diff-transformer/onnx';
import { diffLlamaFiles, tokenizerFiles, type ExportFormat } from '../export.js';
import type { FolderFile } from '../checkpoint.js';
import { ExportError } from '../errors.js';
import { kindOf } from './fs-util.js';

/** The largest logits NMSE an export may show against its model. */
export const EXPORT_TOLERANCE = 1e-12;

export interface ExportResult {
  readonly format: ExportFormat;
  readonly out: string;
  readonly files: readonly string[];
  /** NMSE of the exported model's logits against the original's (null when not verified). */
  readonly nmse: number | null;
  readonly tokenizer: 'copied' | 'byte-level' | null;
  /** ONNX only: how the weights are stored, and whether they went to model.onnx.data. */
  readonly onnx?: { readonly dtype: WeightDType; readonly externalData: boolean; readonly maxPositions: number };
}

export interface ExportOptions {
  readonly format?: ExportFormat;
  /** DiffLlama: check the export by loading it back on this backend. */
  readonly verifyOn?: Backend;
  /** ONNX: weight storage (default float32). */
  readonly dtype?: WeightDType;
  /** ONNX: the longest context the graph serves (default: the model's maxPositions). */
  readonly maxPositions?: number;
  /** ONNX: weights in model.onnx.data ('auto', the default: past 2 GiB). */
  readonly externalData?: boolean | 'auto';
}

/**
 * Exports the model in `modelDir` to `outDir` (which must not exist, be empty, or hold a model folder
 * whose files are replaced). With `verifyOn`, a DiffLlama export is checked as above before the swap.
 */
export async function exportModel(
  modelDir: string,
  outDir: string,
  options: ExportOptions = {},
): Promise<ExportResult> {
  const format = options.format ?? 'diffllama';
  await settleFolder(modelDir);
  const contents = await readModel(modelDir);
  const tokenizer = await readTokenizerFiles(modelDir);
  const tokenizerKind = (files: FolderFile[]) =>
    tokenizer ? 'copied' : files.some((f) => f.name === 'tokenizer.json') ? 'byte-level' : null;
  if (format === 'onnx') {
    const dtype = options.dtype ?? 'float32';
    const exported = onnxExport(contents.config, contents.parameters, {
      dtype,
      maxPositions: options.maxPositions,
      externalData: options.externalData,
      tokens: await readSpecialTokens(modelDir),
      metadata: { source: contents.layout },
    });
    const extra = tokenizerFiles(contents.config, tokenizer);
    const files = [...exported.files, ...extra];
    await checkOutFolder(outDir);
    await writeFolderAtomic(outDir, files, { replaces: () => true });
    return {
      format,
      out: outDir,
      files: files.map((f) => f.name),
      nmse: null,
      tokenizer: tokenizerKind(extra),
      onnx: { dtype, externalData: exported.externalData, maxPositions: exported.io.maxPositions },
    };
  }
  const files = diffLlamaFiles(contents.config, contents.parameters, { tokenizer });
  await checkOutFolder(outDir);
  let nmse: number | null = null;
  await writeFolderAtomic(outDir, files, {
    replaces: () => true,
    verify: async (staging) => {
      if (!options.verifyOn) return;
      nmse = await compareLogits(contents.config, contents.parameters, staging, options.verifyOn);
      if (!(nmse <= EXPORT_TOLERANCE)) {
        throw new ExportError('DiffLlama', [
          `the exported folder loads back with logits at NMSE ${nmse} from the model's (at most ${EXPORT_TOLERANCE})`,
        ]);
      }
    },
  });
  return { format, out: outDir, files: files.map((f) => f.name), nmse, tokenizer: tokenizerKind(files) };
}

/** bos/eos/pad ids from the folder's config.json (a DiffLlama folder has them; a native one may not). */
async function readSpecialTokens(dir: string): Promise<SpecialTokens> {
  const json = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  const id = (v: unknown) => (Number.isInteger(v) ? (v as number) : undefined);
  const eos =
    Array.isArray(json.eos_token_id) && json.eos_token_id.every(Number.isInteger)
      ? (json.eos_token_id as number[])
      : id(json.eos_token_id);
  return { bos: id(json.bos_token_id), eos, pad: id(json.pad_token_id) };
}

/** The out folder may not exist, may be empty, or may hold a model or ONNX export (config.json, genai_config.json). */
async function checkOutFolder(dir: string): Promise<void> {
  await settleFolder(dir);
  const kind = await kindOf(dir);
  if (kind === null) return;
  if (kind === 'other') throw new ExportError('a folder', [`--out ${dir} is a file`]);
  const entries = await readdir(dir);
  if (entries.length > 0 && !entries.includes('config.json') && !entries.includes('genai_config.json')) {
    throw new ExportError('a folder', [
      `--out ${dir} holds files and is not a model folder; give a new or empty folder (nothing there is replaced)`,
    ]);
  }
}

async function readTokenizerFiles(dir: string): Promise<{ json: string; config?: string } | null> {
  const read = async (name: string) => {
    try {
      return await readFile(join(dir, name), 'utf8');
    } catch {
      return undefined;
    }
  };
  const json = await read('tokenizer.json');
  if (json === undefined) return null;
  const config = await read('tokenizer_config.json');
  return config === undefined ? { json } : { json, config };
}

/** NMSE of the logits of the folder `exported` against the model's own, on a fixed sequence. */
async function compareLogits(
  config: ModelConfig,
  parameters: Parameters<typeof DiffTransformer.fromParameters>[1],
  exported: string,
  backend: Backend,
): Promise<number> {
  const original = DiffTransformer.fromParameters(config, parameters, { backend });
  const loaded = await loadModel(exported, { backend });
  try {
    const length = Math.min(32, config.maxPositions);
    const ids = Array.from({ length }, (_, i) => (i * 7919 + 13) % config.vocabSize);
    const a = tidy(() => original.forward([ids]));
    const b = tidy(() => loaded.forward([ids]));
    try {
      const [x, y] = [(await b.data()) as Float32Array, (await a.data()) as Float32Array];
      return errorStats(x, y).nmse;
    } finally {
      a.dispose();
      b.dispose();
    }
  } finally {
    original.dispose();
    loaded.dispose();
  }
}
