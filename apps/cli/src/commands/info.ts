import { initializedBackend } from '@diff-transformer/core';
import { listBackends } from '../backends.js';
import { parseFlags } from '../args.js';
import { table, writeJson, writeLine } from '../io.js';
import { VERSION } from '../version.js';

export const infoHelp = `difftx info [--json]

Lists the registered backends in the order \`ready()\` ranks them: available or not (and why not), the
device each one runs on, the priority it ranks at and why (a backend may lower its own, as WebGPU does
on a software adapter such as SwiftShader), and which one \`ready()\` and every command without
--backend pick: the available backend of highest effective priority. For the cpu backend it also says
which engine runs and why (the native engine's instruction set, chosen by CPUID, or why there is no
native engine and WebAssembly runs).`;

export async function info(args: string[]): Promise<number> {
  const { values } = parseFlags('info', args, { json: { type: 'boolean' } });
  const backends = await listBackends();
  const chosen = backends.find((b) => b.available)?.name ?? null;
  const cpu = await cpuEngine(backends.some((b) => b.name === 'cpu' && b.available));
  if (values.json) {
    writeJson({
      version: VERSION,
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      default: chosen,
      backends,
      ...(cpu ? { cpuEngine: cpu } : {}),
    });
    return 0;
  }
  writeLine(`difftx ${VERSION} on Node ${process.version} (${process.platform}-${process.arch})`);
  writeLine();
  writeLine(
    table(
      ['backend', 'priority', 'status', 'device / reason'],
      backends.map((b) => [
        b.name + (b.name === chosen ? ' *' : ''),
        b.effectivePriority === b.priority ? String(b.priority) : `${b.effectivePriority} (${b.priority})`,
        b.available ? 'available' : 'unavailable',
        (b.available ? b.device : b.reason) ?? '',
      ]),
    ),
  );
  writeLine();
  writeLine(
    chosen ? `* default backend (highest effective priority that initialises): ${chosen}` : 'no backend is available',
  );
  if (cpu) writeLine(`cpu engine: ${cpu.engine} — ${cpu.reason}`);
  writeLine('ranking:');
  const width = Math.max(...backends.map((b) => b.name.length));
  for (const b of backends) writeLine(`  ${b.name.padEnd(width)}  ${b.ranking}`);
  return 0;
}

/** The cpu backend's engine and why it runs (backend-cpu's engineReason), when the backend is available. */
async function cpuEngine(available: boolean): Promise<{ engine: string; reason: string } | null> {
  if (!available) return null;
  const backend = (await initializedBackend('cpu')) as { engine?: string; engineReason?: string };
  if (backend.engine === undefined || backend.engineReason === undefined) return null;
  return { engine: backend.engine, reason: backend.engineReason };
}
