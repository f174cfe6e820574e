/**
 * RoPE scaling: the inverse frequencies inv_j (j < d/2) and the attention factor (a multiplier on cos
 * and sin) of every `rope_type` transformers' DiffLlama accepts, after its `modeling_rope_utils.py`
 * (transformers 5). With θ the base, d the rotated width and e_j = 2j/d:
 *
 *   default   inv_j = θ^(−e_j)
 *   linear    inv_j = θ^(−e_j) / factor                               (positions interpolated)
 *   dynamic   inv_j = θ'^(−e_j), θ' = θ·(factor·L/L₀ − (factor − 1))^(d/(d−2)) with L = max(length, L₀):
 *             NTK-aware; the base grows with the current length (see dynamicRopeLength)
 *   yarn      inv_j = interp_j·(1 − γ_j) + extrap_j·γ_j: extrap = θ^(−e_j), interp = extrap / factor, γ
 *             a linear ramp between the dimensions that turn β_fast and β_slow times in L₀ positions;
 *             attention factor 0.1·ln(factor) + 1 unless given
 *   longrope  inv_j = θ^(−e_j) / ext_j, ext = long_factor beyond L₀ positions, short_factor within;
 *             attention factor √(1 + ln(factor)/ln(L₀)) unless given
 *   llama3    wavelength λ_j = 2π/θ^(−e_j): kept below L₀/high_freq_factor, divided by factor above
 *             L₀/low_freq_factor, smoothly interpolated between (Llama 3.1)
 *
 * L₀ is `originalMaxPositions` (transformers' `original_max_position_embeddings`; for dynamic its
 * `max_position_embeddings`). Everything is computed in float64: these are the formulas exactly.
 */
import { ArgumentError } from '../errors.js';

export type RopeType = 'default' | 'linear' | 'dynamic' | 'yarn' | 'longrope' | 'llama3';

export const ROPE_TYPES: readonly RopeType[] = ['default', 'linear', 'dynamic', 'yarn', 'longrope', 'llama3'];

/** How positions are scaled, fully resolved (every default filled in). */
export type RopeScaling =
  | { readonly type: 'default' }
  | { readonly type: 'linear'; readonly factor: number }
  | { readonly type: 'dynamic'; readonly factor: number; readonly originalMaxPositions: number }
  | {
      readonly type: 'yarn';
      readonly factor: number;
      readonly originalMaxPositions: number;
      /** Multiplier on cos and sin (transformers' attention_factor, YaRN's mscale). */
      readonly attentionFactor: number;
      readonly betaFast: number;
      readonly betaSlow: number;
      /** Round the ramp's ends to whole dimensions (transformers' default). */
      readonly truncate: boolean;
    }
  | {
      readonly type: 'longrope';
      readonly shortFactor: readonly number[];
      readonly longFactor: readonly number[];
      readonly originalMaxPositions: number;
      readonly attentionFactor: number;
    }
  | {
      readonly type: 'llama3';
      readonly factor: number;
      readonly lowFreqFactor: number;
      readonly highFreqFactor: number;
      readonly originalMaxPositions: number;
    };

/**
 * What a config may write: yarn's attention factor may come from `mscale`/`mscaleAllDim` or from the
 * factor, and longrope's from `factor`; betaFast/betaSlow/truncate have transformers' defaults.
 */
export type RopeScalingInput =
  | Exclude<RopeScaling, { type: 'yarn' } | { type: 'longrope' }>
  | {
      readonly type: 'yarn';
      readonly factor: number;
      readonly originalMaxPositions: number;
      readonly attentionFactor?: number;
      readonly mscale?: number;
      readonly mscaleAllDim?: number;
      readonly betaFast?: number;
      readonly betaSlow?: number;
      readonly truncate?: boolean;
    }
  | {
      readonly type: 'longrope';
      readonly shortFactor: readonly number[];
      readonly longFactor: readonly number[];
      readonly originalMaxPositions: number;
      readonly attentionFactor?: number;
      /** Context extension ratio; used only to derive the attention factor when it is not given. */
      readonly factor?: number;
    };

/** YaRN's mscale: 0.1·m·ln(s) + 1 for a scale s > 1. */
function yarnMscale(scale: number, m = 1): number {
  return scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1;
}

/**
 * Validates a scaling description for a rotated width `dim`; returns it resolved, or the problems
 * (field relative to the scaling object, message) found.
 */
