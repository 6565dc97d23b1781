/**
 * EtcdCluster reconcile: read the resource, observe etcd and the placement, take one step of
 * planCluster, write the status computed from the observation, requeue. Level-based: nothing depends on
 * which event woke it, and a step interrupted half way is finished by the next reconcile.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { EtcdClientTls, EtcdCluster, MemberPlacement, PlacedMember, Witness } from '../../domain/index.ts';
import { ClientTlsUnavailableError, etcdClusterKind, etcdClusterPlural, robustnessApiVersion } from '../../domain/index.ts';
import { parseDuration } from '../../duration.ts';
import { logger } from '../../log.ts';
import { apiErrorMessage, CustomResources, finalizerPatch } from '../kube-api.ts';
import { splitKey, TerminalError, type EventRecorder, type ReconcileResult } from '../kit/index.ts';
import { hexId, observeEtcd, withEtcd, type EtcdView } from './observe.ts';
import { initialClusterOf, planCluster, type ClusterAction } from './plan.ts';
import { clusterStatus, describeAction } from './status.ts';
import { createWitness } from '../witness/stores.ts';
import type { OperatorIdentity } from '../witness/protocol.ts';
import { QuorumTracker, twoNodeStep } from './two-node.ts';
import type { Registry } from 'prom-client';
import type { EtcdClusterStatus, RobustnessRunResource } from '../../domain/index.ts';
import { robustnessRunPlural } from '../../domain/index.ts';
import { setCondition } from '../kit/index.ts';
import { upgradePatch, upgradeStep, type UpgradeOutcome } from './upgrade.ts';
import { UpgradeMetrics } from './upgrade-metrics.ts';
import { ClusterMetrics, QuotaCache } from './metrics.ts';

export const clusterFinalizer = 'etcd.robustness.io/cluster-cleanup';
/** The Available condition's reason (and the Event's) while spec.tls.client's CA cannot be read. */
export const clientTlsUnavailableReason = 'ClientTLSUnavailable';
/** The Available condition's reason (and the Event's) when the placement cannot run the topology. */
export const topologyNotSupportedReason = 'TopologyNotSupported';
/** How often a cluster whose client TLS Secret is unusable looks again. */
const clientTlsRetryMs = 5000;
export const defaultRunStopGraceMs = 10 * 60 * 1000;
/** `name=peerURL` of a member about to be added: lets a reconcile after a crash finish the start. */
export const pendingMemberAnnotation = 'etcd.robustness.io/pending-member';

export interface EtcdClusterReconcilerOptions {
  kubeConfig: KubeConfig;
  placement: MemberPlacement<EtcdCluster>;
  events: EventRecorder;
  /** True while a RobustnessRun injects faults into the cluster (namespace/name). */
  repairsPaused?: (key: string) => boolean;
  /**
   * Stops the runs targeting the cluster (namespace/name), which is being deleted; returns how many are
   * still stopping (healing their faults, checking, storing their reports). Members go only once none is.
   */
  stopRuns?: (key: string) => number;
  /**
   * How long a deletion waits for its runs to stop before it removes the members anyway (default 10 min):
   * a run that hangs while stopping must not keep the cluster (and its finalizer) forever.
   */
  runStopGraceMs?: number;
  /** Requeue period of a steady cluster (status freshness). */
  resyncMs?: number;
  /** This replica's leader-election identity and term (twoNodeWitness: the witness's fencing token). */
  identity?: () => OperatorIdentity;
  /** Where the cluster and upgrade metrics go (absent: a registry of its own, not served). */
  registry?: Registry;
}

function pendingOf(cluster: EtcdCluster): { name: string; peerUrl: string } | undefined {
  const value = cluster.metadata.annotations?.[pendingMemberAnnotation];
  if (!value) return undefined;
  const at = value.indexOf('=');
  return at > 0 ? { name: value.slice(0, at), peerUrl: value.slice(at + 1) } : undefined;
}

