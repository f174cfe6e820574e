/**
 * A T×T attention map on a canvas: one pixel per cell drawn into a T×T image and scaled up without
 * smoothing, so a 256-token map costs one putImageData. Hover or the arrow keys pick a cell, and its
 * query token, key token and value are written to a live region. Written here rather than taken from
 * a chart library: none draws a dense interactive matrix this cheaply (Vega-Lite would add ~1 MB of
 * script and one mark per cell).
 */
import { interpolateRdBu, interpolateViridis } from 'd3-scale-chromatic';

export type ColorScale = 'sequential' | 'diverging';

export interface HeatmapData {
  readonly values: Float64Array;
  readonly size: number;
  /** The token of each position, for the readout. */
  readonly tokens: readonly string[];
  readonly scale: ColorScale;
}

const CSS_SIZE = 288;

/** Parses the rgb(…) strings d3's interpolators return into bytes (a 256-entry table per scale). */
function palette(interpolate: (t: number) => string): Uint8ClampedArray {
  const table = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const color = interpolate(i / 255);
    const match = /rgb\((\d+),\s*(\d+),\s*(\d+)\)/.exec(color);
    const hex = /^#([0-9a-f]{6})$/i.exec(color);
    const rgb = match
      ? [Number(match[1]), Number(match[2]), Number(match[3])]
      : hex
        ? [0, 2, 4].map((j) => Number.parseInt(hex[1].slice(j, j + 2), 16))
        : [0, 0, 0];
    table.set(rgb, i * 3);
  }
  return table;
}

const PALETTES: Record<ColorScale, Uint8ClampedArray> = {
  sequential: palette(interpolateViridis),
  // Red for positive, blue for negative (RdBu reversed), white at zero.
  diverging: palette((t) => interpolateRdBu(1 - t)),
};

/** Shows a token so that spaces and line breaks are visible in the readout. */
export function showToken(token: string): string {
  return JSON.stringify(token).slice(1, -1).replaceAll(' ', '␣');
}

export class Heatmap {
  readonly element: HTMLElement;
  readonly #canvas: HTMLCanvasElement;
  readonly #readout: HTMLElement;
  readonly #legend: HTMLElement;
  readonly #title: string;
  #data: HeatmapData | null = null;
  #range = 1;
  #cursor: [number, number] = [0, 0];
  #image: HTMLCanvasElement | null = null;
  /** Whether a cell was picked: a new map then reads out that cell's new value. */
  #picked = false;

