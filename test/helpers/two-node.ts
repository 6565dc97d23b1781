// Helpers of the two-node-plus-witness integration tests: the cluster manifest, waiting for the pair and
// for a failover, and a write load that remembers every acknowledged write.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd3 } from 'etcd3';
import { recordingEtcdClient } from '../../src/probes/recording-client.ts';
import type { EtcdCluster, FailoverStatus, WitnessSpec } from '../../src/domain/index.ts';
import type { TestApiserver } from './kube-apiserver.ts';
import { eventually, kubectlJson } from './operator.ts';

export function pairManifest(namespace: string, name: string, witness: WitnessSpec, failoverGrace = '3s'): string {
  return `apiVersion: etcd.robustness.io/v1alpha1
kind: EtcdCluster
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  topology: twoNodeWitness
  replicas: 2
  twoNode:
    witness: ${JSON.stringify(witness)}
    failoverGrace: ${failoverGrace}
`;
}

export async function getCluster(apiserver: TestApiserver, namespace: string, name: string): Promise<EtcdCluster | undefined> {
  return kubectlJson<EtcdCluster>(apiserver, ['-n', namespace, 'get', 'etcdcluster', name]);
}

/** The cluster once the pair is whole: witness paired, two healthy voters, Available. */
export async function waitPair(apiserver: TestApiserver, namespace: string, name: string, timeoutMs = 120_000): Promise<EtcdCluster> {
  return eventually(
    `EtcdCluster ${name}: a whole pair`,
    timeoutMs,
    async () => {
      const c = await getCluster(apiserver, namespace, name);
      const s = c?.status;
      const members = s?.members ?? [];
      const ok =
        s?.witness?.phase === 'paired' &&
        s.readyMembers === 2 &&
        members.length === 2 &&
        members.every((m) => m.healthy && (m.role === 'leader' || m.role === 'follower')) &&
        s.conditions?.find((x) => x.type === 'Available')?.status === 'True' &&
        s.conditions.find((x) => x.type === 'Progressing')?.status === 'False';
      return ok ? c : undefined;
    },
    async () => JSON.stringify((await getCluster(apiserver, namespace, name))?.status ?? null),
  );
}

/** The failover after `epoch` once the survivor served alone (writableAt set). */
export async function waitFailover(apiserver: TestApiserver, namespace: string, name: string, afterEpoch: number, timeoutMs = 60_000): Promise<FailoverStatus> {
  return eventually(
    `EtcdCluster ${name}: a failover after epoch ${afterEpoch}`,
    timeoutMs,
    async () => {
      const f = (await getCluster(apiserver, namespace, name))?.status?.witness?.lastFailover;
      return f && f.epoch > afterEpoch && f.writableAt !== undefined ? f : undefined;
    },
    async () => JSON.stringify((await getCluster(apiserver, namespace, name))?.status ?? null),
    100,
  );
}

export async function eventReasons(apiserver: TestApiserver, namespace: string, regarding: string): Promise<{ reason: string; note: string }[]> {
  const result = await apiserver.kubectl(['-n', namespace, 'get', 'events.events.k8s.io', '-o', 'json']);
  assert.equal(result.code, 0, result.stderr);
  const items = (JSON.parse(result.stdout) as { items: { reason: string; note: string; regarding: { name: string } }[] }).items;
  return items.filter((e) => e.regarding.name === regarding).map((e) => ({ reason: e.reason, note: e.note }));
}

interface Attempt {
  key: string;
  invokedAt: number;
  returnedAt: number;
  ok: boolean;
  revision?: number;
}

/**
 * Writers putting unique keys through `endpoint` (the cluster's service address), each waiting for its
 * answer: every acknowledged write is remembered with its revision, so a test can check none is lost.
 */
export class WriteLoad {
  readonly attempts: Attempt[] = [];
  private readonly client: Etcd3;
  private readonly prefix: string;
  private stopped = false;
  private readonly loops: Promise<void>[] = [];
  private next = 0;

  constructor(endpoint: string, prefix: string, writers = 4) {
    this.prefix = prefix;
    this.client = recordingEtcdClient([endpoint], { dialTimeout: 1000 });
    for (let i = 0; i < writers; i++) this.loops.push(this.loop());
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const key = `${this.prefix}${String(this.next++).padStart(8, '0')}`;
      const invokedAt = Date.now();
      try {
        const result = await this.client.put(key).value(key).options({ deadline: Date.now() + 1000 }).exec();
        this.attempts.push({ key, invokedAt, returnedAt: Date.now(), ok: true, revision: Number(result.header.revision) });
      } catch {
        this.attempts.push({ key, invokedAt, returnedAt: Date.now(), ok: false });
        await sleep(50);
      }
    }
  }

  get acknowledged(): Attempt[] {
    return this.attempts.filter((a) => a.ok);
  }

  /** ms from `faultAt` (once the fault is in place) to the answer of the first write invoked after it that succeeded. */
  writableAfter(faultAt: number): number | undefined {
    const first = this.attempts.filter((a) => a.ok && a.invokedAt >= faultAt).sort((a, b) => a.returnedAt - b.returnedAt)[0];
    return first === undefined ? undefined : first.returnedAt - faultAt;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
    this.client.close();
  }
}

/**
 * Every acknowledged write of `load` is in the cluster with its value, and the cluster's revision is
 * beyond every revision a writer saw (nothing acknowledged went missing, no revision went back).
 */
export async function assertNoAcknowledgedWriteLost(endpoint: string, load: WriteLoad, prefix: string): Promise<{ acknowledged: number }> {
  const client = new Etcd3({ hosts: [endpoint], dialTimeout: 2000 });
  try {
    const stored = await client.getAll().prefix(prefix).strings();
    const acked = load.acknowledged;
    const missing = acked.filter((a) => stored[a.key] !== a.key).map((a) => a.key);
    assert.deepEqual(missing.slice(0, 10), [], `${missing.length} of ${acked.length} acknowledged writes are missing`);
    const highest = Math.max(0, ...acked.map((a) => a.revision ?? 0));
    const now = Number((await client.put(`${prefix}zz-after`).value('x').exec()).header.revision);
    assert.ok(now > highest, `a new write got revision ${now}, not beyond the highest acknowledged revision ${highest}`);
    return { acknowledged: acked.length };
  } finally {
    client.close();
  }
}