export class EtcdClusterReconciler {
  private readonly clusters: CustomResources<EtcdCluster>;
  private readonly runs: CustomResources<RobustnessRunResource>;
  private readonly upgradeMetrics: UpgradeMetrics | undefined;
  private readonly clusterMetrics: ClusterMetrics | undefined;
  /** Each member's quota from its /metrics, read at most every 30 s in the background. */
  private readonly quotas = new QuotaCache();
  private readonly options: EtcdClusterReconcilerOptions;
  /** etcd member id → first time seen not serving (per cluster key). */
  private readonly unhealthySince = new Map<string, Map<string, number>>();
  /** Cluster key → when its deletion started waiting for its runs to stop. */
  private readonly stopWaitSince = new Map<string, number>();
  private readonly quorum = new QuorumTracker();
  /** twoNodeWitness: the witness store per cluster key, with the spec it was made from. */
  private readonly witnesses = new Map<string, { spec: string; witness: Witness }>();

  constructor(options: EtcdClusterReconcilerOptions) {
    this.options = options;
    this.clusters = new CustomResources<EtcdCluster>(options.kubeConfig, etcdClusterPlural);
    this.runs = new CustomResources<RobustnessRunResource>(options.kubeConfig, robustnessRunPlural);
    this.upgradeMetrics = options.registry === undefined ? undefined : new UpgradeMetrics(options.registry);
    this.clusterMetrics = options.registry === undefined ? undefined : new ClusterMetrics(options.registry);
  }

  private forgetMetrics(key: string): void {
    this.upgradeMetrics?.forget(key);
    this.clusterMetrics?.forget(key);
    this.quotas.forget(key);
  }

  /** One step of the rolling upgrade (./upgrade.ts); its status and conditions are merged into `status`. */
  private async upgrade(cluster: EtcdCluster, observed: { etcd: EtcdView | undefined; clientTls: EtcdClientTls | undefined }, placed: readonly PlacedMember[], settled: boolean): Promise<UpgradeOutcome> {
    return upgradeStep({
      cluster,
      etcd: observed.etcd,
      placed,
      settled,
      runs: this.runs,
      placement: this.options.placement,
      clientTls: observed.clientTls,
      event: (type, reason, note) => this.event(cluster, type, reason, note),
      now: new Date(),
    });
  }

  /** The status with the upgrade's part, as a merge patch (cleared fields are null). */
  private withUpgrade(cluster: EtcdCluster, status: EtcdClusterStatus, outcome: UpgradeOutcome | undefined): object {
    if (outcome === undefined) return status;
    const key = `${cluster.metadata.namespace ?? 'default'}/${cluster.metadata.name}`;
    const generation = cluster.metadata.generation ?? 0;
    const now = new Date();
    const conditions = setCondition(setCondition(status.conditions, { ...outcome.upgrading, observedGeneration: generation }, now), { ...outcome.blocked, observedGeneration: generation }, now);
    this.upgradeMetrics?.observe(key, outcome.upgrade, outcome.blocked.status === 'True', outcome.membersAtTarget);
    if (outcome.gateFinished !== undefined) this.upgradeMetrics?.gateFinished(key, outcome.gateFinished.phase === 'Passed');
    return { ...status, conditions, ...(outcome.upgrade === undefined ? {} : { upgrade: upgradePatch(outcome.upgrade) }) };
  }

  private target(cluster: EtcdCluster): { apiVersion: string; kind: string; name: string; namespace: string; uid?: string } {
    const target = { apiVersion: robustnessApiVersion, kind: etcdClusterKind, name: cluster.metadata.name, namespace: cluster.metadata.namespace ?? 'default' };
    return cluster.metadata.uid === undefined ? target : { ...target, uid: cluster.metadata.uid };
  }

  private async event(cluster: EtcdCluster, type: 'Normal' | 'Warning', reason: string, note: string): Promise<void> {
    await this.options.events.record(this.target(cluster), type, reason, reason, note);
  }

