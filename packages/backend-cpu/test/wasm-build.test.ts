/**
 * The committed kernel binaries (src/wasm/binaries.generated.ts) are exactly what the C sources in
 * c/ compile to with the build script and Debian's clang-16 (scripts/setup.sh installs it): no
 * binary in the repository that its sources do not reproduce.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

describe('the WebAssembly build', () => {
  it('regenerating the binaries from c/*.c gives the committed bytes', () => {
    const script = fileURLToPath(new URL('../scripts/build-wasm.mjs', import.meta.url));
    const run = spawnSync(process.execPath, [script, '--check'], { encoding: 'utf8', timeout: 120_000 });
    const why = run.error ? `${run.error.message}` : run.stderr;
    expect(run.status, `${why}\n(the compiler comes from scripts/setup.sh: apt-get install clang-16 lld-16)`).toBe(0);
  }, 120_000);
});
