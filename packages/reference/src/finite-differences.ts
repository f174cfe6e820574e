import type { RefTensor } from './tensor.js';

/**
 * The gradient of a scalar function of x by central differences in float64: element i is
 * (L(x + h·eᵢ) − L(x − h·eᵢ)) / 2h, with x perturbed in place and restored. With h = 1e-5 on values of
 * order 1 the quotient is good to ~1e-10 (truncation h², round-off ε/h): an independent check of every
 * analytic gradient, the reference's own and a backend's.
 */
export function centralDifferences(x: RefTensor, loss: () => number, h = 1e-5): RefTensor {
  const gradient = new Float64Array(x.data.length);
  for (let i = 0; i < x.data.length; i++) {
    const saved = x.data[i];
    x.data[i] = saved + h;
    const up = loss();
    x.data[i] = saved - h;
    const down = loss();
    x.data[i] = saved;
    gradient[i] = (up - down) / (2 * h);
  }
  return { shape: [...x.shape], data: gradient };
}

/** Σ dy ⊙ y: the scalar whose gradient with respect to y is dy (a random projection of an output). */
export function projection(y: RefTensor, dy: RefTensor): number {
  let sum = 0;
  for (let i = 0; i < y.data.length; i++) sum += y.data[i] * dy.data[i];
  return sum;
}