  reconcile = async (key: string): Promise<ReconcileResult> => {
    const { namespace = 'default', name } = splitKey(key);
    const cluster = await this.clusters.get(namespace, name);
    if (!cluster) {
      this.forgetMetrics(key);
      this.unhealthySince.delete(key);
      this.quorum.forget(key);
      await this.dropWitness(key);
      return {};
    }
    const { placement } = this.options;

    if (cluster.metadata.deletionTimestamp !== undefined) {
      if (!(cluster.metadata.finalizers ?? []).includes(clusterFinalizer)) return {};
      // Runs against it stop first: they heal their faults and check what they recorded while the members still serve.
      const stopping = this.options.stopRuns?.(key) ?? 0;
      if (stopping > 0) {
        const since = this.stopWaitSince.get(key) ?? Date.now();
        this.stopWaitSince.set(key, since);
        const graceMs = this.options.runStopGraceMs ?? defaultRunStopGraceMs;
        if (Date.now() - since < graceMs) {
          if (cluster.status?.phase !== 'Deleting') await this.clusters.patchStatus(namespace, name, { phase: 'Deleting' }).catch(() => undefined);
          logger.info(`EtcdCluster ${key}: deleting: waiting for ${stopping} run(s) against it to stop`);
          return { requeueAfterMs: 500 };
        }
        await this.event(
          cluster,
          'Warning',
          'RunsDidNotStop',
          `${stopping} run(s) against the cluster did not stop within ${Math.round(graceMs / 1000)} s of its deletion; removing the members anyway (their faults' leases expire on their own)`,
        );
      }
      this.stopWaitSince.delete(key);
      // The finalizer patch carries the resourceVersion the status patch returned (not a stale one).
      const latest = await this.clusters.patchStatus(namespace, name, { phase: 'Deleting' }).catch(() => cluster);
      await placement.deleteCluster(cluster);
      await this.event(cluster, 'Normal', 'ClusterDeleted', 'members stopped and their data deleted');
      await this.clusters.patch(namespace, name, finalizerPatch(latest.metadata, clusterFinalizer, false));
      this.forgetMetrics(key);
      this.unhealthySince.delete(key);
      this.quorum.forget(key);
      await this.dropWitness(key);
      return {};
    }
    if (!(cluster.metadata.finalizers ?? []).includes(clusterFinalizer)) {
      await this.clusters.patch(namespace, name, finalizerPatch(cluster.metadata, clusterFinalizer, true));
      return { requeueAfterMs: 100 };
    }
    const twoNodeRefusal = cluster.spec.topology === 'twoNodeWitness' ? placement.twoNodeWitnessRefusal(cluster) : undefined;
    if (twoNodeRefusal !== undefined) await this.topologyNotSupported(cluster, twoNodeRefusal);

    // Before anything is created: members whose client TLS Secret is unusable could not be talked to.
    let clientTls: EtcdClientTls | undefined;
    try {
      clientTls = await placement.clientTls(cluster);
    } catch (error) {
      if (error instanceof ClientTlsUnavailableError) return this.clientTlsUnavailable(cluster, error);
      throw error;
    }
    await placement.ensureCluster(cluster);
    const placed = await placement.listMembers(cluster);
    const endpoints = await placement.clientEndpoints(cluster);
    const etcd = await observeEtcd(endpoints, clientTls);
    this.clusterMetrics?.observe(key, etcd, placed, this.quotas.current(key, placed, Date.now(), clientTls));
    const unhealthy = this.trackUnhealthy(key, etcd);
    let pending = pendingOf(cluster);
    if (pending && etcd?.members.some((m) => m.name === pending?.name)) {
      // It joined: forget it, so its name is never taken for a member still to be added.
      await this.clusters.patch(namespace, name, { metadata: { annotations: { [pendingMemberAnnotation]: null } } });
      pending = undefined;
    }
    if (cluster.spec.topology === 'twoNodeWitness') return this.reconcileTwoNode(cluster, { placed, endpoints, etcd, clientTls, pending });
    const graceMs = parseDuration(cluster.spec.memberGracePeriod);
    const action = planCluster({
      cluster: name,
      replicas: cluster.spec.replicas,
      gracePeriodMs: graceMs,
      now: Date.now(),
      placed,
      etcd,
      unhealthySince: unhealthy,
      pendingMember: pending,
      repairsPaused: this.options.repairsPaused?.(key) ?? false,
    });

    let requeueAfterMs = action.kind === 'steady' ? (this.options.resyncMs ?? 10_000) : 1000;
    let stepError: unknown;
    let upgrade: UpgradeOutcome | undefined;
    try {
      const retryMs = await this.act(cluster, action, { etcd, clientTls }, endpoints, placed);
      if (retryMs !== undefined) requeueAfterMs = retryMs;
      // The upgrade takes its step after the repair's: it touches members only while the plan is steady.
      upgrade = await this.upgrade(cluster, { etcd, clientTls }, placed, action.kind === 'steady');
      if (upgrade.requeueAfterMs !== undefined) requeueAfterMs = Math.min(requeueAfterMs, upgrade.requeueAfterMs);
    } catch (error) {
      stepError = error;
    }
    // The status is written from the observation, whatever the step did.
    const statusInput = { cluster, etcd, placed, action, endpoints, now: new Date() };
    const status = clusterStatus(pending ? { ...statusInput, pending } : statusInput);
    await this.clusters.patchStatus(namespace, name, this.withUpgrade(cluster, status, upgrade));
    if (stepError !== undefined) throw stepError instanceof Error ? stepError : new Error(apiErrorMessage(stepError));
    return { requeueAfterMs };
  };

