import { listBackends } from '../backends.js';
import { parseFlags } from '../args.js';
import { table, writeJson, writeLine } from '../io.js';
import { VERSION } from '../version.js';

export const infoHelp = `difftx info [--json]

Lists the registered backends: available or not (and why not), the device each one runs on, and
which one \`ready()\` would pick (the highest-priority available backend).`;

export async function info(args: string[]): Promise<number> {
  const { values } = parseFlags('info', args, { json: { type: 'boolean' } });
  const backends = await listBackends();
  const chosen = backends.find((b) => b.available)?.name ?? null;
  if (values.json) {
    writeJson({
      version: VERSION,
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      default: chosen,
      backends,
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
        String(b.priority),
        b.available ? 'available' : 'unavailable',
        (b.available ? b.device : b.reason) ?? '',
      ]),
    ),
  );
  writeLine();
  writeLine(chosen ? `* default backend (highest priority that initialises): ${chosen}` : 'no backend is available');
  return 0;
}
