import { lossChartSpec, lossCurveSvg, trainingCurves } from '@diff-transformer/train';
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
});