  /**
   * spec.tls.client names a Secret whose CA cannot be had: nothing can be observed or changed (every
   * member URL is https). Says so on the EtcdCluster (reason ClientTLSUnavailable, the Event naming the
   * Secret and the key) and looks again soon: no informer tells this operator when a Secret is created or fixed.
   */
  private async clientTlsUnavailable(cluster: EtcdCluster, error: ClientTlsUnavailableError): Promise<ReconcileResult> {
    logger.warn(`EtcdCluster ${cluster.metadata.namespace ?? 'default'}/${cluster.metadata.name}: no client TLS: ${error.message}`);
    await this.reportUnavailable(cluster, clientTlsUnavailableReason, error.message);
    return { requeueAfterMs: clientTlsRetryMs };
  }

  /** The cluster asks for what this operator's placement cannot do: says so and stops (a change of the spec requeues it). */
  private async topologyNotSupported(cluster: EtcdCluster, message: string): Promise<never> {
    await this.reportUnavailable(cluster, topologyNotSupportedReason, message);
    throw new TerminalError(message);
  }

  /**
   * Available False with `reason` and `message`, and a Warning Event, written when they are not what the
   * status already says for this generation (a retry every few seconds writes nothing new).
   */
  private async reportUnavailable(cluster: EtcdCluster, reason: string, message: string): Promise<void> {
    const generation = cluster.metadata.generation ?? 0;
    const current = cluster.status?.conditions?.find((c) => c.type === 'Available');
    if (current?.reason === reason && current.message === message && current.observedGeneration === generation) return;
    const conditions = setCondition(cluster.status?.conditions, { type: 'Available', status: 'False', observedGeneration: generation, reason, message }, new Date());
    await this.event(cluster, 'Warning', reason, message);
    await this.clusters.patchStatus(cluster.metadata.namespace ?? 'default', cluster.metadata.name, { ...(cluster.status?.phase === undefined ? { phase: 'Pending' } : {}), observedGeneration: generation, conditions });
  }

  private witnessOf(cluster: EtcdCluster): Witness {
    const key = `${cluster.metadata.namespace ?? 'default'}/${cluster.metadata.name}`;
    const twoNode = cluster.spec.twoNode;
    if (!twoNode) throw new TerminalError('the twoNodeWitness topology needs spec.twoNode.witness');
    const spec = JSON.stringify(twoNode.witness);
    const cached = this.witnesses.get(key);
    if (cached?.spec === spec) return cached.witness;
    if (cached) void cached.witness.close();
    const witness = createWitness(twoNode.witness, { namespace: cluster.metadata.namespace ?? 'default', name: cluster.metadata.name }, this.options.kubeConfig);
    this.witnesses.set(key, { spec, witness });
    return witness;
  }

  private async dropWitness(key: string): Promise<void> {
    const cached = this.witnesses.get(key);
    this.witnesses.delete(key);
    await cached?.witness.close();
  }

  /** Closes the witness stores this reconciler opened. */
  async close(): Promise<void> {
    for (const key of [...this.witnesses.keys()]) await this.dropWitness(key);
    await this.quotas.settled();
  }

