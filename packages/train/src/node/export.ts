/**
 * `difftx export`: a model folder (a checkpoint, native or DiffLlama) to a Hugging Face
 * DiffLlamaForCausalLM folder, written as a whole, and checked before it is swapped in: loaded back
 * through core's DiffLlama loader, its logits must match the model's (NMSE ≤ 1e-12).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DiffTransformer, errorStats, tidy, type Backend } from '@diff-transformer/core';
import { loadModel, readModel, settleFolder, writeFolderAtomic } from '@diff-transformer/core/node';
import { diffLlamaFiles, type ExportFormat } from '../export.js';
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
}

/**
 * Exports the model in `modelDir` to `outDir` (which must not exist, be empty, or hold a model folder
 * whose files are replaced). With `verifyOn`, the check above runs on that backend before the swap.
 */
export async function exportModel(
  modelDir: string,
  outDir: string,
  options: { format?: ExportFormat; verifyOn?: Backend } = {},
): Promise<ExportResult> {
  const format = options.format ?? 'diffllama';
  await settleFolder(modelDir);
  const contents = await readModel(modelDir);
  const tokenizer = await readTokenizerFiles(modelDir);
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
  return {
    format,
    out: outDir,
    files: files.map((f) => f.name),
    nmse,
    tokenizer: tokenizer ? 'copied' : files.some((f) => f.name === 'tokenizer.json') ? 'byte-level' : null,
  };
}

/** The out folder may not exist, may be empty, or may hold a model folder (config.json); nothing else. */
async function checkOutFolder(dir: string): Promise<void> {
  await settleFolder(dir);
  const kind = await kindOf(dir);
  if (kind === null) return;
  if (kind === 'other') throw new ExportError('a folder', [`--out ${dir} is a file`]);
  const entries = await readdir(dir);
  if (entries.length > 0 && !entries.includes('config.json')) {
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
  config: DiffTransformer['config'],
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
