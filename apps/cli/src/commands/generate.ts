import {
  ByteTokenizer,
  applyChatTemplate,
  describeModelFolder,
  generate as generateTokens,
  readChatTemplate,
  readGenerationDefaults,
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

export const generateHelp = `difftx generate --model DIR (--prompt TEXT [--chat] | --ids 1,2,3) [--max-new-tokens N]
               [--greedy | --temperature T [--top-k K] [--top-p P]] [--seed S] [--backend NAME] [--json]
               [--allow-non-finite]

Continues a prompt with the model in DIR, one token at a time through the KV cache, and streams the
tokens to stdout as they come (text when a tokenizer is known, ids otherwise); tokens per second go
to stderr at the end. Text goes through DIR/tokenizer.json (Hugging Face, via @huggingface/tokenizers)
or, when DIR has none and the vocabulary is 256, the built-in byte tokenizer.

Generation stops after --max-new-tokens (default 32) or at an end-of-sequence id: those of
DIR/generation_config.json (eos_token_id, one id or a list), else of DIR/config.json. Sampling
follows generation_config.json as transformers does: greedy unless it says do_sample, then its
temperature, top_k and top_p (transformers' defaults 1, 50 and 1 where it is silent). Flags override
it: --greedy, or --temperature / --top-k / --top-p, each replacing that one setting (--top-k or --top-p
alone sample at temperature 1 when the folder is greedy). --seed (default 0) makes sampling
reproducible on every backend.
--chat wraps --prompt as a user message in the chat template of DIR/tokenizer_config.json
(chat_template, or DIR/chat_template.jinja), rendered with @huggingface/jinja with the tokenizer
config's bos/eos tokens and the assistant's turn opened, then encodes it as is (the template writes
the special tokens).
With --json, stdout is one document at the end: {"ids": [generated ids], "text"?: string,
"finishReason": "eos" | "length", "tokensPerSecond": n}.
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
    chat: { type: 'boolean' },
    ...ALLOW_NON_FINITE_FLAG,
  });
  if ((values.prompt === undefined) === (values.ids === undefined))
    throw new UsageError('generate: give exactly one of --prompt TEXT and --ids 1,2,3');
  if (values.chat && values.prompt === undefined)
    throw new UsageError('generate: --chat takes --prompt (the user message), not --ids');
  const maxNewTokens = parseIntegerFlag('max-new-tokens', values['max-new-tokens'], 32, 1);
  const seed = parseIntegerFlag('seed', values.seed, 0);
  const temperature = parseNumberFlag('temperature', values.temperature);
  const topK = values['top-k'] === undefined ? undefined : parseIntegerFlag('top-k', values['top-k'], 0);
  const topP = parseNumberFlag('top-p', values['top-p']);
  if (values.greedy && (temperature !== undefined || topK !== undefined || topP !== undefined))
    throw new UsageError('generate: --greedy cannot be combined with --temperature, --top-k or --top-p');
  const flags = { greedy: values.greedy === true, temperature, topK, topP };
  try {
    validateSampling(flagSampling(flags, {}));
  } catch (error) {
    throw new UsageError(`generate: ${error instanceof Error ? error.message : String(error)}`);
  }
  const ids = values.ids !== undefined ? parseIds('ids', values.ids) : null;
  if (ids && ids.length !== 1) throw new UsageError('generate: --ids takes one sequence (no ;)');
  if (values.model === undefined) throw new UsageError(`generate: ${MODEL_REQUIRED}`);
  const backend = await resolveBackend(values.backend);
  const dir = await modelPath('generate', values.model);
  // The prompt is checked against the folder's config and tokenizer before any weight is read.
  const folder = directorySource(dir);
  const { config } = await describeModelFolder(folder);
  const defaults = await readGenerationDefaults(folder);
  const sampling = flagSampling(flags, defaults.sampling);
  validateSampling(sampling);
  const chat = values.chat ? await readChatTemplate(folder) : null;
  if (values.chat && !chat)
    throw new UsageError(
      `generate: --chat needs a chat template: ${values.model} has no chat_template in tokenizer_config.json ` +
        'and no chat_template.jinja',
    );
  // A chat prompt carries its special tokens already: the tokenizer must not add a second BOS.
  let tokenizer: Tokenizer | null = await loadTokenizer(dir, { addSpecialTokens: !chat });
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
    prompt = tokenizer.encode(
      chat ? applyChatTemplate(chat, [{ role: 'user', content: values.prompt! }]) : values.prompt!,
    );
    if (prompt.length === 0) throw new UsageError('generate: the prompt encodes to no tokens');
    checkIdsInVocab('prompt', [prompt], config.vocabSize);
  }
  const model = await loadModelFolder(dir, backend, { allowNonFinite: values['allow-non-finite'] });
  try {
    const out: number[] = [];
    let printed = '';
    const started = performance.now();
    const stopTokens = defaults.eosTokenIds;
    for await (const id of generateTokens(model, prompt, { maxNewTokens, seed, stopTokens, ...sampling })) {
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
      const finishReason = stopTokens.includes(out[out.length - 1]) ? 'eos' : 'length';
      writeJson({ ids: out, ...(text !== null ? { text } : {}), finishReason, tokensPerSecond });
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

/**
 * The sampling to run: --greedy alone; else the folder's defaults with each given flag replacing its
 * setting (a greedy folder samples at temperature 1 once --top-k or --top-p is given).
 */
function flagSampling(
  flags: { greedy: boolean; temperature?: number; topK?: number; topP?: number },
  defaults: SamplingOptions,
): SamplingOptions {
  if (flags.greedy) return { greedy: true };
  const { temperature, topK, topP } = flags;
  if (temperature === undefined && topK === undefined && topP === undefined) return defaults;
  const base: SamplingOptions =
    defaults.greedy || defaults.temperature === undefined ? { temperature: 1 } : { ...defaults };
  return {
    ...base,
    ...(temperature !== undefined ? { temperature } : {}),
    ...(topK !== undefined ? { topK } : {}),
    ...(topP !== undefined ? { topP } : {}),
  };
}