  private async reconcileTwoNode(
    cluster: EtcdCluster,
    observed: { placed: PlacedMember[]; endpoints: string[]; etcd: EtcdView | undefined; clientTls: EtcdClientTls | undefined; pending: { name: string; peerUrl: string } | undefined },
  ): Promise<ReconcileResult> {
    const { placed, endpoints, etcd, clientTls, pending } = observed;
    const namespace = cluster.metadata.namespace ?? 'default';
    const key = `${namespace}/${cluster.metadata.name}`;
    const now = Date.now();
    const quorumLostSince = this.quorum.observe(key, etcd, now);
    const witness = this.witnessOf(cluster);
    let result;
    let stepError: unknown;
    try {
      result = await twoNodeStep(
        {
          cluster,
          witness,
          placement: this.options.placement,
          self: this.options.identity?.() ?? { identity: 'etcd-robustness-operator', term: 0 },
          etcd,
          placed,
          now,
          failoverGraceMs: parseDuration(cluster.spec.twoNode?.failoverGrace ?? '3s'),
          event: (type, reason, note) => this.event(cluster, type, reason, note),
          standardStep: (action) => this.act(cluster, action, { etcd, clientTls }, endpoints, placed),
        },
        quorumLostSince,
      );
    } catch (error) {
      stepError = error;
    }
    // A member started again gets a fresh grace: after an operator restart both members are down, and
    // starting them one after the other must not look like a pair that lost a member.
    if (result?.action.kind === 'restartMember' || result?.action.kind === 'startMember') this.quorum.forget(key);
    // Rolling upgrades of the pair are not supported yet: the upgrade step only refuses them, visibly.
    let upgrade: UpgradeOutcome | undefined;
    if (stepError === undefined) upgrade = await this.upgrade(cluster, { etcd, clientTls }, placed, false).catch(() => undefined);
    const action = result?.statusAction ?? { kind: 'wait' as const, reason: `witness step failed: ${apiErrorMessage(stepError)}` };
    const statusInput = { cluster, etcd, placed, action, endpoints, now: new Date() };
    const status = clusterStatus(pending ? { ...statusInput, pending } : statusInput);
    status.witness = result?.witness ?? { ...(cluster.status?.witness ?? {}), witness: witness.description };
    // A merge patch keeps fields it does not name: a new failover's writableAt must be cleared explicitly.
    const lastFailover = status.witness.lastFailover;
    const patch = lastFailover && lastFailover.writableAt === undefined ? { ...status, witness: { ...status.witness, lastFailover: { ...lastFailover, writableAt: null } } } : status;
    await this.clusters.patchStatus(namespace, cluster.metadata.name, this.withUpgrade(cluster, patch as EtcdClusterStatus, upgrade));
    if (stepError !== undefined) throw stepError instanceof Error ? stepError : new Error(apiErrorMessage(stepError));
    return { requeueAfterMs: result?.requeueAfterMs ?? 1000 };
  }

  private trackUnhealthy(key: string, etcd: EtcdView | undefined): ReadonlyMap<string, number> {
    const now = Date.now();
    const previous = this.unhealthySince.get(key) ?? new Map<string, number>();
    const next = new Map<string, number>();
    for (const m of etcd?.members ?? []) {
      if (m.status === undefined || !m.status.hasLeader) next.set(m.id, previous.get(m.id) ?? now);
    }
    this.unhealthySince.set(key, next);
    return next;
  }

