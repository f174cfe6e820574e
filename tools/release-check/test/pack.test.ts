/**
 * The release as users get it: every public workspace package is packed as publishing packs it (pnpm
 * rewrites `workspace:` ranges), installed into an empty project, offline, with pnpm's strict layout (a
 * package sees only what its manifest declares; third-party packages come from the store `pnpm install`
 * filled), and then imported: ES module and CommonJS entries alike. The CLI also runs. A package that
 * names a private one, forgets a runtime dependency or ships an entry that does not load fails here.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const scratch = mkdtempSync(join(tmpdir(), 'difftx-release-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  main?: string;
  exports?: unknown;
  bin?: Record<string, string>;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  devDependencies?: Record<string, string>;
}

const readManifest = (dir: string): Manifest => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));

/** The workspace's package folders (pnpm-workspace.yaml lists `dir/*` globs). */
function workspaceDirs(): string[] {
  const yaml = readFileSync(join(root, 'pnpm-workspace.yaml'), 'utf8');
  const globs = [...yaml.matchAll(/^\s*-\s*['"]?([\w./-]+)\/\*['"]?\s*$/gm)].map((m) => m[1]);
  return globs.flatMap((glob) =>
    readdirSync(join(root, glob))
      .map((name) => join(root, glob, name))
      .filter((dir) => existsSync(join(dir, 'package.json'))),
  );
}

const workspace = new Map(workspaceDirs().map((dir) => [readManifest(dir).name, dir]));
const published = [...workspace].filter(([, dir]) => !readManifest(dir).private);

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): string {
  const r = spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    timeout: 240_000,
    env: { ...process.env, npm_config_update_notifier: 'false', DIFFTX_CPU_ADDON_DIR: '', DIFFTX_CPU_ISA: '', ...env },
  });
  if (r.status !== 0)
    throw new Error(`${command} ${args.join(' ')} failed (${r.error?.message ?? r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Packs a workspace package into `into` as publishing would; returns the tarball. */
function pack(dir: string, into: string): string {
  const before = new Set(readdirSync(into));
  run('pnpm', ['pack', '--pack-destination', into], dir);
  const made = readdirSync(into).filter((f) => f.endsWith('.tgz') && !before.has(f));
  if (made.length !== 1) throw new Error(`expected one new tarball from ${dir}, found ${made.join(', ') || 'none'}`);
  return join(into, made[0]);
}

/**
 * Every third-party package at the one version the workspace's lockfile holds it at, so that the empty
 * project resolves offline from pnpm's store (what `pnpm install` here filled) to what was tested.
 */
function lockedVersions(): Map<string, string> {
  const lock = readFileSync(join(root, 'pnpm-lock.yaml'), 'utf8');
  const versions = new Map<string, Set<string>>();
  // pnpm 12 writes pnpm's own entry first, then the workspace's document: read every `packages:` section.
  for (const section of lock.split('\npackages:\n').slice(1)) {
    const body = section.split('\nsnapshots:\n')[0];
    for (const [, name, version] of body.matchAll(/^ {2}'?(@?[^@\s']+)@([^:'\s(]+)'?:/gm)) {
      if (!versions.has(name)) versions.set(name, new Set());
      versions.get(name)!.add(version);
    }
  }
  const single = new Map<string, string>();
  for (const [name, set] of versions) if (set.size === 1 && !workspace.has(name)) single.set(name, [...set][0]);
  return single;
}

describe('every public package, packed and installed into an empty project', () => {
  it('release-check names every public package as a devDependency (so turbo builds them first)', () => {
    const own = readManifest(resolve(fileURLToPath(new URL('..', import.meta.url))));
    expect(Object.keys(own.devDependencies ?? {}).sort()).toEqual(published.map(([name]) => name).sort());
  });

  it('no public package needs a private one at run time (users could not install it)', () => {
    for (const [name, dir] of published) {
      const manifest = readManifest(dir);
      for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies'] as const) {
        for (const dep of Object.keys(manifest[field] ?? {})) {
          const other = workspace.get(dep);
          expect(other && readManifest(other).private, `${name}'s ${field} name private ${dep}`).toBeFalsy();
        }
      }
    }
  });

  it('installs offline, and each entry loads as an ES module and in CommonJS; difftx runs', () => {
    const tarballs = join(scratch, 'tarballs');
    mkdirSync(tarballs);
    const ours = published.map(([, dir]) => pack(dir, tarballs));
    const app = join(scratch, 'app');
    mkdirSync(app);
    const dependencies = Object.fromEntries(published.map(([name], i) => [name, `file:${ours[i]}`]));
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({ name: 'app', private: true, type: 'module', dependencies }),
    );
    // Our packages name each other by range (^0.1.0, >=0.1.0 <1.0.0): point those at the tarballs, and
    // pin third-party packages to the tested versions. Build scripts stay off, as for a cautious user.
    const overrides = { ...Object.fromEntries(lockedVersions()), ...dependencies };
    writeFileSync(
      join(app, 'pnpm-workspace.yaml'),
      `strictDepBuilds: false\noverrides:\n${Object.entries(overrides)
        .map(([name, spec]) => `  ${JSON.stringify(name)}: ${JSON.stringify(spec)}\n`)
        .join('')}`,
    );
    run('pnpm', ['install', '--offline', '--ignore-scripts'], app);

    for (const [name] of published) {
      const manifest = readManifest(join(app, 'node_modules', name));
      if (!manifest.main && !manifest.exports) continue; // a command-line package only
      const esm = run(
        process.execPath,
        ['--input-type=module', '-e', `const m = await import('${name}'); console.log(Object.keys(m).length);`],
        app,
      );
      const cjs = run(process.execPath, ['-e', `console.log(Object.keys(require('${name}')).length);`], app);
      expect(Number(esm), `${name}'s ES module exports`).toBeGreaterThan(0);
      expect(Number(cjs), `${name}'s CommonJS exports`).toBe(Number(esm));
    }

    const cli = join(app, 'node_modules', '.bin', 'difftx');
    expect(existsSync(cli)).toBe(true);
    const info = run(cli, ['info', '--json'], app);
    const backends = JSON.parse(info) as { backends: Array<{ name: string; available: boolean; device?: string }> };
    const cpu = backends.backends.find((b) => b.name === 'cpu');
    expect(cpu?.available).toBe(true);
    // The published CLI finds the CPU backend's prebuilt addon in node_modules, as the monorepo build does.
    if (process.platform === 'linux' && (process.arch === 'x64' || process.arch === 'arm64'))
      expect(cpu?.device).toContain('native');
  }, 600_000);
});
