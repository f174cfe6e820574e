import { type AttentionKind, type Backend, DiffTransformer, parameterCount } from '@diff-transformer/core';
import {
  LOSS_CURVE_FILE,
  type EvalReport,
  type FolderFile,
  lossCurveSvg,
  pairCounts,
  type Preset,
  presetModelConfig,
  type StepReport,
  Trainer,
  type TrainingOptions,
  tokenizeSplit,
  trainingCurves,
} from '@diff-transformer/train';
import {
  BROWN,
  byteTokenizer,
  isFreshFolder,
  loadCheckpoint,
  loadTextData,
  loadTokenizerFile,
  resolvePreset,
  type RunTokenizer,
  saveCheckpoint,
  TrainLog,
} from '@diff-transformer/train/node';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseFlags } from '../args.js';
import { resolveBackend } from '../backends.js';
import { UsageError } from '../errors.js';
import { bar, count, duration, ProgressLine } from '../progress-line.js';

export const trainHelp = `difftx train [--data PATH|brown] [--tokenizer FILE] [--size tiny|small|FILE]
             [--attention differential|differential-v2|standard] [--steps N] [--batch B] [--seq-len T]
             [--lr X] [--warmup N] [--seed S] [--accumulate N] [--backend NAME] --out DIR [--resume]
             [--eval-every N] [--eval-tokens N] [--save-every N] [--stop-at STEP] [--json]

Trains a DIFF Transformer (or, with --attention standard, its parameter-matched baseline: twice the
heads of half the width; both parameter counts are printed) from scratch and keeps DIR a model folder
that generate, logits, inspect, eval and export accept, plus the optimiser state.

  --data       a text file, a folder of text files, or brown (default: the Brown corpus, 500 files, built
               in). Fixed split: every tenth file is validation (the last tenth of the text for fewer than
               ten files), so figures compare across runs and machines.
  --tokenizer  a Hugging Face tokenizer.json (or a folder with one); default: UTF-8 bytes (vocabulary 256).
  --size       tiny (default) or small, or a JSON file {"model": {...}, "training": {...}}: the DIFF model
               and its defaults for every flag below.
  --steps N, --batch B, --seq-len T, --lr X, --warmup N, --accumulate N (micro-batches per step),
  --decay cosine|linear|constant, --weight-decay X, --clip X (global gradient norm, 0 = off), --seed S
               (initialisation and data order).
  --eval-every N, --eval-tokens N (validation tokens per evaluation; 0 = the whole split), --save-every N
               (default: --eval-every). Saves are atomic: a kill at any moment leaves the last checkpoint.
  --resume     continue the run in DIR exactly where its checkpoint is; only --steps (a longer run),
               --eval-every, --eval-tokens, --save-every, --stop-at, --backend and --json may be given.
  --stop-at S  save and stop after step S (continue later with --resume); Ctrl-C does the same at once.

On a terminal, a progress bar (step, loss, validation loss, tokens/s, ETA) on stderr; with --json,
stdout carries one JSON object a line (start, step, eval, save, done). DIR/train-log.jsonl gets the
same lines either way, and DIR/${LOSS_CURVE_FILE} the loss curves at the end. Losses are shown in bits
per byte of text. Exit 130 after a Ctrl-C (checkpoint saved).`;

const ATTENTION_KINDS: readonly AttentionKind[] = ['differential', 'differential-v2', 'standard'];

/** Flags a resumed run takes from its checkpoint. */
const FIXED_ON_RESUME = [
  'data',
  'tokenizer',
  'size',
  'attention',
  'batch',
  'seq-len',
  'lr',
  'warmup',
  'seed',
  'accumulate',
  'decay',
  'weight-decay',
  'clip',
] as const;

