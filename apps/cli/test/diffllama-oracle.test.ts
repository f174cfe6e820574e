/**
 * Hugging Face transformers' DiffLlamaForCausalLM as the oracle: for each fixtures/diffllama/<case>/
 * (model/ folder + oracle.safetensors with float64 logits and greedy ids from transformers), the core
 * graph's logits must be within NMSE 1e-10 and greedy decoding must reproduce transformers' ids token
 * for token. The oracles are written where transformers is installed (not in CI) by:
 *
 *   python3 tools/parity-fixtures/generate.py diffllama --out fixtures/diffllama
 *
 * Without them the test is skipped and says so.
 */
import { existsSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../fixtures/diffllama/', import.meta.url));
const CLI = fileURLToPath(new URL('../dist/difftx.js', import.meta.url));
const cases = existsSync(root) ? readdirSync(root).filter((c) => existsSync(`${root}${c}/oracle.safetensors`)) : [];
const COMMAND = 'python3 tools/parity-fixtures/generate.py diffllama --out fixtures/diffllama';

if (cases.length === 0) {
  console.log(
    `diffllama-oracle: skipped — no fixtures/diffllama/*/oracle.safetensors; ` +
      `create them where transformers is installed with: ${COMMAND}`,
  );
}

describe('transformers DiffLlama oracle', () => {
  if (cases.length === 0)
    it.skip(`oracle absent: create it with \`${COMMAND}\` where transformers is installed`, () => {});
  for (const name of cases) {
    it(`${name}: logits within NMSE 1e-10 and greedy ids identical`, () => {
      const r = spawnSync(process.execPath, [CLI, 'parity', `${root}${name}`, '--json'], {
        encoding: 'utf8',
        timeout: 600_000,
      });
      const doc = JSON.parse(r.stdout);
      const result = doc.results[0];
      expect(result.error).toBeUndefined();
      expect(result.nmse).toBeLessThanOrEqual(1e-10);
      expect(result.greedy.actual).toEqual(result.greedy.expected);
      expect(r.status).toBe(0);
    });
  }
});
