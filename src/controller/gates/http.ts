/**
 * The gates as HTTP endpoints, for tools that gate other rollouts on etcd being proven correct (Argo
 * Rollouts' web metric provider, Flagger's webhooks): 200 with `{"passing": true, ...}` when the gate
 * passes, 503 with the reason when it does not, 404 when the object does not exist.
 *
 *   GET /gates/etcdclusters/<namespace>/<name>     the cluster's gate: Available, no upgrade blocked, and its
 *                                                  last upgrade gate (if any) passed
 *   GET /gates/robustnessruns/<namespace>/<name>   the run's last finished run judged by the gate criteria;
 *       ?minAvailability=0.99&maxUnknownRate=0.01&watchChecks=false&maxAge=1h  override the defaults
 *
 * The judgement itself is criteria.ts's; this module only reads the objects and answers.
 *
 * Who may read a gate (secure serving, gateAttributes): whoever may `get` the object it judges, in its
 * namespace: `get etcdclusters.etcd.robustness.io <name>` for a cluster's gate, `get
 * robustnessruns.etcd.robustness.io <name>` for a run's. A gate reveals only what the object's status
 * already says, so it needs exactly the permission that reads that status, and no namespace's verdict
 * is readable by a user who may not read the namespace's objects.
 */
import type http from 'node:http';
import { etcdClusterPlural, robustnessGroup, robustnessRunPlural, type EtcdCluster, type GateCriteria, type RobustnessRunResource } from '../../domain/index.ts';
import { DurationFormatError, parseDuration } from '../../duration.ts';
import { findCondition, isConditionTrue, verbOf, type RequestAttributes } from '../kit/index.ts';
import { defaultGateCriteria, judgeRun } from './criteria.ts';

export interface GateLookup {
  cluster(namespace: string, name: string): Promise<EtcdCluster | undefined>;
  run(namespace: string, name: string): Promise<RobustnessRunResource | undefined>;
}

export interface GateAnswer {
  passing: boolean;
  kind: 'etcdcluster' | 'robustnessrun';
  name: string;
  reason: string;
  [detail: string]: unknown;
}

export class GateQueryError extends Error {
  override name = 'GateQueryError';
}

function ratioParam(params: URLSearchParams, key: keyof GateCriteria, fallback: number): number {
  const raw = params.get(key);
  if (raw === null) return fallback;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value < 0 || value > 1) throw new GateQueryError(`query parameter ${key}=${raw} must be a number from 0 to 1`);
  return value;
}

/** The criteria a query asks for (defaults for what it does not name). */
export function criteriaOf(params: URLSearchParams): { criteria: GateCriteria; maxAgeMs?: number } {
  const watch = params.get('watchChecks');
  if (watch !== null && watch !== 'true' && watch !== 'false') throw new GateQueryError(`query parameter watchChecks=${watch} must be true or false`);
  const criteria: GateCriteria = {
    watchChecks: watch === null ? defaultGateCriteria.watchChecks : watch === 'true',
    minAvailability: ratioParam(params, 'minAvailability', defaultGateCriteria.minAvailability),
    maxUnknownRate: ratioParam(params, 'maxUnknownRate', defaultGateCriteria.maxUnknownRate),
  };
  const maxAge = params.get('maxAge');
  if (maxAge === null) return { criteria };
  try {
    return { criteria, maxAgeMs: parseDuration(maxAge) };
  } catch (error) {
    throw new GateQueryError(`query parameter maxAge=${maxAge}: ${error instanceof DurationFormatError ? error.message : String(error)}`);
  }
}

/** The cluster's gate. */
export function clusterGate(cluster: EtcdCluster): GateAnswer {
  const name = `${cluster.metadata.namespace ?? 'default'}/${cluster.metadata.name}`;
  const conditions = cluster.status?.conditions;
  const upgrade = cluster.status?.upgrade;
  const lastGate = upgrade?.gates.filter((g) => g.phase !== 'Running').at(-1);
  const details = { phase: cluster.status?.phase, upgrade: upgrade === undefined ? undefined : { from: upgrade.from, to: upgrade.to, phase: upgrade.phase }, lastGate };
  const answer = (passing: boolean, reason: string): GateAnswer => ({ passing, kind: 'etcdcluster', name, reason, ...details });
  if (!isConditionTrue(conditions, 'Available')) return answer(false, `not Available: ${findCondition(conditions, 'Available')?.message ?? 'no status yet'}`);
  if (isConditionTrue(conditions, 'UpgradeBlocked')) return answer(false, `upgrade blocked: ${findCondition(conditions, 'UpgradeBlocked')?.message ?? ''}`);
  // A roll-back answered the failed gate: the members run the version that passed before it.
  if (lastGate?.phase === 'Failed' && upgrade?.phase === 'RolledBack') return answer(true, `Available; the upgrade to ${upgrade.to} was rolled back to ${upgrade.from} after its gate ${lastGate.step} failed`);
  if (lastGate?.phase === 'Failed') return answer(false, `the last gate (${lastGate.step}, run ${lastGate.run}) failed: ${lastGate.reason ?? ''}`);
  return answer(true, lastGate === undefined ? 'Available, no upgrade gate has run' : `Available; the last gate (${lastGate.step}) passed`);
}

