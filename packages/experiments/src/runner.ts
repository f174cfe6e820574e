/**
 * Runs experiments by name and writes their files: OUT/<name>.json, OUT/<name>.md, OUT/figures/*.svg;
 * `all` also writes OUT/report.json and OUT/REPORT.md. Each section is rendered from the JSON as written
 * (read back, NaN as null), never from the objects in memory, so the Markdown can only say what the
 * JSON holds.
 */
import { readFile } from 'node:fs/promises';
import { cpus, loadavg, platform, release, arch, totalmem } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '@diff-transformer/core';
import { runAblations } from './ablations.js';
import { runAttentionNoise } from './attention-noise.js';
import { runLm } from './lm.js';
import { runOutliers } from './outliers.js';
import { writeJson, writeText } from './output.js';
import {
  EXPERIMENTS,
  type ExperimentName,
  type ExperimentResults,
  type Machine,
  type ReportHeader,
  renderReport,
  renderSection,
} from './report.js';
import { runRetrieval } from './retrieval.js';
import { cpuSecondsSince, type ExperimentContext, type TrainedRun } from './runs.js';
import { type ExperimentScale, validateScale } from './scale.js';

export const REPORT_FILE = 'REPORT.md';
export const HEADER_FILE = 'report.json';

export interface RunExperimentsOptions {
  readonly name: ExperimentName | 'all';
  readonly scale: ExperimentScale;
  /** Seeds per configuration; default the scale's. */
  readonly seeds?: number;
  readonly backend: Backend;
  readonly out: string;
  /** Train every run again even where OUT/runs holds it. */
  readonly fresh?: boolean;
  /** The command line as the user typed it (the report's first line). */
  readonly command: string;
  readonly log?: (line: string) => void;
}

export interface RunExperimentsResult {
  /** Each experiment's JSON, as written. */
  readonly results: ExperimentResults;
  /** report.json, for `all`. */
  readonly header: ReportHeader | null;
  /** The files written, relative to OUT. */
  readonly files: readonly string[];
}

const RUNNERS: {
  readonly [K in ExperimentName]: (ctx: ExperimentContext) => Promise<NonNullable<ExperimentResults[K]>>;
} = {
  lm: runLm,
  retrieval: runRetrieval,
  'attention-noise': runAttentionNoise,
  outliers: runOutliers,
  ablations: runAblations,
};

export async function runExperiments(options: RunExperimentsOptions): Promise<RunExperimentsResult> {
  validateScale(options.scale);
  const seeds = options.seeds ?? options.scale.seeds;
  if (!Number.isInteger(seeds) || seeds < 1) throw new RangeError(`seeds: expected an integer ≥ 1, got ${seeds}`);
  const started = new Date();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const load = sampleLoad();
  const runs = new Map<string, TrainedRun>();
  const ctx: ExperimentContext = {
    backend: options.backend,
    scale: options.scale,
    seeds,
    out: options.out,
    fresh: options.fresh ?? false,
    log: options.log ?? (() => {}),
    memo: { runs },
  };
  const names: readonly ExperimentName[] = options.name === 'all' ? EXPERIMENTS : [options.name];
  const results: ExperimentResults = {};
  const files: string[] = [];
  try {
    for (const name of names) {
      ctx.log(`— ${name} —`);
      const value = await RUNNERS[name](ctx);
      await writeJson(options.out, `${name}.json`, value);
      const json = JSON.parse(await readFile(join(options.out, `${name}.json`), 'utf8'));
      (results as Record<string, unknown>)[name] = json;
      await writeText(options.out, `${name}.md`, renderSection(name, json));
      files.push(`${name}.json`, `${name}.md`, ...figuresOf(json));
    }
  } finally {
    load.stop();
  }
  let header: ReportHeader | null = null;
  if (options.name === 'all') {
    const trained = [...runs.values()];
    const value: ReportHeader = {
      command: options.command,
      scale: options.scale.name,
      seeds,
      machine: machine(),
      backend: { name: options.backend.name, device: options.backend.device },
      startedAt: started.toISOString(),
      seconds: (performance.now() - t0) / 1000,
      cpuSeconds: cpuSecondsSince(cpu0),
      load: load.summary(),
      runs: {
        trained: trained.filter((r) => !r.result.reused).length,
        reused: trained.filter((r) => r.result.reused).length,
      },
      experiments: names,
    };
    await writeJson(options.out, HEADER_FILE, value);
    header = JSON.parse(await readFile(join(options.out, HEADER_FILE), 'utf8')) as ReportHeader;
    await writeText(options.out, REPORT_FILE, renderReport(header, results));
    files.push(HEADER_FILE, REPORT_FILE);
  }
  return { results, header, files };
}

/** REPORT.md again from the JSON files in OUT (what a test compares the written report with). */
export async function renderReportFromFiles(out: string): Promise<string> {
  const header = JSON.parse(await readFile(join(out, HEADER_FILE), 'utf8')) as ReportHeader;
  const results: ExperimentResults = {};
  for (const name of header.experiments) {
    (results as Record<string, unknown>)[name] = JSON.parse(await readFile(join(out, `${name}.json`), 'utf8'));
  }
  return renderReport(header, results);
}

export function machine(): Machine {
  const list = cpus();
  return {
    cpu: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    platform: `${platform()} ${release()} ${arch()}`,
    node: process.version,
  };
}

function figuresOf(json: { figures?: unknown }): string[] {
  const f = json.figures;
  if (!f) return [];
  const flat = (x: unknown): string[] =>
    typeof x === 'string'
      ? [x]
      : Array.isArray(x)
        ? x.flatMap(flat)
        : typeof x === 'object' && x
          ? Object.values(x).flatMap(flat)
          : [];
  return flat(f);
}

/** The 1-minute load average every 15 s while experiments run. */
function sampleLoad(): { stop(): void; summary(): ReportHeader['load'] } {
  const samples = [loadavg()[0]];
  const timer = setInterval(() => samples.push(loadavg()[0]), 15_000);
  timer.unref();
  return {
    stop: () => clearInterval(timer),
    summary: () => ({
      start: samples[0],
      max: Math.max(...samples),
      mean: samples.reduce((s, x) => s + x, 0) / samples.length,
    }),
  };
}
