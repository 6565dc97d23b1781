// Fault injection: the catalog and seeded scheduler (pure), the executor that carries a plan out against
// a cluster through one driver per fault (process, network, cluster and failpoint faults), the fault
// agent that runs beside each member (process, network, failpoint and disk faults with TTL leases) and
// its client, the peer proxy, and the gofail client.
export { checkFaultParam, defaultFaultChoices, describeParam, faultCatalog, faultDefinition, isFaultName, validateFaultParams } from './catalog.ts';
export type { FailpointTrigger, FaultDefinition, FaultKind, FaultParam, FaultParams } from './catalog.ts';
export { planFaults, quietMs } from './scheduler.ts';
export type { PlanOptions } from './scheduler.ts';
export { FaultExecutor } from './executor.ts';
export type { FaultExecutorOptions } from './executor.ts';
export { compactionRevision, FaultUnavailableError } from './driver.ts';
export type { CompactAt, FaultDriver, FaultTriggers } from './driver.ts';
export { faultDrivers } from './drivers.ts';
export { FaultTargetError, linksBetween, resolveTargets } from './targets.ts';
export { FaultAgent, defaultMaxTtlMs } from './agent.ts';
export { parseFaultRequest } from './agent-request.ts';
export type { FaultAgentOptions } from './agent.ts';
export { AgentClient, AgentRequestError } from './agent-client.ts';
export { PeerProxy } from './peer-proxy.ts';
export { connectionEffects, linkEffect } from './peer-proxy-rules.ts';
export type { PeerProxyOptions, PeerProxyStats } from './peer-proxy.ts';
export { GofailClient, FailpointError } from './gofail.ts';
export type { FailpointState } from './gofail.ts';
export { holdFile } from './hold.ts';
export { forceFile, recoveryHoldFile } from './agent-recovery.ts';
