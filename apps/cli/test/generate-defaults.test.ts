/**
 * difftx generate as a user of a Hugging Face folder expects it: it stops at the eos ids of
 * generation_config.json (or config.json), samples as generation_config.json says unless flags say
 * otherwise, and --chat applies the folder's chat template. Folders are written here, small.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DiffTransformer,
  HuggingFaceTokenizer,
  applyChatTemplate,
  readChatTemplate,
  setBackend,
} from '@diff-transformer/core';
import { directorySource, saveDiffLlama } from '@diff-transformer/core/node';
import '@diff-transformer/backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../dist/difftx.js', import.meta.url));
const fixtures = fileURLToPath(new URL('../../../fixtures/', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'difftx-generate-'));
const dir = join(scratch, 'hf');

function difftx(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The generated ids (--json) for these arguments, after the folder's generation_config.json is set. */
function run(generationConfig: Record<string, unknown> | null, ...args: string[]) {
  rmSync(join(dir, 'generation_config.json'), { force: true });
  if (generationConfig) writeFileSync(join(dir, 'generation_config.json'), JSON.stringify(generationConfig));
  const r = difftx('generate', '--model', dir, '--json', ...args);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { ids: number[]; text: string; finishReason: string };
}

const CHAT =
  '{% for m in messages %}{{ m.role }}: {{ m.content }}{{ eos_token }}\n{% endfor %}' +
  '{% if add_generation_prompt %}assistant:{% endif %}';

beforeAll(async () => {
  await setBackend('cpu');
  const model = DiffTransformer.create(
    {
      vocabSize: 268,
      hiddenSize: 32,
      numLayers: 2,
      numHeads: 2,
      numKvHeads: 1,
      rope: { layout: 'half' },
      subLayerNorm: { affine: false },
    },
    { seed: 21, std: 0.3 },
  );
  await saveDiffLlama(model.config, await model.hostParameters(), dir);
  model.dispose();
  // The fixture tokenizer, made to start every encoding with a special token as Llama's add a BOS.
  const tokenizer = JSON.parse(readFileSync(join(fixtures, 'tokenizer/tokenizer.json'), 'utf8'));
  tokenizer.post_processor = {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '<|endoftext|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: { '<|endoftext|>': { id: '<|endoftext|>', ids: [267], tokens: ['<|endoftext|>'] } },
  };
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  const tokenizerConfig = JSON.parse(readFileSync(join(fixtures, 'tokenizer/tokenizer_config.json'), 'utf8'));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ ...tokenizerConfig, chat_template: CHAT }));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('difftx generate with a folder’s generation defaults', () => {
  it('stops at an eos id of generation_config.json (one id or a list), else of config.json', () => {
    const free = run(null, '--ids', '5,6,7', '--max-new-tokens', '8');
    expect(free.ids).toHaveLength(8);
    expect(free.finishReason).toBe('length');
    const eos = free.ids[3];
    const first = free.ids.indexOf(eos); // the first time that id comes
    const stopped = run({ eos_token_id: eos }, '--ids', '5,6,7', '--max-new-tokens', '8');
    expect(stopped.ids).toEqual(free.ids.slice(0, first + 1));
    expect(stopped.finishReason).toBe('eos');
    expect(run({ eos_token_id: [300, eos] }, '--ids', '5,6,7', '--max-new-tokens', '8').ids).toEqual(stopped.ids);
    // No generation_config.json: config.json's eos_token_id.
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, eos_token_id: eos }));
    try {
      expect(run(null, '--ids', '5,6,7', '--max-new-tokens', '8').ids).toEqual(stopped.ids);
    } finally {
      writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    }
  });

  it('samples as generation_config.json says, and flags override it setting by setting', () => {
    const sampled = { do_sample: true, temperature: 1.7, top_k: 30, top_p: 0.95 };
    const fromFile = run(sampled, '--ids', '5,6', '--max-new-tokens', '12', '--seed', '4');
    const flags = ['--temperature', '1.7', '--top-k', '30', '--top-p', '0.95', '--seed', '4'];
    const fromFlags = run(null, '--ids', '5,6', '--max-new-tokens', '12', ...flags);
    expect(fromFile.ids).toEqual(fromFlags.ids);
    const greedy = run(null, '--ids', '5,6', '--max-new-tokens', '12');
    expect(fromFile.ids).not.toEqual(greedy.ids); // the file's sampling did apply
    expect(run(sampled, '--ids', '5,6', '--max-new-tokens', '12', '--greedy').ids).toEqual(greedy.ids);
    // One flag replaces one setting: --top-k 1 with the file's temperature is greedy again.
    expect(run(sampled, '--ids', '5,6', '--max-new-tokens', '12', '--top-k', '1', '--seed', '4').ids).toEqual(
      greedy.ids,
    );
  });

  it("--chat wraps the prompt in the folder's chat template and encodes it without adding special tokens", async () => {
    const chat = await readChatTemplate(directorySource(dir));
    const text = applyChatTemplate(chat!, [{ role: 'user', content: 'hello world' }]);
    expect(text).toBe('user: hello world<|endoftext|>\nassistant:');
    const tokenizer = new HuggingFaceTokenizer(
      JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')),
      JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')),
      { addSpecialTokens: false },
    );
    const ids = tokenizer.encode(text);
    expect(ids[0]).not.toBe(267); // no special token added in front: the template wrote what it needs
    expect(ids).toContain(267); // <|endoftext|> came through as the special token, not as text
    const plain = new HuggingFaceTokenizer(
      JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')),
      JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')),
    );
    expect(plain.encode(text)).toEqual([267, ...ids]); // what encoding with special tokens would give
    const chatted = run(null, '--prompt', 'hello world', '--chat', '--max-new-tokens', '6');
    expect(chatted.ids).toEqual(run(null, '--ids', ids.join(','), '--max-new-tokens', '6').ids);
    expect(chatted.ids).not.toEqual(run(null, '--prompt', 'hello world', '--max-new-tokens', '6').ids);
  });

  it('refuses --chat without a template or without --prompt, in one line (exit 2)', () => {
    const config = readFileSync(join(dir, 'tokenizer_config.json'), 'utf8');
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ eos_token: '<|endoftext|>' }));
    try {
      const r = difftx('generate', '--model', dir, '--prompt', 'hi', '--chat');
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^difftx: generate: --chat needs a chat template: .* has no chat_template/);
    } finally {
      writeFileSync(join(dir, 'tokenizer_config.json'), config);
    }
    const ids = difftx('generate', '--model', dir, '--ids', '1', '--chat');
    expect(ids.code).toBe(2);
    expect(ids.stderr).toMatch(/--chat takes --prompt/);
  });
});
