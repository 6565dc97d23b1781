/**
 * Storage for PVCs on the node: a default StorageClass without a provisioner (WaitForFirstConsumer, so a
 * claim binds once a Pod on the node uses it) and a pool of pre-created `local` PVs in the node's folder.
 * A reclaimer turns Released PVs back into Available after wiping their folder, so that a deleted
 * member's PVC frees its PV for the next one (the reclaim policy is Retain: nothing else touches them).
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig, type V1PersistentVolume } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { logger } from '../log.ts';

export const storageClassName = 'standard';
/** The label of the node's own PVs (the reclaimer touches no other). */
const poolLabel = 'etcd-robustness.io/node-pool';

export interface PvPool {
  count: number;
  /** A Kubernetes quantity, e.g. 2Gi. */
  size: string;
}

function pvName(index: number): string {
  return `node-pv-${String(index).padStart(2, '0')}`;
}

/** The StorageClass and the PVs (their folders are created here), as one YAML stream for kubectl apply. */
export function storageManifests(pvRoot: string, nodeName: string, pool: PvPool): string {
  const storageClass = {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: storageClassName, annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
    provisioner: 'kubernetes.io/no-provisioner',
    volumeBindingMode: 'WaitForFirstConsumer',
    reclaimPolicy: 'Retain',
  };
  const volumes = Array.from({ length: pool.count }, (_, i) => {
    const dir = path.join(pvRoot, pvName(i));
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    return {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: pvName(i), labels: { [poolLabel]: 'true' } },
      spec: {
        capacity: { storage: pool.size },
        accessModes: ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: 'Retain',
        storageClassName,
        volumeMode: 'Filesystem',
        local: { path: dir },
        nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [nodeName] }] }] } },
      },
    };
  });
  return [storageClass, ...volumes].map((o) => stringify(o)).join('---\n');
}

/** Empties a folder, keeping the folder itself (the PV's path). */
function wipe(dir: string): void {
  for (const entry of readdirSync(dir)) rmSync(path.join(dir, entry), { recursive: true, force: true });
}

/** Polls the pool's PVs and makes each Released one Available again (wiped, its claimRef cleared). */
export class PvReclaimer {
  private readonly api: CoreV1Api;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly intervalMs: number;
  /** How many PVs it has recycled. */
  recycled = 0;

  constructor(kubeConfig: KubeConfig, intervalMs = 2000) {
    this.api = kubeConfig.makeApiClient(CoreV1Api);
    this.intervalMs = intervalMs;
  }

  start(): void {
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.pass()
        .catch((error: unknown) => {
          logger.warn(`node PV reclaimer: ${(error as Error).message}`);
        })
        .finally(() => this.schedule());
    }, this.intervalMs);
  }

  /** One pass over the pool. */
  async pass(): Promise<void> {
    const list = await this.api.listPersistentVolume({ labelSelector: `${poolLabel}=true` });
    for (const pv of list.items) {
      if (pv.status?.phase === 'Released') await this.recycle(pv);
    }
  }

  private async recycle(pv: V1PersistentVolume): Promise<void> {
    const dir = pv.spec?.local?.path;
    const name = pv.metadata?.name;
    if (dir === undefined || name === undefined) return;
    wipe(dir);
    await this.api.patchPersistentVolume({ name, body: { spec: { claimRef: null } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    this.recycled += 1;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }
}
