/** Parity fixture files on disk. */
import { readParityFixture, type ParityFixture } from '../io/parity.js';
import { fileSource } from './file-source.js';

/** Reads and validates a parity fixture file. */
export async function readParityFixtureFile(path: string): Promise<ParityFixture> {
  return readParityFixture(await fileSource(path));
}
