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
 * process finds their data on disk and starts them again. The files are read and written in
 * ./local-files.ts, a member's etcd process and guard script are made in ./local-process.ts, the client
 * service is ./local-service.ts and the fault runtime ./local-runtime.ts.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { EtcdClientTls, EtcdCluster, MemberLaunch, MemberPlacement, MemberRuntime, PlacedMember, RuntimeMember } from '../../domain/index.ts';
import { freeLoopbackPorts, type EtcdBinaries, type LocalEtcdMember, type MemberAddresses } from '../../local/index.ts';
import { faultAgentArgs, LocalFaultAgent } from '../../local/etcd-cluster.ts';
import { commitSurvivorLog } from '../../local/wal-commit.ts';
import { clusterDir, clusterKey, dataLost, LocalPlacementError, readRecord, recordedMembers, syncFolder, writeDurably, writeRecord } from './local-files.ts';
import { localBinariesFor, memberEtcdProcess, resolveBinaries, type RunningMember } from './local-process.ts';
import { LocalPlacementRuntime } from './local-runtime.ts';
import { LocalServiceProxy, type ServiceBackend } from './local-service.ts';
import { logger } from '../../log.ts';

// Exported here as before: callers import the placement's error and the binaries lookup with it.
export { LocalPlacementError } from './local-files.ts';
export { localBinariesFor } from './local-process.ts';

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

export class LocalPlacement implements MemberPlacement<EtcdCluster> {
  twoNodeWitnessRefusal(): string | undefined {
    return undefined;
  }
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
    return clusterDir(this.root, cluster);
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
    const existing = readRecord(this.root, cluster, member);
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
    writeRecord(this.root, cluster, member, { addresses });
    return { clientUrl: addresses.clientUrl, peerUrl: addresses.peerUrl };
  }

  async listMembers(cluster: EtcdCluster): Promise<PlacedMember[]> {
    const placed: PlacedMember[] = [];
    const processes = this.processes(cluster);
    for (const name of recordedMembers(this.root, cluster)) {
      const record = readRecord(this.root, cluster, name);
      if (!record?.launch) continue; // addresses allocated, never started
      const proc = processes.get(name);
      const base = { name, clientUrl: record.addresses.clientUrl, peerUrl: record.addresses.peerUrl };
      // What runs, else what the next start will run.
      const extras: Partial<PlacedMember> = { version: proc?.version ?? record.version ?? cluster.spec.version };
      if (record.addresses.agentUrl !== undefined && proc?.agent) extras.agentUrl = record.addresses.agentUrl;
      if (record.addresses.failpointUrl !== undefined) extras.failpointUrl = record.addresses.failpointUrl;
      if (dataLost(this.root, cluster, name)) {
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

  async startMember(cluster: EtcdCluster, launch: MemberLaunch): Promise<void> {
    const fencedAt = readRecord(this.root, cluster, launch.name)?.fencedEpoch;
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
    const record = readRecord(this.root, cluster, launch.name)!;
    // The first launch is kept: a restart uses the member's data, not a new launch.
    const first = (record.launch ??= launch);
    // The version recorded with the member wins (only upgradeMember changes it): launch.version is a new
    // member's, and a restart with the cluster's current spec.version must not undo an upgrade's step.
    const version = record.version ?? launch.version ?? cluster.spec.version;
    record.version = version;
    writeRecord(this.root, cluster, launch.name, record);
    if (dataLost(this.root, cluster, launch.name)) {
      throw new LocalPlacementError(clusterKey(cluster), `member ${launch.name} lost its data and must be replaced, not started`);
    }
    const binaries = resolveBinaries(this.binariesFor, cluster, launch.name, version);
    const dir = this.dir(cluster);
    const a = record.addresses;
    const etcd = memberEtcdProcess(this.root, cluster, { ...record, launch: first }, binaries);
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

  async fenceMember(cluster: EtcdCluster, member: string, epoch: number): Promise<void> {
    const dir = this.dir(cluster);
    // The mark first (durably), then the stop: from the moment the guard sees it the member cannot start.
    writeDurably(path.join(dir, `${member}.fenced`), `${epoch}\n`);
    const record = readRecord(this.root, cluster, member);
    if (record && record.fencedEpoch === undefined) writeRecord(this.root, cluster, member, { ...record, fencedEpoch: epoch });
    // Its agent stays until the runner is deleted: a fault in progress on the member still heals through it.
    await this.processes(cluster).get(member)?.etcd.kill();
    logger.warn('local placement: member fenced', { cluster: clusterKey(cluster), member, epoch });
  }

  async recoverSurvivor(cluster: EtcdCluster, member: string, failoverEpoch: number): Promise<void> {
    const record = readRecord(this.root, cluster, member);
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
    writeRecord(this.root, cluster, member, { ...record, recoveredEpoch: failoverEpoch });
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
    const record = readRecord(this.root, cluster, member);
    if (!record?.launch) throw new LocalPlacementError(key, `cannot upgrade ${member}: it was never started here`);
    if (record.fencedEpoch !== undefined) throw new LocalPlacementError(key, `cannot upgrade ${member}: it was fenced at witness epoch ${record.fencedEpoch}`);
    const proc = this.processes(cluster).get(member);
    // Idempotent: what runs (or, with no process in this operator, what its next start runs) is the version.
    if ((proc?.version ?? record.version ?? cluster.spec.version) === version) return;
    // Every check before the stop: a version that cannot run leaves the member running as it was.
    const binaries = resolveBinaries(this.binariesFor, cluster, member, version);
    const from = proc?.version ?? record.version ?? cluster.spec.version;
    // Recorded first (durably): an operator that dies from here on starts the member on the new version,
    // which is where it was going (its old process dies with the operator).
    writeRecord(this.root, cluster, member, { ...record, version });
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
      etcd = memberEtcdProcess(this.root, cluster, { ...record, launch: record.launch }, binaries);
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
    for (const name of [...this.processes(cluster).keys(), ...recordedMembers(this.root, cluster)]) await this.deleteMember(cluster, name);
    this.running.delete(clusterKey(cluster));
    await this.services.get(clusterKey(cluster))?.close();
    this.services.delete(clusterKey(cluster));
    rmSync(this.dir(cluster), { recursive: true, force: true });
  }

  async clientEndpoints(cluster: EtcdCluster): Promise<string[]> {
    const urls: string[] = [];
    for (const name of recordedMembers(this.root, cluster)) {
      const record = readRecord(this.root, cluster, name);
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