export function resolveRopeScaling(
  input: unknown,
  dim: number,
): { scaling: RopeScaling; problems: [] } | { scaling: null; problems: { field: string; message: string }[] } {
  const problems: { field: string; message: string }[] = [];
  if (input === undefined || input === null) return { scaling: { type: 'default' }, problems: [] };
  if (typeof input !== 'object' || Array.isArray(input))
    return { scaling: null, problems: [{ field: '', message: `expected an object {type, …}, got ${show(input)}` }] };
  const s = input as Record<string, unknown>;
  const number = (field: string, check: (x: number) => boolean, expected: string): number => {
    const value = s[field];
    if (typeof value !== 'number' || !Number.isFinite(value) || !check(value))
      problems.push({ field, message: `expected ${expected}, got ${show(value)}` });
    return value as number;
  };
  const optional = (field: string, check: (x: number) => boolean, expected: string): number | undefined =>
    s[field] === undefined ? undefined : number(field, check, expected);
  const atLeastOne = (x: number) => x >= 1;
  const positive = (x: number) => x > 0;
  const originalMaxPositions = () =>
    number('originalMaxPositions', (x) => Number.isSafeInteger(x) && x >= 1, 'a positive integer');
  let scaling: RopeScaling;
  switch (s.type) {
    case 'default':
      scaling = { type: 'default' };
      break;
    case 'linear':
      scaling = { type: 'linear', factor: number('factor', positive, 'a number > 0') };
      break;
    case 'dynamic':
      scaling = {
        type: 'dynamic',
        factor: number('factor', atLeastOne, 'a number ≥ 1'),
        originalMaxPositions: originalMaxPositions(),
      };
      if (dim <= 2) problems.push({ field: 'type', message: `dynamic NTK needs a rotated width > 2, got ${dim}` });
      break;
    case 'yarn': {
      const factor = number('factor', positive, 'a number > 0');
      const mscale = optional('mscale', Number.isFinite, 'a number');
      const mscaleAllDim = optional('mscaleAllDim', Number.isFinite, 'a number');
      const given = optional('attentionFactor', positive, 'a number > 0');
      const betaFast = optional('betaFast', positive, 'a number > 0') ?? 32;
      const betaSlow = optional('betaSlow', positive, 'a number > 0') ?? 1;
      if (s.truncate !== undefined && typeof s.truncate !== 'boolean')
        problems.push({ field: 'truncate', message: `expected true or false, got ${show(s.truncate)}` });
      // transformers: mscale / mscale_all_dim only when both are given and non-zero.
      const attentionFactor =
        given ??
        (mscale && mscaleAllDim ? yarnMscale(factor, mscale) / yarnMscale(factor, mscaleAllDim) : yarnMscale(factor));
      scaling = {
        type: 'yarn',
        factor,
        originalMaxPositions: originalMaxPositions(),
        attentionFactor,
        betaFast,
        betaSlow,
        truncate: (s.truncate as boolean | undefined) ?? true,
      };
      break;
    }
    case 'longrope': {
      const half = dim / 2;
      const list = (field: string): number[] => {
        const value = s[field];
        if (
          !Array.isArray(value) ||
          value.length !== half ||
          !value.every((x) => typeof x === 'number' && Number.isFinite(x) && x > 0)
        ) {
          problems.push({
            field,
            message: `expected ${half} numbers > 0 (one per rotated pair), got ${show(value)}`,
          });
          return [];
        }
        return [...value];
      };
      const shortFactor = list('shortFactor');
      const longFactor = list('longFactor');
      const original = originalMaxPositions();
      const factor = optional('factor', positive, 'a number > 0');
      let attentionFactor = optional('attentionFactor', positive, 'a number > 0');
      if (attentionFactor === undefined) {
        if (factor === undefined)
          problems.push({ field: 'attentionFactor', message: 'give attentionFactor, or factor to derive it from' });
        else attentionFactor = factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(original));
      }
      scaling = {
        type: 'longrope',
        shortFactor,
        longFactor,
        originalMaxPositions: original,
        attentionFactor: attentionFactor as number,
      };
      break;
    }
    case 'llama3': {
      scaling = {
        type: 'llama3',
        factor: number('factor', positive, 'a number > 0'),
        lowFreqFactor: number('lowFreqFactor', positive, 'a number > 0'),
        highFreqFactor: number('highFreqFactor', positive, 'a number > 0'),
        originalMaxPositions: originalMaxPositions(),
      };
      if (scaling.highFreqFactor <= scaling.lowFreqFactor)
        problems.push({
          field: 'highFreqFactor',
          message: `must be greater than lowFreqFactor (${scaling.lowFreqFactor}), got ${scaling.highFreqFactor}`,
        });
      break;
    }
    default:
      return {
        scaling: null,
        problems: [{ field: 'type', message: `expected one of ${ROPE_TYPES.join(', ')}, got ${show(s.type)}` }],
      };
  }
  return problems.length ? { scaling: null, problems } : { scaling: Object.freeze(scaling), problems: [] };
}

