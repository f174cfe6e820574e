/**
 * difftx experiment, as a user runs it: each experiment at the toy scale (seconds: the pipeline, not
 * the science) writes its JSON, section and figures; bad input is one line and exit 2.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../dist/difftx.js', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'difftx-experiment-'));

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function difftx(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 600_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('difftx experiment', () => {
  it('runs each experiment at the toy scale, reusing the runs an earlier one trained', () => {
    const out = join(scratch, 'toy');
    for (const name of ['lm', 'retrieval', 'attention-noise', 'outliers', 'ablations']) {
      const r = difftx('experiment', name, '--scale', 'toy', '--backend', 'cpu', '--out', out);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^${name}: done in \\d+ s; wrote \\d+ files in `));
      const json = JSON.parse(readFileSync(join(out, `${name}.json`), 'utf8'));
      expect(json.experiment).toBe(name);
      expect(readFileSync(join(out, `${name}.md`), 'utf8')).toMatch(/^## /);
      for (const figure of r.stdout.split('\n').filter((l) => l.trim().endsWith('.svg'))) {
        expect(readFileSync(join(out, figure.trim()), 'utf8').startsWith('<svg')).toBe(true);
      }
    }
    // attention-noise took the retrieval models, outliers and ablations the lm models: trained once.
    const retrieval = JSON.parse(readFileSync(join(out, 'retrieval.json'), 'utf8'));
    expect(retrieval.runs.every((run: { reused: boolean }) => !run.reused)).toBe(true);
    const ablations = JSON.parse(readFileSync(join(out, 'ablations.json'), 'utf8'));
    const reused = ablations.runs.filter((run: { reused: boolean }) => run.reused);
    expect(reused.map((run: { variant: string }) => run.variant).sort()).toEqual([
      'differential',
      'differential',
      'standard',
      'standard',
    ]);
    expect(existsSync(join(out, 'REPORT.md'))).toBe(false);
  });

  it('--json prints the results; --scale FILE replaces sections of tiny', () => {
    const scale = join(scratch, 'scale.json');
    const toy = JSON.parse(
      difftx('experiment', 'lm', '--scale', 'toy', '--seeds', '1', '--out', join(scratch, 'a'), '--json').stdout,
    );
    expect(toy.results.lm.seeds).toBe(1);
    expect(toy.results.lm.summary).toHaveLength(2 * 3);
    writeFileSync(scale, JSON.stringify({ name: 'mine', seeds: 1, lm: { sizes: toy.results.lm.sizes.slice(0, 0) } }));
    const r = difftx('experiment', 'lm', '--scale', scale, '--out', join(scratch, 'b'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /--scale .*scale\.json: .*lm\.sizes: expected a non-empty array of \{name, model\}, got \[\]/,
    );
  });

  it('refuses what it cannot run with one line and exit 2, writing nothing', () => {
    const out = join(scratch, 'nothing');
    for (const [args, pattern] of [
      [[], /expected one experiment name \(lm, retrieval, attention-noise, outliers, ablations, all\), got none/],
      [['everything'], /expected one of lm, retrieval, attention-noise, outliers, ablations, all, got "everything"/],
      [['lm', '--scale', 'huge'], /--scale: expected toy, tiny, small or a JSON file, got "huge"/],
      [['lm', '--seeds', '0'], /--seeds/],
      [['lm', '--backend', 'abacus'], /abacus/],
    ] as const) {
      const r = difftx('experiment', ...args, '--out', out);
      expect(r.code, r.stderr).toBe(2);
      expect(
        r.stderr
          .trim()
          .split('\n')
          .filter((l) => l.startsWith('difftx:')),
      ).toHaveLength(1);
      expect(r.stderr).toMatch(pattern);
    }
    expect(existsSync(out)).toBe(false);
  });
});