  /** Takes one step; returns a requeue delay when the step wants one other than the default. */
  private async act(
    cluster: EtcdCluster,
    action: ClusterAction,
    observed: { etcd: EtcdView | undefined; clientTls: EtcdClientTls | undefined },
    endpoints: string[],
    placed: readonly PlacedMember[],
  ): Promise<number | undefined> {
    const { placement } = this.options;
    const { etcd, clientTls } = observed;
    const key = `${cluster.metadata.namespace ?? 'default'}/${cluster.metadata.name}`;
    // Membership changes go to the leader: etcd checks a reconfiguration against the receiving member's
    // own peer connections, and a member that joined seconds ago refuses every change.
    const leaderUrl = etcd?.members.find((m) => m.id === etcd.leaderId)?.clientUrls[0];
    const viaLeader = leaderUrl === undefined ? endpoints : [leaderUrl];
    const settling = (error: unknown): boolean => /unhealthy cluster|too many learner|not enough started members|in sync|not ready/i.test(apiErrorMessage(error));
    if (action.kind !== 'steady' && action.kind !== 'wait') logger.info(`EtcdCluster ${key}: ${describeAction(action)}`);
    switch (action.kind) {
      case 'steady':
      case 'wait':
        return undefined;
      case 'lost':
        await this.event(cluster, 'Warning', 'ClusterLost', action.reason);
        return 30_000;
      case 'bootstrap': {
        const { peerUrl } = await placement.addresses(cluster, action.member);
        await placement.startMember(cluster, { name: action.member, initialCluster: `${action.member}=${peerUrl}`, initialClusterState: 'new' });
        await this.event(cluster, 'Normal', 'ClusterBootstrapped', `started ${action.member} as the first member`);
        return 500;
      }
      case 'startMember':
        await placement.startMember(cluster, { name: action.member, initialCluster: action.initialCluster, initialClusterState: 'existing' });
        await this.event(cluster, 'Normal', 'MemberStarted', `started ${action.member}, which etcd knew but nothing ran`);
        return 500;
      case 'restartMember': {
        const runner = placed.find((p) => p.name === action.member);
        const launch = { name: action.member, initialCluster: etcd ? initialClusterOf(etcd.members, { placed }) : '', initialClusterState: 'existing' as const, restart: true };
        await placement.startMember(cluster, launch);
        await this.event(cluster, 'Normal', 'MemberRestarted', `restarted ${action.member} with its data (${runner?.detail ?? 'down'})`);
        return 1000;
      }
      case 'deleteRunner':
        await placement.deleteMember(cluster, action.member);
        await this.event(cluster, 'Normal', 'MemberDeleted', `deleted ${action.member}: it is no member of the cluster`);
        return 100;
      case 'removeMember': {
        try {
          await withEtcd(viaLeader, clientTls, (c) => c.cluster.memberRemove({ ID: action.id }, { deadline: Date.now() + 5000 }));
        } catch (error) {
          if (settling(error)) return 2000;
          throw error;
        }
        const reasons = { dataLost: 'its data was lost', down: 'it stayed down past the grace period', scaleDown: 'scaling down', unknown: 'no runner is known for it' };
        await this.event(cluster, action.reason === 'scaleDown' ? 'Normal' : 'Warning', action.reason === 'scaleDown' ? 'MemberRemoved' : 'MemberReplaced', `removed ${action.member} (id ${hexId(action.id)}): ${reasons[action.reason]}`);
        return 100;
      }
      case 'promote':
        try {
          await withEtcd(viaLeader, clientTls, (c) => c.cluster.memberPromote({ ID: action.id }, { deadline: Date.now() + 5000 }));
        } catch (error) {
          // etcd refuses until the learner caught up with the leader: that is waiting, not failing.
          if (settling(error)) return 1000;
          throw error;
        }
        await this.event(cluster, 'Normal', 'MemberPromoted', `promoted learner ${action.member} to a voting member`);
        return 100;
      case 'addLearner': {
        const { peerUrl } = await placement.addresses(cluster, action.member);
        const namespace = cluster.metadata.namespace ?? 'default';
        // Recorded first, so a crash between the member add and the start is finished by the next reconcile.
        const pending = `${action.member}=${peerUrl}`;
        if (cluster.metadata.annotations?.[pendingMemberAnnotation] !== pending) {
          await this.clusters.patch(namespace, cluster.metadata.name, { metadata: { annotations: { [pendingMemberAnnotation]: pending } } });
        }
        let added;
        try {
          added = await withEtcd(viaLeader, clientTls, (c) => c.cluster.memberAdd({ peerURLs: [peerUrl], isLearner: true }, { deadline: Date.now() + 5000 }));
        } catch (error) {
          // etcd's reconfiguration check refuses while a recent change settles: wait, it is not a failure.
          if (settling(error)) return 2000;
          throw error;
        }
        const initialCluster = added.members
          .map((m) => ({ name: m.name === '' && m.peerURLs.includes(peerUrl) ? action.member : m.name, peer: m.peerURLs[0] }))
          .filter((m) => m.name !== '' && m.peer !== undefined)
          .map((m) => `${m.name}=${m.peer}`)
          .join(',');
        await placement.startMember(cluster, { name: action.member, initialCluster, initialClusterState: 'existing' });
        await this.event(cluster, 'Normal', 'MemberAdded', `added ${action.member} as a learner (id ${hexId(added.member.ID)})`);
        return 1000;
      }
    }
  }
}
