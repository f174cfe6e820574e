/**
 * A folder's generation defaults (generation_config.json, config.json's ids as the fallback) and chat
 * template (tokenizer_config.json or chat_template.jinja, rendered with @huggingface/jinja), read from
 * small in-memory folders.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  CheckpointConfigError,
  applyChatTemplate,
  memoryFolder,
  readChatTemplate,
  readGenerationDefaults,
} from '../src/index.js';

const folder = (files: Record<string, unknown>) =>
  memoryFolder(
    Object.fromEntries(
      Object.entries(files).map(([name, content]) => [
        name,
        new TextEncoder().encode(typeof content === 'string' ? content : JSON.stringify(content)),
      ]),
    ),
    'm',
  );

describe('generation defaults', () => {
  it('takes eos ids from generation_config.json (one id or a list), else from config.json', async () => {
    expect(
      await readGenerationDefaults(folder({ 'generation_config.json': { eos_token_id: 2, bos_token_id: 1 } })),
    ).toEqual({ eosTokenIds: [2], bosTokenId: 1, sampling: { greedy: true }, source: 'm/generation_config.json' });
    const list = await readGenerationDefaults(
      folder({
        'generation_config.json': { eos_token_id: [128001, 128008, 128009] },
        'config.json': { eos_token_id: 7 },
      }),
    );
    expect(list.eosTokenIds).toEqual([128001, 128008, 128009]);
    const fallback = await readGenerationDefaults(
      folder({ 'generation_config.json': { do_sample: false }, 'config.json': { eos_token_id: 7, bos_token_id: 6 } }),
    );
    expect(fallback).toMatchObject({ eosTokenIds: [7], bosTokenId: 6 });
    expect(await readGenerationDefaults(folder({ 'config.json': { eos_token_id: [3, 4] } }))).toEqual({
      eosTokenIds: [3, 4],
      bosTokenId: null,
      sampling: { greedy: true },
      source: 'm/config.json',
    });
    expect(await readGenerationDefaults(folder({}))).toEqual({
      eosTokenIds: [],
      bosTokenId: null,
      sampling: { greedy: true },
      source: null,
    });
  });

  it("samples only with do_sample, filling in transformers' defaults (temperature 1, top_k 50, top_p 1)", async () => {
    const sampling = async (json: Record<string, unknown>) =>
      (await readGenerationDefaults(folder({ 'generation_config.json': json }))).sampling;
    expect(await sampling({ temperature: 0.6, top_p: 0.9 })).toEqual({ greedy: true });
    expect(await sampling({ do_sample: true })).toEqual({ temperature: 1, topK: 50 });
    expect(await sampling({ do_sample: true, temperature: 0.6, top_p: 0.9 })).toEqual({
      temperature: 0.6,
      topK: 50,
      topP: 0.9,
    });
    expect(await sampling({ do_sample: true, top_k: 0, top_p: 1 })).toEqual({ temperature: 1 });
  });

  it('names the file and field of a bad value', async () => {
    for (const [json, pattern] of [
      [{ eos_token_id: 'x' }, /m\/generation_config.json: eos_token_id: expected a token id or a list/],
      [{ eos_token_id: [1, -2] }, /eos_token_id: expected a token id or a list of ids \(integers ≥ 0\), got \[1,-2\]/],
      [{ do_sample: 'yes' }, /do_sample: expected true or false/],
      [{ do_sample: true, temperature: 0 }, /temperature: expected a number > 0, got 0/],
      [{ do_sample: true, top_k: 2.5 }, /top_k: expected an integer ≥ 0/],
      [{ do_sample: true, top_p: 1.5 }, /top_p: expected a number in \(0, 1\]/],
    ] as const) {
      const read = readGenerationDefaults(folder({ 'generation_config.json': json }));
      await expect(read).rejects.toThrow(CheckpointConfigError);
      await expect(readGenerationDefaults(folder({ 'generation_config.json': json }))).rejects.toThrow(pattern);
    }
    await expect(readGenerationDefaults(folder({ 'generation_config.json': '{' }))).rejects.toThrow(
      /m\/generation_config.json: not valid JSON/,
    );
  });
});

describe('chat templates', () => {
  const template =
    '{{ bos_token }}{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{{ eos_token }}{% endfor %}' +
    '{% if add_generation_prompt %}<|assistant|>{% endif %}';

  it("renders tokenizer_config.json's template with its bos/eos tokens and opens the assistant's turn", async () => {
    const chat = await readChatTemplate(
      folder({
        'tokenizer_config.json': {
          chat_template: template,
          bos_token: { __type: 'AddedToken', content: '<s>', lstrip: false },
          eos_token: '</s>',
        },
      }),
    );
    expect(chat).not.toBeNull();
    expect(chat!.specialTokens).toEqual({ bos_token: '<s>', eos_token: '</s>' });
    expect(applyChatTemplate(chat!, [{ role: 'user', content: 'Hello' }])).toBe('<s><|user|>Hello</s><|assistant|>');
    expect(applyChatTemplate(chat!, [{ role: 'user', content: 'Hello' }], { addGenerationPrompt: false })).toBe(
      '<s><|user|>Hello</s>',
    );
  });

  it('renders the published template of kajuma/DiffLlama-1B (fixtures/configs)', async () => {
    const path = fileURLToPath(
      new URL('../../../fixtures/configs/kajuma--DiffLlama-1B/tokenizer_config.json', import.meta.url),
    );
    const chat = await readChatTemplate(folder({ 'tokenizer_config.json': readFileSync(path, 'utf8') }));
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'こんにちは' },
    ];
    expect(applyChatTemplate(chat!, messages)).toBe('<|system|>Be brief.</s><|user|>こんにちは</s><|assistant|>');
  });

  it('takes the "default" of a list of templates, or chat_template.jinja; none gives null', async () => {
    const listed = await readChatTemplate(
      folder({
        'tokenizer_config.json': {
          chat_template: [
            { name: 'tool_use', template: 'tools' },
            { name: 'default', template: 'plain {{ messages[0].content }}' },
          ],
        },
      }),
    );
    expect(applyChatTemplate(listed!, [{ role: 'user', content: 'x' }])).toBe('plain x');
    const jinja = await readChatTemplate(
      folder({
        'tokenizer_config.json': { eos_token: 'E' },
        'chat_template.jinja': '{{ messages[0].content }}{{ eos_token }}',
      }),
    );
    expect(jinja!.source).toBe('m/chat_template.jinja');
    expect(applyChatTemplate(jinja!, [{ role: 'user', content: 'y' }])).toBe('yE');
    expect(await readChatTemplate(folder({ 'tokenizer_config.json': { eos_token: 'E' } }))).toBeNull();
    expect(await readChatTemplate(folder({}))).toBeNull();
  });

  it('refuses a broken template when it is read, and reports a template that raises', async () => {
    await expect(readChatTemplate(folder({ 'tokenizer_config.json': { chat_template: '{% for %}' } }))).rejects.toThrow(
      /m\/tokenizer_config.json: chat_template: not a template @huggingface\/jinja can parse/,
    );
    await expect(
      readChatTemplate(folder({ 'tokenizer_config.json': { chat_template: [{ name: 'tools', template: 'x' }] } })),
    ).rejects.toThrow(/needs one named "default"/);
    const strict = await readChatTemplate(
      folder({
        'tokenizer_config.json': {
          chat_template:
            "{% if messages[0].role != 'system' %}{{ raise_exception('a system message first') }}{% endif %}",
        },
      }),
    );
    expect(() => applyChatTemplate(strict!, [{ role: 'user', content: 'x' }])).toThrow(
      /chat_template: the template failed on these messages: .*a system message first/,
    );
  });
});
