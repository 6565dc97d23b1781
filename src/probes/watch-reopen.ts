/**
 * Watches reopened at past or future revisions (spec.watch.reopen), as etcd's robustness traffic opens its
 * watches at the current revision plus a random offset (RevisionOffsetRange). Every interval, one extra watch
 * per target starts at the newest revision the run has seen plus an offset drawn from the run's seed, and
 * closes after its lifetime.
 *
 * Why: a watch from a past revision below the newest compaction is cancelled by etcd with the compaction
 * revision, and the watch probe then resumes exactly there (the watch etcd issues 18089 and 19179 break); a
 * watch from a future revision sits in etcd's synced group until the store reaches it, which is the watcher
 * etcd issue 20221 sends old events or notifications to after a snapshot restore.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { WatchReopenSpec } from '../domain/index.ts';

/** Something that watches until closed: a WatchProbe. */
export interface ClosableWatch {
  close(): Promise<void>;
}

export interface WatchReopenOptions<Target> {
  spec: WatchReopenSpec;
  /** Seeded: the same run seed draws the same offsets. */
  random: () => number;
  /** The newest revision the run has seen so far. */
  newestRevision: () => number;
  /** One reopened watch per target each interval (a member, or all members). */
  targets: readonly Target[];
  open: (target: Target, startRevision: number) => ClosableWatch;
  signal: AbortSignal;
  /** Never more reopened watches open at once than this: a long lifetime with a short interval cannot pile them up. */
  maxOpen: number;
}

/** An integer offset in [min, max], uniformly. */
export function drawRevisionOffset(random: () => number, range: { min: number; max: number }): number {
  return range.min + Math.min(range.max - range.min, Math.floor(random() * (range.max - range.min + 1)));
}

/** The start revision of a reopened watch: etcd's revisions start at 1, and 0 would mean "from now". */
export function reopenedStartRevision(newest: number, offset: number): number {
  return Math.max(1, newest + offset);
}

/** Opens watches until the signal aborts, then closes every one still open; resolves with how many it opened. */
export async function runWatchReopens<Target>(options: WatchReopenOptions<Target>): Promise<number> {
  const { spec, signal } = options;
  const open = new Set<Promise<void>>();
  let opened = 0;
  const keepOpen = async (watch: ClosableWatch): Promise<void> => {
    await sleep(spec.lifetimeMs, undefined, { signal }).catch(() => undefined);
    await watch.close();
  };
  while (!signal.aborted) {
    const waited = await sleep(spec.intervalMs, true, { signal }).catch(() => false);
    if (!waited) break;
    for (const target of options.targets) {
      if (open.size >= options.maxOpen) break;
      const start = reopenedStartRevision(options.newestRevision(), drawRevisionOffset(options.random, spec.revisionOffset));
      const pending = keepOpen(options.open(target, start));
      opened++;
      open.add(pending);
      void pending.finally(() => open.delete(pending));
    }
  }
  await Promise.all(open);
  return opened;
}