export async function train(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags('train', args, {
    data: { type: 'string' },
    tokenizer: { type: 'string' },
    size: { type: 'string' },
    attention: { type: 'string' },
    steps: { type: 'string' },
    batch: { type: 'string' },
    'seq-len': { type: 'string' },
    lr: { type: 'string' },
    warmup: { type: 'string' },
    seed: { type: 'string' },
    accumulate: { type: 'string' },
    decay: { type: 'string' },
    'weight-decay': { type: 'string' },
    clip: { type: 'string' },
    backend: { type: 'string' },
    out: { type: 'string' },
    resume: { type: 'boolean' },
    'eval-every': { type: 'string' },
    'eval-tokens': { type: 'string' },
    'save-every': { type: 'string' },
    'stop-at': { type: 'string' },
    json: { type: 'boolean' },
  });
  if (positionals.length) throw new UsageError(`train: unexpected argument ${JSON.stringify(positionals[0])}`);
  if (values.out === undefined) throw new UsageError('train: --out DIR is required (the checkpoint folder)');
  const num = (flag: keyof typeof values): number | undefined => {
    const text = values[flag];
    if (text === undefined || typeof text !== 'string') return undefined;
    const n = Number(text);
    if (text.trim() === '' || !Number.isFinite(n))
      throw new UsageError(`train: --${flag}: expected a number, got ${JSON.stringify(text)}`);
    return n;
  };
  if (values.attention !== undefined && !ATTENTION_KINDS.includes(values.attention as AttentionKind)) {
    throw new UsageError(
      `train: --attention: expected ${ATTENTION_KINDS.join(', ')}, got ${JSON.stringify(values.attention)}`,
    );
  }
  const out = values.out;
  const reporter = new Reporter(values.json === true);
  const session = {
    saveEvery: num('save-every'),
    stopAt: num('stop-at'),
    evalEvery: num('eval-every'),
    evalTokens: num('eval-tokens'),
  };
  for (const [flag, n] of [
    ['save-every', session.saveEvery],
    ['stop-at', session.stopAt],
  ] as const) {
    if (n !== undefined && (!Number.isInteger(n) || n < 1))
      throw new UsageError(`train: --${flag}: expected an integer ≥ 1, got ${n}`);
  }

  let run: Run;
  if (values.resume) {
    const given = FIXED_ON_RESUME.filter((flag) => values[flag] !== undefined);
    if (given.length) {
      throw new UsageError(
        `train --resume: ${given.map((f) => `--${f}`).join(', ')} cannot change in a resumed run (the checkpoint ` +
          'in DIR fixes them); start a new run in another --out to change them',
      );
    }
    run = await resumeRun(out, await resolveBackend(values.backend), {
      steps: num('steps'),
      evalEvery: session.evalEvery,
      evalTokens: session.evalTokens,
      reporter,
    });
  } else {
    run = await newRun(out, await resolveBackend(values.backend), reporter, {
      data: values.data ?? BROWN,
      tokenizer: values.tokenizer,
      size: values.size ?? 'tiny',
      attention: values.attention as AttentionKind | undefined,
      options: {
        steps: num('steps'),
        batchSize: num('batch'),
        seqLen: num('seq-len'),
        learningRate: num('lr'),
        warmupSteps: num('warmup'),
        seed: num('seed'),
        gradientAccumulation: num('accumulate'),
        decay: values.decay as TrainingOptions['decay'],
        clipNorm: num('clip'),
        evalEvery: session.evalEvery,
        evalTokens: session.evalTokens,
      },
      weightDecay: num('weight-decay'),
    });
  }
  try {
    return await loop(run, out, reporter, session);
  } finally {
    run.trainer.dispose();
    run.trainer.model.dispose();
  }
}

interface Run {
  readonly trainer: Trainer;
  readonly tokenizer: RunTokenizer;
  readonly log: TrainLog;
}

interface NewRunSpec {
  readonly data: string;
  readonly tokenizer: string | undefined;
  readonly size: string;
  readonly attention: AttentionKind | undefined;
  readonly options: { [K in keyof TrainingOptions]?: TrainingOptions[K] | undefined };
  readonly weightDecay: number | undefined;
}

