/**
 * The deterministic simulation of the two-node-plus-witness protocol (planTwoNode) against simulated
 * etcd members, witness, network, placement and operator replicas. It runs the code as it is: the real
 * planner, and a placement modelled on the local one (once-per-failover recovery, the forced-start mark
 * until finishRecovery, etcd-wal-commit before every forced start); only the mutations (operator.ts)
 * and naiveRecovery break it on purpose. test/unit/witness-sim.test.ts runs a fixed budget of seeds and
 * the scenarios of the bugs it found; scripts/witness-sim.ts explores more.
 */
export { Random, Digest } from './random.ts';
export { World, Runner, WitnessStore, TICK_MS, EPOCH_MS, type Entry, type Config, type AckedWrite, type SimWorldOptions } from './world.ts';
export { Operators, mutations, plannerFor, type Mutation, type Planner, type Replica, type OperatorOptions } from './operator.ts';
export { Invariants, SimViolation, type InvariantName } from './invariants.ts';
export { simulate, explore, seedRange, faultKinds, type FaultKind, type SimOptions, type SimResult, type ExploreResult } from './run.ts';
