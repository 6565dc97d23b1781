import { Etcd3 } from 'etcd3';
import { logger } from '../log.ts';
import { LocalEtcdCluster } from './etcd-cluster.ts';

export interface SmokeReport {
  ok: boolean;
  etcdVersion: string;
  members: { name: string; endpoint: string; readBack: boolean }[];
  revision: string;
}

/**
 * What `run --local` does until the probes exist: start a real cluster, write one key through the
 * whole cluster, read it back from each member on its own (a linearizable read), and stop everything.
 */
export async function runLocalSmoke(options: { members: number }): Promise<SmokeReport> {
  const cluster = await LocalEtcdCluster.start({ size: options.members, failpoints: true });
  logger.info('local etcd cluster started', { version: cluster.binaries.version, endpoints: cluster.endpoints });
  const clients: Etcd3[] = [];
  try {
    const all = new Etcd3({ hosts: cluster.endpoints });
    clients.push(all);
    const key = `/etcd-robustness/smoke/${Date.now()}`;
    const value = `written-by-run-local-${process.pid}`;
    const put = await all.put(key).value(value).exec();
    const members = [];
    for (const member of cluster.members) {
      const client = new Etcd3({ hosts: member.endpoint });
      clients.push(client);
      const read = await client.get(key).string();
      members.push({ name: member.name, endpoint: member.endpoint, readBack: read === value });
    }
    await all.delete().key(key).exec();
    return {
      ok: members.every((m) => m.readBack),
      etcdVersion: cluster.binaries.version,
      members,
      revision: put.header.revision,
    };
  } finally {
    for (const c of clients) c.close();
    await cluster.close();
    logger.info('local etcd cluster stopped');
  }
}