/** A new run: everything is read and checked before DIR is created, so bad input leaves nothing behind. */
async function newRun(out: string, backend: Backend, reporter: Reporter, spec: NewRunSpec): Promise<Run> {
  const preset: Preset = await resolvePreset(spec.size);
  const tokenizer = spec.tokenizer === undefined ? byteTokenizer() : await loadTokenizerFile(spec.tokenizer);
  reporter.note(`reading ${spec.data === BROWN ? 'the Brown corpus' : spec.data} …`);
  const text = await loadTextData(spec.data);
  const data = tokenizeSplit(text.split, tokenizer.tokenizer);
  const config = presetModelConfig(preset, spec.attention, data.vocabSize);
  const defined = Object.fromEntries(Object.entries(spec.options).filter(([, v]) => v !== undefined));
  const { weightDecay, ...presetTraining } = preset.training;
  let options: TrainingOptions = {
    ...presetTraining,
    ...defined,
    adamw: { weightDecay: spec.weightDecay ?? weightDecay },
  };
  // A short run given by --steps alone keeps a warm-up that fits in it: a tenth of the run.
  if (spec.options.warmupSteps === undefined && (options.warmupSteps ?? 0) >= options.steps) {
    options = { ...options, warmupSteps: Math.floor(options.steps / 10) };
  }
  const seed = options.seed ?? 0;
  if (!(await isFreshFolder(out))) {
    throw new UsageError(
      `train: --out ${out} already holds files; continue its run with --resume, or give a new or empty folder`,
    );
  }
  const model = DiffTransformer.create(config, { seed, backend });
  let trainer: Trainer;
  try {
    trainer = new Trainer(model, data, options);
  } catch (error) {
    model.dispose();
    throw error;
  }
  const counts = pairCounts(preset, data.vocabSize);
  trainer.metadata = {
    data: text.source,
    tokenizer: tokenizer.name,
    size: preset.name,
    attention: config.attention,
    parameters: parameterCount(config),
    pairParameters: counts,
  };
  const log = new TrainLog(out);
  const start = {
    type: 'start',
    step: 0,
    resumed: false,
    backend: backend.name,
    device: backend.device,
    data: {
      source: text.source,
      documents: text.documents,
      trainTokens: data.train.tokens.length,
      validationTokens: data.validation.tokens.length,
    },
    tokenizer: tokenizer.name,
    size: preset.name,
    config,
    parameters: parameterCount(config),
    pairParameters: counts,
    options: trainer.options,
  };
  reporter.header(trainer, counts);
  try {
    // Step 0 is a checkpoint too: DIR is a loadable model folder from the start.
    await saveCheckpoint(trainer, out, tokenizer.files);
    await log.append(start);
  } catch (error) {
    trainer.dispose();
    model.dispose();
    throw error;
  }
  reporter.record(start);
  return { trainer, tokenizer, log };
}

async function resumeRun(
  out: string,
  backend: Backend,
  given: { steps?: number; evalEvery?: number; evalTokens?: number; reporter: Reporter },
): Promise<Run> {
  const checkpoint = await loadCheckpoint(out, { backend });
  const { state, model } = checkpoint;
  try {
    const source = typeof state.metadata.data === 'string' ? state.metadata.data : BROWN;
    const tokenizer = existsSync(join(out, 'tokenizer.json')) ? await loadTokenizerFile(out) : byteTokenizer();
    given.reporter.note(`reading ${source === BROWN ? 'the Brown corpus' : source} …`);
    const text = await loadTextData(source);
    const data = tokenizeSplit(text.split, tokenizer.tokenizer);
    const steps = given.steps ?? state.options.steps;
    if (steps <= state.step) {
      throw new UsageError(
        `train --resume: ${out} is at step ${state.step} and the run has ${state.options.steps} steps; ` +
          'give a larger --steps to train further',
      );
    }
    if (steps !== state.options.steps) {
      given.reporter.note(
        `the run grows from ${state.options.steps} to ${steps} steps: ` +
          `the learning-rate schedule now decays over ${steps}`,
      );
    }
    const trainer = new Trainer(model, data, {
      ...state.options,
      steps,
      evalEvery: given.evalEvery ?? state.options.evalEvery,
      evalTokens: given.evalTokens ?? state.options.evalTokens,
    });
    try {
      trainer.restore(state, checkpoint.moments, out);
    } catch (error) {
      trainer.dispose();
      throw error;
    }
    const log = new TrainLog(out);
    await log.truncateAfter(state.step);
    const record = {
      type: 'resume',
      step: state.step,
      resumed: true,
      backend: backend.name,
      device: backend.device,
      steps,
      options: trainer.options,
    };
    await log.append(record);
    given.reporter.note(
      `resuming ${out} at step ${state.step} of ${steps} on ${backend.name} (${backend.device}), ` +
        `${state.metadata.size ?? ''} ${model.config.attention}, ${count(parameterCount(model.config))} parameters`,
    );
    given.reporter.record(record);
    return { trainer, tokenizer, log };
  } catch (error) {
    model.dispose();
    throw error;
  }
}

