/**
 * Transient folders: the members' data of `run --local`, the data of `dev` without --data-dir, the
 * apiservers' etcd, the operator's per-run work folders. Each lives under one parent per user,
 * `<os.tmpdir()>/etcd-robustness-<uid>/`, and is named after the process that owns it:
 * `<kind>-<pid>-<pid start time>-<random>`. The name is the owner marker: it exists from the folder's
 * first instant (mkdtemp), so no start can ever see an unmarked folder of a live owner.
 *
 * A process that is killed (SIGKILL, OOM, power) leaves its folder behind; the next start of
 * `run --local`, the operator or `dev` calls reclaimScratch(), which removes every folder whose owner no
 * longer runs (a recycled pid with another start time is not the owner) and that no live process still
 * works in. Live owners' folders are never touched, so runs side by side are fine. Histories found in a
 * reclaimed folder (a run the operator was recording when it was killed) are results, not scratch: they
 * are moved to `<parent>/kept/` first.
 */
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { logger } from '../log.ts';
import { currentProcess, ownerAlive, pidsWithArgument, type ProcessIdentity } from '../processes.ts';

export class ScratchKindError extends Error {
  override name = 'ScratchKindError';
}

/** The owner a scratch folder's name records. */
export interface ScratchOwner extends ProcessIdentity {
  kind: string;
}

const kindPattern = /^[a-z][a-z0-9]*$/;
const namePattern = /^([a-z][a-z0-9]*)-(\d+)-(\d+)-([A-Za-z0-9]+)$/;

/** The kind of the folders a reclaiming process moves a dead owner's folder to while it removes it. */
const reclaimKind = 'reclaim';

/** The parent of this user's scratch folders (per user: another user's folders are not ours to judge). */
export function scratchParent(): string {
  return path.join(os.tmpdir(), `etcd-robustness-${os.userInfo().uid}`);
}

/** The owner a folder name records, or undefined for a name that is not a scratch folder's. */
export function parseScratchName(name: string): ScratchOwner | undefined {
  const match = namePattern.exec(name);
  if (!match) return undefined;
  const pid = Number(match[2]);
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  return { kind: match[1]!, pid, pidStart: match[3]! };
}

/** The name prefix of a folder owned by `owner` (mkdtemp adds the random part). */
export function scratchPrefix(kind: string, owner: ProcessIdentity): string {
  if (!kindPattern.test(kind)) throw new ScratchKindError(`scratch folder kind "${kind}": lower-case letters and digits, starting with a letter`);
  return `${kind}-${owner.pid}-${owner.pidStart}-`;
}

function self(): ProcessIdentity {
  // Without /proc nobody's liveness can be told: the folder is still created (it then is never reclaimed).
  return currentProcess() ?? { pid: process.pid, pidStart: '0' };
}

/** Creates a fresh scratch folder owned by this process (mode 0700). */
export function createScratch(kind: string, parent: string = scratchParent()): string {
  const prefix = scratchPrefix(kind, self());
  mkdirSync(parent, { recursive: true, mode: 0o700 });
  return mkdtempSync(path.join(parent, prefix));
}

