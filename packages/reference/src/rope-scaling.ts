/**
 * RoPE scaling in float64, written again from transformers 5's `modeling_rope_utils.py` (its
 * _compute_*_parameters and dynamic_rope_update), sharing no code with core: the inverse
 * frequencies and attention factor of each rope_type, tables for any positions, and the per-forward
 * state of dynamic NTK. It borrows only core's RopeScaling type (the resolved description).
 */
import type { ModelConfig, RopeScaling } from '@diff-transformer/core';
import { rotaryTables } from './rotary.js';
import type { RefTensor } from './tensor.js';
import { refZeros } from './tensor.js';

/** The inverse frequencies [dim/2] and the factor on cos/sin for a forward of total length `length`. */
export function scaledInverseFrequencies(
  dim: number,
  base: number,
  scaling: RopeScaling,
  length: number,
): { inverse: Float64Array; attentionFactor: number } {
  const half = dim / 2;
  // transformers: inv_freq = 1 / base^(arange(0, dim, 2) / dim)
  const defaultFor = (b: number) => {
    const out = new Float64Array(half);
    for (let i = 0; i < half; i++) out[i] = 1 / b ** ((2 * i) / dim);
    return out;
  };
  if (scaling.type === 'default') return { inverse: defaultFor(base), attentionFactor: 1 };
  if (scaling.type === 'linear') {
    const inverse = defaultFor(base);
    for (let i = 0; i < half; i++) inverse[i] /= scaling.factor;
    return { inverse, attentionFactor: 1 };
  }
  if (scaling.type === 'dynamic') {
    // seq_len below the original length is taken as the original length: the base is unchanged.
    const maxPositions = scaling.originalMaxPositions;
    const seqLen = Math.max(length, maxPositions);
    const grown = base * ((scaling.factor * seqLen) / maxPositions - (scaling.factor - 1)) ** (dim / (dim - 2));
    return { inverse: defaultFor(grown), attentionFactor: 1 };
  }
  if (scaling.type === 'yarn') {
    const { factor, betaFast, betaSlow, originalMaxPositions } = scaling;
    const correctionDim = (rotations: number) =>
      (dim * Math.log(originalMaxPositions / (rotations * 2 * Math.PI))) / (2 * Math.log(base));
    let low = correctionDim(betaFast);
    let high = correctionDim(betaSlow);
    if (scaling.truncate) [low, high] = [Math.floor(low), Math.ceil(high)];
    low = Math.max(low, 0);
    high = Math.min(high, dim - 1);
    const top = low === high ? high + 0.001 : high;
    const inverse = new Float64Array(half);
    for (let i = 0; i < half; i++) {
      const posFreq = base ** ((2 * i) / dim);
      const extrapolation = 1 / posFreq;
      const interpolation = 1 / (factor * posFreq);
      const ramp = Math.min(1, Math.max(0, (i - low) / (top - low)));
      const extrapolationFactor = 1 - ramp;
      inverse[i] = interpolation * (1 - extrapolationFactor) + extrapolation * extrapolationFactor;
    }
    return { inverse, attentionFactor: scaling.attentionFactor };
  }
  if (scaling.type === 'longrope') {
    // Long factors once the sequence passes the original length, short ones within it.
    const ext = length > scaling.originalMaxPositions ? scaling.longFactor : scaling.shortFactor;
    const inverse = new Float64Array(half);
    for (let i = 0; i < half; i++) inverse[i] = 1 / (ext[i] * base ** ((2 * i) / dim));
    return { inverse, attentionFactor: scaling.attentionFactor };
  }
  // llama3
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositions: oldContext } = scaling;
  const lowFreqWavelen = oldContext / lowFreqFactor;
  const highFreqWavelen = oldContext / highFreqFactor;
  const inverse = defaultFor(base);
  for (let i = 0; i < half; i++) {
    const wavelen = (2 * Math.PI) / inverse[i];
    const llama = wavelen > lowFreqWavelen ? inverse[i] / factor : inverse[i];
    const smooth = (oldContext / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
    const smoothed = ((1 - smooth) * llama) / factor + smooth * llama;
    const medium = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
    inverse[i] = medium ? smoothed : llama;
  }
  return { inverse, attentionFactor: 1 };
}

/** cos/sin [positions.length, dim/2] at the given positions, for a forward of total length `length`. */
export function scaledRotaryTables(
  dim: number,
  base: number,
  scaling: RopeScaling,
  positions: readonly number[],
  length: number,
): { cos: RefTensor; sin: RefTensor } {
  const half = dim / 2;
  const { inverse, attentionFactor } = scaledInverseFrequencies(dim, base, scaling, length);
  const cos = refZeros([positions.length, half]);
  const sin = refZeros([positions.length, half]);
  positions.forEach((p, row) => {
    for (let i = 0; i < half; i++) {
      cos.data[row * half + i] = Math.cos(p * inverse[i]) * attentionFactor;
      sin.data[row * half + i] = Math.sin(p * inverse[i]) * attentionFactor;
    }
  });
  return { cos, sin };
}

/**
 * transformers' dynamic_rope_update over a run of forwards, each given by its total length (max
 * position + 1): the length the frequencies of each forward are computed for. The cached length
 * starts at the original length (or `cached`, a model's state from earlier forwards); a longer forward
 * grows it, a forward shorter than the original resets it.
 */
export function dynamicForwardLengths(lengths: readonly number[], original: number, cached = original): number[] {
  let maxSeqLenCached = cached;
  return lengths.map((seqLen) => {
    const before = maxSeqLenCached;
    if (seqLen > before) maxSeqLenCached = seqLen;
    if (seqLen < original && before > original) maxSeqLenCached = original;
    return maxSeqLenCached;
  });
}

/**
 * The rotary rows [T, d/2] of a sequence fed through forwards of `steps` tokens each: token t is
 * rotated with the tables of the forward that took it, as a KV cache keeps it. `scaledLengths[i]` is
 * the length forward i's scaling sees; by default its total length, and for dynamic NTK the state a
 * fresh model reaches (dynamicForwardLengths). Plain RoPE gives rotary.ts's tables unchanged.
 */
export function modelRotaryRows(
  config: Pick<ModelConfig, 'headDim' | 'rope'>,
  steps: readonly number[],
  scaledLengths?: readonly number[],
): { cos: RefTensor; sin: RefTensor } {
  const { scaling, theta } = config.rope;
  const tokens = steps.reduce((a, b) => a + b, 0);
  if (scaling.type === 'default') return rotaryTables(config.headDim, theta, tokens);
  const ends = steps.map((_, i) => steps.slice(0, i + 1).reduce((a, b) => a + b, 0));
  const lengths =
    scaledLengths ?? (scaling.type === 'dynamic' ? dynamicForwardLengths(ends, scaling.originalMaxPositions) : ends);
  const half = config.headDim / 2;
  const cos = refZeros([tokens, half]);
  const sin = refZeros([tokens, half]);
  steps.forEach((count, i) => {
    const start = ends[i] - count;
    const positions = Array.from({ length: count }, (_, k) => start + k);
    const rows = scaledRotaryTables(config.headDim, theta, scaling, positions, lengths[i]);
    cos.data.set(rows.cos.data, start * half);
    sin.data.set(rows.sin.data, start * half);
  });
  return { cos, sin };
}