/** Steps until the end, a --stop-at or a Ctrl-C; saves, evaluations, the log and the final chart. */
async function loop(
  run: Run,
  out: string,
  reporter: Reporter,
  session: { saveEvery?: number; stopAt?: number },
): Promise<number> {
  const { trainer, log } = run;
  const saveEvery =
    session.saveEvery ?? (trainer.options.evalEvery || Math.max(1, Math.round(trainer.options.steps / 10)));
  const until = Math.min(trainer.options.steps, session.stopAt ?? Number.POSITIVE_INFINITY);
  let interrupted = false;
  const onInterrupt = () => {
    interrupted = true;
    reporter.note('stopping after this step (Ctrl-C again to quit without saving) …');
    process.once('SIGINT', () => process.exit(130));
  };
  process.once('SIGINT', onInterrupt);
  const save = async (final: boolean) => {
    const extra: FolderFile[] = [...run.tokenizer.files];
    let charted = false;
    if (final) {
      // The chart is a picture of the run: if it cannot be drawn, the checkpoint is still saved.
      try {
        extra.push({ name: LOSS_CURVE_FILE, chunks: [new TextEncoder().encode(await chart(run))] });
        charted = true;
      } catch (error) {
        reporter.note(
          `the loss curve could not be drawn (${error instanceof Error ? error.message : String(error)}); ` +
            'the checkpoint is saved without it',
        );
      }
    }
    await saveCheckpoint(trainer, out, extra);
    const record = { type: 'save', step: trainer.step, ...(charted ? { chart: LOSS_CURVE_FILE } : {}) };
    await log.append(record);
    reporter.record(record);
  };
  const sessionStart = { step: trainer.step, seconds: trainer.seconds };
  try {
    await trainer.train(
      {
        shouldStop: () => interrupted,
        onStep: async (report) => {
          const record = { type: 'step', ...report };
          await log.append(record);
          reporter.record(record);
          reporter.step(report, trainer, until, sessionStart);
          if (report.step % saveEvery === 0 && report.step < until) await save(false);
        },
        onEval: async (report) => {
          const record = { type: 'eval', ...report };
          await log.append(record);
          reporter.record(record);
          reporter.evaluation(report);
        },
      },
      until,
    );
  } finally {
    process.removeListener('SIGINT', onInterrupt);
  }
  await save(true);
  const finished = trainer.step >= trainer.options.steps;
  const done = {
    type: finished ? 'done' : 'stopped',
    step: trainer.step,
    steps: trainer.options.steps,
    tokens: trainer.tokens,
    seconds: trainer.seconds,
    validation: trainer.lastEvaluation,
  };
  await log.append(done);
  reporter.done(done, out);
  return interrupted ? 130 : 0;
}

/** The loss curves of the whole run (every session), from the log. */
async function chart(run: Run): Promise<string> {
  const records = await run.log.read();
  const steps = records.filter((r) => r.type === 'step') as unknown as StepReport[];
  const evaluations = records.filter((r) => r.type === 'eval') as unknown as EvalReport[];
  const { trainer } = run;
  return lossCurveSvg(trainingCurves(steps, evaluations), {
    title: `${String(trainer.metadata.size ?? '')} ${trainer.model.config.attention}, ${count(
      parameterCount(trainer.model.config),
    )} parameters, on ${String(trainer.metadata.data ?? '')}`,
    tokensPerStep: trainer.tokensPerStep,
  });
}

/** What the user sees: a bar and notes on stderr, or JSON lines on stdout with --json. */
class Reporter {
  readonly json: boolean;
  readonly #line: ProgressLine;
  #lastEval: EvalReport | null = null;
  #lastPrinted = 0;

