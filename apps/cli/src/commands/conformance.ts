import {
  conformanceCases,
  formatReportTable,
  formatSummaryTable,
  runConformance,
  selectCases,
  type CaseResult,
  type ConformanceReport,
  type RunOptions,
} from '@diff-transformer/conformance';
import { initializedBackend } from '@diff-transformer/core';
import { parseFlags } from '../args.js';
import { UsageError } from '../errors.js';
import { customCpuBackend, listBackends, resolveBackend } from '../backends.js';
import { parseIntegerFlag } from '../args.js';
import { progress, writeJson, writeLine } from '../io.js';

export const conformanceHelp = `difftx conformance [--backend NAME|all] [--filter REGEX] [--dtype DTYPE]
                   [--strict] [--large] [--engine E] [--threads N] [--verbose] [--json]

Runs the shared conformance suite (every kernel, whole-model logits, KV-cache decoding, sampling,
training kernels and whole-model gradients) against the float64 reference. --backend defaults to
all; unavailable backends are listed with their reason and run no cases. --filter selects cases by
name; one that matches none is a usage error (exit 2). --dtype (float32 by default, float16,
bfloat16) is the storage type of the kernel cases' inputs; model-level cases always run in float32.
A case passes when its NMSE is within tolerance and every element within atol + rtol·|reference|.
Exit code 0 only if no case failed. The table has a row per kernel family and a column per backend,
then every failure in full; stderr shows each family as it finishes.

  --strict      fail a case the backend reports as unsupported (for a backend that claims to
                implement everything) instead of listing it apart
  --large       add the large cases (tiles of 512, K = 1000, caches of thousands of keys)
  --engine E    cpu backend only: native, wasm-relaxed-simd, wasm-simd128 or typescript (default:
                native where its addon loads, else the best WebAssembly this JavaScript engine runs)
  --threads N   cpu backend only: run kernels on N threads (default: every hardware thread)
  --verbose     a row per case in the table (with its NMSE), and a progress line per case

With --json, stdout is one JSON document (an array with --backend all):
  {"backend", "device", "cases": [{"name", "kernel", "status", "nmse", "maxAbsError", "elementError",
   "tolerance", "atol", "rtol"}], "summary": {"pass", "fail", "unsupported"}}
elementError is the worst element's error as a fraction of its bound (≤ 1 passes); nmse, maxAbsError
and elementError are null where nothing was measured (unsupported cases).`;

interface UnavailableReport extends ConformanceReport {
  available: false;
  reason: string;
}

export async function conformance(args: string[]): Promise<number> {
  const { values } = parseFlags('conformance', args, {
    backend: { type: 'string' },
    filter: { type: 'string' },
    json: { type: 'boolean' },
    dtype: { type: 'string' },
    strict: { type: 'boolean' },
    large: { type: 'boolean' },
    engine: { type: 'string' },
    threads: { type: 'string' },
    verbose: { type: 'boolean' },
  });
  const dtype = (values.dtype ?? 'float32') as ConformanceReport['dtype'];
  if (!['float32', 'float16', 'bfloat16'].includes(dtype)) {
    throw new UsageError(`--dtype: expected float32, float16 or bfloat16, got ${JSON.stringify(values.dtype)}`);
  }
  const target = values.backend ?? 'all';
  let filter: RegExp | undefined;
  if (values.filter !== undefined) {
    try {
      filter = new RegExp(values.filter);
    } catch {
      throw new UsageError(`--filter: not a valid regular expression: ${values.filter}`);
    }
    // Running no case is no pass: a filter that selects nothing is a typo to report.
    if (selectCases(filter, { large: values.large }).length === 0) {
      const names = conformanceCases().map((c) => c.name);
      throw new UsageError(
        `--filter ${JSON.stringify(values.filter)} matches none of the ${names.length} cases ` +
          `(names look like ${names
            .slice(0, 2)
            .map((n) => JSON.stringify(n))
            .join(', ')}, …)`,
      );
    }
  }
  const selection = { filter, strict: values.strict, large: values.large };
  const verbose = values.verbose === true;
  const threads = values.threads === undefined ? undefined : parseIntegerFlag('threads', values.threads, 1, 1);
  const custom = threads !== undefined || values.engine !== undefined;
  if (custom && target !== 'cpu') {
    throw new UsageError('--engine and --threads apply to the cpu backend: add --backend cpu');
  }
  const reports: ConformanceReport[] = [];
  if (custom) {
    const backend = await customCpuBackend({ threads, engine: values.engine });
    try {
      reports.push(await runOne(backend, selection, dtype, verbose));
    } finally {
      await backend.dispose?.();
    }
  } else if (target === 'all') {
    for (const info of await listBackends()) {
      if (!info.available) {
        progress(`${info.name}: unavailable (${info.reason}); no cases run`);
        const unavailable: UnavailableReport = {
          backend: info.name,
          device: `unavailable: ${info.reason}`,
          dtype,
          available: false,
          reason: info.reason ?? 'unavailable',
          cases: [],
          summary: { pass: 0, fail: 0, unsupported: 0 },
        };
        reports.push(unavailable);
        continue;
      }
      reports.push(await runOne(await initializedBackend(info.name), selection, dtype, verbose));
    }
  } else {
    reports.push(await runOne(await resolveBackend(target), selection, dtype, verbose));
  }
  if (values.json) writeJson(target === 'all' ? reports : reports[0]);
  else writeLine(verbose ? formatReportTable(reports) : formatSummaryTable(reports));
  return reports.some((r) => r.summary.fail > 0) ? 1 : 0;
}

async function runOne(
  backend: Awaited<ReturnType<typeof resolveBackend>>,
  selection: Pick<RunOptions, 'filter' | 'strict' | 'large'>,
  dtype: ConformanceReport['dtype'],
  verbose: boolean,
): Promise<ConformanceReport> {
  progress(`${backend.name}: ${backend.device}`);
  // Without --verbose, one line per kernel family as it finishes (cases of a family run together).
  let family: { kernel: string; results: CaseResult[]; started: number } | null = null;
  let mark = performance.now();
  const finishFamily = () => {
    if (!family) return;
    const now = performance.now();
    const failed = family.results.filter((r) => r.status === 'fail').length;
    const passed = family.results.filter((r) => r.status === 'pass').length;
    const seconds = ((now - family.started) / 1000).toFixed(1);
    progress(
      `  ${family.kernel}: ${passed}/${family.results.length} pass${failed ? `, ${failed} FAIL` : ''} (${seconds} s)`,
    );
    family = null;
    mark = now;
  };
  const report = await runConformance(backend, {
    ...selection,
    dtype,
    onCase: (result, index, total) => {
      if (verbose) {
        const measured = result.nmse === null ? '' : ` nmse=${result.nmse.toExponential(2)}`;
        progress(
          `  [${index + 1}/${total}] ${result.status.padEnd(11)} ${result.name}` +
            `${measured}${result.message ? ` — ${result.message}` : ''}`,
        );
        return;
      }
      if (family && family.kernel !== result.kernel) finishFamily();
      family ??= { kernel: result.kernel, results: [], started: mark };
      family.results.push(result);
    },
  });
  finishFamily();
  const s = report.summary;
  progress(`${backend.name}: ${s.pass} pass, ${s.fail} fail, ${s.unsupported} unsupported`);
  return report;
}
