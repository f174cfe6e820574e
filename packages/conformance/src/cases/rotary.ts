/**
 * rotary: both pair layouts, partial tables (r < d rotates the first r dimensions only), a position
 * offset as in decoding, T = 1, and tables exactly as long as the positions used.
 */
import type { RotaryLayout } from '@diff-transformer/core';
import { ops, tidy } from '@diff-transformer/core';
import * as reference from '@diff-transformer/reference';
import type { ConformanceCase } from '../types.js';
import { defineCase } from './harness.js';
import { normal } from './inputs.js';

interface RotarySpec {
  readonly layout: RotaryLayout;
  readonly batch: number;
  readonly tokens: number;
  readonly heads: number;
  /** Head width d. */
  readonly width: number;
  /** Rotated width r ≤ d (the tables have r/2 columns). */
  readonly rotated: number;
  readonly positionOffset: number;
  /** Rows of the tables; at least positionOffset + tokens. */
  readonly positions: number;
  readonly theta?: number;
}

const SPECS: readonly RotarySpec[] = [
  { layout: 'interleaved', batch: 1, tokens: 7, heads: 3, width: 16, rotated: 16, positionOffset: 0, positions: 7 },
  { layout: 'half', batch: 1, tokens: 7, heads: 3, width: 16, rotated: 16, positionOffset: 0, positions: 7 },
  { layout: 'interleaved', batch: 1, tokens: 7, heads: 2, width: 64, rotated: 32, positionOffset: 5, positions: 16 },
  { layout: 'half', batch: 1, tokens: 7, heads: 2, width: 64, rotated: 32, positionOffset: 5, positions: 16 },
  {
    layout: 'interleaved',
    batch: 2,
    tokens: 1,
    heads: 4,
    width: 128,
    rotated: 128,
    positionOffset: 128,
    positions: 129,
    theta: 500000,
  },
  {
    layout: 'half',
    batch: 2,
    tokens: 1,
    heads: 4,
    width: 128,
    rotated: 128,
    positionOffset: 128,
    positions: 129,
    theta: 500000,
  },
  { layout: 'half', batch: 2, tokens: 33, heads: 4, width: 32, rotated: 32, positionOffset: 7, positions: 40 },
  { layout: 'interleaved', batch: 2, tokens: 33, heads: 1, width: 32, rotated: 2, positionOffset: 3, positions: 36 },
];

function nameOf(spec: RotarySpec): string {
  const partial = spec.rotated < spec.width ? ` r${spec.rotated}` : '';
  return (
    `rotary/${spec.layout} d${spec.width}${partial} ` +
    `B${spec.batch} T${spec.tokens} H${spec.heads} offset ${spec.positionOffset}`
  );
}

function rotaryCase(spec: RotarySpec): ConformanceCase {
  const shape = [spec.batch, spec.tokens, spec.heads, spec.width];
  const attrs = { layout: spec.layout, positionOffset: spec.positionOffset };
  return defineCase(nameOf(spec), 'rotary', async (ws, random) => {
    const x = await ws.floats(
      normal(
        random,
        shape.reduce((a, b) => a * b),
      ),
      shape,
    );
    const tables = reference.rotaryTables(spec.rotated, spec.theta ?? 10000, spec.positions);
    const tableShape = [spec.positions, spec.rotated / 2];
    const cos = await ws.floats(tables.cos.data, tableShape);
    const sin = await ws.floats(tables.sin.data, tableShape);
    const out = ws.own(tidy(() => ops.rotary(x.tensor, cos.tensor, sin.tensor, attrs)));
    return [
      { label: 'output', actual: await ws.read(out), expected: reference.rotary(x.ref, cos.ref, sin.ref, attrs) },
    ];
  });
}

export function rotaryCases(): ConformanceCase[] {
  return SPECS.map(rotaryCase);
}
