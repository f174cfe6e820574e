/** The case list itself: size, names, coverage, and that its inputs are well conditioned. */
import { GRADIENTS, KERNEL_NAMES, createRandom } from '@diff-transformer/core';
import { describe, expect, it } from 'vitest';
import { attentionInputs } from '../src/cases/attention.js';
import { BACKWARD_ATTENTION_SPECS, BACKWARD_DIFF_ATTENTION_SPECS } from '../src/cases/attention-backward.js';
import { diffAttentionInputs } from '../src/cases/diff-attention.js';
import { fixtureModel } from '../src/cases/fixtures.js';
import { GREEDY, greedyCaseName, greedyPrompt } from '../src/cases/generate.js';
import { seedOf } from '../src/cases/inputs.js';
import { Workspace } from '../src/cases/harness.js';
import type { RefTensor } from '@diff-transformer/reference';
import { conformanceCases, reference, selectCases } from '../src/index.js';
import { float32Backend } from './float32-backend.js';

/**
 * Every score row of one map: the scores of query row (b, t, query head) over the keys it sees, with the
 * key head its group reads.
 */
function scoreRows(q: RefTensor, k: RefTensor, keyHead: (h: number) => number, scale: number, visible: number) {
  const [batch, tokens, queryHeads, width] = q.shape;
  const [, keys, keyHeads] = k.shape;
  const rows: number[][] = [];
  for (let b = 0; b < batch; b++)
    for (let t = 0; t < tokens; t++)
      for (let h = 0; h < queryHeads; h++) {
        const row: number[] = [];
        for (let s = 0; s < visible; s++) {
          let dot = 0;
          for (let j = 0; j < width; j++) {
            dot +=
              q.data[((b * tokens + t) * queryHeads + h) * width + j] *
              k.data[((b * keys + s) * keyHeads + keyHead(h)) * width + j];
          }
          row.push(scale * dot);
        }
        rows.push(row);
      }
  return rows;
}