  constructor(title: string, id: string) {
    this.#title = title;
    this.element = document.createElement('figure');
    this.element.className = 'heatmap';
    this.element.id = id;
    const caption = document.createElement('figcaption');
    caption.textContent = title;
    this.#canvas = document.createElement('canvas');
    this.#canvas.tabIndex = 0;
    this.#canvas.setAttribute('role', 'img');
    this.#canvas.setAttribute('aria-label', `${title}: no map yet`);
    this.#canvas.width = CSS_SIZE * devicePixelRatio;
    this.#canvas.height = CSS_SIZE * devicePixelRatio;
    this.#canvas.style.width = `${CSS_SIZE}px`;
    this.#canvas.style.height = `${CSS_SIZE}px`;
    this.#legend = document.createElement('div');
    this.#legend.className = 'legend';
    this.#readout = document.createElement('output');
    this.#readout.className = 'readout';
    this.#readout.setAttribute('aria-live', 'polite');
    this.#readout.textContent = 'Hover a cell, or focus the map and use the arrow keys.';
    this.element.append(caption, this.#canvas, this.#legend, this.#readout);
    this.#canvas.addEventListener('mousemove', (event) => this.#hover(event));
    this.#canvas.addEventListener('keydown', (event) => this.#key(event));
  }

  /** Draws a map; `range` is the largest |value| the colors span (shared by maps shown side by side). */
  show(data: HeatmapData | null, range?: number): void {
    this.#data = data;
    if (!data) {
      this.#image = null;
      this.#draw();
      this.#legend.textContent = '';
      this.#readout.textContent = 'No map for this model.';
      this.#canvas.setAttribute('aria-label', `${this.#title}: no map`);
      return;
    }
    let max = 0;
    for (const v of data.values) max = Math.max(max, Math.abs(v));
    this.#range = range ?? (max || 1);
    const { size, values, scale } = data;
    const table = PALETTES[scale];
    const pixels = new ImageData(size, size);
    for (let i = 0; i < size * size; i++) {
      const t = scale === 'sequential' ? values[i] / this.#range : (values[i] / this.#range + 1) / 2;
      const index = Math.max(0, Math.min(255, Math.round(t * 255))) * 3;
      pixels.data[i * 4] = table[index];
      pixels.data[i * 4 + 1] = table[index + 1];
      pixels.data[i * 4 + 2] = table[index + 2];
      pixels.data[i * 4 + 3] = 255;
    }
    const image = document.createElement('canvas');
    image.width = size;
    image.height = size;
    image.getContext('2d')!.putImageData(pixels, 0, 0);
    this.#image = image;
    this.#cursor = [Math.min(this.#cursor[0], size - 1), Math.min(this.#cursor[1], size - 1)];
    this.#legend.textContent =
      scale === 'sequential'
        ? `0 (dark) … ${this.#range.toPrecision(3)} (yellow)`
        : `−${this.#range.toPrecision(3)} (blue) … 0 (white) … ${this.#range.toPrecision(3)} (red)`;
    this.#canvas.setAttribute(
      'aria-label',
      `${this.#title}: ${size} by ${size} map, queries down, keys across; ` +
        'focus it and use the arrow keys to read cells',
    );
    if (this.#picked) this.#select(...this.#cursor);
    else this.#draw();
  }

  #draw(): void {
    const context = this.#canvas.getContext('2d')!;
    const side = this.#canvas.width;
    context.fillStyle = '#f4f4f4';
    context.fillRect(0, 0, side, side);
    if (!this.#image || !this.#data) return;
    context.imageSmoothingEnabled = false;
    context.drawImage(this.#image, 0, 0, side, side);
    const cell = side / this.#data.size;
    const [t, s] = this.#cursor;
    context.strokeStyle = '#000';
    context.lineWidth = Math.max(1, devicePixelRatio);
    context.strokeRect(s * cell, t * cell, cell, cell);
  }

  #hover(event: MouseEvent): void {
    if (!this.#data) return;
    const rect = this.#canvas.getBoundingClientRect();
    const size = this.#data.size;
    const s = Math.floor(((event.clientX - rect.left) / rect.width) * size);
    const t = Math.floor(((event.clientY - rect.top) / rect.height) * size);
    if (s < 0 || t < 0 || s >= size || t >= size) return;
    this.#select(t, s);
  }

  #key(event: KeyboardEvent): void {
    if (!this.#data) return;
    const moves: Record<string, [number, number]> = {
      ArrowUp: [-1, 0],
      ArrowDown: [1, 0],
      ArrowLeft: [0, -1],
      ArrowRight: [0, 1],
    };
    const move = moves[event.key];
    if (!move) return;
    event.preventDefault();
    const last = this.#data.size - 1;
    const [t, s] = this.#cursor;
    this.#select(Math.max(0, Math.min(last, t + move[0])), Math.max(0, Math.min(last, s + move[1])));
  }

  #select(t: number, s: number): void {
    const data = this.#data!;
    this.#cursor = [t, s];
    this.#picked = true;
    const value = data.values[t * data.size + s];
    this.#readout.textContent =
      `query ${t} “${showToken(data.tokens[t] ?? '')}” → key ${s} “${showToken(data.tokens[s] ?? '')}”: ` +
      `${value.toFixed(4)}${s > t ? ' (masked: a later token)' : ''}`;
    this.#draw();
  }
}
