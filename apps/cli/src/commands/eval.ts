import { ByteTokenizer, type Tokenizer } from '@diff-transformer/core';
import { loadTokenizer, settleFolder } from '@diff-transformer/core/node';
import {
  evaluate,
  PackedSequences,
  TRAINER_STATE_FILE,
  type TrainerState,
  tokenizeSplit,
} from '@diff-transformer/train';
import { BROWN, loadTextData, loadTokenizerFile } from '@diff-transformer/train/node';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseFlags, parseIntegerFlag } from '../args.js';
import { resolveBackend } from '../backends.js';
import { UsageError } from '../errors.js';
import { progress, writeJson, writeLine } from '../io.js';
import { loadModelFolder, MODEL_HELP, modelPath } from '../model-input.js';

export const evalHelp = `difftx eval --model DIR [--data PATH|brown] [--tokenizer FILE] [--seq-len T] [--batch B]
            [--max-tokens N] [--backend NAME] [--json]

Evaluates the model in DIR on the validation split of the data (the same fixed split difftx train
uses): the mean cross-entropy (nats per token), bits per token, bits per byte of text and perplexity.
The data defaults to what DIR was trained on (its trainer-state.json), else the Brown corpus; the
tokenizer to DIR/tokenizer.json, else bytes; --seq-len to the training context, else min(256,
maxPositions). --max-tokens evaluates that many tokens, spread evenly over the split (default: all).
${MODEL_HELP}`;

export async function evalCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags('eval', args, {
    model: { type: 'string' },
    data: { type: 'string' },
    tokenizer: { type: 'string' },
    'seq-len': { type: 'string' },
    batch: { type: 'string' },
    'max-tokens': { type: 'string' },
    backend: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (positionals.length) throw new UsageError(`eval: unexpected argument ${JSON.stringify(positionals[0])}`);
  const dir = await modelPath('eval', values.model);
  await settleFolder(dir);
  const state = await trainerState(dir);
  const backend = await resolveBackend(values.backend);
  const model = await loadModelFolder(dir, backend);
  try {
    let tokenizer: Tokenizer | null =
      values.tokenizer !== undefined ? (await loadTokenizerFile(values.tokenizer)).tokenizer : await loadTokenizer(dir);
    // Bytes only for a byte model: ids of another vocabulary mean nothing without its tokenizer.
    if (!tokenizer && model.config.vocabSize === 256) tokenizer = new ByteTokenizer();
    if (!tokenizer) {
      throw new UsageError(
        `eval: ${dir} has no tokenizer.json and its vocabulary is ${model.config.vocabSize}, not 256 (bytes); ` +
          'give --tokenizer FILE',
      );
    }
    const seqLen = parseIntegerFlag(
      'seq-len',
      values['seq-len'],
      state?.options.seqLen ?? Math.min(256, model.config.maxPositions),
      1,
    );
    if (seqLen > model.config.maxPositions) {
      throw new UsageError(`eval: --seq-len ${seqLen} exceeds the model's maxPositions (${model.config.maxPositions})`);
    }
    const batchSize = parseIntegerFlag('batch', values.batch, 8, 1);
    const maxTokens =
      values['max-tokens'] === undefined ? undefined : parseIntegerFlag('max-tokens', values['max-tokens'], 0, 1);
    const source = values.data ?? (typeof state?.metadata.data === 'string' ? state.metadata.data : BROWN);
    progress(`reading ${source === BROWN ? 'the Brown corpus' : source} …`);
    const text = await loadTextData(source);
    const data = tokenizeSplit(text.split, tokenizer);
    if (data.vocabSize > model.config.vocabSize) {
      throw new UsageError(
        `eval: the tokenizer has ${data.vocabSize} ids, more than the model's vocabulary (${model.config.vocabSize})`,
      );
    }
    const sequences = new PackedSequences(data.validation.tokens, seqLen);
    if (sequences.count === 0) {
      throw new UsageError(
        `eval: the validation split has ${data.validation.tokens.length} tokens, too few for one sequence of ${seqLen}`,
      );
    }
    const started = performance.now();
    const result = await evaluate(model, sequences, {
      batchSize,
      maxTokens,
      tokensPerByte: data.validation.bytes > 0 ? data.validation.tokens.length / data.validation.bytes : 1,
    });
    const seconds = (performance.now() - started) / 1000;
    const doc = {
      model: dir,
      data: source,
      split: 'validation',
      seqLen,
      backend: backend.name,
      ...result,
      seconds,
    };
    if (values.json) {
      writeJson(doc);
    } else {
      writeLine(
        `${dir} on ${source} (validation, ${result.tokens} tokens of ${seqLen}-token sequences): ` +
          `loss ${result.loss.toFixed(4)} nats/token, ${result.bitsPerToken.toFixed(4)} bits/token, ` +
          `${result.bitsPerByte.toFixed(4)} bits/byte, perplexity ${result.perplexity.toFixed(3)}`,
      );
      progress(`${seconds.toFixed(1)} s on ${backend.name}`);
    }
    return 0;
  } finally {
    model.dispose();
  }
}

async function trainerState(dir: string): Promise<TrainerState | null> {
  try {
    return JSON.parse(await readFile(join(dir, TRAINER_STATE_FILE), 'utf8')) as TrainerState;
  } catch {
    return null;
  }
}
