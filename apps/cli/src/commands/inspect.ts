import { stat } from 'node:fs/promises';
import { PARITY_SOURCES } from '@diff-transformer/conformance';
import {
  countNonFinite,
  describeModelFolder,
  isFloatSafetensorsDType,
  sizeOf,
  type RopeScaling,
  type SafetensorsFile,
} from '@diff-transformer/core';
import { directorySource, readSafetensorsFile } from '@diff-transformer/core/node';
import { parseFlags } from '../args.js';
import { UsageError } from '../errors.js';
import { isHubModel } from '@diff-transformer/hub/node';
import { modelFolderPath } from '../hub-model.js';
import { progress, table, writeJson, writeLine } from '../io.js';

export const inspectHelp = `difftx inspect FILE_OR_DIR|hf:owner/name[@revision] [--json]

Shows what a checkpoint holds without loading it: every tensor (name, dtype, shape, shard), the
parameter count and the detected layout. A folder is validated as a model (native, or Hugging Face
DiffLlama: config, every header, every tensor name and shape; hf:owner/name is downloaded from the
Hugging Face Hub first, see generate --help); a .safetensors file is described as
a parity fixture, native weights, DiffLlama weights or plain tensors. Every float tensor is read once
to count NaN and ±Infinity values (the \`non-finite\` column; a model folder holding any is refused by
the model commands unless --allow-non-finite). Exit 1 on any problem found, non-finite values included.

With --json, each tensor carries "nonFinite": {"nan", "infinite"} (float tensors) and the document
"nonFiniteTensors": how many tensors hold any.`;

type Layout = 'native' | 'diffllama' | 'parity-fixture' | 'native-weights' | 'diffllama-weights' | 'tensors';

export async function inspect(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags('inspect', args, { json: { type: 'boolean' } }, { positionals: true });
  if (positionals.length !== 1) throw new UsageError('inspect: give one FILE_OR_DIR');
  const target = positionals[0];
  const folder = await modelFolderPath(target);
  const isDirectory =
    isHubModel(target) ||
    (await stat(target).then(
      (s) => s.isDirectory(),
      () => false,
    ));
  if (isDirectory) {
    const d = await describeModelFolder(directorySource(folder), { countNonFinite: true });
    const tensors = d.tensors.map((t) => ({ ...t, shape: [...t.shape] }));
    const nonFiniteTensors = tensors.filter(hasNonFinite).length;
    if (values.json) {
      writeJson({
        path: target,
        layout: d.layout,
        config: d.config,
        parameterCount: d.parameterCount,
        files: d.files,
        nonFiniteTensors,
        tensors,
      });
      return reportNonFinite(tensors);
    }
    writeLine(
      `${target}: ${d.layout === 'native' ? 'native diff-transformer folder' : 'Hugging Face DiffLlama folder'}, ` +
        `${d.files.length} safetensors file(s), ${tensors.length} tensors, ${formatCount(d.parameterCount)} parameters`,
    );
    const c = d.config;
    writeLine(
      `config: ${c.attention}, vocab ${c.vocabSize}, hidden ${c.hiddenSize}, layers ${c.numLayers}, ` +
        `heads ${c.numHeads} (kv ${c.numKvHeads}), head dim ${c.headDim}, ffn ${c.intermediateSize}, ` +
        `rope ${c.rope.layout} θ=${c.rope.theta}${ropeScalingText(c.rope.scaling)} (${c.rope.precision}), ` +
        `${c.tieWordEmbeddings ? 'tied' : 'untied'} embeddings`,
    );
    writeLine();
    writeLine(
      table(
        ['tensor', 'dtype', 'shape', 'file', 'non-finite'],
        tensors.map((t) => [
          t.name,
          t.dtype,
          `[${t.shape.join(', ')}]`,
          t.file.split('/').pop()!,
          formatNonFinite(t.nonFinite),
        ]),
      ),
    );
    return reportNonFinite(tensors);
  }
  const file = await readSafetensorsFile(target);
  try {
    const tensors = [];
    for (const t of file.tensors.values()) {
      // Counted in the file's own precision: a float64 value is not non-finite for being beyond float32.
      const values = isFloatSafetensorsDType(t.dtype)
        ? t.dtype === 'F64'
          ? await file.readFloat64(t.name)
          : await file.readFloat32(t.name)
        : null;
      tensors.push({
        name: t.name,
        dtype: t.dtype,
        shape: [...t.shape],
        ...(values ? { nonFinite: countNonFinite(values) } : {}),
      });
    }
    const parameterCount = tensors.reduce((n, t) => n + sizeOf(t.shape), 0);
    const layout = detect(file);
    const nonFiniteTensors = tensors.filter(hasNonFinite).length;
    if (values.json) {
      writeJson({ path: target, layout, metadata: file.metadata, parameterCount, nonFiniteTensors, tensors });
      return reportNonFinite(tensors);
    }
    writeLine(`${target}: ${layout}, ${tensors.length} tensors, ${formatCount(parameterCount)} values`);
    const meta = Object.entries(file.metadata);
    if (meta.length) writeLine(`metadata: ${meta.map(([k, v]) => `${k}=${v}`).join(', ')}`);
    writeLine();
    writeLine(
      table(
        ['tensor', 'dtype', 'shape', 'non-finite'],
        tensors.map((t) => [t.name, t.dtype, `[${t.shape.join(', ')}]`, formatNonFinite(t.nonFinite)]),
      ),
    );
    return reportNonFinite(tensors);
  } finally {
    await file.close();
  }
}

