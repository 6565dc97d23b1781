/**
 * Rolling upgrade and gate metrics (docs/metrics.md): whether an upgrade of a cluster is in progress or
 * blocked, how many members run its target version, gate runs by result, and the gate state the HTTP
 * gate endpoints answer with. One set of metric objects per prom-client Registry.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { onMetricSet } from '../../metrics-registry.ts';
import type { UpgradeStatus } from '../../domain/index.ts';

function createMetrics(registry: Registry) {
  const registers = [registry];
  return {
    inProgress: new Gauge({
      name: 'etcd_robustness_upgrade_in_progress',
      help: '1 while a rolling upgrade of the cluster is in progress (including while blocked).',
      labelNames: ['cluster'],
      registers,
    }),
    blocked: new Gauge({
      name: 'etcd_robustness_upgrade_blocked',
      help: '1 while an upgrade gate failed and the upgrade waits for resume or rollback.',
      labelNames: ['cluster'],
      registers,
    }),
    upgraded: new Gauge({
      name: 'etcd_robustness_upgrade_members_upgraded',
      help: "Members running the upgrade's target version.",
      labelNames: ['cluster'],
      registers,
    }),
    gateRuns: new Counter({
      name: 'etcd_robustness_upgrade_gate_runs_total',
      help: 'Finished upgrade gate runs by result (passed, failed).',
      labelNames: ['cluster', 'result'],
      registers,
    }),
    gatePassing: new Gauge({
      name: 'etcd_robustness_gate_passing',
      help: "1 passing, 0 failing: kind cluster is an EtcdCluster's upgrade gate, kind run a RobustnessRun's last run judged by the default gate criteria.",
      labelNames: ['kind', 'name'],
      registers,
    }),
  };
}

export class UpgradeMetrics extends onMetricSet(createMetrics) {
  /** The upgrade state of a cluster ("namespace/name") after a reconcile. */
  observe(cluster: string, upgrade: UpgradeStatus | undefined, blocked: boolean, membersAtTarget: number): void {
    const inProgress = upgrade !== undefined && (upgrade.phase === 'Progressing' || upgrade.phase === 'Blocked' || upgrade.phase === 'RollingBack');
    this.m.inProgress.set({ cluster }, inProgress ? 1 : 0);
    this.m.blocked.set({ cluster }, blocked ? 1 : 0);
    this.m.upgraded.set({ cluster }, membersAtTarget);
    for (const result of ['passed', 'failed']) this.m.gateRuns.inc({ cluster, result }, 0);
  }

  gateFinished(cluster: string, passed: boolean): void {
    this.m.gateRuns.inc({ cluster, result: passed ? 'passed' : 'failed' });
    this.m.gatePassing.set({ kind: 'cluster', name: cluster }, passed ? 1 : 0);
  }

  /** A RobustnessRun's last run, judged by the default gate criteria. */
  runJudged(run: string, passing: boolean): void {
    this.m.gatePassing.set({ kind: 'run', name: run }, passing ? 1 : 0);
  }

  forget(cluster: string): void {
    this.m.inProgress.remove({ cluster });
    this.m.blocked.remove({ cluster });
    this.m.upgraded.remove({ cluster });
    for (const result of ['passed', 'failed']) this.m.gateRuns.remove({ cluster, result });
    this.m.gatePassing.remove({ kind: 'cluster', name: cluster });
  }

  forgetRun(run: string): void {
    this.m.gatePassing.remove({ kind: 'run', name: run });
  }
}
