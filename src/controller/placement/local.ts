/**
 * The `local` member placement (`etcd-robustness operator --runtime=local`): each member of an
 * EtcdCluster is a real etcd process on loopback, supervised like a container under a kubelet
 * (restarted when it exits), with a fault agent beside it when spec.agent.enabled. The operator still
 * reads and writes its resources through a real API server; only the members run here.
 *
 * Layout under the placement's root: <root>/<namespace>/<cluster>/
 *   <member>.json          addresses (ports allocated once) and the launch of the member
 *   <member>.etcd/         etcd's data dir
 *   <member>.bootstrapped  written once the member had data: from then on, a missing data dir means
 *                          the data was lost, and the member must never start again under its identity
 *   <member>.guard.sh      the command the supervisor runs: refuses to start etcd on lost data or when
 *                          fenced; while <member>.recover exists, runs etcd-wal-commit and then etcd
 *                          with --force-new-cluster
 *   <member>.fenced        twoNodeWitness: the member was fenced (the failover's epoch); it never starts again
 *   <member>.recover       twoNodeWitness: a survivor's forced-start mark, removed by finishRecovery once
 *                          the witness record says the failover is over
 *   service.json           the port of the cluster's service address (kept across operator restarts)
 *   <member>.log, <member>.agent.log, agent-token
 * Members are children of the operator (parent-death signal): they stop with it, and a new operator
 * process finds their data on disk and starts them again.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { EtcdClientTls, EtcdCluster, MemberLaunch, MemberPlacement, MemberRuntime, PlacedMember, RuntimeMember } from '../../domain/index.ts';
import { etcdBinaries, freeLoopbackPorts, LocalEtcdMember, type EtcdBinaries, type MemberAddresses } from '../../local/index.ts';
import { etcdMemberFlags, faultAgentArgs, LocalFaultAgent } from '../../local/etcd-cluster.ts';
import { etcdReleaseBinaries } from '../../local/release-binaries.ts';
import { faultReachFlags } from '../../local/runtime.ts';
import { walCommitBinary } from '../../local/binaries.ts';
import { commitSurvivorLog } from '../../local/wal-commit.ts';
import { LocalServiceProxy, type ServiceBackend } from './local-service.ts';
import { logger } from '../../log.ts';

export class LocalPlacementError extends Error {
  override name = 'LocalPlacementError';
  readonly cluster: string;
  constructor(cluster: string, message: string) {
    super(`${cluster}: ${message}`);
    this.cluster = cluster;
  }
}

interface MemberRecord {
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

interface RunningMember {
  etcd: LocalEtcdMember;
  agent: LocalFaultAgent | undefined;
  startedAt: string;
  /** The version of the binaries the etcd process runs. */
  version: string;
  /** upgradeMember is swapping the process: nobody else may start or restart it meanwhile. */
  upgrading?: string;
}

/** How long upgradeMember waits for the restarted member to answer healthy. */
const upgradeHealthyTimeoutMs = 60_000;

export interface LocalPlacementOptions {
  /** Folder for every cluster's data and logs. */
  root: string;
  /** Overrides the binaries chosen from spec.version (tests, custom builds). */
  binaries?: (version: string) => EtcdBinaries;
  /** How long upgradeMember waits for the member to answer healthy on its new binaries (default 60 s). */
  upgradeTimeoutMs?: number;
}

