/**
 * The shape of the gradient table (tfjs's GradConfig, tinygrad's pattern table): every op of ops/ has a
 * row, either its gradient rule or the reason it has none. The rows themselves live in gradients.ts;
 * this file holds their types and the helper that checks a row's names, so the ops, the tape and the
 * table can all name them without importing each other.
 */
import type {
  AttentionMaskAttrs,
  CrossEntropyAttrs,
  DiffAttentionAttrs,
  MatmulAttrs,
  NarrowAttrs,
  RmsNormAttrs,
  RotaryAttrs,
  ScaleAttrs,
} from '../backend/kernels.js';
import type { Tensor } from '../tensor/tensor.js';

type NoAttrs = Readonly<Record<string, never>>;

/** The ops with a gradient rule, and the attributes their rule reads. */
export interface DifferentiableOps {
  add: NoAttrs;
  mul: NoAttrs;
  exp: NoAttrs;
  sigmoid: NoAttrs;
  scale: ScaleAttrs;
  swiglu: NoAttrs;
  matmul: MatmulAttrs;
  reshape: NoAttrs;
  narrow: NarrowAttrs;
  embedding: NoAttrs;
  rmsNorm: RmsNormAttrs;
  rotary: RotaryAttrs;
  attention: AttentionMaskAttrs;
  diffAttention: DiffAttentionAttrs;
  crossEntropy: CrossEntropyAttrs;
}

/** The ops without one: inside valueAndGrads they refuse an input that requires a gradient. */
export type NonDifferentiableOp =
  | 'crossEntropyWithGradient'
  | 'softmax'
  | 'argmax'
  | 'sumSquares'
  | 'swigluBackward'
  | 'rmsNormBackward'
  | 'embeddingBackward'
  | 'attentionWithStatistics'
  | 'diffAttentionWithStatistics'
  | 'attentionBackward'
  | 'diffAttentionBackward'
  | 'cacheWrite'
  | 'adamw';

export type DifferentiableOp = keyof DifferentiableOps;
export type OpName = DifferentiableOp | NonDifferentiableOp;

/** What a rule gets besides its saved tensors and attributes. */
export interface GradientContext {
  /** The shape of each input, by name (a view's or a slice's rule rebuilds its input's shape). */
  readonly shapes: Readonly<Record<string, readonly number[]>>;
  /**
   * Whether dy is valueAndGrads' default seed of ones: a loss that is the value itself can hand out the
   * gradient its kernel already computed instead of multiplying it by one.
   */
  isOnes(dy: Tensor): boolean;
}

/**
 * One op's gradient. Its forward returns one tensor y (and, on a recording tape, statistics it needs
 * later, such as an attention's log-sum-exp); the rule turns dy = ∂L/∂y into ∂L/∂input for every input
 * that is not a constant. Runs with no tape active, through the same ops and kernels as the forward.
 */
export interface GradientRule<A> {
  /** The op's tensor inputs, named in the order the op passes them. */
  readonly inputs: readonly string[];
  /** Inputs that may be absent (null): their saved tensor and their gradient are null then. */
  readonly optional: readonly string[];
  /** Inputs with no gradient (tables, ids, targets): one that requires a gradient is refused. */
  readonly constant: readonly string[];
  /**
   * What the rule reads, by name: an input, 'y', or a statistic of the forward. Held from the op's run
   * until its rule has run, then freed (and freed at once when no gradient reaches the op).
   */
  readonly save: readonly string[];
  readonly backward: (
    dy: Tensor,
    saved: Readonly<Record<string, Tensor | null>>,
    attrs: A,
    context: GradientContext,
  ) => Readonly<Record<string, Tensor | null>>;
}

/** An op without a gradient, and why: the message of its refusal. */
export interface NoGradient {
  readonly noGradient: string;
}

/** The rows of the ops with a rule (one mapped type, so `rows[op]` keeps op's own attributes). */
export type GradientRules = { readonly [K in DifferentiableOp]: GradientRule<DifferentiableOps[K]> };

/** Every op of ops/ and its row; the type makes a missing row a compile error. */
export type GradientTable = GradientRules & { readonly [K in NonDifferentiableOp]: NoGradient };

/**
 * A rule with its names checked: `saved` holds exactly the names in `save` (null only for optional
 * inputs), and the rule returns a gradient for every input but the constants.
 */
export function gradientRule<
  A,
  const I extends string,
  const S extends string,
  const C extends I = never,
  const N extends I = never,
>(rule: {
  readonly inputs: readonly I[];
  readonly optional?: readonly N[];
  readonly constant?: readonly C[];
  readonly save: readonly S[];
  readonly backward: (
    dy: Tensor,
    saved: { readonly [K in S]: K extends N ? Tensor | null : Tensor },
    attrs: A,
    context: GradientContext,
  ) => { readonly [K in Exclude<I, C>]: K extends N ? Tensor | null : Tensor };
}): GradientRule<A> {
  return {
    inputs: rule.inputs,
    optional: rule.optional ?? [],
    constant: rule.constant ?? [],
    save: rule.save,
    // The names were checked above, and the run path fills `saved` from exactly these names: the record
    // it passes has them, typed loosely once the row joins the table.
    backward: rule.backward as unknown as GradientRule<A>['backward'],
  };
}
