/**
 * Loss curves as SVG through Vega (a maintained visualisation grammar that renders SVG headlessly, in
 * Node and in browsers alike, with no DOM or canvas): series in, an SVG document out. The bottom axis
 * counts steps; given the tokens per step, a top axis counts tokens. The same chart serves other x
 * quantities (parameters, context length: `stepTitle`, `logStep`) and spreads (a point's low/high is
 * drawn as an error bar); `heatmapsSvg` draws matrices (attention maps) side by side.
 */

export interface ChartPoint {
  /** The x value: a step, or what `stepTitle` names. */
  readonly step: number;
  readonly value: number;
  /** An error bar from low to high (e.g. mean ± std over seeds). */
  readonly low?: number;
  readonly high?: number;
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
  /** The bottom axis's title, with its unit; default "step". */
  readonly stepTitle?: string;
  /** A logarithmic bottom axis (for parameter counts, context lengths); default linear from 0. */
  readonly logStep?: boolean;
  /** The legend's title; default "loss". */
  readonly legendTitle?: string;
  /** Start the value axis at 0 (accuracies, attention mass); default: fitted to the values. */
  readonly valueZero?: boolean;
  readonly width?: number;
  readonly height?: number;
}

/** The Vega specification of the chart (exported for tests and for callers that render it themselves). */
export function lossChartSpec(series: readonly ChartSeries[], options: LossChartOptions = {}): Record<string, unknown> {
  const values = series.flatMap((s) =>
    s.points
      .filter((p) => Number.isFinite(p.value))
      .map((p) => ({
        series: s.name,
        step: p.step,
        value: p.value,
        // Without a spread the bar collapses onto the point (and draws nothing visible).
        low: Number.isFinite(p.low) ? p.low : p.value,
        high: Number.isFinite(p.high) ? p.high : p.value,
      })),
  );
  const maxStep = Math.max(1, ...values.map((v) => v.step));
  const marked = series.filter((s) => s.markers).map((s) => s.name);
  const axes: Record<string, unknown>[] = [
    { orient: 'bottom', scale: 'x', title: options.stepTitle ?? 'step', grid: true, tickCount: 8 },
    { orient: 'left', scale: 'y', title: options.valueTitle ?? 'loss (bits per byte)', grid: true },
  ];
  const x = options.logStep
    ? { name: 'x', type: 'log', domain: { data: 'points', field: 'step' }, range: 'width', nice: false }
    : { name: 'x', type: 'linear', domain: [0, maxStep], range: 'width', nice: false, zero: true };
  const scales: Record<string, unknown>[] = [
    x,
    {
      name: 'y',
      type: 'linear',
      domain: { data: 'points', fields: ['value', 'low', 'high'] },
      range: 'height',
      nice: true,
      zero: options.valueZero === true,
    },
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
    legends: [
      {
        stroke: 'color',
        fill: 'color',
        title: options.legendTitle ?? 'loss',
        orient: 'top-right',
        symbolType: 'stroke',
      },
    ],
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
        type: 'rule',
        from: { data: 'points' },
        encode: {
          enter: {
            x: { scale: 'x', field: 'step' },
            y: { scale: 'y', field: 'low' },
            y2: { scale: 'y', field: 'high' },
            stroke: { scale: 'color', field: 'series' },
            strokeWidth: { value: 1 },
          },
        },
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
  return renderSvg(lossChartSpec(series, options));
}

/** One matrix of a heatmap figure: rows × columns values, row-major. */
export interface HeatmapPanel {
  readonly title: string;
  readonly rows: number;
  readonly columns: number;
  readonly values: ArrayLike<number>;
  /** Labels of the rows (default 0, 1, …). */
  readonly rowLabels?: readonly string[];
}

export interface HeatmapOptions {
  readonly title?: string;
  /** Axis titles, with units. */
  readonly rowTitle?: string;
  readonly columnTitle?: string;
  /** The colour legend's title. */
  readonly valueTitle?: string;
  /** Width of each panel in pixels (default 320); the height follows the rows. */
  readonly panelWidth?: number;
  readonly cellHeight?: number;
}

/**
 * The Vega specification of panels of matrices side by side, one shared diverging colour scale centred
 * on 0 (so a negative weight, as a differential attention map has, shows in the other colour).
 */
export function heatmapSpec(panels: readonly HeatmapPanel[], options: HeatmapOptions = {}): Record<string, unknown> {
  const width = options.panelWidth ?? 320;
  const cellHeight = options.cellHeight ?? 14;
  const height = Math.max(...panels.map((p) => p.rows)) * cellHeight;
  const cells = panels.flatMap((panel, index) =>
    Array.from({ length: panel.rows * panel.columns }, (_, i) => ({
      panel: index,
      row: panel.rowLabels?.[Math.floor(i / panel.columns)] ?? String(Math.floor(i / panel.columns)),
      column: i % panel.columns,
      value: panel.values[i],
    })),
  );
  const extent = Math.max(1e-12, ...cells.map((c) => Math.abs(c.value)).filter(Number.isFinite));
  const gap = 48;
  return {
    $schema: 'https://vega.github.io/schema/vega/v6.json',
    width: panels.length * width + (panels.length - 1) * gap,
    height,
    padding: 8,
    background: 'white',
    ...(options.title ? { title: { text: options.title, anchor: 'start' } } : {}),
    data: [{ name: 'cells', values: cells }],
    scales: [
      {
        name: 'color',
        type: 'linear',
        domain: [-extent, 0, extent],
        range: { scheme: 'redblue', count: 3 },
        reverse: true,
        zero: false,
      },
    ],
    legends: [{ fill: 'color', type: 'gradient', title: options.valueTitle ?? 'value', orient: 'right' }],
    marks: panels.map((panel, index) => ({
      type: 'group',
      encode: { enter: { x: { value: index * (width + gap) }, width: { value: width }, height: { value: height } } },
      title: { text: panel.title, anchor: 'start', fontSize: 12 },
      scales: [
        {
          name: 'column',
          type: 'band',
          domain: { data: `panel${index}`, field: 'column' },
          range: [0, width],
          padding: 0,
        },
        {
          name: 'row',
          type: 'band',
          domain: panel.rowLabels ? [...panel.rowLabels] : Array.from({ length: panel.rows }, (_, r) => String(r)),
          range: [0, panel.rows * cellHeight],
          padding: 0,
        },
        { name: 'columnValue', type: 'linear', domain: [0, panel.columns - 1], range: [0, width], zero: true },
      ],
      axes: [
        { orient: 'bottom', scale: 'columnValue', title: options.columnTitle ?? 'column', tickCount: 6 },
        ...(index === 0 ? [{ orient: 'left', scale: 'row', title: options.rowTitle ?? 'row', labelLimit: 320 }] : []),
      ],
      marks: [
        {
          type: 'rect',
          from: { data: `panel${index}` },
          encode: {
            enter: {
              x: { scale: 'column', field: 'column' },
              width: { scale: 'column', band: 1 },
              y: { scale: 'row', field: 'row' },
              height: { scale: 'row', band: 1 },
              fill: { scale: 'color', field: 'value' },
            },
          },
        },
      ],
      data: [
        { name: `panel${index}`, source: 'cells', transform: [{ type: 'filter', expr: `datum.panel === ${index}` }] },
      ],
    })),
  };
}

/** Heatmap panels as an SVG document (Vega, loaded on first use). */
export async function heatmapsSvg(panels: readonly HeatmapPanel[], options: HeatmapOptions = {}): Promise<string> {
  return renderSvg(heatmapSpec(panels, options));
}

async function renderSvg(spec: Record<string, unknown>): Promise<string> {
  const vega = await import('vega');
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
