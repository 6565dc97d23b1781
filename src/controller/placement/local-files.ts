/**
 * The files of the `local` member placement (./local.ts, which describes the layout) under its root: a
 * cluster's folder, each member's record (addresses, launch, version, fence and recovery epochs), written
 * atomically and durably, and the mark that tells a member whose data was lost from a new one.
 */
import { closeSync, existsSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { EtcdCluster, MemberLaunch } from '../../domain/index.ts';
import type { MemberAddresses } from '../../local/index.ts';

export class LocalPlacementError extends Error {
  override name = 'LocalPlacementError';
  readonly cluster: string;
  constructor(cluster: string, message: string) {
    super(`${cluster}: ${message}`);
    this.cluster = cluster;
  }
}

export interface MemberRecord {
  addresses: MemberAddresses;
  launch?: MemberLaunch;
  /** twoNodeWitness: the witness epoch that fenced the member. */
  fencedEpoch?: number;
  /** twoNodeWitness: the failover whose recovery of this member was started. */
  recoveredEpoch?: number;
  /**
   * The etcd version (without the leading v) of the member's last start or upgrade; absent in records
   * written before upgrades existed (the cluster's spec.version then).
   */
  version?: string;
}

export function syncFolder(folder: string): void {
  const fd = openSync(folder, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Written and fsynced (file and folder) before it returns: a fence or recovery mark survives a crash. */
export function writeDurably(file: string, content: string): void {
  const fd = openSync(file, 'w');
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  syncFolder(path.dirname(file));
}

export const clusterKey = (cluster: EtcdCluster): string => `${cluster.metadata.namespace ?? 'default'}/${cluster.metadata.name}`;

/** <root>/<namespace>/<cluster>: the cluster's members' records, data, logs and marks. */
export function clusterDir(root: string, cluster: EtcdCluster): string {
  return path.join(root, cluster.metadata.namespace ?? 'default', cluster.metadata.name);
}

function recordFile(root: string, cluster: EtcdCluster, member: string): string {
  return path.join(clusterDir(root, cluster), `${member}.json`);
}

export function readRecord(root: string, cluster: EtcdCluster, member: string): MemberRecord | undefined {
  const file = recordFile(root, cluster, member);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as MemberRecord;
  } catch (error) {
    throw new LocalPlacementError(clusterKey(cluster), `the record of member ${member} (${file}) is corrupt: ${(error as Error).message}`);
  }
}

/** Atomic (a temporary file renamed over it) and durable: an operator killed mid-write leaves the old record. */
export function writeRecord(root: string, cluster: EtcdCluster, member: string, record: MemberRecord): void {
  const file = recordFile(root, cluster, member);
  writeDurably(`${file}.tmp`, `${JSON.stringify(record, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
  syncFolder(path.dirname(file));
}

/** Member names with a record on disk. */
export function recordedMembers(root: string, cluster: EtcdCluster): string[] {
  const dir = clusterDir(root, cluster);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

/** True when the member had data (its bootstrapped mark, written here the first time data is seen) and the data is gone. */
export function dataLost(root: string, cluster: EtcdCluster, member: string): boolean {
  const dir = clusterDir(root, cluster);
  const hasData = existsSync(path.join(dir, `${member}.etcd`, 'member'));
  const marker = path.join(dir, `${member}.bootstrapped`);
  if (hasData && !existsSync(marker)) writeFileSync(marker, `${new Date().toISOString()}\n`);
  return !hasData && existsSync(marker);
}