/** A RobustnessRun's gate: its last finished run judged by `criteria`. */
export function runGate(resource: RobustnessRunResource, criteria: GateCriteria, now: Date, maxAgeMs?: number): GateAnswer {
  const name = `${resource.metadata.namespace ?? 'default'}/${resource.metadata.name}`;
  const status = resource.status;
  const answer = (passing: boolean, reason: string, details: Record<string, unknown> = {}): GateAnswer => ({ passing, kind: 'robustnessrun', name, reason, ...details });
  if (status?.phase === 'Running' || status?.phase === 'Pending') {
    // A run in progress: only the previous run's verdict is on record (its operation counts are not).
    const last = status.lastRun;
    if (last === undefined) return answer(false, `run ${status.runNumber ?? 1} is in progress and no run has finished yet`);
    const lastEnd = last.endTime === undefined ? Number.NaN : Date.parse(last.endTime);
    if (maxAgeMs !== undefined && !(now.getTime() - lastEnd <= maxAgeMs)) {
      return answer(false, `run ${status.runNumber ?? '?'} is in progress; the last finished run (${last.number}) ended at ${last.endTime ?? 'an unknown time'}, longer ago than maxAge`, { run: last.number, verdict: last.verdict });
    }
    return answer(last.phase === 'Passed', `run ${status.runNumber ?? '?'} is in progress; judged on run ${last.number}, which ended ${last.phase} (verdict only)`, { run: last.number, verdict: last.verdict });
  }
  const judged = judgeRun(status, criteria);
  if (judged === undefined) return answer(false, 'no run has finished yet');
  const endTime = status?.endTime === undefined ? undefined : Date.parse(status.endTime);
  const details = { run: status?.runNumber, verdict: judged.verdict, availability: judged.availability, unknownRate: judged.unknownRate, endTime: status?.endTime, criteria };
  if (maxAgeMs !== undefined && (endTime === undefined || !(now.getTime() - endTime <= maxAgeMs))) {
    return answer(false, `the last run ended at ${status?.endTime ?? 'an unknown time'}, longer ago than maxAge`, details);
  }
  return answer(judged.passing, judged.reason, details);
}

function send(response: http.ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'Content-Type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
}

/**
 * What a gate request asks the authorizer: `get` on the object the gate judges (see the module comment).
 * A path that names no gate asks for itself as a non-resource URL (an unknown path is refused as
 * forbidden, not described, to a user who may not read it).
 */
export function gateAttributes(request: http.IncomingMessage): RequestAttributes {
  const pathname = new URL(request.url ?? '/', 'http://localhost').pathname;
  const parts = pathname.split('/').filter((p) => p !== '');
  const verb = verbOf(request.method);
  if (parts.length === 4 && parts[0] === 'gates' && (parts[1] === etcdClusterPlural || parts[1] === robustnessRunPlural)) {
    return { kind: 'resource', verb, group: robustnessGroup, resource: parts[1], namespace: parts[2]!, name: parts[3]! };
  }
  return { kind: 'nonResource', verb, path: pathname };
}

const objectName = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** The /gates/ handler for the operator's metrics server. */
export function gatesHandler(lookup: GateLookup, now: () => Date = () => new Date()) {
  return async (request: http.IncomingMessage, response: http.ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const parts = url.pathname.split('/').filter((p) => p !== '');
    // ['gates', plural, namespace, name]
    if (parts.length !== 4 || (parts[1] !== 'etcdclusters' && parts[1] !== 'robustnessruns')) {
      send(response, 404, { error: `unknown gate ${url.pathname}: use /gates/etcdclusters/<namespace>/<name> or /gates/robustnessruns/<namespace>/<name>` });
      return;
    }
    const [, plural, namespace, name] = parts as [string, string, string, string];
    // The authorizer judged these very segments: anything but an object name (say an encoded slash) is refused.
    if (!objectName.test(namespace) || !objectName.test(name)) {
      send(response, 400, { error: `${url.pathname}: the namespace and name must be Kubernetes object names` });
      return;
    }
    try {
      if (plural === 'etcdclusters') {
        const cluster = await lookup.cluster(namespace, name);
        if (cluster === undefined) {
          send(response, 404, { passing: false, kind: 'etcdcluster', name: `${namespace}/${name}`, reason: 'no such EtcdCluster' });
          return;
        }
        const answer = clusterGate(cluster);
        send(response, answer.passing ? 200 : 503, answer);
        return;
      }
      const { criteria, maxAgeMs } = criteriaOf(url.searchParams);
      const run = await lookup.run(namespace, name);
      if (run === undefined) {
        send(response, 404, { passing: false, kind: 'robustnessrun', name: `${namespace}/${name}`, reason: 'no such RobustnessRun' });
        return;
      }
      const answer = runGate(run, criteria, now(), maxAgeMs);
      send(response, answer.passing ? 200 : 503, answer);
    } catch (error) {
      if (error instanceof GateQueryError) send(response, 400, { error: error.message });
      else throw error;
    }
  };
}
