/**
 * What etcd itself says about a cluster: its member list and each member's status. The EtcdCluster
 * status is built from this, never from what the operator intended.
 */
import { noop } from 'cockatiel';
import { Etcd3 } from 'etcd3';
import type { EtcdClientTls } from '../../domain/index.ts';
import { etcdTlsOptions } from '../../probes/etcd-transport.ts';

export interface EtcdMemberView {
  /** etcd's member id, decimal (as the API returns it). */
  id: string;
  /** Empty for a member that was added and has not started yet. */
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
  /** Absent when the member did not answer a status call. */
  status?: { revision: number; version: string; raftIndex: number; hasLeader: boolean; dbSize: number };
}

export interface EtcdView {
  clusterId: string;
  /** The leader's id as the answering members see it. */
  leaderId: string | undefined;
  members: EtcdMemberView[];
}

function client(endpoints: string[], tls: EtcdClientTls | undefined): Etcd3 {
  // No retries: the reconciler is retried by its queue, and a dead member must not slow it down.
  return new Etcd3({ hosts: endpoints, dialTimeout: 1500, ...etcdTlsOptions(tls), faultHandling: { host: () => noop, global: noop } });
}

export const hexId = (decimal: string): string => BigInt(decimal).toString(16);

/**
 * The cluster as etcd sees it, or undefined when no endpoint answers a member list. `tls` is the
 * placement's clientTls for the cluster (undefined for plain http members): a required argument, so no
 * caller forgets it.
 */
export async function observeEtcd(endpoints: string[], tls: EtcdClientTls | undefined, timeoutMs = 2000): Promise<EtcdView | undefined> {
  if (endpoints.length === 0) return undefined;
  let list: Awaited<ReturnType<Etcd3['cluster']['memberList']>> | undefined;
  for (const endpoint of endpoints) {
    const c = client([endpoint], tls);
    try {
      // Serializable: a member without quorum still tells who the members are.
      list = await c.cluster.memberList({ linearizable: false }, { deadline: Date.now() + timeoutMs });
      break;
    } catch {
      // next endpoint
    } finally {
      c.close();
    }
  }
  if (!list) return undefined;
  const leaders = new Map<string, number>();
  const members = await Promise.all(
    list.members.map(async (m): Promise<EtcdMemberView> => {
      const view: EtcdMemberView = { id: m.ID, name: m.name, peerUrls: m.peerURLs, clientUrls: m.clientURLs, isLearner: m.isLearner };
      const url = m.clientURLs[0];
      if (url === undefined) return view;
      const c = client([url], tls);
      try {
        const status = await c.maintenance.status({ deadline: Date.now() + timeoutMs });
        const hasLeader = status.leader !== '0';
        if (hasLeader) leaders.set(status.leader, (leaders.get(status.leader) ?? 0) + 1);
        view.status = {
          revision: Number(status.header.revision),
          version: status.version,
          raftIndex: Number(status.raftIndex),
          hasLeader,
          dbSize: Number(status.dbSize),
        };
      } catch {
        // unreachable member: no status
      } finally {
        c.close();
      }
      return view;
    }),
  );
  const leaderId = [...leaders.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
  return { clusterId: list.header.cluster_id, leaderId, members };
}

/** A client for membership changes (member add/remove/promote go to the leader through any member). */
export async function withEtcd<T>(endpoints: string[], tls: EtcdClientTls | undefined, action: (etcd: Etcd3) => Promise<T>): Promise<T> {
  const c = client(endpoints, tls);
  try {
    return await action(c);
  } finally {
    c.close();
  }
}
