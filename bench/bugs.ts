/**
 * `npm run bugs [-- ISSUE ...]`: the historical etcd bug suite (examples/bugs/<etcd issue>/). For each bug,
 * builds its affected and its fixed release (test/bin/build-release.sh), runs its RobustnessRun with
 * `run --local` on each over several seeds, and prints a table: runs, how many caught the bug (a
 * violation of an expected kind) on the affected release, the median time to the first violation, the
 * kinds seen, and how many passed on the fixed release. Results go to bench/.results/bugs-<date>.json,
 * with the report directories of runs that did not do what their release asks (kept for reading).
 *
 *   npm run bugs                      # every bug, 5 seeds each release
 *   npm run bugs -- 14370 15220       # some
 *   npm run bugs -- --seeds 2 --releases affected 15220
 *   npm run bugs -- --seeds 1 --seed-base 1527102 --releases fixed 15271   # one run again
 *
 * A release that cannot be built is reported in the table (build failed), never skipped silently. Exit 0
 * when every bug meets the bar (caught in at least 4 of 5 runs, the fixed release passing every run).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildRelease, runScenario } from './bug-runner.ts';
import { formatTable, loadBugSuite, meetsBar, summarizeRelease, type BugSpec, type ReleaseSummary, type SuiteRun } from './bug-suite.ts';
import { intOption } from './options.ts';

const benchDir = path.dirname(new URL(import.meta.url).pathname);
const root = path.resolve(benchDir, '..');

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    seeds: { type: 'string' },
    'seed-base': { type: 'string' },
    releases: { type: 'string' },
    'keep-reports': { type: 'boolean' },
  },
});

async function main(): Promise<void> {
  const only = positionals.map((p) => {
    if (!/^\d+$/.test(p)) throw new Error(`bugs: "${p}" is not an etcd issue number`);
    return Number(p);
  });
  const seeds = intOption(args.seeds, 5, 'seeds');
  if (seeds === 0) throw new Error('--seeds must be at least 1');
  // The seeds are base, base + 1, ...; by default each bug's issue number times 100 (to run one again: --seed-base).
  const seedBase = args['seed-base'] === undefined ? undefined : intOption(args['seed-base'], 0, 'seed-base');
  const releases = args.releases ?? 'both';
  if (releases !== 'both' && releases !== 'affected' && releases !== 'fixed') throw new Error(`--releases must be both, affected or fixed, got ${releases}`);
  const roles = releases === 'both' ? (['affected', 'fixed'] as const) : ([releases] as const);
  const specs = loadBugSuite(path.join(root, 'examples', 'bugs'), only);

  const date = new Date().toISOString().slice(0, 10);
  const resultsDir = path.join(benchDir, '.results');
  const runsDir = path.join(resultsDir, `bugs-${date}`);
  mkdirSync(runsDir, { recursive: true });

  const needed = [...new Set(specs.flatMap((spec) => roles.map((role) => spec[role])))];
  const buildErrors = new Map<string, string>();
  for (const version of needed) {
    console.log(`building etcd ${version} (test/bin/build-release.sh)`);
    const error = await buildRelease(version, path.join(runsDir, `build-${version}.log`));
    if (error !== undefined) {
      console.log(`  ${error}`);
      buildErrors.set(version, error);
    }
  }

  const runs: SuiteRun[] = [];
  for (const spec of specs) {
    for (const role of roles) {
      const release = spec[role];
      if (buildErrors.has(release)) continue;
      for (let i = 0; i < seeds; i++) {
        const seed = (seedBase ?? spec.issue * 100) + i;
        const reportDir = path.join(runsDir, `${spec.issue}-${release}-seed${seed}`);
        rmSync(reportDir, { recursive: true, force: true });
        const run = await runScenario(spec, release, role, seed, reportDir);
        runs.push(run);
        const wanted = role === 'affected' ? 'caught' : 'passed';
        console.log(`${spec.issue} ${release} (${role}) seed ${seed}: ${run.result}${run.kinds.length > 0 ? ` [${run.kinds.join(' ')}]` : ''}${run.firstViolationMs === undefined ? '' : ` first violation at ${(run.firstViolationMs / 1000).toFixed(1)} s`}`);
        // A run that did what its release asks keeps only its figures: histories are large.
        if (run.result === wanted && args['keep-reports'] !== true) {
          rmSync(reportDir, { recursive: true, force: true });
          delete run.report;
        }
      }
    }
  }

  const summaryOf = (spec: BugSpec, role: 'affected' | 'fixed'): ReleaseSummary => {
    const summary = summarizeRelease(spec.issue, spec[role], role, runs);
    const error = buildErrors.get(spec[role]);
    return error === undefined ? summary : { ...summary, buildError: error };
  };
  const rows = specs.map((spec) => ({ spec, affected: summaryOf(spec, 'affected'), fixed: summaryOf(spec, 'fixed') }));
  console.log('');
  console.log(formatTable(rows));
  const file = path.join(resultsDir, `bugs-${date}.json`);
  const relative = (p: string | undefined): string | undefined => (p === undefined ? undefined : path.relative(root, p));
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        date,
        seeds,
        releases,
        bugs: rows.map(({ spec, affected, fixed }) => ({ issue: spec.issue, title: spec.title, members: spec.members, expect: spec.expect, affected, fixed, bar: meetsBar(affected, fixed) })),
        runs: runs.map((run) => ({ ...run, report: relative(run.report) })),
      },
      null,
      2,
    )}\n`,
  );
  console.log(`\nresults: ${path.relative(root, file)}`);
  process.exitCode = releases === 'both' && rows.every(({ affected, fixed }) => meetsBar(affected, fixed)) ? 0 : 1;
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 64;
});
