import { NEEDLE, QUERY, RetrievalSequences, retrievalVocabSize } from '../src/index.js';
import { describe, expect, it } from 'vitest';

const task = { keys: 16, values: 10, distractors: 20, needles: 5, queries: 3 };

describe('multi-needle retrieval data', () => {
  it('N needles among distractors, R distinct needles queried, targets only at the answers', () => {
    const set = new RetrievalSequences(task, 96, 50, 7);
    const vocab = retrievalVocabSize(task);
    expect(vocab).toBe(48);
    for (let i = 0; i < set.count; i++) {
      const e = set.example(i);
      expect(e.ids).toHaveLength(96);
      expect(e.contextLength).toBe(96 - 9);
      expect(e.ids.every((id) => Number.isInteger(id) && id >= 0 && id < vocab)).toBe(true);
      // Needles: NEEDLE key value at distinct places in the context, distinct keys.
      expect(e.needles).toHaveLength(5);
      expect(new Set(e.needles.map((n) => n.key)).size).toBe(5);
      for (const n of e.needles) {
        expect(n.position + 2).toBeLessThan(e.contextLength);
        expect(e.ids.slice(n.position, n.position + 3)).toEqual([NEEDLE, n.key, n.value]);
        expect(n.key).toBeGreaterThanOrEqual(2);
        expect(n.key).toBeLessThan(2 + task.keys);
        expect(n.value).toBeGreaterThanOrEqual(2 + task.keys);
        expect(n.value).toBeLessThan(2 + task.keys + task.values);
      }
      // Exactly N needle markers in the context, and the distractors in their own range.
      expect(e.ids.slice(0, e.contextLength).filter((id) => id === NEEDLE)).toHaveLength(5);
      // Queries: QUERY key value, the target of the key's position is the needle's value, nothing else counts.
      expect(new Set(e.queries.map((q) => q.needle)).size).toBe(3);
      for (const q of e.queries) {
        const needle = e.needles[q.needle];
        expect(e.ids.slice(q.position - 1, q.position + 2)).toEqual([QUERY, needle.key, needle.value]);
        expect(e.targets[q.position]).toBe(needle.value);
      }
      expect(e.targets.filter((t) => t !== -100)).toHaveLength(3);
    }
  });

  it('is a pure function of (seed, index): the same examples for every model; other seeds differ', () => {
    const a = new RetrievalSequences(task, 96, 10, 7);
    const b = new RetrievalSequences(task, 96, 10, 7);
    const c = new RetrievalSequences(task, 96, 10, 8);
    expect(a.batch([3, 9])).toEqual(b.batch([3, 9]));
    expect(a.example(3).ids).not.toEqual(c.example(3).ids);
    expect(a.example(3).ids).not.toEqual(a.example(4).ids);
  });

  it('refuses a task that does not fit, saying what was expected', () => {
    expect(() => new RetrievalSequences({ ...task, needles: 20 }, 96, 1, 0)).toThrow(
      /needles: expected at most keys \(16\)/,
    );
    expect(() => new RetrievalSequences({ ...task, queries: 6 }, 96, 1, 0)).toThrow(
      /queries: expected at most needles/,
    );
    expect(() => new RetrievalSequences(task, 30, 1, 0)).toThrow(/at least 39 tokens\), got 30/);
  });
});
