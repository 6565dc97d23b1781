/**
 * The diskPressure fault's ballast file: where it goes beside a member's data dir, and writing it with
 * its blocks allocated.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { removeHold } from './hold.ts';

/**
 * Where a diskPressure fault puts its ballast: beside the data dir (`<data-dir>/../.etcd-robustness-
 * ballast-<member>`), so etcd never sees it, when that folder is on the same filesystem as the data
 * dir; otherwise (the data dir is a mount point, as in a pod with a volume) inside the data dir, where
 * etcd ignores unknown files.
 */
export function ballastFile(dataDir: string, member: string): string {
  const name = `.etcd-robustness-ballast-${member}`;
  const dir = path.resolve(dataDir);
  const parent = path.dirname(dir);
  try {
    const parentStat = statSync(parent);
    let sameDevice = true;
    try {
      sameDevice = statSync(dir).dev === parentStat.dev;
    } catch {
      // No data dir yet: it will be created in the parent.
    }
    accessSync(parent, constants.W_OK);
    if (sameDevice) return path.join(parent, name);
  } catch {
    // Parent not writable: fall back to the data dir.
  }
  return path.join(dir, name);
}

/** Both places a ballast may be (removed on start-up whatever the layout was then). */
export function ballastCandidates(dataDir: string, member: string): string[] {
  const name = `.etcd-robustness-ballast-${member}`;
  const dir = path.resolve(dataDir);
  return [path.join(path.dirname(dir), name), path.join(dir, name)];
}

function onPath(program: string): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(path.delimiter).filter((d) => d !== ''), '/usr/bin', '/bin'];
  for (const dir of dirs) {
    const candidate = path.join(dir, program);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

/**
 * Creates `file` with `bytes` of allocated blocks: fallocate(1) when it is installed and the
 * filesystem supports it (instant), else zeros written in 1 MiB chunks and fsynced.
 */
export async function writeBallast(file: string, bytes: number): Promise<'fallocate' | 'zeros'> {
  const fallocate = onPath('fallocate');
  if (fallocate !== undefined) {
    try {
      await promisify(execFile)(fallocate, ['-l', String(bytes), file]);
      return 'fallocate';
    } catch (error) {
      await removeHold(file).catch(() => false);
      const { stderr } = error as { stderr?: unknown };
      if (typeof stderr === 'string' && /No space left/i.test(stderr)) throw new Error(`fallocate ${file}: no space left on the device`, { cause: error });
      // Unsupported by this filesystem (or fallocate failed otherwise): write the zeros ourselves.
    }
  }
  const handle = await open(file, 'w', 0o600);
  try {
    const chunk = Buffer.alloc(Math.min(bytes, 1 << 20));
    let left = bytes;
    while (left > 0) {
      const { bytesWritten } = await handle.write(chunk, 0, Math.min(left, chunk.length));
      left -= bytesWritten;
    }
    await handle.sync();
  } catch (error) {
    await handle.close();
    await removeHold(file).catch(() => false);
    throw error;
  }
  await handle.close();
  return 'zeros';
}
