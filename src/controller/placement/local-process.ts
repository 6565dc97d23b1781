/**
 * How the `local` member placement (./local.ts) runs a member: the etcd binaries of a version, the guard
 * script its supervisor runs in place of etcd (it refuses a fenced member or lost data, and forces a
 * two-node survivor's start), and the supervised etcd process with its flags.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { EtcdCluster, MemberLaunch } from '../../domain/index.ts';
import { etcdBinaries, LocalEtcdMember, type EtcdBinaries } from '../../local/index.ts';
import { etcdMemberFlags, type LocalFaultAgent } from '../../local/etcd-cluster.ts';
import { etcdReleaseBinaries } from '../../local/release-binaries.ts';
import { faultReachFlags } from '../../local/runtime.ts';
import { walCommitBinary } from '../../local/binaries.ts';
import { clusterDir, clusterKey, LocalPlacementError, type MemberRecord } from './local-files.ts';

/** A member's processes in this operator. */
export interface RunningMember {
  etcd: LocalEtcdMember;
  agent: LocalFaultAgent | undefined;
  startedAt: string;
  /** The version of the binaries the etcd process runs. */
  version: string;
  /** upgradeMember is swapping the process: nobody else may start or restart it meanwhile. */
  upgrading?: string;
}

/** The etcd binaries for an EtcdCluster version: the pinned builds of test/bin/build.sh, else a release build. */
export function localBinariesFor(version: string): EtcdBinaries {
  const wanted = version.startsWith('v') ? version : `v${version}`;
  const available: string[] = [];
  for (const series of ['current', 'previous'] as const) {
    try {
      const binaries = etcdBinaries(series);
      if (binaries.version === wanted || binaries.version === 'custom') return binaries;
      available.push(binaries.version);
    } catch {
      // Not built: try the next.
    }
  }
  try {
    return etcdReleaseBinaries(wanted);
  } catch {
    throw new Error(`etcd ${wanted} is not available locally (built: ${available.join(', ') || 'none'}; npm run build:bins builds the pinned ones)`);
  }
}

/** The binaries of `version`, or an error naming the version (and what is available). */
export function resolveBinaries(binariesFor: (version: string) => EtcdBinaries, cluster: EtcdCluster, member: string, version: string): EtcdBinaries {
  try {
    return binariesFor(version);
  } catch (error) {
    throw new LocalPlacementError(clusterKey(cluster), `member ${member} cannot run etcd ${version}: ${(error as Error).message}`);
  }
}

/** Writes <member>.guard.sh, the command the supervisor runs in place of etcd, and returns its path. */
function writeGuardScript(dir: string, member: string, etcd: string, walCommit: string | undefined): string {
  const file = path.join(dir, `${member}.guard.sh`);
  const quote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;
  const data = path.join(dir, `${member}.etcd`);
  const marker = path.join(dir, `${member}.bootstrapped`);
  const fenced = path.join(dir, `${member}.fenced`);
  const recover = path.join(dir, `${member}.recover`);
  writeFileSync(
    file,
    [
      '#!/bin/sh',
      '# Written by the operator: a member whose data was lost must not start again under its old identity;',
      '# a fenced member (two-node-plus-witness failover) must never serve again.',
      `if [ -f ${quote(fenced)} ]; then echo "fenced by the witness (epoch $(cat ${quote(fenced)})): refusing to start" >&2; exit 77; fi`,
      `if [ -d ${quote(path.join(data, 'member'))} ]; then [ -f ${quote(marker)} ] || date > ${quote(marker)}; fi`,
      `if [ -f ${quote(marker)} ] && [ ! -d ${quote(path.join(data, 'member'))} ]; then echo "data lost: refusing to start" >&2; exit 78; fi`,
      '# A survivor is brought back alone, its whole durable log marked committed first (on every forced',
      '# start: a restart before the operator removed the mark must not discard what the first one kept).',
      ...(walCommit === undefined ? [] : [`if [ -f ${quote(recover)} ]; then ${quote(walCommit)} --data-dir=${quote(data)} || exit 79; exec ${quote(etcd)} "$@" --force-new-cluster; fi`]),
      `exec ${quote(etcd)} "$@"`,
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  return file;
}

/**
 * The supervised etcd process of a member on `binaries` (not started): its guard script is rewritten to
 * exec these binaries, and the fault-reach flags are the ones this etcd accepts (they differ between
 * v3.5 and v3.6, so they are picked again on every version change).
 */
export function memberEtcdProcess(root: string, cluster: EtcdCluster, record: MemberRecord & { launch: MemberLaunch }, binaries: EtcdBinaries): LocalEtcdMember {
  const dir = clusterDir(root, cluster);
  const a = record.addresses;
  const args = [
    ...etcdMemberFlags(a, {
      dataDir: path.join(dir, `${a.name}.etcd`),
      initialCluster: record.launch.initialCluster,
      initialClusterState: record.launch.initialClusterState,
      token: `etcd-robustness-${cluster.metadata.uid ?? cluster.metadata.name}`,
    }),
    ...(cluster.spec.agent.enabled ? faultReachFlags(binaries.etcd) : []),
  ];
  // Only a survivor of a two-node failover is ever forced: other topologies need no etcd-wal-commit.
  const walCommit = cluster.spec.topology === 'twoNodeWitness' ? walCommitBinary() : undefined;
  const guarded: EtcdBinaries = { ...binaries, etcd: writeGuardScript(dir, a.name, binaries.etcd, walCommit) };
  return new LocalEtcdMember(a, guarded, args, dir, { supervise: true });
}
