/**
 * The training kernels of the float32 double, rounded the way its forward kernels are (every operation
 * to float32, sums in order), with the structure of a device kernel: the attention backward streams
 * over the keys and recomputes each probability from the score and the saved float32 log-sum-exp
 * (FlashAttention-2), D is summed from the stored output (or the saved map outputs), the statistics
 * and adamw's moments are float32 whatever the dtype.
 */
import type { Kernels, TensorView, TrainingKernelName } from '@diff-transformer/core';
import type { MapOperands } from './float32-arithmetic.js';
import {
  data,
  dot,
  f,
  inverseRms,
  rmsNormRow,
  score,
  sigmoid,
  size,
  streamKeys,
  visibleKeys,
} from './float32-arithmetic.js';

/** sumSquares adds blocks of this many squares in order, then the blocks' sums in order (two stages). */
const SUM_BLOCK = 1024;

/**
 * One query row's backward through one softmax map over keys [0, visible): adds its terms to dK and dV
 * (laid out as k and v) and returns its query gradient. dO is the output gradient the map sees and D
 * = dO · O its row term.
 */
function rowBackward(
  map: MapOperands,
  query: number,
  visible: number,
  logSumExp: number,
  dO: Float32Array,
  D: number,
  dK: Float32Array,
  dV: Float32Array,
): Float32Array {
  const dq = new Float32Array(map.dk);
  for (let s = 0; s < visible; s++) {
    const p = f(Math.exp(f(score(map, query, s) - logSumExp)));
    const ko = map.key(s);
    const vo = map.value(s);
    const dP = dot(dO, 0, map.v, vo, map.dv);
    for (let c = 0; c < map.dv; c++) dV[vo + c] = f(dV[vo + c] + f(p * dO[c]));
    const dS = f(map.scale * f(p * f(dP - D)));
    for (let i = 0; i < map.dk; i++) {
      dq[i] = f(dq[i] + f(dS * map.k[ko + i]));
      dK[ko + i] = f(dK[ko + i] + f(dS * map.q[query + i]));
    }
  }
  return dq;
}

/** The operands of map m (0 or 1; 0 for attention) of head h, group g, batch entry b. */
function operands(q: TensorView, k: TensorView, v: TensorView, scale: number, b: number, g: number, m: 0 | 1) {
  const [, keys, keyHeads, dk] = k.shape;
  const [, , kvHeads, dv] = v.shape;
  const keyHead = keyHeads === kvHeads ? g : 2 * g + m;
  return {
    q: data(q),
    k: data(k),
    v: data(v),
    key: (s: number) => ((b * keys + s) * keyHeads + keyHead) * dk,
    value: (s: number) => ((b * keys + s) * kvHeads + g) * dv,
    dk,
    dv,
    scale,
  } satisfies MapOperands;
}

