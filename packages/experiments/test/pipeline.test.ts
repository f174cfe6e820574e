/**
 * The whole pipeline at the toy scale (seconds; it proves the pipeline, not the science): every
 * experiment trains, measures and writes its JSON, its section and its figures, REPORT.md is exactly
 * what the JSON renders to, and every number in it is one of the JSON's.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setBackend } from '@diff-transformer/core';
import '@diff-transformer/backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EXPERIMENTS,
  type ExperimentName,
  REPORT_FILE,
  renderReportFromFiles,
  sectionOf,
  type RunExperimentsResult,
  runExperiments,
  SCALES,
} from '../src/index.js';

const out = mkdtempSync(join(tmpdir(), 'difftx-experiments-'));
let first: RunExperimentsResult;
const lines: string[] = [];

beforeAll(async () => {
  const backend = await setBackend('cpu');
  first = await runExperiments({
    name: 'all',
    scale: SCALES.toy,
    backend,
    out,
    command: 'difftx experiment all --scale toy',
    log: (line) => lines.push(line),
  });
});

afterAll(() => rmSync(out, { recursive: true, force: true }));

/** Numbers as the report writes them: optional sign, digits with thousands commas, decimals. */
const NUMBER = /(?<![\w.,])[−+-]?\d+(?:,\d{3})*(?:\.\d+)?(?![\w.]|,\d)/g;
const normalise = (token: string) => token.replace(/^[−+-]/, '');

/** Every way the report may print a JSON number, and every number written inside a JSON string. */
function jsonForms(value: unknown, forms = new Set<string>()): Set<string> {
  if (typeof value === 'number') {
    const x = Math.abs(value);
    forms.add(String(x));
    for (let digits = 0; digits <= 6; digits++) forms.add(x.toFixed(digits));
    forms.add(x.toLocaleString('en-US'));
    forms.add(Math.round(x).toLocaleString('en-US'));
  } else if (typeof value === 'string') {
    for (const [token] of value.matchAll(NUMBER)) forms.add(normalise(token));
  } else if (Array.isArray(value)) {
    for (const v of value) jsonForms(v, forms);
  } else if (value && typeof value === 'object') {
    for (const v of Object.values(value)) jsonForms(v, forms);
  }
  return forms;
}

/**
 * Numbers the report's fixed wording holds (formulas and names from the paper): removed before the
 * check, so that only numbers the JSON must account for remain.
 */
const FIXED_WORDING = [
  'ICLR 2025',
  '95 %',
  '1-minute',
  '1 − λinit',
  '1 − λ',
  '0.8 − 0.6·exp(−0.3·depth)',
  'map 1',
  'map 2',
  'map1',
  'map2',
  'top-1',
  'top-10',
  'Top-1',
  '< 0.001',
  'includes 0',
  'excludes 0',
];

describe('experiments at the toy scale', () => {
  it('writes every experiment: JSON, its section, SVG figures with axes and legends, and REPORT.md', () => {
    for (const name of EXPERIMENTS) {
      expect(existsSync(join(out, `${name}.json`)), name).toBe(true);
      expect(readFileSync(join(out, `${name}.md`), 'utf8')).toBe(sectionOf(name, first.results));
    }
    const figures = first.files.filter((f) => f.endsWith('.svg'));
    // lm: a curve per size and loss against parameters; retrieval: accuracy; maps per layer; λ per DIFF variant.
    expect(figures.length).toBe(2 + 1 + 1 + 2 + 4);
    for (const figure of figures) {
      const svg = readFileSync(join(out, figure), 'utf8');
      expect(svg.startsWith('<svg'), figure).toBe(true);
      expect(svg, figure).toMatch(/class="[^"]*role-axis/);
      expect(svg, figure).toMatch(/class="[^"]*role-legend/);
    }
    const report = readFileSync(join(out, REPORT_FILE), 'utf8');
    for (const figure of figures) expect(report).toContain(`](${figure})`);
    expect(first.header).toMatchObject({ command: 'difftx experiment all --scale toy', scale: 'toy', seeds: 2 });
    expect(first.header!.runs).toEqual({ trained: 22, reused: 0 });
  });

  it('REPORT.md is what the JSON files render to, and a changed JSON number changes it', async () => {
    const report = readFileSync(join(out, REPORT_FILE), 'utf8');
    expect(await renderReportFromFiles(out)).toBe(report);
    const path = join(out, 'lm.json');
    const saved = readFileSync(path, 'utf8');
    const lm = JSON.parse(saved);
    lm.summary[0].bitsPerByte.mean = 1.2345678;
    writeFileSync(path, JSON.stringify(lm));
    try {
      const changed = await renderReportFromFiles(out);
      expect(changed).not.toBe(report);
      expect(changed).toContain('1.2346 ± ');
    } finally {
      writeFileSync(path, saved);
    }
  });

  it('every number in REPORT.md is a number of the JSON it was made from', () => {
    let report = readFileSync(join(out, REPORT_FILE), 'utf8');
    // Link targets are file names, not results.
    report = report.replace(/\]\([^)]*\)/g, ']');
    for (const phrase of FIXED_WORDING) report = report.replaceAll(phrase, ' ');
    const forms = new Set<string>();
    for (const file of ['report.json', ...EXPERIMENTS.map((n) => `${n}.json`)]) {
      jsonForms(JSON.parse(readFileSync(join(out, file), 'utf8')), forms);
    }
    const numbers = [...report.matchAll(NUMBER)].map(([token]) => normalise(token));
    expect(numbers.length).toBeGreaterThan(200);
    expect(numbers.filter((n) => !forms.has(n))).toEqual([]);
  });

  it('a later command reuses the trained runs from OUT/runs, and says so', async () => {
    const backend = await setBackend('cpu');
    const log: string[] = [];
    const again = await runExperiments({
      name: 'outliers' satisfies ExperimentName,
      scale: SCALES.toy,
      backend,
      out,
      command: 'difftx experiment outliers --scale toy',
      log: (line) => log.push(line),
    });
    expect(again.header).toBeNull();
    const before = first.results.outliers!;
    const after = again.results.outliers!;
    // Same models from disk, same float64 measurements.
    expect(after.perModel).toEqual(before.perModel);
    // The first command trained all 22 runs; this one trained none (6 lm runs of the outliers' size, reused).
    expect(lines.some((l) => l.includes('reused'))).toBe(false);
    expect(log.filter((l) => / reused from /.test(l))).toHaveLength(6);
    expect(log.some((l) => / steps of /.test(l))).toBe(false);
  });
});
