/**
 * Hugging Face transformers' DiffLlamaForCausalLM as the oracle: for each fixtures/diffllama/<case>/
 * (model/ folder + oracle.safetensors with float64 logits and greedy ids from transformers), the core
 * graph's logits must be within NMSE 1e-10 and greedy decoding must reproduce transformers' ids token
 * for token. `tiny-gqa` is committed (fixtures/README.md says how it was made), so this runs in CI;
 * more cases come from `python3 tools/parity-fixtures/generate.py diffllama --out fixtures/diffllama`
 * where transformers is installed.
 */
import { existsSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../fixtures/diffllama/', import.meta.url));
const CLI = fileURLToPath(new URL('../dist/difftx.js', import.meta.url));
const cases = existsSync(root) ? readdirSync(root).filter((c) => existsSync(`${root}${c}/oracle.safetensors`)) : [];

describe('transformers DiffLlama oracle', () => {
  it('the committed oracle is there (a missing fixture fails instead of skipping)', () => {
    expect(cases).toContain('tiny-gqa');
  });

  for (const name of cases) {
    it(`${name}: logits within NMSE 1e-10 and greedy ids identical`, () => {
      const r = spawnSync(process.execPath, [CLI, 'parity', `${root}${name}`, '--backend', 'cpu', '--json'], {
        encoding: 'utf8',
        timeout: 600_000,
      });
      expect(r.stderr).toMatch(/^pass /m);
      const doc = JSON.parse(r.stdout);
      const result = doc.results[0];
      expect(result.error).toBeUndefined();
      expect(result.source).toBe('transformers DiffLlamaForCausalLM');
      expect(result.nmse).toBeLessThanOrEqual(1e-10);
      expect(result.greedy.expected.length).toBeGreaterThan(0);
      expect(result.greedy.actual).toEqual(result.greedy.expected);
      expect(r.status).toBe(0);
    });
  }
});
