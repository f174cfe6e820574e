/**
 * Loss curves as SVG through Vega (a maintained visualisation grammar that renders SVG headlessly, in
 * Node and in browsers alike, with no DOM or canvas): series in, an SVG document out. The bottom axis
 * counts steps; given the tokens per step, a top axis counts tokens.
 */

export interface ChartPoint {
  readonly step: number;
  readonly value: number;
}

export interface ChartSeries {
  /** The legend's label, e.g. "train" or "validation". */
  readonly name: string;
  readonly points: readonly ChartPoint[];
  /** Mark each point (for sparse series such as validation); default: only a line. */
  readonly markers?: boolean;
}

export interface LossChartOptions {
  readonly title?: string;
  /** The value axis's title, with its unit; default "loss (bits per byte)". */
  readonly valueTitle?: string;
  /** Adds a top axis in tokens (step × tokensPerStep). */
  readonly tokensPerStep?: number;
  readonly width?: number;
  readonly height?: number;
}

/** The Vega specification of the chart (exported for tests and for callers that render it themselves). */
export function lossChartSpec(series: readonly ChartSeries[], options: LossChartOptions = {}): Record<string, unknown> {
  const values = series.flatMap((s) =>
    s.points.filter((p) => Number.isFinite(p.value)).map((p) => ({ series: s.name, step: p.step, value: p.value })),
  );
  const maxStep = Math.max(1, ...values.map((v) => v.step));
  const marked = series.filter((s) => s.markers).map((s) => s.name);
  const axes: Record<string, unknown>[] = [
    { orient: 'bottom', scale: 'x', title: 'step', grid: true, tickCount: 8 },
    { orient: 'left', scale: 'y', title: options.valueTitle ?? 'loss (bits per byte)', grid: true },
  ];
  const scales: Record<string, unknown>[] = [
    { name: 'x', type: 'linear', domain: [0, maxStep], range: 'width', nice: false, zero: true },
    { name: 'y', type: 'linear', domain: { data: 'points', field: 'value' }, range: 'height', nice: true, zero: false },
    { name: 'color', type: 'ordinal', domain: series.map((s) => s.name), range: 'category' },
  ];
  if (options.tokensPerStep !== undefined && options.tokensPerStep > 0) {
    scales.push({
      name: 'tokens',
      type: 'linear',
      domain: [0, maxStep * options.tokensPerStep],
      range: 'width',
      nice: false,
      zero: true,
    });
    axes.push({
      orient: 'top',
      scale: 'tokens',
      title: 'tokens',
      tickCount: 8,
      // 0, 500, 20k, 1.5M: SI prefixes without the "0k" a shared format gives zero.
      encode: {
        labels: {
          update: {
            text: {
              signal:
                "datum.value >= 1e6 ? format(datum.value / 1e6, '.3~r') + 'M' : " +
                "datum.value >= 1e3 ? format(datum.value / 1e3, '.3~r') + 'k' : format(datum.value, '~r')",
            },
          },
        },
      },
    });
  }
  return {
    $schema: 'https://vega.github.io/schema/vega/v6.json',
    width: options.width ?? 640,
    height: options.height ?? 360,
    padding: 8,
    background: 'white',
    ...(options.title ? { title: { text: options.title, anchor: 'start' } } : {}),
    data: [
      { name: 'points', values },
      {
        name: 'marked',
        source: 'points',
        transform: [{ type: 'filter', expr: `indexof(${JSON.stringify(marked)}, datum.series) >= 0` }],
      },
    ],
    scales,
    axes,
    legends: [{ stroke: 'color', fill: 'color', title: 'loss', orient: 'top-right', symbolType: 'stroke' }],
    marks: [
      {
        type: 'group',
        from: { facet: { name: 'series', data: 'points', groupby: 'series' } },
        marks: [
          {
            type: 'line',
            from: { data: 'series' },
            encode: {
              enter: {
                x: { scale: 'x', field: 'step' },
                y: { scale: 'y', field: 'value' },
                stroke: { scale: 'color', field: 'series' },
                strokeWidth: { value: 1.5 },
              },
            },
          },
        ],
      },
      {
        type: 'symbol',
        from: { data: 'marked' },
        encode: {
          enter: {
            x: { scale: 'x', field: 'step' },
            y: { scale: 'y', field: 'value' },
            fill: { scale: 'color', field: 'series' },
            size: { value: 30 },
          },
        },
      },
    ],
  };
}

/** The chart as an SVG document. Vega is loaded on first use, so importing this package stays light. */
export async function lossCurveSvg(series: readonly ChartSeries[], options: LossChartOptions = {}): Promise<string> {
  const vega = await import('vega');
  const view = new vega.View(vega.parse(lossChartSpec(series, options) as never), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
