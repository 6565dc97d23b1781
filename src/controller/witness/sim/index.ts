/**
 * The deterministic simulation of the two-node-plus-witness protocol (planTwoNode) against simulated
 * etcd members, witness, network and operator replicas. test/unit/witness-sim.test.ts runs a fixed
 * budget of seeds; scripts/witness-sim.ts explores more.
 */
export { Random, Digest } from './random.ts';
export { World, Runner, WitnessStore, TICK_MS, EPOCH_MS, type Entry, type Config, type AckedWrite, type SimWorldOptions } from './world.ts';
export { Operators, mutations, plannerFor, proposedFixes, withOrphanLearnerFix, type ProposedFix, type Mutation, type Planner, type Replica, type OperatorOptions } from './operator.ts';
export { Invariants, SimViolation, type InvariantName } from './invariants.ts';
export { simulate, explore, seedRange, faultKinds, type FaultKind, type SimOptions, type SimResult, type ExploreResult } from './run.ts';
