/**
 * diffAttentionBackward: the gradients of differential attention, streaming like its forward. Per row
 * (b, t, h), from the saved map outputs A and B, λ and dOut:
 *   u = A − λ·B; with the fused norm, r = √(mean(u²) + eps), n = u/r, g = dOut ⊙ w · outputScale,
 *   dU = (g − n·mean(g ⊙ n)) / r  and  dW += dOut ⊙ n · outputScale  (dU = dOut without the norm);
 *   dλ = −B · dU;  map 1 is attention with output gradient dU (D₁ = dU · A), map 2 with −λ·dU
 *   (D₂ = −λ·dU · B), each through ./attention-backward.ts's row backward.
 * dk and dv add up over the heads of a GQA group and, with shared keys (V2), over both maps; dλ of a
 * per-head λ and dW over every row: all in doubles, in the fixed order batch, head, row.
 */
import type {
  AttentionStatisticsView,
  DiffAttentionAttrs,
  DiffAttentionGradientSpecs,
  TensorView,
} from '@diff-transformer/core';
import { floats } from '../storage.js';
import { type MapOperands, rowBackward } from './attention-backward.js';
import { KEY_BLOCK, visibleKeys } from './online-softmax.js';

export function diffAttentionBackward(
  q: TensorView,
  k: TensorView,
  v: TensorView,
  lambda: TensorView,
  normWeight: TensorView | null,
  statistics: AttentionStatisticsView,
  dOut: TensorView,
  attrs: DiffAttentionAttrs,
  _out: DiffAttentionGradientSpecs,
  grads: {
    dq: Float32Array;
    dk: Float32Array;
    dv: Float32Array;
    dLambda: Float32Array;
    dNormWeight: Float32Array | null;
  },
): void {
  const Q = floats(q);
  const K = floats(k);
  const V = floats(v);
  const lambdas = floats(lambda);
  const dY = floats(dOut);
  const lse = floats(statistics.logSumExp);
  // Core checked that the saved map outputs are there.
  const maps = floats(statistics.mapOutputs!);
  const { norm } = attrs;
  const weight = norm && normWeight ? floats(normWeight) : null;
  const [batch, tokens, halfHeads, dk] = q.shape;
  const numHeads = halfHeads / 2;
  const [, capacity, keyHeads] = k.shape;
  const [, , numKvHeads, dv] = v.shape;
  const sharedKeys = keyHeads === numKvHeads;
  const lambdaPerToken = lambda.shape.length === 3;

  const dK = new Float64Array(grads.dk.length);
  const dV = new Float64Array(grads.dv.length);
  const dLambda = new Float64Array(grads.dLambda.length);
  const dW = new Float64Array(dv);
  const dq = new Float64Array(dk);
  const u = new Float64Array(dv);
  const dU = new Float64Array(dv);
  const dU2 = new Float64Array(dv);
  const scores = new Float64Array(KEY_BLOCK);

  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < numHeads; h++) {
      const g = Math.floor((h * numKvHeads) / numHeads);
      const operands = (m: 0 | 1): MapOperands => ({
        Q,
        K,
        V,
        key: (b * capacity * keyHeads + (sharedKeys ? g : 2 * g + m)) * dk,
        keyStride: keyHeads * dk,
        value: (b * capacity * numKvHeads + g) * dv,
        valueStride: numKvHeads * dv,
        dk,
        dv,
        scale: attrs.scale,
      });
      const map1 = operands(0);
      const map2 = operands(1);
      for (let t = 0; t < tokens; t++) {
        const row = (b * tokens + t) * numHeads + h;
        const lam = lambdaPerToken ? lambdas[row] : lambdas[h];
        const a = 2 * row * dv;
        const bOffset = a + dv;
        for (let c = 0; c < dv; c++) u[c] = maps[a + c] - lam * maps[bOffset + c];
        if (norm) {
          let sumOfSquares = 0;
          for (let c = 0; c < dv; c++) sumOfSquares += u[c] * u[c];
          const rho = 1 / Math.sqrt(sumOfSquares / dv + norm.eps);
          let projection = 0;
          for (let c = 0; c < dv; c++) {
            projection += dY[row * dv + c] * (weight ? weight[c] : 1) * norm.outputScale * u[c] * rho;
          }
          const mean = projection / dv;
          for (let c = 0; c < dv; c++) {
            const n = u[c] * rho;
            dU[c] = rho * (dY[row * dv + c] * (weight ? weight[c] : 1) * norm.outputScale - n * mean);
            dW[c] += dY[row * dv + c] * n * norm.outputScale;
          }
        } else {
          for (let c = 0; c < dv; c++) dU[c] = dY[row * dv + c];
        }
        let dLam = 0;
        let D1 = 0;
        let D2 = 0;
        for (let c = 0; c < dv; c++) {
          dLam -= dU[c] * maps[bOffset + c];
          D1 += dU[c] * maps[a + c];
          dU2[c] = -lam * dU[c];
          D2 += dU2[c] * maps[bOffset + c];
        }
        dLambda[lambdaPerToken ? row : h] += dLam;
        const end = visibleKeys(t, attrs);
        const query1 = 2 * row * dk;
        dq.fill(0);
        rowBackward(map1, query1, end, lse[2 * row], dU, D1, dq, dK, dV, scores);
        grads.dq.set(dq, query1);
        dq.fill(0);
        rowBackward(map2, query1 + dk, end, lse[2 * row + 1], dU2, D2, dq, dK, dV, scores);
        grads.dq.set(dq, query1 + dk);
      }
    }
  }
  grads.dk.set(dK);
  grads.dv.set(dV);
  grads.dLambda.set(dLambda);
  if (grads.dNormWeight) {
    if (norm) grads.dNormWeight.set(dW);
    else grads.dNormWeight.fill(0);
  }
}
