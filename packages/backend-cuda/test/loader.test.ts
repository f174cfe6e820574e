import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADDON_ENV, ADDON_FILE, addonCandidates, loadAddon, tryLoad } from '@diff-transformer/backend-cuda';
import { describe, expect, it } from 'vitest';

const packageRoot = resolve(fileURLToPath(new URL('..', import.meta.url)));
const prebuilt = join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`, ADDON_FILE);

describe('finding the addon', () => {
  it('looks for the prebuilt binary first, then local builds', () => {
    const candidates = addonCandidates({}, join(packageRoot, 'dist'));
    expect(candidates[0]).toBe(prebuilt);
    expect(candidates[1]).toBe(join(packageRoot, 'native', 'build', 'Release', ADDON_FILE));
    expect(candidates[2]).toBe(join(packageRoot, 'build', 'Release', ADDON_FILE));
  });

  it('finds the package from the bundled CLI in this repository (apps/cli/dist)', () => {
    const cliDist = resolve(packageRoot, '..', '..', 'apps', 'cli', 'dist');
    expect(addonCandidates({}, cliDist)).toContain(prebuilt);
  });

  it(`uses only ${ADDON_ENV} when it is set`, () => {
    expect(addonCandidates({ [ADDON_ENV]: '/opt/x/addon.node' })).toEqual(['/opt/x/addon.node']);
  });

  it('says which files it looked for when none exists', () => {
    const result = tryLoad(['/nonexistent/a.node', '/nonexistent/b.node']);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.reason).toContain('/nonexistent/a.node');
      expect(result.reason).toContain('/nonexistent/b.node');
      expect(result.reason).toMatch(/not found/);
    }
  });

  it('reports a file that is not a loadable addon instead of throwing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dtx-cuda-'));
    try {
      const bogus = join(dir, ADDON_FILE);
      writeFileSync(bogus, 'not an ELF file');
      const result = tryLoad([bogus]);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.reason).toContain(`${bogus} could not be loaded`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.runIf(existsSync(prebuilt))('loads the addon built here (the prebuilt binary)', () => {
    const result = loadAddon();
    expect(result.ok, result.ok ? '' : result.reason).toBe(true);
    if (result.ok) {
      expect(result.path).toBe(prebuilt);
      expect(typeof result.addon.init).toBe('function');
    }
  });
});
