/** Peer network faults: link rules every member's agent applies in its peer proxy. */
import type { FaultName, LinkRule } from '../domain/index.ts';
import { onTimeout, pollUntil } from '../poll.ts';
import { type FaultDriver, type FaultTools, idHex, numParam } from './driver.ts';
import { linksBetween } from './targets.ts';

const linkAction = (fault: FaultName): LinkRule['action'] => (fault === 'delay' ? 'delay' : fault === 'drop' ? 'drop' : 'blackhole');

/**
 * The rules on the links between the targets and the others, sent to every member's proxy; for an
 * isolating blackhole, waits for the majority to lead (a warning in the verified line if it does not).
 */
const linkFault: FaultDriver = async (tools, { planned, targets, all, others, ids, ttlMs, applied }) => {
  const mode = planned.fault === 'partition' ? String(planned.params['mode'] ?? 'isolate') : 'isolate';
  const links = linksBetween(targets, others, mode === 'asymmetric');
  const action = linkAction(planned.fault);
  const rules: LinkRule[] = links.map((l) => ({
    ...l,
    action,
    ...(action === 'delay' ? { delayMs: numParam(planned, 'delayMs'), jitterMs: numParam(planned, 'jitterMs') } : {}),
    ...(action === 'drop' ? { dropPercent: numParam(planned, 'percent') } : {}),
  }));
  const peers = Object.fromEntries([...ids].map(([id, name]) => [idHex(id), name]));
  const heal = await tools.injectAgents(all, { type: 'network', rules, ttlMs, peers });
  applied();
  let verified = `${rules.length} link rules (${action}) on ${all.length} proxies`;
  if (action === 'blackhole' && mode !== 'asymmetric') {
    // An isolated minority cannot keep (or win) leadership: wait for the majority's leader.
    const leader = await majorityLeader(tools, targets, others);
    if (leader === undefined) {
      verified += `; warning: no leader outside ${targets.join(', ')} within 6 s`;
    } else verified += `; leader ${leader} outside the isolated ${targets.join(', ')}`;
  }
  return { heal, verified };
};

/** The leader the `others` see, once it is not one of the isolated `targets`; undefined after 6 s. */
function majorityLeader(tools: FaultTools, targets: readonly string[], others: readonly string[]): Promise<string | undefined> {
  const outside = async (): Promise<string | undefined> => {
    const { leader } = await tools.clusterView(others);
    return leader !== undefined && !targets.includes(leader) ? leader : undefined;
  };
  return pollUntil(outside, { timeoutMs: 6000, intervalMs: 250, timeout: 'a leader outside the isolated members' }).catch(onTimeout(undefined));
}

export const networkDrivers = { blackhole: linkFault, delay: linkFault, drop: linkFault, partition: linkFault } as const;
