import { heatmapsSvg, lossChartSpec, lossCurveSvg, trainingCurves } from '@diff-transformer/train';
import { describe, expect, it } from 'vitest';

describe('loss curves', () => {
  const steps = Array.from({ length: 1000 }, (_, i) => ({ step: i + 1, bitsPerByte: 8 - i / 250 }));
  const evaluations = [250, 500, 750, 1000].map((step) => ({ step, bitsPerByte: 8.2 - step / 250 }));

  it('averages the training loss over buckets of steps; validation keeps every point, marked', () => {
    const [train, validation] = trainingCurves(steps, evaluations, 100);
    expect(train.points).toHaveLength(100);
    expect(train.points[0]).toEqual({ step: 10, value: (8 * 10 - (0 + 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9) / 250) / 10 });
    expect(train.points[99].step).toBe(1000);
    expect(validation).toMatchObject({ name: 'validation', markers: true });
    expect(validation.points.map((p) => p.step)).toEqual([250, 500, 750, 1000]);
  });

  it('plots the loss in nats per token when asked, from records that carry it', () => {
    const logged = steps.map(({ step, bitsPerByte }) => ({ step, loss: bitsPerByte * Math.LN2, bitsPerByte }));
    const [train, validation] = trainingCurves(logged, [{ step: 1000, loss: 2 }], 100, 'loss');
    expect(train.points[0].value).toBeCloseTo(((8 * 10 - 45 / 250) / 10) * Math.LN2, 12);
    expect(validation.points).toEqual([{ step: 1000, value: 2 }]);
  });

  it('renders an SVG with both series, axes in steps and tokens with their units, and a legend', async () => {
    const svg = await lossCurveSvg(trainingCurves(steps, evaluations), { tokensPerStep: 2048, title: 'a run' });
    expect(svg.startsWith('<svg')).toBe(true);
    const texts = [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
    expect(texts).toEqual(
      expect.arrayContaining(['step', 'tokens', 'loss (bits per byte)', 'train', 'validation', 'a run', '0', '1.2M']),
    );
    // One line per series, and a marker for each of the four validation points only.
    expect(svg.match(/<g class="mark-line/g)?.length).toBe(2);
    expect(svg.match(/<g class="mark-symbol role-mark/g)?.length).toBe(1);
    const markers = svg.split('<g class="mark-symbol role-mark')[1].split('</g>')[0];
    expect(markers.match(/<path /g)?.length).toBe(4);
  });

  it('without tokens per step, no token axis', () => {
    const spec = lossChartSpec([{ name: 'train', points: [{ step: 1, value: 3 }] }]);
    expect((spec.axes as Array<{ title: string }>).map((a) => a.title)).toEqual(['step', 'loss (bits per byte)']);
  });

  it('other x quantities on a log axis, with error bars for the spread and a legend title', async () => {
    const series = [
      {
        name: 'DIFF',
        points: [
          { step: 1e5, value: 2, low: 1.9, high: 2.1 },
          { step: 4e5, value: 1.8 },
        ],
        markers: true,
      },
      { name: 'baseline', points: [{ step: 1e5, value: 2.1, low: 2.05, high: 2.15 }] },
    ];
    const options = { logStep: true, stepTitle: 'parameters', legendTitle: 'model', valueTitle: 'loss (nats)' };
    const spec = lossChartSpec(series, options);
    expect((spec.scales as Array<{ name: string; type: string }>)[0]).toMatchObject({ name: 'x', type: 'log' });
    const svg = await lossCurveSvg(series, options);
    const texts = [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
    expect(texts).toEqual(expect.arrayContaining(['parameters', 'model', 'loss (nats)', 'DIFF', 'baseline']));
    // One rule per point: the bars of the two spreads and zero-length ones where there is none.
    const rules = svg.split('<g class="mark-rule role-mark')[1].split('</g>')[0];
    expect(rules.match(/<line /g)?.length).toBe(3);
  });

  it('heatmaps: one panel per matrix, every cell drawn, titles, axes and a colour legend', async () => {
    const panel = (title: string, sign: number) => ({
      title,
      rows: 3,
      columns: 5,
      values: Array.from({ length: 15 }, (_, i) => sign * (i / 14)),
      rowLabels: ['a', 'b', 'c'],
    });
    const svg = await heatmapsSvg([panel('map 1', 1), panel('difference', -1)], {
      title: 'maps',
      rowTitle: 'query',
      columnTitle: 'key position (token)',
      valueTitle: 'attention weight',
    });
    expect(svg.startsWith('<svg')).toBe(true);
    const texts = [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
    expect(texts).toEqual(
      expect.arrayContaining(['maps', 'map 1', 'difference', 'query', 'key position (token)', 'attention weight']),
    );
    const rects = svg.split('<g class="mark-rect role-mark').slice(1);
    expect(rects).toHaveLength(2);
    for (const r of rects) expect(r.split('</g>')[0].match(/<path /g)?.length).toBe(15);
    // Negative and positive weights take different colours; 0 is the scale's middle.
    const cells = rects.map((r) => [...r.split('</g>')[0].matchAll(/fill="(rgb\([^)]*\))"/g)].map((m) => m[1]));
    const rgb = (c: string) => c.match(/\d+/g)!.map(Number);
    // The most positive cell is red-dominant, the most negative blue-dominant; both hold 15 distinct colours.
    const [red, , blue] = rgb(cells[0][14]);
    expect(red).toBeGreaterThan(blue);
    const [red2, , blue2] = rgb(cells[1][14]);
    expect(blue2).toBeGreaterThan(red2);
    for (const c of cells) expect(new Set(c).size).toBe(15);
  });
});