function syncFolder(folder: string): void {
  const fd = openSync(folder, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Written and fsynced (file and folder) before it returns: a fence or recovery mark survives a crash. */
function writeDurably(file: string, content: string): void {
  const fd = openSync(file, 'w');
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  syncFolder(path.dirname(file));
}

const clusterKey = (cluster: EtcdCluster): string => `${cluster.metadata.namespace ?? 'default'}/${cluster.metadata.name}`;

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

export class LocalPlacement implements MemberPlacement<EtcdCluster> {
  readonly supportsTwoNodeWitness = true;
  /** LocalEtcdMember's supervisor waits while the hold file holds the member down. */
  readonly supportsCrashHold = true;
  private readonly root: string;
  private readonly binariesFor: (version: string) => EtcdBinaries;
  private readonly upgradeTimeoutMs: number;
  /** namespace/cluster → member name → its processes in this operator. */
  private readonly running = new Map<string, Map<string, RunningMember>>();
  /** namespace/cluster/member → when this process first saw it down (the grace period counts from here). */
  private readonly downSince = new Map<string, string>();
  /** namespace/cluster → its client service (a stable address in front of the running members). */
  private readonly services = new Map<string, LocalServiceProxy>();

  constructor(options: LocalPlacementOptions) {
    this.root = options.root;
    this.binariesFor = options.binaries ?? localBinariesFor;
    this.upgradeTimeoutMs = options.upgradeTimeoutMs ?? upgradeHealthyTimeoutMs;
    mkdirSync(this.root, { recursive: true });
  }

  private dir(cluster: EtcdCluster): string {
    return path.join(this.root, cluster.metadata.namespace ?? 'default', cluster.metadata.name);
  }

  private recordFile(cluster: EtcdCluster, member: string): string {
    return path.join(this.dir(cluster), `${member}.json`);
  }

  private readRecord(cluster: EtcdCluster, member: string): MemberRecord | undefined {
    const file = this.recordFile(cluster, member);
    if (!existsSync(file)) return undefined;
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as MemberRecord;
    } catch (error) {
      throw new LocalPlacementError(clusterKey(cluster), `the record of member ${member} (${file}) is corrupt: ${(error as Error).message}`);
    }
  }

  /** Atomic (a temporary file renamed over it) and durable: an operator killed mid-write leaves the old record. */
  private writeRecord(cluster: EtcdCluster, member: string, record: MemberRecord): void {
    const file = this.recordFile(cluster, member);
    writeDurably(`${file}.tmp`, `${JSON.stringify(record, null, 2)}\n`);
    renameSync(`${file}.tmp`, file);
    syncFolder(path.dirname(file));
  }

  private processes(cluster: EtcdCluster): Map<string, RunningMember> {
    const key = clusterKey(cluster);
    let map = this.running.get(key);
    if (!map) {
      map = new Map();
      this.running.set(key, map);
    }
    return map;
  }

  async ensureCluster(cluster: EtcdCluster): Promise<void> {
    const dir = this.dir(cluster);
    mkdirSync(dir, { recursive: true });
    if (cluster.spec.agent.enabled) {
      const tokenFile = path.join(dir, 'agent-token');
      if (!existsSync(tokenFile)) writeFileSync(tokenFile, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
      chmodSync(tokenFile, 0o600);
    }
    await this.ensureService(cluster);
  }

  /** The cluster's client service: on the port it had before when that is free, so its URL stays. */
  private async ensureService(cluster: EtcdCluster): Promise<LocalServiceProxy> {
    const key = clusterKey(cluster);
    const running = this.services.get(key);
    if (running) return running;
    const file = path.join(this.dir(cluster), 'service.json');
    const previous = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { port?: number }).port : undefined;
    const backends = (): ServiceBackend[] =>
      [...this.processes(cluster).values()]
        .filter((p) => p.etcd.running)
        .map((p) => {
          const url = new URL(p.etcd.addresses.clientUrl);
          return { name: p.etcd.name, host: url.hostname, port: Number(url.port) };
        });
    let service: LocalServiceProxy;
    try {
      service = await LocalServiceProxy.start(previous ?? 0, backends);
    } catch {
      service = await LocalServiceProxy.start(0, backends);
    }
    if (service.port !== previous) writeFileSync(file, `${JSON.stringify({ port: service.port })}\n`);
    this.services.set(key, service);
    return service;
  }

  /** The client service's URL (it follows membership changes, like a Kubernetes Service). */
  async serviceEndpoint(cluster: EtcdCluster): Promise<string> {
    return (await this.ensureService(cluster)).url;
  }

  async addresses(cluster: EtcdCluster, member: string): Promise<{ clientUrl: string; peerUrl: string }> {
    mkdirSync(this.dir(cluster), { recursive: true });
    const existing = this.readRecord(cluster, member);
    if (existing) return { clientUrl: existing.addresses.clientUrl, peerUrl: existing.addresses.peerUrl };
    const agents = cluster.spec.agent.enabled;
    const [client, peer, failpoint, peerListen, agent] = await freeLoopbackPorts(5);
    const url = (port: number | undefined): string => `http://127.0.0.1:${port}`;
    const addresses: MemberAddresses = {
      name: member,
      clientUrl: url(client),
      peerUrl: url(peer),
      // With an agent, its peer proxy listens on the advertised peer URL in front of etcd.
      peerListenUrl: agents ? url(peerListen) : url(peer),
      failpointUrl: cluster.spec.image.failpoints ? url(failpoint) : undefined,
    };
    if (agents) addresses.agentUrl = url(agent);
    this.writeRecord(cluster, member, { addresses });
    return { clientUrl: addresses.clientUrl, peerUrl: addresses.peerUrl };
  }

  /** Member names with a record on disk. */
  private recordedMembers(cluster: EtcdCluster): string[] {
    const dir = this.dir(cluster);
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -'.json'.length))
      .sort();
  }

  private dataLost(cluster: EtcdCluster, member: string): boolean {
    const dir = this.dir(cluster);
    const hasData = existsSync(path.join(dir, `${member}.etcd`, 'member'));
    const marker = path.join(dir, `${member}.bootstrapped`);
    if (hasData && !existsSync(marker)) writeFileSync(marker, `${new Date().toISOString()}\n`);
    return !hasData && existsSync(marker);
  }

  async listMembers(cluster: EtcdCluster): Promise<PlacedMember[]> {
    const placed: PlacedMember[] = [];
    const processes = this.processes(cluster);
    for (const name of this.recordedMembers(cluster)) {
      const record = this.readRecord(cluster, name);
      if (!record?.launch) continue; // addresses allocated, never started
      const proc = processes.get(name);
      const base = { name, clientUrl: record.addresses.clientUrl, peerUrl: record.addresses.peerUrl };
      // What runs, else what the next start will run.
      const extras: Partial<PlacedMember> = { version: proc?.version ?? record.version ?? cluster.spec.version };
      if (record.addresses.agentUrl !== undefined && proc?.agent) extras.agentUrl = record.addresses.agentUrl;
      if (record.addresses.failpointUrl !== undefined) extras.failpointUrl = record.addresses.failpointUrl;
      if (this.dataLost(cluster, name)) {
        placed.push({ ...base, ...extras, state: 'dataLost', since: proc?.startedAt ?? new Date().toISOString(), detail: 'its data dir is gone' });
        if (proc) await proc.etcd.kill(); // never let the supervisor start it on empty data
        continue;
      }
      // The mark is written first (durably): it says fenced even when the record was not updated yet.
      const fencedMark = path.join(this.dir(cluster), `${name}.fenced`);
      if (record.fencedEpoch !== undefined || existsSync(fencedMark)) {
        const epoch = record.fencedEpoch ?? readFileSync(fencedMark, 'utf8').trim();
        placed.push({ ...base, ...extras, state: 'failed', since: new Date().toISOString(), detail: `fenced at witness epoch ${epoch}`, fenced: true });
        if (proc?.etcd.running === true) await proc.etcd.kill();
        continue;
      }
      if (record.recoveredEpoch !== undefined) extras.recoveredEpoch = record.recoveredEpoch;
      if (existsSync(path.join(this.dir(cluster), `${name}.recover`))) extras.recovering = true;
      const downKey = `${clusterKey(cluster)}/${name}`;
      if (!proc || (proc.upgrading === undefined && !proc.etcd.running && !proc.etcd.restarting)) {
        if (!this.downSince.has(downKey)) this.downSince.set(downKey, new Date().toISOString());
        const detail = proc ? 'exited' : 'not running in this operator process';
        placed.push({ ...base, ...extras, state: 'failed', since: this.downSince.get(downKey)!, detail });
        continue;
      }
      this.downSince.delete(downKey);
      if (proc.upgrading !== undefined) {
        placed.push({ ...base, ...extras, state: 'starting', since: proc.startedAt, detail: `upgrading to etcd ${proc.upgrading}` });
        continue;
      }
      const state = proc.etcd.running ? 'running' : 'starting';
      placed.push({ ...base, ...extras, state, since: proc.startedAt, detail: `restarts ${proc.etcd.restarts}` });
    }
    return placed;
  }

  private guardScript(cluster: EtcdCluster, member: string, etcd: string, walCommit: string | undefined): string {
    const dir = this.dir(cluster);
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

  async startMember(cluster: EtcdCluster, launch: MemberLaunch): Promise<void> {
    const fencedAt = this.readRecord(cluster, launch.name)?.fencedEpoch;
    if (fencedAt !== undefined) throw new LocalPlacementError(clusterKey(cluster), `member ${launch.name} was fenced at witness epoch ${fencedAt} and never starts again`);
    const processes = this.processes(cluster);
    const existing = processes.get(launch.name);
    if (existing) {
      if (existing.upgrading === undefined && !existing.etcd.running && !existing.etcd.restarting) {
        existing.etcd.start();
        existing.startedAt = new Date().toISOString();
        void existing.etcd.waitHealthy(120_000).catch(() => undefined);
      }
      return;
    }
    await this.addresses(cluster, launch.name);
    const record = this.readRecord(cluster, launch.name)!;
    // The first launch is kept: a restart uses the member's data, not a new launch.
    const first = (record.launch ??= launch);
    // The version recorded with the member wins (only upgradeMember changes it): launch.version is a new
    // member's, and a restart with the cluster's current spec.version must not undo an upgrade's step.
    const version = record.version ?? launch.version ?? cluster.spec.version;
    record.version = version;
    this.writeRecord(cluster, launch.name, record);
    if (this.dataLost(cluster, launch.name)) {
      throw new LocalPlacementError(clusterKey(cluster), `member ${launch.name} lost its data and must be replaced, not started`);
    }
    const binaries = this.resolveBinaries(cluster, launch.name, version);
    const dir = this.dir(cluster);
    const a = record.addresses;
    const etcd = this.etcdProcess(cluster, { ...record, launch: first }, binaries);
    let agent: LocalFaultAgent | undefined;
    if (a.agentUrl !== undefined) {
      agent = new LocalFaultAgent(a.name, a.agentUrl, faultAgentArgs(a, etcd.dataDir, path.join(dir, 'agent-token')), path.join(dir, `${a.name}.agent.log`));
    }
    processes.set(a.name, { etcd, agent, startedAt: new Date().toISOString(), version });
    logger.info('local placement: starting member', { cluster: clusterKey(cluster), member: a.name, state: first.initialClusterState, etcd: binaries.version });
    etcd.start();
    if (agent) {
      agent.start();
      const token = await this.agentToken(cluster);
      if (token !== undefined) await agent.waitReady(token);
    }
    // Supervision (restart on exit) begins once the member has been healthy; a joining member needs
    // the cluster's quorum for that, so this waits in the background.
    void etcd.waitHealthy(120_000).catch((error: unknown) => {
      logger.warn('local placement: member did not become healthy', { cluster: clusterKey(cluster), member: a.name, error: (error as Error).message });
    });
  }

  /** The binaries of `version`, or an error naming the version (and what is available). */
  private resolveBinaries(cluster: EtcdCluster, member: string, version: string): EtcdBinaries {
    try {
      return this.binariesFor(version);
    } catch (error) {
      throw new LocalPlacementError(clusterKey(cluster), `member ${member} cannot run etcd ${version}: ${(error as Error).message}`);
    }
  }

  /**
   * The supervised etcd process of a member on `binaries` (not started): its guard script is rewritten to
   * exec these binaries, and the fault-reach flags are the ones this etcd accepts (they differ between
   * v3.5 and v3.6, so they are picked again on every version change).
   */
  private etcdProcess(cluster: EtcdCluster, record: MemberRecord & { launch: MemberLaunch }, binaries: EtcdBinaries): LocalEtcdMember {
    const dir = this.dir(cluster);
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
    const guarded: EtcdBinaries = { ...binaries, etcd: this.guardScript(cluster, a.name, binaries.etcd, walCommit) };
    return new LocalEtcdMember(a, guarded, args, dir, { supervise: true });
  }

  async fenceMember(cluster: EtcdCluster, member: string, epoch: number): Promise<void> {
    const dir = this.dir(cluster);
    // The mark first (durably), then the stop: from the moment the guard sees it the member cannot start.
    writeDurably(path.join(dir, `${member}.fenced`), `${epoch}\n`);
    const record = this.readRecord(cluster, member);
    if (record && record.fencedEpoch === undefined) this.writeRecord(cluster, member, { ...record, fencedEpoch: epoch });
    // Its agent stays until the runner is deleted: a fault in progress on the member still heals through it.
    await this.processes(cluster).get(member)?.etcd.kill();
    logger.warn('local placement: member fenced', { cluster: clusterKey(cluster), member, epoch });
  }

  async recoverSurvivor(cluster: EtcdCluster, member: string, failoverEpoch: number): Promise<void> {
    const record = this.readRecord(cluster, member);
    if (!record?.launch) throw new LocalPlacementError(clusterKey(cluster), `cannot recover ${member}: it was never started here`);
    if (record.fencedEpoch !== undefined) throw new LocalPlacementError(clusterKey(cluster), `cannot recover ${member}: it was fenced at epoch ${record.fencedEpoch}`);
    // Once per failover, whoever asks: a slow or stale replica that planned from an older view must not
    // force-restart the survivor again, nor for an older failover (found by the simulation).
    if (record.recoveredEpoch !== undefined && record.recoveredEpoch >= failoverEpoch) return;
    const dir = this.dir(cluster);
    const proc = this.processes(cluster).get(member);
    // Killed, not stopped: a graceful stop without quorum waits for open client streams (watches) for
    // seconds, and nothing unsynced matters here. Every entry the survivor acknowledged, as follower or
    // as leader, was fsynced before the acknowledgement, and etcd-wal-commit commits the whole durable log.
    if (proc) await proc.etcd.kill();
    const commit = await commitSurvivorLog(path.join(dir, `${member}.etcd`));
    writeDurably(path.join(dir, `${member}.recover`), `${failoverEpoch}\n`);
    this.writeRecord(cluster, member, { ...record, recoveredEpoch: failoverEpoch });
    logger.warn('local placement: recovering the survivor alone', { cluster: clusterKey(cluster), member, failoverEpoch, ...commit });
    if (proc) {
      proc.etcd.start();
      proc.startedAt = new Date().toISOString();
    } else {
      await this.startMember(cluster, record.launch);
    }
  }

  async finishRecovery(cluster: EtcdCluster, member: string): Promise<void> {
    const file = path.join(this.dir(cluster), `${member}.recover`);
    if (!existsSync(file)) return;
    rmSync(file, { force: true });
    // The removal must be durable too: a mark that comes back would force a new cluster again.
    syncFolder(this.dir(cluster));
    await Promise.resolve();
    logger.info('local placement: the survivor starts plainly from now on', { cluster: clusterKey(cluster), member });
  }

  async upgradeMember(cluster: EtcdCluster, member: string, version: string): Promise<void> {
    const key = clusterKey(cluster);
    const record = this.readRecord(cluster, member);
    if (!record?.launch) throw new LocalPlacementError(key, `cannot upgrade ${member}: it was never started here`);
    if (record.fencedEpoch !== undefined) throw new LocalPlacementError(key, `cannot upgrade ${member}: it was fenced at witness epoch ${record.fencedEpoch}`);
    const proc = this.processes(cluster).get(member);
    // Idempotent: what runs (or, with no process in this operator, what its next start runs) is the version.
    if ((proc?.version ?? record.version ?? cluster.spec.version) === version) return;
    // Every check before the stop: a version that cannot run leaves the member running as it was.
    const binaries = this.resolveBinaries(cluster, member, version);
    const from = proc?.version ?? record.version ?? cluster.spec.version;
    // Recorded first (durably): an operator that dies from here on starts the member on the new version,
    // which is where it was going (its old process dies with the operator).
    this.writeRecord(cluster, member, { ...record, version });
    if (!proc) {
      // Not running in this operator (stopped, or an operator restart not yet reconciled): the next
      // startMember starts it on `version`.
      logger.info('local placement: member will start on its new version', { cluster: key, member, from, to: version });
      return;
    }
    logger.info('local placement: upgrading member', { cluster: key, member, from, to: version, etcd: binaries.version });
    if (proc.upgrading !== undefined) throw new LocalPlacementError(key, `member ${member} is being upgraded to etcd ${proc.upgrading} already`);
    proc.upgrading = version;
    proc.startedAt = new Date().toISOString();
    let etcd: LocalEtcdMember;
    const stopping = Date.now();
    let stopMs: number;
    try {
      // stop() tells the supervisor not to restart it: the old binaries never come back by themselves.
      // The agent stays: it finds etcd by its data dir, whichever binary serves it.
      await proc.etcd.stop();
      stopMs = Date.now() - stopping;
      etcd = this.etcdProcess(cluster, { ...record, launch: record.launch }, binaries);
      proc.etcd = etcd;
      proc.version = version;
      etcd.start();
    } finally {
      proc.upgrading = undefined;
    }
    try {
      await etcd.waitHealthy(this.upgradeTimeoutMs);
    } catch (error) {
      throw new LocalPlacementError(key, `member ${member} did not become healthy on etcd ${version}: ${(error as Error).message}`);
    }
    logger.info('local placement: member upgraded', { cluster: key, member, to: version, pid: etcd.pid, stopMs, healthyMs: Date.now() - stopping - stopMs });
  }

  async deleteMember(cluster: EtcdCluster, member: string): Promise<void> {
    const processes = this.processes(cluster);
    const proc = processes.get(member);
    if (proc) {
      await proc.agent?.stop();
      await proc.etcd.close();
      processes.delete(member);
    }
    const dir = this.dir(cluster);
    // A fenced member keeps its mark and its start command: started by hand, it still refuses.
    const fenced = existsSync(path.join(dir, `${member}.fenced`));
    const suffixes = ['.json', '.json.tmp', '.etcd', '.etcd.hold', '.bootstrapped', '.log', '.agent.log', '.recover', ...(fenced ? [] : ['.guard.sh', '.fenced'])];
    for (const suffix of suffixes) {
      rmSync(path.join(dir, `${member}${suffix}`), { recursive: true, force: true });
    }
  }

  async deleteCluster(cluster: EtcdCluster): Promise<void> {
    for (const name of [...this.processes(cluster).keys(), ...this.recordedMembers(cluster)]) await this.deleteMember(cluster, name);
    this.running.delete(clusterKey(cluster));
    await this.services.get(clusterKey(cluster))?.close();
    this.services.delete(clusterKey(cluster));
    rmSync(this.dir(cluster), { recursive: true, force: true });
  }

  async clientEndpoints(cluster: EtcdCluster): Promise<string[]> {
    const urls: string[] = [];
    for (const name of this.recordedMembers(cluster)) {
      const record = this.readRecord(cluster, name);
      if (record?.launch) urls.push(record.addresses.clientUrl);
    }
    return Promise.resolve(urls.sort());
  }

  /** Local members serve plain http (spec.tls is not applied to local processes): no client TLS. */
  clientTls(): Promise<EtcdClientTls | undefined> {
    return Promise.resolve(undefined);
  }

  async agentToken(cluster: EtcdCluster): Promise<string | undefined> {
    const file = path.join(this.dir(cluster), 'agent-token');
    return Promise.resolve(existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined);
  }

  /** The running member's process (tests kill it to see the operator heal the cluster). */
  memberProcess(cluster: EtcdCluster, member: string): LocalEtcdMember | undefined {
    return this.processes(cluster).get(member)?.etcd;
  }

  /** The data dir of a member (tests wipe it to see the operator replace the member). */
  dataDir(cluster: EtcdCluster, member: string): string {
    return path.join(this.dir(cluster), `${member}.etcd`);
  }

  async faultRuntime(cluster: EtcdCluster): Promise<MemberRuntime> {
    return new LocalPlacementRuntime(this, cluster, await this.serviceEndpoint(cluster));
  }

  /** Members of a cluster as the run engine sees them. */
  runtimeMembers(cluster: EtcdCluster): RuntimeMember[] {
    const processes = this.processes(cluster);
    return [...processes.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, proc]) => {
        const a = proc.etcd.addresses;
        const member: RuntimeMember = { name, endpoint: a.clientUrl, peerUrl: a.peerUrl, running: proc.etcd.running };
        if (a.failpointUrl !== undefined) member.failpointUrl = a.failpointUrl;
        if (a.agentUrl !== undefined && proc.agent) member.agentUrl = a.agentUrl;
        return member;
      });
  }

  /** Stops every member this process runs (their data stays for the next operator process). */
  async close(): Promise<void> {
    for (const processes of this.running.values()) {
      await Promise.all([...processes.values()].map((p) => p.agent?.stop() ?? Promise.resolve()));
      await Promise.all([...processes.values()].map((p) => p.etcd.close()));
    }
    this.running.clear();
    for (const service of this.services.values()) await service.close();
    this.services.clear();
  }

  /** Used by the fault runtime. */
  member(cluster: EtcdCluster, name: string): LocalEtcdMember {
    const proc = this.processes(cluster).get(name);
    if (!proc) throw new LocalPlacementError(clusterKey(cluster), `no running member named ${name}`);
    return proc.etcd;
  }
}