/** Bytes allocated on disk under `target` (what removing it frees); entries that vanish meanwhile count 0. */
export function diskUsage(target: string): number {
  let stat;
  try {
    stat = lstatSync(target);
  } catch {
    return 0;
  }
  let total = stat.blocks * 512;
  if (stat.isDirectory()) {
    let entries: string[] = [];
    try {
      entries = readdirSync(target);
    } catch {
      // Unreadable: counted as its own blocks only.
    }
    for (const entry of entries) total += diskUsage(path.join(target, entry));
  }
  return total;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** Folders named `history` (recorded histories) at most `depth` levels under `root`, relative to it. */
function histories(root: string, depth = 3, relative = ''): string[] {
  if (depth === 0) return [];
  let entries;
  try {
    entries = readdirSync(path.join(root, relative), { withFileTypes: true });
  } catch {
    return [];
  }
  return entries
    .filter((e) => e.isDirectory())
    .flatMap((e) => {
      const child = path.join(relative, e.name);
      return e.name === 'history' ? [child] : histories(root, depth - 1, child);
    });
}

export interface ReclaimedFolder {
  /** The folder as its owner named it. */
  folder: string;
  owner: ScratchOwner;
  /** Bytes freed. */
  bytes: number;
  /** Where histories found in it were moved to. */
  keptHistories: string[];
}

export interface ReclaimResult {
  reclaimed: ReclaimedFolder[];
  /** Dead owners' folders left alone because live processes still work in them (pids). */
  inUse: { folder: string; pids: number[] }[];
  /** Dead owners' folders that could not be removed (logged; the start goes on). */
  failed: { folder: string; error: string }[];
}

export interface ReclaimOptions {
  parent?: string;
  /** Where each reclaimed folder is reported (default: the logger, info). */
  log?: (line: string) => void;
}

/** Moves the histories out of `claimed` (a dead owner's folder, renamed) to `<parent>/kept/<name>/`. */
function keepHistories(claimed: string, parent: string, name: string): string[] {
  return histories(claimed).map((relative) => {
    const target = path.join(parent, 'kept', name, relative);
    mkdirSync(path.dirname(target), { recursive: true, mode: 0o700 });
    renameSync(path.join(claimed, relative), target);
    return target;
  });
}

/** Reclaims one dead owner's folder (see reclaimScratch), adding what happened to `result`. */
function reclaimOne(parent: string, name: string, owner: ScratchOwner, me: ProcessIdentity, log: (line: string) => void, result: ReclaimResult): void {
  const folder = path.join(parent, name);
  const users = pidsWithArgument(`${folder}/`);
  if (users.length > 0) {
    result.inUse.push({ folder, pids: users });
    log(`kept ${folder}: its owner (process ${owner.pid}) no longer runs, but processes ${users.join(', ')} still work in it`);
    return;
  }
  const claimed = `${path.join(parent, scratchPrefix(reclaimKind, me))}${name.replace(/[^A-Za-z0-9]/g, '')}`;
  try {
    renameSync(folder, claimed);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return; // Another start took it.
    throw error;
  }
  const keptHistories = keepHistories(claimed, parent, name);
  const bytes = diskUsage(claimed);
  rmSync(claimed, { recursive: true, force: true });
  result.reclaimed.push({ folder, owner, bytes, keptHistories });
  const kept = keptHistories.length === 0 ? '' : `; kept the histories it held: ${keptHistories.join(', ')}`;
  log(`reclaimed ${folder}: ${formatBytes(bytes)} left by process ${owner.pid}, which no longer runs${kept}`);
}

/**
 * Removes what killed owners left under `parent`: each folder whose owner no longer runs and that no
 * live process works in (an etcd that outlived its parent). Nothing else is touched: live owners'
 * folders, names that are not scratch folders', `kept/`. Two starts reclaiming at once do not collide:
 * each first renames the folder to one it owns itself (only one rename succeeds).
 */
export function reclaimScratch(options: ReclaimOptions = {}): ReclaimResult {
  const parent = options.parent ?? scratchParent();
  const log = options.log ?? ((line: string) => logger.info(line));
  const result: ReclaimResult = { reclaimed: [], inUse: [], failed: [] };
  const me = currentProcess();
  if (me === undefined) return result; // No /proc: every owner would look dead.
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return result; // No folder yet: nothing was left.
  }
  for (const name of names) {
    const owner = parseScratchName(name);
    if (owner === undefined || ownerAlive(owner)) continue;
    try {
      reclaimOne(parent, name, owner, me, log, result);
    } catch (error) {
      // A leftover that cannot be removed (permissions, a busy mount) must not stop the start.
      result.failed.push({ folder: path.join(parent, name), error: (error as Error).message });
      log(`could not reclaim ${path.join(parent, name)}: ${(error as Error).message}`);
    }
  }
  return result;
}

/**
 * Removes this process's own scratch folder when it is done with it, histories excepted (moved to
 * `<parent>/kept/` as reclaimScratch does: a run stopped before its report was stored).
 */
export function removeScratch(folder: string, options: { log?: (line: string) => void } = {}): void {
  const parent = path.dirname(folder);
  const kept = keepHistories(folder, parent, path.basename(folder));
  if (kept.length > 0) (options.log ?? ((line: string) => logger.info(line)))(`kept the histories of unfinished runs: ${kept.join(', ')}`);
  rmSync(folder, { recursive: true, force: true });
}

export class FolderBusyError extends Error {
  override name = 'FolderBusyError';
  readonly folder: string;
  readonly owner: ProcessIdentity;
  constructor(folder: string, owner: ProcessIdentity, what: string) {
    super(`${folder} is in use by another ${what} (pid ${owner.pid}, still running): stop it first, or choose another folder`);
    this.folder = folder;
    this.owner = owner;
  }
}

interface FolderOwnerRecord extends ProcessIdentity {
  command: string;
  startedAt: string;
}

function readFolderOwner(file: string): FolderOwnerRecord | undefined {
  try {
    const record = JSON.parse(readFileSync(file, 'utf8')) as Partial<FolderOwnerRecord>;
    return typeof record.pid === 'number' && typeof record.pidStart === 'string' ? (record as FolderOwnerRecord) : undefined;
  } catch {
    return undefined; // None, or torn by a kill mid-write: nobody owns it.
  }
}

/**
 * Makes this process the owner of a kept folder (`dev --data-dir DIR`): `DIR/owner.json` records it,
 * created exclusively. A live owner's folder is refused (FolderBusyError); a dead owner's is taken
 * over. Returns the release, which removes the record if it is still this process's. Two starts taking
 * over the same dead owner's folder in the same instant are not told apart (both may win): one dev per
 * folder is a guard against mistakes, not a lock against races.
 */
export function claimFolder(dir: string, what: string, log: (line: string) => void = (line) => logger.info(line)): () => void {
  const me = self();
  const file = path.join(dir, 'owner.json');
  const record: FolderOwnerRecord = { ...me, command: what, startedAt: new Date().toISOString() };
  mkdirSync(dir, { recursive: true });
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(file, `${JSON.stringify(record)}\n`, { flag: 'wx', mode: 0o600 });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 3) throw error;
    }
    const previous = readFolderOwner(file);
    if (previous !== undefined && ownerAlive(previous)) throw new FolderBusyError(dir, previous, what);
    log(`${dir}: taking it over from ${previous === undefined ? 'an unreadable owner record' : `${previous.command || what} process ${previous.pid}, which no longer runs`}`);
    rmSync(file, { force: true });
  }
  return () => {
    const current = readFolderOwner(file);
    if (current?.pid === me.pid && current.pidStart === me.pidStart) rmSync(file, { force: true });
  };
}
