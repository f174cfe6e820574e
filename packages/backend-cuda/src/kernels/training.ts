/**
 * The elementwise kernels of training (native/elementwise_training.cu): exp, mul and scale (the gradient
 * rules' helpers; DIFF V1's λ goes through them even when only inferring), swiglu's backward and the AdamW
 * step in place. One thread per element, float32 arithmetic, stored in the input's dtype.
 */
import type {
  AdamWAttrs,
  ExpAttrs,
  MulAttrs,
  OutputSpec,
  ScaleAttrs,
  SwigluAttrs,
  SwigluGradientSpecs,
  SwigluGradients,
  TensorView,
} from '@diff-transformer/core';
import { sizeOf } from '@diff-transformer/core';
import { dtypeCode, pointerOf, type CudaStorage } from '../storage.js';
import type { KernelContext } from './context.js';
import { launchWithOutputs } from './outputs.js';

/**
 * The Float64Array the addon's adamw reads (native/training.h, AdamWParams): β1 β2 eps gradScale, then the
 * step's factors computed here in float64 as the contract asks: 1 − lr·weightDecay, lr / (1 − β1ᵗ) and
 * 1 / √(1 − β2ᵗ).
 */
export function adamwParams(attrs: AdamWAttrs): Float64Array {
  const { learningRate, beta1, beta2, eps, weightDecay, step, gradScale } = attrs;
  return Float64Array.of(
    beta1,
    beta2,
    eps,
    gradScale,
    1 - learningRate * weightDecay,
    learningRate / (1 - beta1 ** step),
    1 / Math.sqrt(1 - beta2 ** step),
  );
}

export function trainingElementwiseKernels(ctx: KernelContext) {
  return {
    exp(x: TensorView, _attrs: ExpAttrs, out: OutputSpec): CudaStorage {
      const y = ctx.output(out);
      return ctx.launch('exp', y, () =>
        ctx.addon.exp(pointerOf(x), y.pointer, sizeOf(out.shape), dtypeCode(out.dtype)),
      );
    },

    mul(a: TensorView, b: TensorView, _attrs: MulAttrs, out: OutputSpec): CudaStorage {
      const y = ctx.output(out);
      return ctx.launch('mul', y, () =>
        ctx.addon.mul(pointerOf(a), pointerOf(b), y.pointer, sizeOf(out.shape), dtypeCode(out.dtype)),
      );
    },

    scale(x: TensorView, attrs: ScaleAttrs, out: OutputSpec): CudaStorage {
      const y = ctx.output(out);
      return ctx.launch('scale', y, () =>
        ctx.addon.scale(pointerOf(x), y.pointer, sizeOf(out.shape), attrs.alpha, attrs.beta, dtypeCode(out.dtype)),
      );
    },

    swigluBackward(
      gate: TensorView,
      up: TensorView,
      dy: TensorView,
      _attrs: SwigluAttrs,
      out: SwigluGradientSpecs,
    ): SwigluGradients {
      return launchWithOutputs(ctx, 'swigluBackward', { dGate: out.dGate, dUp: out.dUp }, (g) =>
        ctx.addon.swigluBackward(
          pointerOf(gate),
          pointerOf(up),
          pointerOf(dy),
          g.dGate.pointer,
          g.dUp.pointer,
          sizeOf(gate.shape),
          dtypeCode(gate.dtype),
        ),
      );
    },

    adamw(param: TensorView, grad: TensorView, m: TensorView, v: TensorView, attrs: AdamWAttrs): void {
      ctx.launch('adamw', null, () =>
        ctx.addon.adamw(
          pointerOf(param),
          pointerOf(grad),
          pointerOf(m),
          pointerOf(v),
          sizeOf(param.shape),
          dtypeCode(param.dtype),
          adamwParams(attrs),
        ),
      );
    },
  };
}
