// Long exploratory runs of the two-node-plus-witness simulation (test/witness-sim): the real
// planTwoNode against simulated members, witness, network, operator replicas and a placement that does
// what the local one does (recovery once per failover, the forced-start mark until finishRecovery,
// etcd-wal-commit before every forced start).
//
//   node scripts/witness-sim.ts --seeds 20000 [--from 1]      explore; prints seeds/s, steps/s, failing seeds
//   node scripts/witness-sim.ts --seed 1234 --trace           replay one seed with its whole trace
//
// Options: --naive (forced starts without etcd-wal-commit), --mutation
// skipFence|ignoreCas|recoverAgain|noTermRule|keepMark (a broken protocol or placement: the checker
// must catch it; sim/operator.ts says what each breaks), --operators 1-3, --faults kind,kind (default
// all), --fault-phase ms (default 20000), --grace ms, --no-stale-observations, --show N (traces
// printed, 3). The summary counts the restarts of a survivor while its forced-start mark was still
// there (each committed its whole log first). The operator-crash exploration:
//   node scripts/witness-sim.ts --seeds 20000 --fault-phase 40000 --faults operatorCrash,memberHostDown,memberCrash,pairPartition
import { parseArgs } from 'node:util';
import { explore, faultKinds, mutations, seedRange, simulate, type FaultKind, type Mutation, type SimOptions, type SimResult } from '../test/witness-sim/index.ts';

function fail(message: string): never {
  console.error(`witness-sim: ${message}`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '1000' },
    from: { type: 'string', default: '1' },
    seed: { type: 'string' },
    trace: { type: 'boolean', default: false },
    naive: { type: 'boolean', default: false },
    mutation: { type: 'string', default: 'none' },
    operators: { type: 'string' },
    faults: { type: 'string' },
    'fault-phase': { type: 'string' },
    grace: { type: 'string' },
    'no-stale-observations': { type: 'boolean', default: false },
    show: { type: 'string', default: '3' },
  },
  strict: true,
});

const int = (name: string, value: string): number => {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) fail(`--${name} must be a whole number, not ${value}`);
  return n;
};

const options: SimOptions = {};
if (values.naive) options.naiveRecovery = true;
if (!(mutations as readonly string[]).includes(values.mutation)) fail(`unknown mutation ${values.mutation} (${mutations.join(', ')})`);
options.mutation = values.mutation as Mutation;
if (values.operators !== undefined) options.operators = int('operators', values.operators);
if (values.faults !== undefined) {
  const kinds = values.faults.split(',').filter((k) => k !== '');
  for (const k of kinds) if (!(faultKinds as readonly string[]).includes(k)) fail(`unknown fault ${k} (${faultKinds.join(', ')})`);
  options.faults = kinds as FaultKind[];
}
if (values['fault-phase'] !== undefined) options.faultPhaseMs = int('fault-phase', values['fault-phase']);
if (values.grace !== undefined) options.failoverGraceMs = int('grace', values.grace);
if (values['no-stale-observations']) options.staleObservations = false;

function printFailure(result: SimResult, traceLines: number): void {
  console.log(`\nseed ${result.seed}: ${result.violation?.message ?? 'ok'}`);
  console.log(`  replicas ${result.replicas}; faults: ${result.faults.join('; ') || 'none'}`);
  for (const line of result.trace.slice(-traceLines)) console.log(`  ${line}`);
}

if (values.seed !== undefined) {
  const result = simulate(int('seed', values.seed), { ...options, trace: values.trace });
  if (values.trace) for (const line of result.trace) console.log(line);
  console.log(`\nseed ${result.seed}: ${result.ok ? 'ok' : result.violation?.message ?? ''}`);
  console.log(`  ${result.steps} steps, ${(result.simMs / 1000).toFixed(1)} s simulated, digest ${result.digest}, replicas ${result.replicas}`);
  console.log(`  faults: ${result.faults.join('; ') || 'none'}`);
  console.log(`  stats: ${JSON.stringify(result.stats)}`);
  process.exit(result.ok ? 0 : 1);
}

const count = int('seeds', values.seeds);
const from = int('from', values.from);
console.log(
  `exploring seeds ${from}..${from + count - 1} (mutation ${options.mutation ?? 'none'}${options.naiveRecovery === true ? ', naive recovery' : ''}, faults ${options.faults?.join(',') ?? 'all'}, fault phase ${options.faultPhaseMs ?? 20_000} ms)`,
);
const started = performance.now();
let lastReport = started;
let done = 0;
let steps = 0;
let failovers = 0;
/** Starts of a survivor while its forced-start mark was still there (besides the recovery's own). */
let markedRestarts = 0;
const byInvariant = new Map<string, number[]>();
const result = explore(seedRange(from, count), options, (r) => {
  done++;
  steps += r.steps;
  failovers += r.stats.failovers;
  markedRestarts += r.stats.forcedStarts - r.stats.recoveries;
  if (!r.ok) {
    const key = r.violation?.invariant ?? '?';
    byInvariant.set(key, [...(byInvariant.get(key) ?? []), r.seed]);
    console.log(`FAIL seed ${r.seed}: ${r.violation?.message ?? ''}`);
  }
  const now = performance.now();
  if (now - lastReport > 2000) {
    lastReport = now;
    const s = (now - started) / 1000;
    console.log(`${done}/${count} seeds, ${(done / s).toFixed(0)} seeds/s, ${(steps / s / 1e6).toFixed(2)} M steps/s, ${failovers} failovers, ${[...byInvariant.values()].flat().length} failing`);
  }
});
const seconds = result.wallMs / 1000;
console.log(`\n${result.runs} seeds in ${seconds.toFixed(1)} s: ${(result.runs / seconds).toFixed(0)} seeds/s, ${(result.steps / seconds / 1e6).toFixed(2)} M steps/s (${(result.steps / result.runs).toFixed(0)} steps and ${(result.simMs / result.runs / 1000).toFixed(1)} s simulated per seed), ${failovers} failovers, ${markedRestarts} restarts with the forced-start mark`);
if (result.failures.length === 0) {
  console.log('no invariant failed');
  process.exit(0);
}
for (const [invariant, seeds] of byInvariant) console.log(`${invariant}: ${seeds.length} seeds: ${seeds.slice(0, 20).join(' ')}${seeds.length > 20 ? ' …' : ''}`);
for (const f of result.failures.slice(0, int('show', values.show))) printFailure(f, 40);
console.log(`\nreplay one with: node scripts/witness-sim.ts --seed ${result.failures[0]!.seed} --trace${process.argv.slice(2).filter((a, i, all) => !['--seeds', '--from'].includes(a) && !['--seeds', '--from'].includes(all[i - 1] ?? '')).map((a) => ` ${a}`).join('')}`);
process.exit(1);