/** The members of one EtcdCluster of a LocalPlacement as a MemberRuntime for the run engine and faults. */
class LocalPlacementRuntime implements MemberRuntime {
  readonly clusterName: string;
  readonly created = false;
  readonly serviceEndpoint: string;
  private readonly placement: LocalPlacement;
  private readonly cluster: EtcdCluster;

  constructor(placement: LocalPlacement, cluster: EtcdCluster, serviceEndpoint: string) {
    this.placement = placement;
    this.cluster = cluster;
    this.clusterName = cluster.metadata.name;
    this.serviceEndpoint = serviceEndpoint;
  }

  async create(): Promise<void> {
    await Promise.resolve();
  }

  endpoints(): string[] {
    return this.members().map((m) => m.endpoint);
  }

  members(): RuntimeMember[] {
    return this.placement.runtimeMembers(this.cluster);
  }

  async stop(member: string): Promise<void> {
    await this.placement.member(this.cluster, member).stop();
  }

  async kill(member: string): Promise<void> {
    await this.placement.member(this.cluster, member).kill();
  }

  async restart(member: string): Promise<void> {
    await this.placement.member(this.cluster, member).restart();
  }

  async rejoin(member: string, initialCluster: string): Promise<void> {
    const dir = this.placement.dataDir(this.cluster, member);
    // A deliberate wipe (the memberReplace fault): the member rejoins under a new id, so the lost-data
    // guard must not stop it.
    rmSync(`${dir.slice(0, -'.etcd'.length)}.bootstrapped`, { force: true });
    await this.placement.member(this.cluster, member).rejoin(initialCluster);
  }

  async close(): Promise<void> {
    await Promise.resolve();
  }
}
