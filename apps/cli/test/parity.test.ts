/**
 * The committed parity fixtures (official modules of microsoft/unilm Diff-Transformer, run in float64 by
 * tools/parity-fixtures/generate.py) through the core graph on the CPU backend, within NMSE 1e-10.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readParityFixture, runParityFixture, type ParityFixture } from '@diff-transformer/conformance';
import {
  CheckpointError,
  MissingTensorError,
  memorySource,
  serializeSafetensors,
  setBackend,
  memory,
} from '@diff-transformer/core';
import { fileSource } from '@diff-transformer/core/node';
import '@diff-transformer/backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';

const readParityFixtureFile = async (path: string) => readParityFixture(await fileSource(path));

const folder = fileURLToPath(new URL('../../../fixtures/parity/', import.meta.url));
const files = readdirSync(folder)
  .filter((f) => f.endsWith('.safetensors'))
  .sort();

beforeAll(async () => {
  await setBackend('cpu');
});

describe('parity with the official modules', () => {
  it('has fixtures of all three official files, MHA and GQA, several depths and odd lengths', async () => {
    const fixtures = await Promise.all(files.map((f) => readParityFixtureFile(folder + f)));
    const sources = new Set(fixtures.map((f) => f.source.split('/').pop()));
    expect(sources).toEqual(new Set(['multihead_diffattn.py', 'multihead_flashdiff_1.py', 'multihead_flashdiffv2.py']));
    for (const kind of ['diffattn', 'flashdiff1', 'flashdiffv2']) {
      const of = fixtures.filter((f) => f.kind === kind);
      expect(
        of.some((f) => f.numKvHeads === null),
        `${kind} MHA`,
      ).toBe(true);
      expect(
        of.some((f) => f.numKvHeads !== null && f.numKvHeads < f.numHeads),
        `${kind} GQA`,
      ).toBe(true);
      expect(
        of.some((f) => f.x.shape[1] % 2 === 1),
        `${kind} odd length`,
      ).toBe(true);
    }
    expect(new Set(fixtures.filter((f) => f.depth !== null).map((f) => f.lambdaInit)).size).toBeGreaterThanOrEqual(5);
  });

  for (const file of files) {
    it(`${file}: NMSE ≤ 1e-10 against the float64 official output`, async () => {
      const before = memory('cpu').liveStorages;
      const fixture = await readParityFixtureFile(folder + file);
      const result = await runParityFixture(fixture);
      expect(result.nmse).toBeLessThanOrEqual(1e-10);
      expect(result.maxAbsError).toBeLessThan(1e-5);
      expect(memory('cpu').liveStorages).toBe(before);
    });
  }

  it(
    'the naive file pairs GQA half-heads differently from the flash file: ' + 'reading it with flash semantics fails',
    async () => {
      const fixture = await readParityFixtureFile(`${folder}diffattn-gqa2-depth5.safetensors`);
      const asFlash: ParityFixture = { ...fixture, kind: 'flashdiff1' };
      expect((await runParityFixture(asFlash)).nmse).toBeGreaterThan(1e-4);
    },
  );

  it('a fixture missing a weight or metadata raises a typed error naming file and tensor', async () => {
    const bytes = new Uint8Array(readFileSync(`${folder}flashdiff1-gqa2-depth3.safetensors`));
    const fixture = await readParityFixture(memorySource(bytes, 'f.safetensors'));
    const entries = [
      ['x', fixture.x],
      ['y', fixture.y],
      ['rope_cos', fixture.ropeCos],
      ['rope_sin', fixture.ropeSin],
      ...[...fixture.weights].filter(([n]) => n !== 'lambda_k1').map(([n, w]) => [`weights.${n}`, w] as const),
    ] as const;
    const metadata = {
      source: JSON.stringify(fixture.source),
      num_heads: '4',
      num_kv_heads: '2',
      head_dim: '8',
      embed_dim: '64',
      depth: '3',
      lambda_init: String(fixture.lambdaInit),
    };
    const broken = await readParityFixture(
      memorySource(
        serializeSafetensors(
          entries.map(([n, t]) => [n, { shape: t.shape, data: t.data }] as const),
          metadata,
        ),
        'broken.safetensors',
      ),
    );
    await expect(runParityFixture(broken)).rejects.toThrow(MissingTensorError);
    await expect(runParityFixture(broken)).rejects.toThrow(/broken\.safetensors: tensor 'weights\.lambda_k1': missing/);
    const noSource = serializeSafetensors(
      entries.map(([n, t]) => [n, { shape: t.shape, data: t.data }] as const),
      { ...metadata, source: '"elsewhere/model.py"' },
    );
    await expect(readParityFixture(memorySource(noSource, 'n.safetensors'))).rejects.toThrow(
      /not one of the official files/,
    );
    const badMeta = serializeSafetensors(
      entries.map(([n, t]) => [n, { shape: t.shape, data: t.data }] as const),
      { ...metadata, head_dim: 'eight' },
    );
    await expect(readParityFixture(memorySource(badMeta, 'm.safetensors'))).rejects.toThrow(CheckpointError);
  });
});
