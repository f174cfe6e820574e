/**
 * Multi-needle retrieval on synthetic data (the paper's Table 2 and Fig. 5 in miniature, in the spirit
 * of multi-query associative recall): N key–value needles among distractor tokens, then R of the keys
 * queried. A sequence of length T is
 *
 *   … distractors … NEEDLE k₁ v₁ … distractors … NEEDLE k₂ v₂ … | QUERY kᵢ vᵢ  QUERY kⱼ vⱼ …
 *   └──────────────── context: T − 3R tokens, N needles at random slots ───┘ └─ R queries ─┘
 *
 * and the model must predict vᵢ after "QUERY kᵢ": those R positions are the only targets (−100
 * elsewhere). Keys within a sequence are distinct; values are drawn independently. Token ids:
 * 0 NEEDLE, 1 QUERY, then the keys, the values and the distractors, each a range of its own.
 * Every sequence is a pure function of (seed, index), so every model sees the same examples.
 */
import { createRandom } from '@diff-transformer/core';
import type { SequenceSource } from '@diff-transformer/train';

export interface RetrievalTaskOptions {
  /** Distinct key tokens. */
  readonly keys: number;
  /** Distinct value tokens (chance accuracy is 1 / values). */
  readonly values: number;
  /** Distinct distractor tokens. */
  readonly distractors: number;
  /** N: needles per sequence. */
  readonly needles: number;
  /** R: needles queried per sequence (≤ N). */
  readonly queries: number;
}

export const NEEDLE = 0;
export const QUERY = 1;

export function retrievalVocabSize(o: RetrievalTaskOptions): number {
  return 2 + o.keys + o.values + o.distractors;
}

export interface RetrievalExample {
  readonly ids: number[];
  readonly targets: number[];
  /** Each needle's first position (the NEEDLE token; key and value follow), key and value. */
  readonly needles: ReadonlyArray<{ readonly position: number; readonly key: number; readonly value: number }>;
  /** Each query: the position whose next token is the answer (the key after QUERY), and which needle it asks. */
  readonly queries: ReadonlyArray<{ readonly position: number; readonly needle: number }>;
  /** Positions [0, contextLength) are the context; the queries follow. */
  readonly contextLength: number;
}

/** Checks the options and that N needles and R queries fit in `seqLen` tokens with room to spare. */
export function validateRetrievalTask(o: RetrievalTaskOptions, seqLen: number): void {
  const positive = (name: string, x: number) => {
    if (!Number.isInteger(x) || x < 1)
      throw new RangeError(`retrieval task: ${name}: expected an integer ≥ 1, got ${x}`);
  };
  positive('keys', o.keys);
  positive('values', o.values);
  positive('distractors', o.distractors);
  positive('needles', o.needles);
  positive('queries', o.queries);
  if (o.needles > o.keys) {
    throw new RangeError(
      `retrieval task: needles: expected at most keys (${o.keys}) (keys are distinct), got ${o.needles}`,
    );
  }
  if (o.queries > o.needles) {
    throw new RangeError(`retrieval task: queries: expected at most needles (${o.needles}), got ${o.queries}`);
  }
  const context = seqLen - 3 * o.queries;
  if (Math.floor(context / 3) < 2 * o.needles) {
    throw new RangeError(
      `retrieval task: sequence length: expected room for ${o.needles} needles among as many distractor slots ` +
        `after ${o.queries} queries (at least ${6 * o.needles + 3 * o.queries} tokens), got ${seqLen}`,
    );
  }
}

/** The examples of one (task, length, seed): a SequenceSource the trainer reads and evaluations index. */
export class RetrievalSequences implements SequenceSource {
  readonly options: RetrievalTaskOptions;
  readonly seqLen: number;
  readonly count: number;
  readonly seed: number;

  constructor(options: RetrievalTaskOptions, seqLen: number, count: number, seed: number) {
    validateRetrievalTask(options, seqLen);
    this.options = options;
    this.seqLen = seqLen;
    this.count = count;
    this.seed = seed;
  }

  example(index: number): RetrievalExample {
    const { keys, values, distractors, needles, queries } = this.options;
    const random = createRandom((Math.imul(this.seed + 1, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca77)) >>> 0);
    const int = (n: number) => Math.floor(random.next() * n);
    const keyBase = 2;
    const valueBase = keyBase + keys;
    const distractorBase = valueBase + values;
    const contextLength = this.seqLen - 3 * queries;
    const ids = Array.from({ length: this.seqLen }, () => distractorBase + int(distractors));
    // Needles at distinct 3-token slots of the context, in order of position.
    const slots = Math.floor(contextLength / 3);
    const chosen = sample(slots, needles, int).sort((a, b) => a - b);
    const keyOrder = sample(keys, needles, int);
    const placed = chosen.map((slot, i) => {
      const position = 3 * slot;
      const key = keyBase + keyOrder[i];
      const value = valueBase + int(values);
      ids[position] = NEEDLE;
      ids[position + 1] = key;
      ids[position + 2] = value;
      return { position, key, value };
    });
    const targets = new Array<number>(this.seqLen).fill(-100);
    const asked = sample(needles, queries, int);
    const queryList = asked.map((needle, r) => {
      const start = contextLength + 3 * r;
      ids[start] = QUERY;
      ids[start + 1] = placed[needle].key;
      ids[start + 2] = placed[needle].value;
      targets[start + 1] = placed[needle].value;
      return { position: start + 1, needle };
    });
    return { ids, targets, needles: placed, queries: queryList, contextLength };
  }

  batch(indices: readonly number[]): { ids: number[][]; targets: number[][] } {
    const examples = indices.map((i) => this.example(i));
    return { ids: examples.map((e) => e.ids), targets: examples.map((e) => e.targets) };
  }
}

/** k distinct integers from [0, n), in the order drawn (partial Fisher–Yates). */
function sample(n: number, k: number, int: (n: number) => number): number[] {
  const pool = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < k; i++) {
    const j = i + int(n - i);
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, k);
}
