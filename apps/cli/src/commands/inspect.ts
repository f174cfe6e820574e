import { stat } from 'node:fs/promises';
import { PARITY_SOURCES } from '@diff-transformer/conformance';
import { describeModelFolder, sizeOf, type SafetensorsFile } from '@diff-transformer/core';
import { directorySource, readSafetensorsFile } from '@diff-transformer/core/node';
import { parseFlags } from '../args.js';
import { UsageError } from '../errors.js';
import { table, writeJson, writeLine } from '../io.js';

export const inspectHelp = `difftx inspect FILE_OR_DIR [--json]

Shows what a checkpoint holds without loading it: every tensor (name, dtype, shape, shard), the
parameter count and the detected layout. A folder is validated as a model (native, or Hugging Face
DiffLlama: config, every header, every tensor name and shape); a .safetensors file is described as
a parity fixture, native weights, DiffLlama weights or plain tensors. Exit 1 on any problem found.`;

type Layout = 'native' | 'diffllama' | 'parity-fixture' | 'native-weights' | 'diffllama-weights' | 'tensors';

export async function inspect(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags('inspect', args, { json: { type: 'boolean' } });
  if (positionals.length !== 1) throw new UsageError('inspect: give one FILE_OR_DIR');
  const target = positionals[0];
  const isDirectory = await stat(target).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (isDirectory) {
    const d = await describeModelFolder(directorySource(target));
    const tensors = d.tensors.map((t) => ({ ...t, shape: [...t.shape] }));
    if (values.json) {
      writeJson({
        path: target,
        layout: d.layout,
        config: d.config,
        parameterCount: d.parameterCount,
        files: d.files,
        tensors,
      });
      return 0;
    }
    writeLine(
      `${target}: ${d.layout === 'native' ? 'native diff-transformer folder' : 'Hugging Face DiffLlama folder'}, ` +
        `${d.files.length} safetensors file(s), ${tensors.length} tensors, ${formatCount(d.parameterCount)} parameters`,
    );
    const c = d.config;
    writeLine(
      `config: ${c.attention}, vocab ${c.vocabSize}, hidden ${c.hiddenSize}, layers ${c.numLayers}, ` +
        `heads ${c.numHeads} (kv ${c.numKvHeads}), head dim ${c.headDim}, ffn ${c.intermediateSize}, ` +
        `rope ${c.rope.layout} θ=${c.rope.theta} (${c.rope.precision}), ` +
        `${c.tieWordEmbeddings ? 'tied' : 'untied'} embeddings`,
    );
    writeLine();
    writeLine(
      table(
        ['tensor', 'dtype', 'shape', 'file'],
        tensors.map((t) => [t.name, t.dtype, `[${t.shape.join(', ')}]`, t.file.split('/').pop()!]),
      ),
    );
    return 0;
  }
  const file = await readSafetensorsFile(target);
  try {
    const tensors = [...file.tensors.values()].map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape] }));
    const parameterCount = tensors.reduce((n, t) => n + sizeOf(t.shape), 0);
    const layout = detect(file);
    if (values.json) {
      writeJson({ path: target, layout, metadata: file.metadata, parameterCount, tensors });
      return 0;
    }
    writeLine(`${target}: ${layout}, ${tensors.length} tensors, ${formatCount(parameterCount)} values`);
    const meta = Object.entries(file.metadata);
    if (meta.length) writeLine(`metadata: ${meta.map(([k, v]) => `${k}=${v}`).join(', ')}`);
    writeLine();
    writeLine(
      table(
        ['tensor', 'dtype', 'shape'],
        tensors.map((t) => [t.name, t.dtype, `[${t.shape.join(', ')}]`]),
      ),
    );
    return 0;
  } finally {
    await file.close();
  }
}

function detect(file: SafetensorsFile): Layout {
  const names = [...file.tensors.keys()];
  const source = file.metadata.source;
  if (source !== undefined && names.includes('x') && names.includes('y')) {
    try {
      const path = JSON.parse(source) as string;
      if (PARITY_SOURCES[path.split('/').pop()!]) return 'parity-fixture';
    } catch {
      /* not a fixture */
    }
  }
  if (names.includes('embed_tokens.weight')) return 'native-weights';
  if (names.includes('model.embed_tokens.weight') || names.some((n) => n.startsWith('model.layers.')))
    return 'diffllama-weights';
  return 'tensors';
}

function formatCount(n: number): string {
  return n >= 1e9
    ? `${(n / 1e9).toFixed(2)}B`
    : n >= 1e6
      ? `${(n / 1e6).toFixed(2)}M`
      : n >= 1e3
        ? `${(n / 1e3).toFixed(1)}K`
        : String(n);
}
