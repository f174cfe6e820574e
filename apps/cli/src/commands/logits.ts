import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { tidy } from '@diff-transformer/core';
import { writeSafetensorsFile } from '@diff-transformer/core/node';
import { parseFlags } from '../args.js';
import { resolveBackend } from '../backends.js';
import { UsageError } from '../errors.js';
import { progress, writeLine } from '../io.js';
import {
  ALLOW_NON_FINITE_FLAG,
  checkIdsInVocab,
  loadModelFolder,
  MODEL_HELP,
  modelPath,
  parseIds,
} from '../model-input.js';

export const logitsHelp = `difftx logits --model DIR --ids 1,2,3[;4,5,6] [--backend NAME] --out FILE
             [--allow-non-finite]

Runs the model in DIR (native or Hugging Face DiffLlama folder) on the token ids (sequences of equal
length separated by ';') and writes FILE, a safetensors file with one F32 tensor \`logits\`
[B, T, vocab]. The file is written atomically: on any failure nothing is left at FILE.
A model whose parameters hold NaN or ±Infinity is refused (exit 1) unless --allow-non-finite.
${MODEL_HELP}`;

export async function logits(args: string[]): Promise<number> {
  const { values } = parseFlags('logits', args, {
    model: { type: 'string' },
    ids: { type: 'string' },
    backend: { type: 'string' },
    out: { type: 'string' },
    ...ALLOW_NON_FINITE_FLAG,
  });
  if (values.ids === undefined) throw new UsageError('logits: --ids is required, e.g. --ids 1,2,3;4,5,6');
  if (values.out === undefined) throw new UsageError('logits: --out FILE is required');
  if (
    await stat(values.out).then(
      (s) => s.isDirectory(),
      () => false,
    )
  ) {
    throw new UsageError(
      `logits: --out ${values.out} is a folder; give a file path, e.g. ${join(values.out, 'logits.safetensors')}`,
    );
  }
  const ids = parseIds('ids', values.ids);
  const backend = await resolveBackend(values.backend);
  const dir = await modelPath('logits', values.model);
  const model = await loadModelFolder(dir, backend, { allowNonFinite: values['allow-non-finite'] });
  try {
    checkIdsInVocab('ids', ids, model.config.vocabSize);
    const started = performance.now();
    const result = tidy(() => model.forward(ids));
    let data: Float32Array;
    try {
      data = await result.dataFloat();
    } finally {
      result.dispose();
    }
    const shape = [ids.length, ids[0].length, model.config.vocabSize];
    await writeSafetensorsFile(values.out, [['logits', { shape, data, dtype: 'F32' }]], { format: 'pt' });
    progress(
      `logits [${shape.join(', ')}] on ${backend.name} in ${((performance.now() - started) / 1000).toFixed(3)} s`,
    );
    writeLine(values.out);
    return 0;
  } finally {
    model.dispose();
  }
}
