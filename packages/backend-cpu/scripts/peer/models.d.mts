/** Types of ./models.mjs, for the test that checks the peer graphs compute what the backend does. */
export declare const BENCH_MODEL: {
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  headDim: number;
  intermediate: number;
};
export declare function weightValues(shape: number[], seed: number): Float32Array;
export declare function matmulModel(m: number, n: number, k: number): Uint8Array;
export declare function attentionModel(t: number, heads: number, d: number): Uint8Array;
export declare function diffAttentionModel(t: number, heads: number, d: number): Uint8Array;
export declare function benchModel(t: number, past?: number): Uint8Array;
