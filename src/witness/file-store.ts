/**
 * The HTTP witness's storage: the record in one JSON file, `<data-dir>/witness.json`:
 *
 *   { "version": "7", "record": { "epoch": 7, "owner": ..., ... } }
 *
 * No file means nothing was written yet (version ''). `version` is a counter: every successful write
 * stores the next one. A write goes to `witness.json.tmp`, which is fsynced, renamed over witness.json,
 * and the directory is fsynced, all before compareAndSwap resolves: an acknowledged write survives a
 * crash (SIGKILL, power loss). Writes are serialized in this process, so a compare-and-swap is atomic;
 * one process owns a data dir (nothing stops a second one: do not start two on the same dir).
 *
 * A file that cannot be read back (not JSON, a bad version, an invalid record) is a WitnessFileError at
 * open() naming the file, and the file is left as it is: the witness never starts over on its own, since
 * an empty witness would let a fenced member's epoch be won again.
 */
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import {
  parseWitnessRecord,
  WitnessRecordError,
  witnessWriteRefusal,
  type VersionedWitnessRecord,
  type Witness,
  type WitnessRecord,
  type WitnessWriteResult,
} from '../domain/witness.ts';

export const witnessFileName = 'witness.json';
const tempSuffix = '.tmp';

/** The witness's data file is unreadable or corrupt, or could not be written; names the file. */
export class WitnessFileError extends Error {
  override name = 'WitnessFileError';
  readonly file: string;
  constructor(file: string, message: string, options?: { cause?: unknown }) {
    super(`witness data file ${file}: ${message}`, options);
    this.file = file;
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

const versionPattern = /^[1-9][0-9]*$/;

/**
 * What parseWitnessRecord found wrong, without its `witness X: invalid record:` prefix
 * (`epoch must be a whole number >= 0`).
 */
export function recordProblem(error: WitnessRecordError): string {
  const prefix = `witness ${error.witness}: invalid record: `;
  return error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
}

/** Parses the data file's text; throws a WitnessFileError naming `file` and what is wrong. */
export function parseWitnessFile(file: string, text: string): VersionedWitnessRecord {
  const corrupt = (what: string): WitnessFileError =>
    new WitnessFileError(file, `corrupt: ${what}; it is left as it is (restore it, or remove it only if no cluster relies on this witness)`);
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (error) {
    throw corrupt(`not JSON (${errorMessage(error)})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw corrupt('not a JSON object');
  const { version, record } = value as Record<string, unknown>;
  if (typeof version !== 'string' || !versionPattern.test(version) || !Number.isSafeInteger(Number(version))) {
    throw corrupt(`version must be a counter string such as "1", got ${version === undefined ? 'nothing' : JSON.stringify(version)}`);
  }
  try {
    return { version, record: parseWitnessRecord(file, record) };
  } catch (error) {
    if (error instanceof WitnessRecordError) throw corrupt(`invalid record: ${recordProblem(error)}`);
    throw error;
  }
}

/** The record in a JSON file (see the module comment); also a Witness for in-process use. */
export class WitnessFileStore implements Witness {
  readonly dataDir: string;
  readonly file: string;
  readonly description: string;
  private current: VersionedWitnessRecord;
  /** The tail of the write queue: every compareAndSwap runs after the previous one settled. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Set when a write failed after the rename: what is on disk is uncertain, so every later call fails. */
  private failed: WitnessFileError | undefined;
  private closed = false;

  private constructor(dataDir: string, current: VersionedWitnessRecord) {
    this.dataDir = dataDir;
    this.file = path.join(dataDir, witnessFileName);
    this.description = `file ${this.file}`;
    this.current = current;
  }

  /**
   * Opens (creating the folder if needed) the store in `dataDir`. A leftover temporary file (a write that
   * was never acknowledged) is removed; a corrupt data file is a WitnessFileError.
   */
  static async open(dataDir: string): Promise<WitnessFileStore> {
    const dir = path.resolve(dataDir);
    const file = path.join(dir, witnessFileName);
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await rm(file + tempSuffix, { force: true });
    } catch (error) {
      throw new WitnessFileError(file, `cannot prepare the data dir: ${errorMessage(error)}`, { cause: error });
    }
    let text: string | undefined;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new WitnessFileError(file, `cannot read it: ${errorMessage(error)}`, { cause: error });
    }
    const current: VersionedWitnessRecord = text === undefined ? { version: '', record: undefined } : parseWitnessFile(file, text);
    return new WitnessFileStore(dir, current);
  }

  /** The last acknowledged record (only durable writes are ever visible). */
  snapshot(): VersionedWitnessRecord {
    return { version: this.current.version, record: this.current.record === undefined ? undefined : structuredClone(this.current.record) };
  }

  read(): Promise<VersionedWitnessRecord> {
    this.check();
    return Promise.resolve(this.snapshot());
  }

  /**
   * Writes `next` if the version is still `expectedVersion` and witnessWriteRefusal allows it; resolves
   * once the file and its directory are fsynced. An invalid `next` is a WitnessRecordError.
   */
  compareAndSwap(expectedVersion: string, next: WitnessRecord): Promise<WitnessWriteResult> {
    const run = async (): Promise<WitnessWriteResult> => {
      this.check();
      const record = parseWitnessRecord(this.description, next);
      const current = this.snapshot();
      if (current.version !== expectedVersion) {
        return { ok: false, current, reason: `version ${JSON.stringify(expectedVersion)} is not the current version ${JSON.stringify(current.version)}` };
      }
      const refusal = witnessWriteRefusal(current.record, record);
      if (refusal !== undefined) return { ok: false, current, reason: refusal };
      const version = String(current.version === '' ? 1 : Number(current.version) + 1);
      await this.write(version, record);
      this.current = { version, record };
      return { ok: true, version };
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Waits for the queued writes; later calls fail. */
  async close(): Promise<void> {
    this.closed = true;
    await this.queue;
  }

  private check(): void {
    if (this.failed) throw this.failed;
    if (this.closed) throw new WitnessFileError(this.file, 'the store is closed');
  }

  private async write(version: string, record: WitnessRecord): Promise<void> {
    const temp = this.file + tempSuffix;
    const text = `${JSON.stringify({ version, record }, null, 2)}\n`;
    try {
      const handle = await open(temp, 'w', 0o600);
      try {
        await handle.writeFile(text, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
    } catch (error) {
      // Nothing renamed: witness.json is untouched and the store stays usable.
      await rm(temp, { force: true }).catch(() => undefined);
      throw new WitnessFileError(this.file, `cannot write version ${version}: ${errorMessage(error)}`, { cause: error });
    }
    try {
      await rename(temp, this.file);
      const dir = await open(this.dataDir, 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch (error) {
      this.failed = new WitnessFileError(this.file, `writing version ${version} failed half way (${errorMessage(error)}); restart the witness to read what is on disk`, { cause: error });
      throw this.failed;
    }
  }
}
