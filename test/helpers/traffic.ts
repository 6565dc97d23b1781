/**
 * A small, fixed traffic mix for checker integration tests (the configurable profiles live in
 * src/probes): gets, prefix ranges, unique puts, deletes and compare-and-set on mod revision over a
 * few keys, one request at a time per client.
 */
import type { EtcdRequest } from '../../src/domain/index.ts';
import type { RecordingClient } from '../../src/probes/index.ts';
import { seededRandom } from '../../src/random.ts';

export interface TrafficStats {
  ok: number;
  failed: number;
  unknown: number;
}

export async function runTraffic(clients: RecordingClient[], options: { prefix: string; keys: number; until: () => boolean; seed: number }): Promise<TrafficStats> {
  const stats: TrafficStats = { ok: 0, failed: 0, unknown: 0 };
  let counter = 0;
  const random = seededRandom(options.seed);
  const key = (): string => `${options.prefix}${Math.floor(random() * options.keys)}`;
  const loop = async (client: RecordingClient, id: number): Promise<void> => {
    let lastMod = 0;
    while (!options.until()) {
      const r = random();
      let request: EtcdRequest;
      if (r < 0.25) request = { type: 'range', key: key() };
      else if (r < 0.35) request = { type: 'range', key: options.prefix, end: `${options.prefix.slice(0, -1)}${String.fromCharCode(options.prefix.charCodeAt(options.prefix.length - 1) + 1)}` };
      else if (r < 0.75) request = { type: 'put', key: key(), value: `c${id}-${++counter}` };
      else if (r < 0.82) request = { type: 'delete', key: key() };
      else {
        const k = key();
        request = {
          type: 'txn',
          compare: [{ key: k, target: 'mod', result: '=', value: lastMod }],
          success: [{ type: 'put', key: k, value: `c${id}-${++counter}` }],
          failure: [{ type: 'range', key: k }],
        };
      }
      const outcome = await client.execute(request);
      if (outcome.kind === 'ok') {
        stats.ok++;
        const response = outcome.response as { revision?: number };
        if (response.revision !== undefined) lastMod = response.revision;
      } else if (outcome.kind === 'failed') stats.failed++;
      else stats.unknown++;
    }
  };
  await Promise.all(clients.map((c, i) => loop(c, i)));
  return stats;
}