/** Scalings whose tables depend on the current length (max position + 1) of a forward. */
export function isLengthDependent(scaling: RopeScaling): boolean {
  return scaling.type === 'dynamic' || scaling.type === 'longrope';
}

/**
 * The inverse frequencies [d/2] and the attention factor of a scaling. `length` is the current total
 * length (max position + 1) of the forward, which only dynamic and longrope read; for dynamic it is
 * the length the base was last grown to (dynamicRopeLength), and absent means "not grown".
 */
export function ropeFrequencies(
  dim: number,
  theta: number,
  scaling: RopeScaling,
  length?: number,
): { inverseFrequencies: Float64Array; attentionFactor: number } {
  if (!(dim >= 2) || dim % 2 !== 0) throw new ArgumentError('rotary width', 'an even number ≥ 2', dim);
  const half = dim / 2;
  const plain = (base: number) => Float64Array.from({ length: half }, (_, j) => base ** ((-2 * j) / dim));
  switch (scaling.type) {
    case 'default':
      return { inverseFrequencies: plain(theta), attentionFactor: 1 };
    case 'linear':
      return { inverseFrequencies: plain(theta).map((f) => f / scaling.factor), attentionFactor: 1 };
    case 'dynamic': {
      const original = scaling.originalMaxPositions;
      const current = Math.max(length ?? original, original);
      const base = theta * (scaling.factor * (current / original) - (scaling.factor - 1)) ** (dim / (dim - 2));
      return { inverseFrequencies: plain(base), attentionFactor: 1 };
    }
    case 'yarn': {
      // The dimension that turns `rotations` times over the original length (YaRN's correction dim).
      const dimensionFor = (rotations: number) =>
        (dim * Math.log(scaling.originalMaxPositions / (rotations * 2 * Math.PI))) / (2 * Math.log(theta));
      let low = dimensionFor(scaling.betaFast);
      let high = dimensionFor(scaling.betaSlow);
      if (scaling.truncate) {
        low = Math.floor(low);
        high = Math.ceil(high);
      }
      low = Math.max(low, 0);
      high = Math.min(high, dim - 1);
      if (low === high) high += 0.001; // as transformers: no zero-width ramp
      const extrapolation = plain(theta);
      const inverseFrequencies = extrapolation.map((f, j) => {
        const ramp = Math.min(Math.max((j - low) / (high - low), 0), 1);
        const keep = 1 - ramp; // share of the original (extrapolated) frequency
        return (f / scaling.factor) * (1 - keep) + f * keep;
      });
      return { inverseFrequencies, attentionFactor: scaling.attentionFactor };
    }
    case 'longrope': {
      const ext =
        length !== undefined && length > scaling.originalMaxPositions ? scaling.longFactor : scaling.shortFactor;
      return {
        inverseFrequencies: plain(theta).map((f, j) => f / ext[j]),
        attentionFactor: scaling.attentionFactor,
      };
    }
    case 'llama3': {
      const { factor, lowFreqFactor, highFreqFactor, originalMaxPositions: original } = scaling;
      const lowFrequencyWavelength = original / lowFreqFactor;
      const highFrequencyWavelength = original / highFreqFactor;
      const inverseFrequencies = plain(theta).map((f) => {
        const wavelength = (2 * Math.PI) / f;
        if (wavelength < highFrequencyWavelength) return f;
        if (wavelength > lowFrequencyWavelength) return f / factor;
        const smooth = (original / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        return (1 - smooth) * (f / factor) + smooth * f;
      });
      return { inverseFrequencies, attentionFactor: 1 };
    }
  }
}

/**
 * transformers' dynamic update (`dynamic_rope_update`), as a state machine over forwards: `grown` is
 * the length the base was last computed for (initially L₀). A forward of total length L grows it
 * when L > grown; a forward shorter than L₀ after growth resets it to L₀ (the original frequencies).
 * So the base depends on the longest length since the last reset, not only on the current one, and
 * keys already in a KV cache keep the rotation they were given.
 */
export function dynamicRopeLength(grown: number, length: number, original: number): number {
  if (length > grown) return length;
  if (length < original && grown > original) return original;
  return grown;
}

function show(value: unknown): string {
  return value === undefined ? 'nothing' : JSON.stringify(value);
}
