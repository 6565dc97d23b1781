import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository (or installed package) root: two levels above src/local and dist/local. */
export const packageRoot = fileURLToPath(new URL('../..', import.meta.url));

/** Where test/bin/build.sh records the binaries it built. */
export const binariesManifestPath = path.join(packageRoot, '.cache', 'bin', 'binaries.json');

export class BinaryNotFoundError extends Error {
  override name = 'BinaryNotFoundError';
  readonly binary: string;
  readonly searched: string;
  constructor(binary: string, searched: string, hint: string) {
    super(`${binary} not found at ${searched}: ${hint}`);
    this.binary = binary;
    this.searched = searched;
  }
}

export type EtcdSeries = 'current' | 'previous';

export interface EtcdBinaries {
  version: string;
  etcd: string;
  etcdctl: string;
  etcdutl: string;
}

export interface KubeBinaries {
  version: string;
  kubeApiserver: string;
  kubectl: string;
  /** helm (test/bin/helm), for the chart tests. */
  helm: string;
}

interface Manifest {
  etcd: Record<EtcdSeries, { version: string; dir: string }>;
  kube: { version: string; dir: string };
  helm?: { version: string; dir: string };
  /** The repository's own Go tools (tools/), absent in manifests written before they existed. */
  tools?: { dir: string };
  /** tools/etcd-launcher, absent in manifests written before it existed. */
  launcher?: { dir: string };
  /** CoreDNS, the test node's cluster DNS (src/node). */
  coredns?: { version: string; dir: string };
}

const buildHint = 'run `npm run build:bins` (test/bin/build.sh) to build it from the pinned Go modules';

function readManifest(): Manifest {
  if (!existsSync(binariesManifestPath)) {
    throw new BinaryNotFoundError('binaries manifest', binariesManifestPath, buildHint);
  }
  return JSON.parse(readFileSync(binariesManifestPath, 'utf8')) as Manifest;
}

function requireFile(binary: string, file: string): string {
  if (!existsSync(file)) throw new BinaryNotFoundError(binary, file, buildHint);
  return file;
}

/**
 * The gofail-enabled etcd binaries. `ETCD_ROBUSTNESS_ETCD_DIR` points at another folder holding
 * etcd, etcdctl and etcdutl (its version is then reported as "custom").
 */
export function etcdBinaries(series: EtcdSeries = 'current'): EtcdBinaries {
  const override = process.env['ETCD_ROBUSTNESS_ETCD_DIR'];
  const { version, dir } = override ? { version: 'custom', dir: override } : readManifest().etcd[series];
  return {
    version,
    etcd: requireFile('etcd', path.join(dir, 'etcd')),
    etcdctl: requireFile('etcdctl', path.join(dir, 'etcdctl')),
    etcdutl: requireFile('etcdutl', path.join(dir, 'etcdutl')),
  };
}

/** kube-apiserver and kubectl (`version` is theirs), and helm. */
export function kubeBinaries(): KubeBinaries {
  return kubeBinariesOf(readManifest());
}

function kubeBinariesOf(manifest: Manifest): KubeBinaries {
  const { version, dir } = manifest.kube;
  if (!manifest.helm) throw new BinaryNotFoundError('helm', binariesManifestPath, buildHint);
  return {
    version,
    kubeApiserver: requireFile('kube-apiserver', path.join(dir, 'kube-apiserver')),
    kubectl: requireFile('kubectl', path.join(dir, 'kubectl')),
    helm: requireFile('helm', path.join(manifest.helm.dir, 'helm')),
  };
}

/** What the test node (src/node) runs: the kube set (its helm for users of `dev --runtime=kubernetes`), the node's components and CoreDNS. */
export interface NodeBinaries extends KubeBinaries {
  kubelet: string;
  kubeScheduler: string;
  kubeControllerManager: string;
  kubeProxy: string;
  coredns: string;
}

/** The node's binaries; each missing one fails with BinaryNotFoundError naming `npm run build:bins`. */
export function nodeBinaries(): NodeBinaries {
  const manifest = readManifest();
  const { dir } = manifest.kube;
  if (!manifest.coredns) throw new BinaryNotFoundError('coredns', binariesManifestPath, buildHint);
  return {
    ...kubeBinariesOf(manifest),
    kubelet: requireFile('kubelet', path.join(dir, 'kubelet')),
    kubeScheduler: requireFile('kube-scheduler', path.join(dir, 'kube-scheduler')),
    kubeControllerManager: requireFile('kube-controller-manager', path.join(dir, 'kube-controller-manager')),
    kubeProxy: requireFile('kube-proxy', path.join(dir, 'kube-proxy')),
    coredns: requireFile('coredns', path.join(manifest.coredns.dir, 'coredns')),
  };
}

/** etcd-launcher (tools/etcd-launcher), as test/bin/build.sh built it (binaries.json `launcher`). */
export function launcherBinary(): string {
  const manifest = readManifest();
  if (!manifest.launcher) throw new BinaryNotFoundError('etcd-launcher', binariesManifestPath, buildHint);
  return requireFile('etcd-launcher', path.join(manifest.launcher.dir, 'etcd-launcher'));
}

/** Where the operator's image puts etcd-wal-commit (see the Dockerfile). */
export const imageWalCommitPath = '/usr/local/bin/etcd-wal-commit';

/**
 * etcd-wal-commit (tools/etcd-wal-commit): `ETCD_ROBUSTNESS_WAL_COMMIT` when set, else the one
 * test/bin/build.sh built (binaries.json `tools`), else the operator image's copy in /usr/local/bin.
 */
export function walCommitBinary(): string {
  const override = process.env['ETCD_ROBUSTNESS_WAL_COMMIT'];
  if (override) return requireFile('etcd-wal-commit', override);
  if (existsSync(binariesManifestPath)) {
    const manifest = readManifest();
    if (manifest.tools) return requireFile('etcd-wal-commit', path.join(manifest.tools.dir, 'etcd-wal-commit'));
  }
  if (existsSync(imageWalCommitPath)) return imageWalCommitPath;
  throw new BinaryNotFoundError('etcd-wal-commit', binariesManifestPath, buildHint);
}