export function float32TrainingKernels(): Pick<Kernels, TrainingKernelName> {
  return {
    exp: (x) => data(x).map((value) => f(Math.exp(value))),
    mul: (a, b) => data(a).map((x, i) => f(x * data(b)[i])),
    scale: (x, attrs) => data(x).map((value) => f(f(f(attrs.alpha) * value) + f(attrs.beta))),
    sumSquares(x) {
      const values = data(x);
      let total = 0;
      for (let start = 0; start < values.length; start += SUM_BLOCK) {
        let block = 0;
        for (let i = start; i < Math.min(values.length, start + SUM_BLOCK); i++) {
          block = f(block + f(values[i] * values[i]));
        }
        total = f(total + block);
      }
      return Float32Array.of(total);
    },
    attentionWithStatistics(q, k, v, attrs, out, statistics) {
      const [batch, tokens, heads] = q.shape;
      const kvHeads = v.shape[2];
      const output = new Float32Array(size(out.shape));
      const logSumExp = new Float32Array(size(statistics.logSumExp.shape));
      for (let b = 0; b < batch; b++)
        for (let h = 0; h < heads; h++) {
          const map = operands(q, k, v, attrs.scale, b, Math.floor((h * kvHeads) / heads), 0);
          for (let t = 0; t < tokens; t++) {
            const row = (b * tokens + t) * heads + h;
            const r = streamKeys(map, row * map.dk, visibleKeys(t, attrs));
            output.set(r.output, row * map.dv);
            logSumExp[row] = r.logSumExp;
          }
        }
      return { output, statistics: { logSumExp, mapOutputs: null } };
    },
    diffAttentionWithStatistics(q, k, v, lambda, normWeight, attrs, out, statistics) {
      const [batch, tokens, halfHeads, dk] = q.shape;
      const [, , kvHeads, dv] = v.shape;
      const heads = halfHeads / 2;
      const output = new Float32Array(size(out.shape));
      const logSumExp = new Float32Array(size(statistics.logSumExp.shape));
      const mapOutputs = new Float32Array(2 * size(out.shape));
      for (let b = 0; b < batch; b++)
        for (let h = 0; h < heads; h++) {
          const g = Math.floor((h * kvHeads) / heads);
          const maps = [operands(q, k, v, attrs.scale, b, g, 0), operands(q, k, v, attrs.scale, b, g, 1)] as const;
          for (let t = 0; t < tokens; t++) {
            const row = (b * tokens + t) * heads + h;
            const [a, c] = ([0, 1] as const).map((m) => {
              const r = streamKeys(maps[m], (2 * row + m) * dk, visibleKeys(t, attrs));
              logSumExp[2 * row + m] = r.logSumExp;
              mapOutputs.set(r.output, (2 * row + m) * dv);
              return r.output;
            });
            const lam = lambda.shape.length === 3 ? data(lambda)[row] : data(lambda)[h];
            const u = a.map((x, j) => f(x - f(lam * c[j])));
            if (attrs.norm) rmsNormRow(u, attrs.norm.eps, normWeight && data(normWeight), attrs.norm.outputScale);
            output.set(u, row * dv);
          }
        }
      return { output, statistics: { logSumExp, mapOutputs } };
    },
    attentionBackward(q, k, v, output, statistics, dOut, attrs) {
      const [batch, tokens, heads] = q.shape;
      const kvHeads = v.shape[2];
      const grads = {
        dq: new Float32Array(size(q.shape)),
        dk: new Float32Array(size(k.shape)),
        dv: new Float32Array(size(v.shape)),
      };
      const lse = data(statistics.logSumExp);
      for (let b = 0; b < batch; b++)
        for (let h = 0; h < heads; h++) {
          const map = operands(q, k, v, attrs.scale, b, Math.floor((h * kvHeads) / heads), 0);
          for (let t = 0; t < tokens; t++) {
            const row = (b * tokens + t) * heads + h;
            const dO = data(dOut).subarray(row * map.dv, (row + 1) * map.dv);
            const D = dot(dO, 0, data(output), row * map.dv, map.dv);
            const dq = rowBackward(map, row * map.dk, visibleKeys(t, attrs), lse[row], dO, D, grads.dk, grads.dv);
            grads.dq.set(dq, row * map.dk);
          }
        }
      return grads;
    },
    diffAttentionBackward(q, k, v, lambda, normWeight, statistics, dOut, attrs, out) {
      const [batch, tokens, halfHeads, dk] = q.shape;
      const [, , kvHeads, dv] = v.shape;
      const heads = halfHeads / 2;
      const perToken = lambda.shape.length === 3;
      const lse = data(statistics.logSumExp);
      // Core checked that the saved map outputs are there.
      const saved = data(statistics.mapOutputs!);
      const weight = normWeight && data(normWeight);
      const grads = {
        dq: new Float32Array(size(q.shape)),
        dk: new Float32Array(size(k.shape)),
        dv: new Float32Array(size(v.shape)),
        dLambda: new Float32Array(size(lambda.shape)),
        dNormWeight: out.dNormWeight && new Float32Array(size(out.dNormWeight.shape)),
      };
      for (let b = 0; b < batch; b++)
        for (let h = 0; h < heads; h++) {
          const g = Math.floor((h * kvHeads) / heads);
          const maps = [operands(q, k, v, attrs.scale, b, g, 0), operands(q, k, v, attrs.scale, b, g, 1)] as const;
          for (let t = 0; t < tokens; t++) {
            const row = (b * tokens + t) * heads + h;
            const lam = perToken ? data(lambda)[row] : data(lambda)[h];
            const A = saved.subarray(2 * row * dv, (2 * row + 1) * dv);
            const B = saved.subarray((2 * row + 1) * dv, (2 * row + 2) * dv);
            const dY = data(dOut).subarray(row * dv, (row + 1) * dv);
            const dU = new Float32Array(dv);
            if (attrs.norm) {
              // dU = (g − n·mean(g ⊙ n)) / r with n = u/r, g = dOut ⊙ w · outputScale.
              const u = A.map((x, c) => f(x - f(lam * B[c])));
              const rho = inverseRms(u, attrs.norm.eps);
              const n = u.map((x) => f(x * rho));
              const gs = dY.map((x, c) => f(f(x * (weight ? weight[c] : 1)) * f(attrs.norm!.outputScale)));
              const mean = f(dot(gs, 0, n, 0, dv) / dv);
              for (let c = 0; c < dv; c++) dU[c] = f(f(gs[c] - f(n[c] * mean)) * rho);
              if (grads.dNormWeight) {
                for (let c = 0; c < dv; c++) {
                  grads.dNormWeight[c] = f(grads.dNormWeight[c] + f(f(dY[c] * n[c]) * f(attrs.norm.outputScale)));
                }
              }
            } else dU.set(dY);
            const dU2 = dU.map((x) => f(-lam * x));
            const index = perToken ? row : h;
            grads.dLambda[index] = f(grads.dLambda[index] - dot(dU, 0, B, 0, dv));
            const visible = visibleKeys(t, attrs);
            for (const m of [0, 1] as const) {
              const dO = m === 0 ? dU : dU2;
              const D = dot(dO, 0, m === 0 ? A : B, 0, dv);
              const query = (2 * row + m) * dk;
              const dq = rowBackward(maps[m], query, visible, lse[2 * row + m], dO, D, grads.dk, grads.dv);
              grads.dq.set(dq, query);
            }
          }
        }
      return grads;
    },
    rmsNormBackward(x, weight, dy, attrs, out) {
      const width = x.shape[x.shape.length - 1];
      const dx = new Float32Array(size(x.shape));
      const dWeight = out.dWeight && new Float32Array(width);
      const w = weight && data(weight);
      for (let r = 0; r < dx.length / width; r++) {
        const row = data(x).subarray(r * width, (r + 1) * width);
        const dRow = data(dy).subarray(r * width, (r + 1) * width);
        const rho = inverseRms(row, attrs.eps);
        const n = row.map((value) => f(value * rho));
        const g = dRow.map((value, j) => f(value * (w ? w[j] : 1)));
        const mean = f(dot(g, 0, n, 0, width) / width);
        for (let j = 0; j < width; j++) {
          dx[r * width + j] = f(f(g[j] - f(n[j] * mean)) * rho);
          if (dWeight) dWeight[j] = f(dWeight[j] + f(dRow[j] * n[j]));
        }
      }
      return { dx, dWeight };
    },
    swigluBackward(gate, up, dy) {
      const dGate = new Float32Array(size(gate.shape));
      const dUp = new Float32Array(dGate.length);
      data(gate).forEach((g, i) => {
        const s = sigmoid(g);
        dGate[i] = f(f(f(data(dy)[i] * data(up)[i]) * s) * f(1 + f(g * f(1 - s))));
        dUp[i] = f(f(data(dy)[i] * g) * s);
      });
      return { dGate, dUp };
    },
    embeddingBackward(ids, dy, attrs) {
      const width = dy.shape[dy.shape.length - 1];
      const table = new Float32Array(attrs.vocabSize * width);
      (ids.storage as Int32Array).forEach((id, i) => {
        for (let j = 0; j < width; j++) table[id * width + j] = f(table[id * width + j] + data(dy)[i * width + j]);
      });
      return table;
    },
    crossEntropy(logits, targets, attrs) {
      const [rows, vocab] = logits.shape;
      const dLogits = new Float32Array(rows * vocab);
      const scale = f(attrs.scale);
      let loss = 0;
      for (let n = 0; n < rows; n++) {
        const target = (targets.storage as Int32Array)[n];
        if (target === attrs.ignoreIndex || target < 0 || target >= vocab) continue;
        const row = data(logits).subarray(n * vocab, (n + 1) * vocab);
        const max = Math.max(...row);
        let total = 0;
        for (const x of row) total = f(total + f(Math.exp(f(x - max))));
        const logSumExp = f(max + f(Math.log(total)));
        loss = f(loss + f(logSumExp - row[target]));
        for (let j = 0; j < vocab; j++) {
          const p = f(Math.exp(f(row[j] - logSumExp)));
          dLogits[n * vocab + j] = f(scale * (j === target ? f(p - 1) : p));
        }
      }
      return { loss: Float32Array.of(f(scale * loss)), dLogits };
    },
    adamw(param, grad, m, v, attrs) {
      // The bias corrections on the host in float64, as the contract says; everything else in float32.
      const stepSize = f(attrs.learningRate / (1 - attrs.beta1 ** attrs.step));
      const root = f(Math.sqrt(1 - attrs.beta2 ** attrs.step));
      const decay = f(1 - attrs.learningRate * attrs.weightDecay);
      const [beta1, beta2, eps, gradScale] = [attrs.beta1, attrs.beta2, attrs.eps, attrs.gradScale].map(f);
      const [p, mm, vv] = [data(param), data(m), data(v)];
      data(grad).forEach((x, i) => {
        const g = f(gradScale * x);
        mm[i] = f(f(beta1 * mm[i]) + f(f(1 - beta1) * g));
        vv[i] = f(f(beta2 * vv[i]) + f(f(1 - beta2) * f(g * g)));
        const denominator = f(f(f(Math.sqrt(vv[i])) / root) + eps);
        p[i] = f(f(p[i] * decay) - f(stepSize * f(mm[i] / denominator)));
      });
    },
  };
}
