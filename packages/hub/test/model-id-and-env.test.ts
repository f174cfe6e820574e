/** Model ids as users write them, and the environment variables read as huggingface_hub reads them. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { HubModelIdError, hubEnvironment, parseModelId } from '@diff-transformer/hub/node';
import { afterEach, describe, expect, it } from 'vitest';

describe('parseModelId', () => {
  it('reads owner/name, a revision after @, and the hf: prefix', () => {
    expect(parseModelId('kajuma/DiffLlama-1B')).toEqual({ repo: 'kajuma/DiffLlama-1B', revision: 'main' });
    expect(parseModelId('hf:kajuma/DiffLlama-1B@v1.0')).toEqual({ repo: 'kajuma/DiffLlama-1B', revision: 'v1.0' });
    expect(parseModelId('hf:o/n@refs/pr/1')).toEqual({ repo: 'o/n', revision: 'refs/pr/1' });
    expect(parseModelId('o/n@dev', 'main')).toEqual({ repo: 'o/n', revision: 'main' });
    expect(parseModelId('gpt2')).toEqual({ repo: 'gpt2', revision: 'main' });
  });

  it('refuses what is no repository or no ref name, by a typed error that says what was expected', () => {
    for (const bad of ['', 'a/b/c', '../x', 'o/..', 'o/n@', 'o/n@../../etc', 'o/n@a b', 'o/-x', 'o--x/n', '/abs']) {
      expect(() => parseModelId(bad), bad).toThrow(HubModelIdError);
    }
    expect(() => parseModelId('o/n@x/../y')).toThrow(/expected owner\/name or owner\/name@revision/);
  });
});

describe('hubEnvironment', () => {
  const saved = { ...process.env };
  const scratch = mkdtempSync(join(tmpdir(), 'difftx-hub-env-'));
  afterEach(() => {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  });
  const clear = () => {
    for (const key of [
      'HF_TOKEN',
      'HUGGING_FACE_HUB_TOKEN',
      'HF_TOKEN_PATH',
      'HF_HOME',
      'HF_HUB_CACHE',
      'HUGGINGFACE_HUB_CACHE',
      'XDG_CACHE_HOME',
      'HF_ENDPOINT',
      'HF_HUB_OFFLINE',
      'TRANSFORMERS_OFFLINE',
    ])
      delete process.env[key];
  };

  it('takes HF_TOKEN, then HUGGING_FACE_HUB_TOKEN, then the token file; never HF_HUB_TOKEN', () => {
    clear();
    process.env.HF_HOME = scratch;
    process.env.HF_HUB_TOKEN = 'hf_notread';
    expect(hubEnvironment()).toMatchObject({ token: null, tokenSource: null });
    writeFileSync(join(scratch, 'token'), 'hf_fromfile\n');
    expect(hubEnvironment()).toMatchObject({ token: 'hf_fromfile', tokenSource: 'token file' });
    process.env.HUGGING_FACE_HUB_TOKEN = 'hf_legacy';
    expect(hubEnvironment()).toMatchObject({ token: 'hf_legacy', tokenSource: 'HUGGING_FACE_HUB_TOKEN' });
    process.env.HF_TOKEN = ' hf_main ';
    expect(hubEnvironment()).toMatchObject({ token: 'hf_main', tokenSource: 'HF_TOKEN' });
    rmSync(join(scratch, 'token'));
  });

  it('finds the cache at HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub', () => {
    clear();
    expect(hubEnvironment().cacheDir).toBe(join(homedir(), '.cache', 'huggingface', 'hub'));
    process.env.HF_HOME = scratch;
    expect(hubEnvironment().cacheDir).toBe(join(scratch, 'hub'));
    process.env.HF_HUB_CACHE = join(scratch, 'elsewhere');
    expect(hubEnvironment().cacheDir).toBe(join(scratch, 'elsewhere'));
  });

  it('reads HF_ENDPOINT and HF_HUB_OFFLINE (1, ON, YES, TRUE in any case)', () => {
    clear();
    expect(hubEnvironment()).toMatchObject({ endpoint: 'https://huggingface.co', offline: false });
    process.env.HF_ENDPOINT = 'http://127.0.0.1:8080';
    expect(hubEnvironment().endpoint).toBe('http://127.0.0.1:8080');
    for (const value of ['1', 'on', 'Yes', 'TRUE']) {
      process.env.HF_HUB_OFFLINE = value;
      expect(hubEnvironment().offline, value).toBe(true);
    }
    process.env.HF_HUB_OFFLINE = '0';
    expect(hubEnvironment().offline).toBe(false);
  });
});
