/**
 * Maintenance traffic a real cluster sees besides reads and writes: compaction the way kube-apiserver
 * does it and defragmentation of one member at a time. Both rewrite what every client of the cluster
 * can read, so the runner starts them only in exclusive mode unless the run allows them when shared.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { RangeResponse, TxnResponse } from '../domain/index.ts';
import type { RecordingClient } from './recording-client.ts';
import type { UniqueValues } from './traffic.ts';

/**
 * kube-apiserver's compactor (storage/etcd3/compact.go): each interval, a txn bumps the version of a
 * shared compact key if nobody else did since the last round (so only one apiserver compacts), then
 * compacts at the revision the previous round saw. Compaction thus always trails by one interval.
 */
export async function runCompactions(options: {
  client: RecordingClient;
  compactKey: string;
  values: UniqueValues;
  intervalMs: number;
  stopped: () => boolean;
  signal: AbortSignal;
  onCompacted?: (revision: number) => void;
}): Promise<void> {
  const { client, compactKey } = options;
  let version = 0;
  let compactAt = 0;
  while (!options.stopped()) {
    try {
      await sleep(options.intervalMs, undefined, { signal: options.signal });
    } catch {
      return; // aborted
    }
    if (options.stopped()) return;
    const outcome = await client.execute({
      type: 'txn',
      compare: [{ key: compactKey, target: 'version', result: '=', value: version }],
      success: [{ type: 'put', key: compactKey, value: options.values.next() }],
      failure: [{ type: 'range', key: compactKey }],
    });
    if (outcome.kind !== 'ok' || !('succeeded' in outcome.response)) continue;
    const response: TxnResponse = outcome.response;
    const seenRevision = response.revision ?? 0;
    if (!response.succeeded) {
      // Someone else compacted: adopt their version and wait for the next round, as the apiserver does.
      const read = response.results?.[0] as RangeResponse | undefined;
      version = read?.kvs[0]?.version ?? version;
      compactAt = seenRevision;
      continue;
    }
    version += 1;
    if (compactAt > 0) {
      const compacted = await client.execute({ type: 'compact', revision: compactAt });
      if (compacted.kind === 'ok') options.onCompacted?.(compactAt);
    }
    compactAt = seenRevision;
  }
}

/** Defragments one member per interval, round robin (a recorded operation: it must not change data). */
export async function runDefragmentation(options: {
  clients: readonly RecordingClient[];
  intervalMs: number;
  stopped: () => boolean;
  signal: AbortSignal;
}): Promise<void> {
  let next = 0;
  while (!options.stopped() && options.clients.length > 0) {
    try {
      await sleep(options.intervalMs, undefined, { signal: options.signal });
    } catch {
      return;
    }
    if (options.stopped()) return;
    await options.clients[next++ % options.clients.length]!.execute({ type: 'defragment' });
  }
}