  constructor(json: boolean) {
    this.json = json;
    this.#line = new ProgressLine(!json && process.stderr.isTTY === true);
  }

  note(text: string): void {
    if (this.json) process.stderr.write(`${text}\n`);
    else this.#line.note(text);
  }

  record(record: object): void {
    if (this.json) process.stdout.write(`${JSON.stringify(record, finiteOrNull)}\n`);
  }

  header(trainer: Trainer, counts: { differential: number; standard: number }): void {
    const o = trainer.options;
    const c = trainer.model.config;
    this.note(
      `model: ${String(trainer.metadata.size)} ${c.attention} — hidden ${c.hiddenSize}, ${c.numLayers} layers, ` +
        `${c.numHeads} heads of ${c.attention === 'differential' ? `2×${c.headDim}` : c.headDim}, ` +
        `${count(parameterCount(c))} parameters ` +
        `(matched pair: DIFF ${count(counts.differential)}, baseline ${count(counts.standard)})`,
    );
    this.note(
      `run: ${o.steps} steps × ${o.batchSize * o.gradientAccumulation} sequences × ${o.seqLen} tokens = ` +
        `${count(o.steps * trainer.tokensPerStep)} tokens; lr ${o.learningRate} ${o.decay} after ${o.warmupSteps} ` +
        `warm-up steps, weight decay ${o.adamw.weightDecay}, clip ${o.clipNorm}, seed ${o.seed}; ` +
        `${trainer.trainSequences} training sequences; backend ${trainer.model.backend.name}`,
    );
  }

  step(report: StepReport, trainer: Trainer, until: number, from: { step: number; seconds: number }): void {
    if (this.json) return;
    const done = report.step - from.step;
    const perStep = (trainer.seconds - from.seconds) / Math.max(1, done);
    const eta = (until - report.step) * perStep;
    const tokensPerSecond = (done * trainer.tokensPerStep) / Math.max(1e-9, trainer.seconds - from.seconds);
    const validation = this.#lastEval ? ` | val ${this.#lastEval.bitsPerByte.toFixed(3)}` : '';
    this.#line.update(
      `step ${report.step}/${until} ${bar(report.step / until)} loss ${report.bitsPerByte.toFixed(3)} bits/byte` +
        `${validation} | ${count(tokensPerSecond)} tok/s | ETA ${duration(eta)}`,
    );
    // Off a terminal there is no bar: a line every tenth of the run instead.
    if (
      process.stderr.isTTY !== true &&
      (report.step - this.#lastPrinted >= Math.max(1, until / 10) || report.step === until)
    ) {
      this.#lastPrinted = report.step;
      process.stderr.write(
        `step ${report.step}/${until}: loss ${report.bitsPerByte.toFixed(3)} bits/byte, ` +
          `${count(tokensPerSecond)} tokens/s, ETA ${duration(eta)}\n`,
      );
    }
  }

  evaluation(report: EvalReport): void {
    this.#lastEval = report;
    if (this.json) return;
    this.#line.note(
      `step ${report.step}: validation ${report.bitsPerByte.toFixed(3)} bits/byte ` +
        `(loss ${report.loss.toFixed(4)} nats/token, perplexity ${report.perplexity.toFixed(2)}, ` +
        `${count(report.tokens)} tokens)`,
    );
  }

  done(
    done: { type: string; step: number; steps: number; seconds: number; validation: EvalReport | null },
    out: string,
  ): void {
    this.#line.clear();
    if (this.json) {
      this.record(done);
      return;
    }
    const validation = done.validation
      ? `; validation ${done.validation.bitsPerByte.toFixed(3)} bits/byte at step ${done.validation.step}`
      : '';
    process.stdout.write(
      `${done.type === 'done' ? 'trained' : 'stopped at'} step ${done.step} of ${done.steps} ` +
        `in ${duration(done.seconds)}${validation}; checkpoint ${out}` +
        `${done.type === 'done' ? '' : ` (continue: difftx train --out ${out} --resume)`}\n`,
    );
  }
}

function finiteOrNull(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? null : value;
}
