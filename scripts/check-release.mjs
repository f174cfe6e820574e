#!/usr/bin/env node
/**
 * The release a `pnpm run version` would make now, checked before it is made (CI runs this):
 *   - `changeset status` plans no major bump and no version at or past 1.0.0 (a 0.x minor bump of core
 *     must not drag every package that peers on it to 1.0.0, as `workspace:^` ranges once did);
 *   - `changeset version`, applied to a scratch copy of the workspace's manifests and pending changesets,
 *     writes a CHANGELOG.md for every package it bumps and leaves no `workspace:` range unresolvable.
 * Exits 1 with every problem listed, 0 when the plan is sound. Touches nothing in the repository.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const changesetBin = join(root, 'node_modules', '@changesets', 'cli', 'bin.js');
const problems = [];

function changeset(args, cwd) {
  const r = spawnSync(process.execPath, [changesetBin, ...args], { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`changeset ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** The workspace's package folders, from pnpm-workspace.yaml's simple `dir/*` globs. */
function packageDirs(base) {
  const globs = [
    ...readFileSync(join(base, 'pnpm-workspace.yaml'), 'utf8').matchAll(/^\s*-\s*['"]?([\w./-]+)\/\*['"]?\s*$/gm),
  ];
  return globs.flatMap(([, dir]) =>
    existsSync(join(base, dir))
      ? readdirSync(join(base, dir))
          .map((name) => join(dir, name))
          .filter((d) => existsSync(join(base, d, 'package.json')))
      : [],
  );
}

const scratch = mkdtempSync(join(tmpdir(), 'difftx-release-'));
try {
  // 1. The plan.
  const planFile = join(scratch, 'plan.json');
  changeset(['status', `--output=${planFile}`], root);
  const plan = JSON.parse(readFileSync(planFile, 'utf8'));
  for (const release of plan.releases) {
    if (release.type === 'major')
      problems.push(`${release.name}: a major bump is planned (${release.oldVersion} → ${release.newVersion})`);
    else if (Number(release.newVersion.split('.')[0]) >= 1)
      problems.push(`${release.name}: ${release.oldVersion} → ${release.newVersion} reaches 1.0.0`);
  }

  // 2. The versions and changelogs it writes, on a copy of the manifests.
  const copy = join(scratch, 'workspace');
  mkdirSync(copy);
  for (const file of ['package.json', 'pnpm-workspace.yaml']) cpSync(join(root, file), join(copy, file));
  cpSync(join(root, '.changeset'), join(copy, '.changeset'), { recursive: true });
  const dirs = packageDirs(root);
  for (const dir of dirs) {
    mkdirSync(join(copy, dir), { recursive: true });
    cpSync(join(root, dir, 'package.json'), join(copy, dir, 'package.json'));
    if (existsSync(join(root, dir, 'CHANGELOG.md')))
      cpSync(join(root, dir, 'CHANGELOG.md'), join(copy, dir, 'CHANGELOG.md'));
  }
  writeFileSync(join(copy, '.gitignore'), 'node_modules\n');
  changeset(['version'], copy);
  const versions = new Map(
    dirs.map((dir) => [JSON.parse(readFileSync(join(copy, dir, 'package.json'), 'utf8')).name, dir]),
  );
  for (const release of plan.releases.filter((r) => r.type !== 'none')) {
    const dir = /** @type {string} */ (versions.get(release.name));
    const manifest = JSON.parse(readFileSync(join(copy, dir, 'package.json'), 'utf8'));
    if (manifest.version !== release.newVersion)
      problems.push(
        `${release.name}: changeset version wrote ${manifest.version}, the plan said ${release.newVersion}`,
      );
    const changelog = join(copy, dir, 'CHANGELOG.md');
    if (!existsSync(changelog) || !readFileSync(changelog, 'utf8').includes(`## ${release.newVersion}`))
      problems.push(`${release.name}: no CHANGELOG.md entry for ${release.newVersion}`);
  }
  // Every workspace range must still hold the version it points at once published.
  for (const dir of dirs) {
    const manifest = JSON.parse(readFileSync(join(copy, dir, 'package.json'), 'utf8'));
    if (manifest.private) continue;
    for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies']) {
      for (const [name, range] of Object.entries(manifest[field] ?? {})) {
        const target = versions.get(name);
        if (!target) continue;
        const other = JSON.parse(readFileSync(join(copy, target, 'package.json'), 'utf8'));
        if (other.private)
          problems.push(`${manifest.name}: its ${field} name ${name}, which is private (never published)`);
        else if (!String(range).startsWith('workspace:'))
          problems.push(`${manifest.name}: ${field}.${name} is ${range}; workspace packages use workspace: ranges`);
      }
    }
  }
  const bumped = plan.releases.filter((r) => r.type !== 'none');
  if (problems.length === 0) {
    console.log(
      `release plan: ${bumped.map((r) => `${r.name} ${r.oldVersion} → ${r.newVersion}`).join(', ') || 'nothing to release'}; no major bump, changelogs written`,
    );
  }
} catch (error) {
  problems.push(error instanceof Error ? error.message : String(error));
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
if (problems.length) {
  console.error(`release plan: ${problems.length} problem(s):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  process.exit(1);
}
