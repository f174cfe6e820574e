/** The live loss curves of training in the page, drawn with uPlot (small, fast, made for streaming series). */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export class LossChart {
  readonly #steps: number[] = [];
  readonly #diff: number[] = [];
  readonly #baseline: number[] = [];
  readonly #plot: uPlot;

  constructor(container: HTMLElement) {
    const width = Math.min(720, Math.max(320, container.clientWidth || 720));
    this.#plot = new uPlot(
      {
        width,
        height: 260,
        scales: { x: { time: false } },
        axes: [{ label: 'step' }, { label: 'loss (nats/token)' }],
        series: [
          { label: 'step' },
          { label: 'DIFF', stroke: '#b2182b', width: 2 },
          { label: 'baseline', stroke: '#2166ac', width: 2, dash: [6, 3] },
        ],
      },
      [[], [], []],
      container,
    );
  }

  add(step: number, diff: number, baseline: number): void {
    this.#steps.push(step);
    this.#diff.push(diff);
    this.#baseline.push(baseline);
    this.#plot.setData([this.#steps, this.#diff, this.#baseline]);
  }

  reset(): void {
    this.#steps.length = 0;
    this.#diff.length = 0;
    this.#baseline.length = 0;
    this.#plot.setData([[], [], []]);
  }
}
