import {
  ByteTokenizer,
  describeModelFolder,
  generate as generateTokens,
  validateSampling,
  type SamplingOptions,
  type Tokenizer,
} from '@diff-transformer/core';
import { directorySource, loadTokenizer } from '@diff-transformer/core/node';
import { parseFlags, parseIntegerFlag, parseNumberFlag } from '../args.js';
import { resolveBackend } from '../backends.js';
import { UsageError } from '../errors.js';
import { progress, writeJson, writeOut } from '../io.js';
import {
  ALLOW_NON_FINITE_FLAG,
  checkIdsInVocab,
  loadModelFolder,
  MODEL_HELP,
  MODEL_REQUIRED,
  modelPath,
  parseIds,
} from '../model-input.js';

export const generateHelp = `difftx generate --model DIR (--prompt TEXT | --ids 1,2,3) [--max-new-tokens N]
               [--greedy | --temperature T [--top-k K] [--top-p P]] [--seed S] [--backend NAME] [--json]
               [--allow-non-finite]

Continues a prompt with the model in DIR, one token at a time through the KV cache, and streams the
tokens to stdout as they come (text when a tokenizer is known, ids otherwise); tokens per second go
to stderr at the end. Text goes through DIR/tokenizer.json (Hugging Face, via @huggingface/tokenizers)
or, when DIR has none and the vocabulary is 256, the built-in byte tokenizer.

--max-new-tokens defaults to 32. Greedy unless --temperature is given (--top-k or --top-p alone imply
--temperature 1). --seed (default 0) makes sampling reproducible on every backend.
With --json, stdout is one document at the end: {"ids": [generated ids], "text"?: string, "tokensPerSecond": n}.
A model whose parameters hold NaN or ±Infinity is refused (exit 1) unless --allow-non-finite.
${MODEL_HELP}`;

export async function generate(args: string[]): Promise<number> {
  const { values } = parseFlags('generate', args, {
    model: { type: 'string' },
    prompt: { type: 'string' },
    ids: { type: 'string' },
    'max-new-tokens': { type: 'string' },
    greedy: { type: 'boolean' },
    temperature: { type: 'string' },
    'top-k': { type: 'string' },
    'top-p': { type: 'string' },
    seed: { type: 'string' },
    backend: { type: 'string' },
    json: { type: 'boolean' },
    ...ALLOW_NON_FINITE_FLAG,
  });
  if ((values.prompt === undefined) === (values.ids === undefined))
    throw new UsageError('generate: give exactly one of --prompt TEXT and --ids 1,2,3');
  const maxNewTokens = parseIntegerFlag('max-new-tokens', values['max-new-tokens'], 32, 1);
  const seed = parseIntegerFlag('seed', values.seed, 0);
  const sampling: SamplingOptions = {};
  const temperature = parseNumberFlag('temperature', values.temperature);
  const topK = values['top-k'] === undefined ? undefined : parseIntegerFlag('top-k', values['top-k'], 0);
  const topP = parseNumberFlag('top-p', values['top-p']);
  if (values.greedy) {
    if (temperature !== undefined || topK !== undefined || topP !== undefined)
      throw new UsageError('generate: --greedy cannot be combined with --temperature, --top-k or --top-p');
    sampling.greedy = true;
  } else if (temperature !== undefined || topK !== undefined || topP !== undefined) {
    sampling.temperature = temperature ?? 1;
    if (topK !== undefined) sampling.topK = topK;
    if (topP !== undefined) sampling.topP = topP;
  }
  try {
    validateSampling(sampling);
  } catch (error) {
    throw new UsageError(`generate: ${error instanceof Error ? error.message : String(error)}`);
  }
  const ids = values.ids !== undefined ? parseIds('ids', values.ids) : null;
  if (ids && ids.length !== 1) throw new UsageError('generate: --ids takes one sequence (no ;)');
  if (values.model === undefined) throw new UsageError(`generate: ${MODEL_REQUIRED}`);
  const backend = await resolveBackend(values.backend);
  const dir = await modelPath('generate', values.model);
  // The prompt is checked against the folder's config and tokenizer before any weight is read.
  const { config } = await describeModelFolder(directorySource(dir));
  let tokenizer: Tokenizer | null = await loadTokenizer(dir);
  if (!tokenizer && config.vocabSize === 256) tokenizer = new ByteTokenizer();
  let prompt: number[];
  if (ids) {
    checkIdsInVocab('ids', ids, config.vocabSize);
    prompt = ids[0];
  } else {
    if (!tokenizer)
      throw new UsageError(
        `generate: --prompt needs a tokenizer: ${values.model} has no tokenizer.json ` +
          `and its vocabulary is ${config.vocabSize}, not 256 (bytes); use --ids`,
      );
    prompt = tokenizer.encode(values.prompt!);
    if (prompt.length === 0) throw new UsageError('generate: the prompt encodes to no tokens');
    checkIdsInVocab('prompt', [prompt], config.vocabSize);
  }
  const model = await loadModelFolder(dir, backend, { allowNonFinite: values['allow-non-finite'] });
  try {
    const out: number[] = [];
    let printed = '';
    const started = performance.now();
    for await (const id of generateTokens(model, prompt, { maxNewTokens, seed, ...sampling })) {
      out.push(id);
      if (values.json) continue;
      if (tokenizer) {
        // Decode everything so far and print what is new: multi-byte characters and BPE merges only
        // settle once their last token arrives.
        const text = safeDecode(tokenizer, out);
        if (text?.startsWith(printed) && !text.endsWith('\uFFFD')) {
          writeOut(text.slice(printed.length));
          printed = text;
        }
      } else {
        writeOut(`${out.length > 1 ? ' ' : ''}${id}`);
      }
    }
    const seconds = (performance.now() - started) / 1000;
    const tokensPerSecond = out.length / seconds;
    const text = tokenizer ? safeDecode(tokenizer, out) : null;
    if (values.json) {
      writeJson({ ids: out, ...(text !== null ? { text } : {}), tokensPerSecond });
    } else {
      if (text?.startsWith(printed)) writeOut(text.slice(printed.length));
      writeOut('\n');
    }
    progress(
      `${out.length} tokens in ${seconds.toFixed(3)} s (${tokensPerSecond.toFixed(1)} tokens/s) on ${backend.name}`,
    );
    return 0;
  } finally {
    model.dispose();
  }
}

function safeDecode(tokenizer: Tokenizer, ids: number[]): string | null {
  try {
    return tokenizer.decode(ids);
  } catch {
    return null;
  }
}
