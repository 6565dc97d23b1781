/**
 * The crash fault's hold file: `<data-dir>.hold`, beside a member's data dir (on the same volume), holding
 * the time in ms since the epoch until which whoever supervises the member's etcd must not restart it.
 * Like every agent fault it is a lease: the agent removes it when the fault heals (at its TTL, on DELETE,
 * or when a restarted agent heals what its predecessor left), and a supervisor ignores one that has
 * expired or cannot be read, so a member is never held down forever.
 */
import { readFileSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';

/** A hold further ahead than this is taken for garbage and ignored (the agent's TTLs are minutes). */
export const maxHoldAheadMs = 24 * 60 * 60 * 1000;

/** Where the hold file of the member with this data dir is. */
export function holdFile(dataDir: string): string {
  return `${path.resolve(dataDir)}.hold`;
}

/** The expiry a hold file's text gives (whole ms since the epoch, surrounding blanks allowed), or undefined. */
export function parseHold(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^\d{1,16}$/.test(trimmed)) return undefined;
  const value = Number(trimmed);
  return Number.isSafeInteger(value) ? value : undefined;
}

/**
 * Until when the hold file holds the member down: its expiry when the file exists, reads as one, and
 * the expiry is in the future (and not implausibly far: at most maxHoldAheadMs ahead); else undefined
 * (no hold, an expired one, an unreadable one).
 */
export function holdUntil(file: string, now: number = Date.now()): number | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const until = parseHold(text);
  if (until === undefined || until <= now || until > now + maxHoldAheadMs) return undefined;
  return until;
}

/** Writes the hold file (through a temporary file and a rename, fsynced, so a reader sees all or nothing). */
export async function writeHold(file: string, untilMs: number): Promise<void> {
  if (!Number.isSafeInteger(untilMs) || untilMs <= 0) throw new RangeError(`a hold expiry must be a positive whole number of ms, got ${untilMs}`);
  await writeFileDurably(file, `${untilMs}\n`);
}

/** Writes `text` to `file` through a temporary file and a rename, both fsynced: all or nothing, and durable. */
export async function writeFileDurably(file: string, text: string): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  const handle = await open(temporary, 'w', 0o644);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temporary, file);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
  await syncFolderOf(file);
}

/** A rename or unlink is durable once the folder is synced (some filesystems refuse to sync a folder: fine). */
export async function syncFolderOf(file: string): Promise<void> {
  const dir = await open(path.dirname(file), 'r').catch(() => undefined);
  if (dir) {
    await dir.sync().catch(() => undefined);
    await dir.close();
  }
}

/** Removes the hold file (or any file the agent put down: the disk-pressure ballast too); false if there was none. */
export async function removeHold(file: string): Promise<boolean> {
  try {
    await unlink(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