interface NonFinite {
  nan: number;
  infinite: number;
}

function hasNonFinite(t: { nonFinite?: NonFinite }): boolean {
  return t.nonFinite !== undefined && t.nonFinite.nan + t.nonFinite.infinite > 0;
}

/** '' for an integer tensor, 0 for a clean float one, else the counts. */
function formatNonFinite(counts: NonFinite | undefined): string {
  if (!counts) return '';
  if (counts.nan + counts.infinite === 0) return '0';
  return [counts.nan ? `${counts.nan} NaN` : '', counts.infinite ? `${counts.infinite} ±Inf` : '']
    .filter(Boolean)
    .join(', ');
}

/** Exit 1, with one line on stderr, when any tensor holds NaN or ±Infinity. */
function reportNonFinite(tensors: ReadonlyArray<{ name: string; nonFinite?: NonFinite }>): number {
  const bad = tensors.filter(hasNonFinite);
  if (bad.length === 0) return 0;
  progress(
    `difftx: ${bad.length} tensor${bad.length > 1 ? 's' : ''} hold NaN or ±Infinity values ` +
      `(${bad
        .slice(0, 3)
        .map((t) => `'${t.name}'`)
        .join(', ')}${bad.length > 3 ? ', …' : ''}); a model loads them only with --allow-non-finite`,
  );
  return 1;
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

/** A RoPE scaling in a few words: its type, factor and original length. */
function ropeScalingText(s: RopeScaling): string {
  switch (s.type) {
    case 'default':
      return '';
    case 'linear':
      return ` linear ×${s.factor}`;
    case 'dynamic':
      return ` dynamic NTK ×${s.factor} beyond ${s.originalMaxPositions}`;
    case 'yarn':
      return ` yarn ×${s.factor} from ${s.originalMaxPositions} (attention factor ${s.attentionFactor.toPrecision(6)})`;
    case 'longrope':
      return ` longrope from ${s.originalMaxPositions} (attention factor ${s.attentionFactor.toPrecision(6)})`;
    case 'llama3':
      return ` llama3 ×${s.factor} from ${s.originalMaxPositions} (frequency factors ${s.lowFreqFactor}, ${s.highFreqFactor})`;
  }
}