describe('conformance cases', () => {
  const cases = conformanceCases();

  it('are at least 60, with unique names of the form kernel/…', () => {
    expect(cases.length).toBeGreaterThanOrEqual(60);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
    for (const c of cases) expect(c.name.startsWith(`${c.kernel}/`), c.name).toBe(true);
  });

  it('cover every kernel of the contract, the whole model, cached decoding, generation and gradients', () => {
    const kernels = new Set<string>(cases.map((c) => c.kernel));
    for (const kernel of [...KERNEL_NAMES, 'model', 'decode', 'generate', 'gradients', 'opGradient'])
      expect(kernels.has(kernel), kernel).toBe(true);
  });

  it("cover every rule of core's gradient table, op by op", () => {
    const rules = Object.entries(GRADIENTS)
      .filter(([, row]) => !('noGradient' in row))
      .map(([op]) => op);
    expect(rules.length).toBeGreaterThanOrEqual(15);
    const covered = new Set(cases.filter((c) => c.kernel === 'opGradient').map((c) => c.name.split(/[/ ]/)[1]));
    expect([...covered].sort()).toEqual(rules.sort());
  });

  it('cover the shapes that break naive code', () => {
    const names = cases.map((c) => c.name).join('\n');
    for (const needle of [
      'T1',
      'T7',
      'T33',
      'T129',
      'd16',
      'd32',
      'd64',
      'd128',
      'gqa2',
      'gqa4',
      'mha',
      'non-causal',
      'keyOffset',
      '±1e4',
      'per-token λ',
      'λ in [−1, 2]',
      'interleaved',
      'half',
      ' r32',
      'transposeA',
      'transposeB',
      'shared weight',
    ]) {
      expect(names, needle).toContain(needle);
    }
  });

  it('model-level cases and the scaled rotary tables run in float32 whatever dtype is asked for', () => {
    // The RoPE scaling cases check core's tables, which are float32, against the formulas.
    for (const c of cases)
      expect(c.float32Only, c.name).toBe(
        ['model', 'decode', 'generate', 'gradients', 'opGradient'].includes(c.kernel) ||
          c.name.startsWith('rotary/rope scaling '),
      );
  });

  it('large cases are opt-in, and reach the sizes the default suite does not', () => {
    const large = cases.filter((c) => c.large);
    expect(large.length).toBeGreaterThanOrEqual(15);
    expect(selectCases().some((c) => c.large)).toBe(false);
    expect(selectCases(undefined, { large: true })).toHaveLength(cases.length);
    expect(selectCases('matmul/', { large: true }).filter((c) => c.large).length).toBeGreaterThanOrEqual(10);
    const names = large.map((c) => c.name).join('\n');
    for (const needle of ['M520 K45 N530', 'K1000', 'M3 K70 N300', 'cache 3000', 'cache 1600', 'T300']) {
      expect(names, needle).toContain(needle);
    }
  });

  it('filter by substring or RegExp (a /g RegExp included)', () => {
    expect(selectCases('diffAttention/v2').every((c) => c.name.startsWith('diffAttention/v2'))).toBe(true);
    expect(selectCases('diffAttention/v2').length).toBeGreaterThan(3);
    const global = /^softmax\//g;
    expect(selectCases(global).length).toBe(cases.filter((c) => c.kernel === 'softmax' && !c.large).length);
    expect(selectCases(global).length).toBe(selectCases(global).length);
  });

  const tied = "the large-score backward cases tie every row's top keys, at |scores| below 2^14 (their rows' premise)";
  it(tied, async () => {
    const ws = new Workspace(float32Backend('cases-tied'), 'float32', 'attentionBackward');
    let rows: number[][] = [];
    try {
      for (const spec of BACKWARD_ATTENTION_SPECS.filter((s) => s.largeScores === 'tied')) {
        const random = createRandom(seedOf(`attentionBackward/${spec.label}`));
        const { q, k, mask } = await attentionInputs(ws, random, spec);
        expect(mask.causal, spec.label).toBe(false);
        const group = (h: number) => Math.floor((h * spec.kvHeads) / spec.heads);
        rows = rows.concat(scoreRows(q.ref, k.ref, group, mask.scale, mask.keyLength));
      }
      for (const spec of BACKWARD_DIFF_ATTENTION_SPECS.filter((s) => s.largeScores === 'tied')) {
        const random = createRandom(seedOf(`diffAttentionBackward/${spec.label}`));
        const { q, k, mask } = await diffAttentionInputs(ws, random, spec);
        expect(mask.causal, spec.label).toBe(false);
        // q's half-heads 2h + m read key head 2g + m (per-map keys) or g (shared keys).
        const group = (half: number) => Math.floor(((half >> 1) * spec.kvHeads) / spec.heads);
        const keyHead = spec.keyMode === 'per-map' ? (half: number) => 2 * group(half) + (half % 2) : group;
        rows = rows.concat(scoreRows(q.ref, k.ref, keyHead, mask.scale, mask.keyLength));
      }
    } finally {
      ws.dispose();
    }
    expect(rows.length).toBeGreaterThan(300);
    for (const row of rows) {
      const max = Math.max(...row);
      expect(row.filter((score) => score === max).length).toBeGreaterThanOrEqual(2);
      // e^89 overflows float32: every row needs its maximum subtracted.
      expect(max).toBeGreaterThan(89);
      for (const score of row) {
        expect(Math.abs(score)).toBeLessThan(2 ** 14);
        expect(Number.isInteger(score / 16)).toBe(true);
      }
    }
  });

  it('greedy cases have every step decided by a margin far above float32 round-off', () => {
    for (const spec of GREEDY) {
      const { config, parameters } = fixtureModel(spec.fixture);
      const prompt = greedyPrompt(spec, createRandom(seedOf(greedyCaseName(spec))));
      const { margins } = reference.greedyContinuation(config, parameters, prompt, spec.maxNewTokens);
      expect(Math.min(...margins), greedyCaseName(spec)).toBeGreaterThan(1e-3);
    }
  });
});
