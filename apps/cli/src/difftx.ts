/**
 * difftx — the diff-transformer command line.
 * Exit codes: 0 success, 1 the command ran and found a failure (e.g. a conformance case failed),
 * 2 a usage error (bad flag, unknown backend), 3 an unexpected error.
 */
import { DiffTransformerError } from '@diff-transformer/core';
import { bench, benchHelp } from './commands/bench.js';
import { conformance, conformanceHelp } from './commands/conformance.js';
import { evalCommand, evalHelp } from './commands/eval.js';
import { experiment, experimentHelp } from './commands/experiment.js';
import { exportCommand, exportHelp } from './commands/export.js';
import { generate, generateHelp } from './commands/generate.js';
import { info, infoHelp } from './commands/info.js';
import { inspect, inspectHelp } from './commands/inspect.js';
import { logits, logitsHelp } from './commands/logits.js';
import { parity, parityHelp } from './commands/parity.js';
import { train, trainHelp } from './commands/train.js';
import { UsageError } from './errors.js';
import { OutputClosedError, writeOut } from './io.js';
import { VERSION } from './version.js';

interface Command {
  run(args: string[]): Promise<number>;
  help: string;
  summary: string;
}

const COMMANDS: Record<string, Command> = {
  info: { run: info, help: infoHelp, summary: 'registered backends, whether each is available and why not' },
  conformance: {
    run: conformance,
    help: conformanceHelp,
    summary: 'run the shared conformance suite against the float64 reference',
  },
  bench: { run: bench, help: benchHelp, summary: 'time matmul, differential attention, forward and decode' },
  parity: {
    run: parity,
    help: parityHelp,
    summary: 'compare with the official modules (parity fixtures) and transformers DiffLlama (oracles)',
  },
  logits: {
    run: logits,
    help: logitsHelp,
    summary: 'run a model folder on token ids and write the logits as safetensors',
  },
  generate: {
    run: generate,
    help: generateHelp,
    summary: 'continue a prompt with a model folder (KV cache), streaming tokens',
  },
  inspect: {
    run: inspect,
    help: inspectHelp,
    summary: 'tensors, dtypes, shapes, parameter count and layout of a checkpoint',
  },
  train: {
    run: train,
    help: trainHelp,
    summary: 'train a DIFF Transformer or its baseline on text or the Brown corpus; resumable',
  },
  eval: {
    run: evalCommand,
    help: evalHelp,
    summary: 'validation loss, bits per byte and perplexity of a model folder',
  },
  experiment: {
    run: experiment,
    help: experimentHelp,
    summary: "the paper's claims in miniature: lm, retrieval, attention-noise, outliers, ablations, all",
  },
  export: {
    run: exportCommand,
    help: exportHelp,
    summary: 'write a model as a Hugging Face DiffLlamaForCausalLM folder',
  },
};

const USAGE = `difftx ${VERSION} — the Differential Transformer, on any backend

usage: difftx <command> [options]

commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`)
  .join('\n')}

Run \`difftx <command> --help\` for a command's options.`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    writeOut(`${USAGE}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') {
    writeOut(`${VERSION}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) throw new UsageError(`unknown command '${name}'; commands: ${Object.keys(COMMANDS).join(', ')}`);
  if (rest.includes('--help') || rest.includes('-h')) {
    writeOut(`${command.help}\n`);
    return 0;
  }
  return command.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof OutputClosedError) {
      // The reader has what it wanted (`| head`): stop quietly. Anything else is a real failure.
      if (error.code === 'EPIPE') process.exitCode = 0;
      else {
        process.stderr.write(`difftx: ${error.message}\n`);
        process.exitCode = 1;
      }
    } else if (error instanceof UsageError) {
      process.stderr.write(`difftx: ${error.message}\n`);
      process.exitCode = 2;
    } else if (error instanceof DiffTransformerError) {
      process.stderr.write(`difftx: ${error.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(
        `difftx: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
      process.exitCode = 3;
    }
  },
);
