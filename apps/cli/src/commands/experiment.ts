import { readFile } from 'node:fs/promises';
import {
  EXPERIMENTS,
  type ExperimentName,
  type ExperimentScale,
  parseScale,
  REPORT_FILE,
  runExperiments,
  SCALES,
  ScaleError,
} from '@diff-transformer/experiments';
import { parseFlags, parseIntegerFlag } from '../args.js';
import { resolveBackend } from '../backends.js';
import { UsageError } from '../errors.js';
import { writeJson, writeLine } from '../io.js';

const NAMES = [...EXPERIMENTS, 'all'] as const;

export const experimentHelp = `difftx experiment <${NAMES.join('|')}> [--scale toy|tiny|small|FILE]
                  [--seeds N] [--backend NAME] [--out DIR] [--fresh] [--json]

Measures the paper's claims in miniature, DIFF against its parameter-matched baseline (half the heads,
each two query/key halves of the baseline's head width; both parameter counts are printed), trained on
the same data in the same order with the same schedule, every seed:

  lm               DIFF V1, DIFF V2 and the baseline on the Brown corpus at each size: validation loss
                   (mean ± std), loss curves, loss against parameters and tokens, paired t-tests
  retrieval        multi-needle retrieval on synthetic data, tested at the training length and longer
  attention-noise  attention mass on the answer span and on the rest of the context, per layer, and
                   attention maps of one example (the retrieval models; the float64 reference computes
                   the maps, the fused kernels are untouched)
  outliers         top-1 against median magnitude of attention logits and hidden states (the lm models)
  ablations        DIFF without its per-head norm, with λinit fixed at 0.8, with a scalar λ; λ traced
  all              every one, and DIR/${REPORT_FILE} with the command, the machine and the duration

Each writes DIR/<name>.json (its results), DIR/<name>.md (its section, generated from that JSON) and
SVG figures in DIR/figures/. Trained models are kept in DIR/runs/ and reused by later commands with the
same settings (--fresh trains again).

  --scale   toy (seconds: proves the pipeline), tiny (default; the CPU report, ≤ 45 minutes on 2
            cores), small (for GPUs), or a JSON file whose sections replace tiny's
  --seeds   seeds per configuration (default: the scale's, 3 for tiny and small)
  --out     the output folder (default: experiments)
  --json    print the results as one JSON document on stdout

Progress goes to stderr.`;

export async function experiment(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    'experiment',
    args,
    {
      scale: { type: 'string' },
      seeds: { type: 'string' },
      backend: { type: 'string' },
      out: { type: 'string' },
      fresh: { type: 'boolean' },
      json: { type: 'boolean' },
    },
    { positionals: true },
  );
  if (positionals.length !== 1) {
    throw new UsageError(
      `experiment: expected one experiment name (${NAMES.join(', ')}), got ${
        positionals.length ? positionals.map((p) => JSON.stringify(p)).join(' ') : 'none'
      }`,
    );
  }
  const name = positionals[0] as ExperimentName | 'all';
  if (!(NAMES as readonly string[]).includes(name)) {
    throw new UsageError(`experiment: expected one of ${NAMES.join(', ')}, got ${JSON.stringify(name)}`);
  }
  const scale = await resolveScale(values.scale ?? 'tiny');
  const seeds = values.seeds === undefined ? undefined : parseIntegerFlag('seeds', values.seeds, 1, 1);
  const backend = await resolveBackend(values.backend);
  const out = values.out ?? 'experiments';
  const started = performance.now();
  const result = await runExperiments({
    name,
    scale,
    seeds,
    backend,
    out,
    fresh: values.fresh === true,
    command: ['difftx', 'experiment', ...args].map(shellWord).join(' '),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  if (values.json) {
    writeJson({ experiment: name, out, files: result.files, header: result.header, results: result.results });
  } else {
    const seconds = (performance.now() - started) / 1000;
    writeLine(`${name}: done in ${seconds.toFixed(0)} s; wrote ${result.files.length} files in ${out}/`);
    for (const file of result.files) writeLine(`  ${file}`);
  }
  return 0;
}

async function resolveScale(given: string): Promise<ExperimentScale> {
  if (given in SCALES) return SCALES[given as keyof typeof SCALES];
  let text: string;
  try {
    text = await readFile(given, 'utf8');
  } catch {
    throw new UsageError(
      `experiment: --scale: expected ${Object.keys(SCALES).join(', ')} or a JSON file, got ${JSON.stringify(given)}`,
    );
  }
  try {
    return parseScale(JSON.parse(text), given);
  } catch (error) {
    if (error instanceof ScaleError || error instanceof SyntaxError) {
      throw new UsageError(`experiment: --scale ${given}: ${error.message}`);
    }
    throw error;
  }
}

/** The argument as a POSIX shell would need it written (the report quotes the command). */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}
