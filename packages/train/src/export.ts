/**
 * Export to Hugging Face transformers: a `DiffLlamaForCausalLM` folder (config.json with model_type
 * "diffllama", model.safetensors in its names and its q/k/v row order, through core's toDiffLlama) and
 * a tokenizer.json. The way past one machine: continue there with accelerate, FSDP or DeepSpeed, and
 * load what they save back here through core's DiffLlama loader. The other way out, ONNX for ONNX
 * Runtime, is @diff-transformer/onnx; both formats share the tokenizer files written here.
 */
import { layoutSafetensors, toDiffLlama, type HostTensor, type ModelConfig } from '@diff-transformer/core';
import type { FolderFile } from './checkpoint.js';
import { ExportError } from './errors.js';

export const EXPORT_FORMATS = ['diffllama', 'onnx'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/**
 * What of this config DiffLlama cannot represent, one entry each (empty: it exports). transformers'
 * DiffLlama is differential attention (V1) with half-layout rotary, a per-head norm without weight and
 * one rms_norm_eps.
 */
export function diffLlamaProblems(config: ModelConfig): string[] {
  const problems: string[] = [];
  if (config.attention === 'standard') {
    problems.push("attention 'standard' (the baseline is a Llama model, not DiffLlama)");
  } else if (config.attention === 'differential-v2') {
    problems.push("attention 'differential-v2' (DIFF V2 has no transformers class; DiffLlama is V1)");
  }
  if (config.rope.layout !== 'half') {
    problems.push(`rope.layout '${config.rope.layout}' (DiffLlama rotates halves, layout 'half')`);
  }
  const subln = config.subLayerNorm;
  if (config.attention === 'differential') {
    if (subln === null) problems.push('no per-head norm (subLayerNorm null; DiffLlama always has one)');
    if (subln?.affine) {
      problems.push('an affine subln weight (subLayerNorm.affine true; DiffLlama’s per-head norm has no weight)');
    }
    if (subln && subln.eps !== config.normEps) {
      problems.push(`subLayerNorm.eps ${subln.eps} ≠ normEps ${config.normEps} (DiffLlama has one rms_norm_eps)`);
    }
    if (config.lambdaInit !== 'depth') {
      problems.push(`a fixed λinit ${config.lambdaInit} (DiffLlama computes λinit from the depth)`);
    }
    if (config.lambdaParameterization !== 'reparameterized') {
      problems.push(`a ${config.lambdaParameterization} λ (DiffLlama learns λ from four vectors)`);
    }
  }
  return problems;
}

export interface DiffLlamaExportOptions {
  /** The model's tokenizer.json (and tokenizer_config.json), copied; absent for a byte model, for which one is made. */
  readonly tokenizer?: { readonly json: string; readonly config?: string } | null;
}

/**
 * The files of a DiffLlama folder for this model. Throws ExportError naming everything that does not
 * map. A byte-level model (vocabulary 256, no tokenizer given) gets a tokenizer.json whose ids are the
 * bytes, so AutoTokenizer works on it in transformers.
 */
export function diffLlamaFiles(
  config: ModelConfig,
  parameters: ReadonlyMap<string, HostTensor>,
  options: DiffLlamaExportOptions = {},
): FolderFile[] {
  const problems = diffLlamaProblems(config);
  if (problems.length) throw new ExportError('DiffLlama (transformers DiffLlamaForCausalLM)', problems);
  const { config: json, tensors } = toDiffLlama(config, parameters);
  const layout = layoutSafetensors(
    [...tensors].map(([name, t]) => [name, { shape: t.shape, data: t.data, dtype: 'F32' as const }]),
    { format: 'pt' },
    'model.safetensors',
  );
  const text = (s: string) => [new TextEncoder().encode(s)];
  const files: FolderFile[] = [
    { name: 'model.safetensors', chunks: [layout.header, ...layout.tensors.map((t) => t.bytes)] },
    ...tokenizerFiles(config, options.tokenizer ?? null),
  ];
  files.push({
    name: 'config.json',
    chunks: text(`${JSON.stringify({ ...json, torch_dtype: 'float32' }, null, 2)}\n`),
  });
  return files;
}

/**
 * The tokenizer files an export carries: the model's own (copied), or for a byte-level model
 * (vocabulary 256, none given) a tokenizer.json whose ids are the bytes; none otherwise.
 */
export function tokenizerFiles(
  config: ModelConfig,
  given: { readonly json: string; readonly config?: string } | null,
): FolderFile[] {
  const text = (s: string) => [new TextEncoder().encode(s)];
  let tokenizer = given;
  if (!tokenizer && config.vocabSize === 256) {
    tokenizer = {
      json: `${JSON.stringify(byteLevelTokenizerJson())}\n`,
      config: `${JSON.stringify(byteLevelTokenizerConfig(config.maxPositions), null, 2)}\n`,
    };
  }
  if (!tokenizer) return [];
  const files: FolderFile[] = [{ name: 'tokenizer.json', chunks: text(tokenizer.json) }];
  if (tokenizer.config !== undefined) files.push({ name: 'tokenizer_config.json', chunks: text(tokenizer.config) });
  return files;
}

/**
 * GPT-2's byte-to-character table (bytes_to_unicode): printable bytes stand for themselves, the others
 * for characters from U+0100 on, so every byte is one visible vocabulary entry.
 */
function byteToCharacter(): string[] {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = [];
  let next = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(printable(b) ? b : 256 + next++);
  return out;
}

/**
 * A Hugging Face tokenizer.json that maps text to its UTF-8 bytes, id = byte value (our ByteTokenizer):
 * byte-level pre-tokenization without splitting, a BPE model with the 256 bytes and no merges.
 */
export function byteLevelTokenizerJson(): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  byteToCharacter().forEach((c, b) => {
    vocab[c] = b;
  });
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: null,
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
}

function byteLevelTokenizerConfig(maxPositions: number): Record<string, unknown> {
  return {
    tokenizer_class: 'PreTrainedTokenizerFast',
    model_max_length: maxPositions,
    clean_up_tokenization_spaces: false,
    add_bos_token: false,
    add_eos_token: false,
  };
}
