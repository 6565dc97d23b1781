/**
 * The historical bug suite's side effects: building the releases a bug needs (test/bin/build-release.sh)
 * and running its scenario with `etcd-robustness run --local` on one release and seed, reading back what
 * the run's verdict.json says. bench/bugs.ts drives it; the CI subset (test/integration/bug-suite.test.ts)
 * uses the same functions.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { classify, findingsOf, type BugSpec, type SuiteRun } from './bug-suite.ts';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

/** Runs a command, its output appended to `log`; resolves with its exit code (or the signal that ended it). */
function runLogged(command: string, args: readonly string[], log: string, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const out = createWriteStream(log, { flags: 'a' });
    const child = spawn(command, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(out, { end: false });
    child.stderr.pipe(out, { end: false });
    // A run cleans up on SIGTERM (stops its cluster, heals its faults); the timeout only guards a hang.
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      out.end();
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      out.end(() => resolve({ code, signal }));
    });
  });
}

/** The last lines of a log, for an error message. */
function tail(log: string, lines = 5): string {
  if (!existsSync(log)) return '';
  return readFileSync(log, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

/** Builds one release; undefined when built (or already built), else why not. */
export async function buildRelease(version: string, log: string): Promise<string | undefined> {
  const { code, signal } = await runLogged('bash', [path.join(root, 'test/bin/build-release.sh'), version], log, 60 * 60_000);
  if (code === 0) return undefined;
  return `test/bin/build-release.sh ${version} failed (${signal ?? `exit ${code}`}): ${tail(log)}`;
}

/**
 * Runs a bug's scenario once on `release` with `seed`; the report (history, verdict.json) goes to `reportDir`.
 * `duration` overrides the manifest's (the CI subset shortens the fixed release's runs).
 */
export async function runScenario(spec: BugSpec, release: string, role: 'affected' | 'fixed', seed: number, reportDir: string, duration?: string): Promise<SuiteRun> {
  const log = `${reportDir}.log`;
  const args = [
    path.join(root, 'src/cli.ts'),
    'run',
    '--local',
    '--members',
    String(spec.members),
    '--etcd',
    release,
    ...spec.etcdFlags.map((flag) => `--etcd-flag=${flag}`),
    '--seed',
    String(seed),
    '--report',
    reportDir,
    '--progress-interval',
    '10s',
    ...(duration === undefined ? [] : ['--duration', duration]),
    path.join(spec.dir, 'run.yaml'),
  ];
  const base = { issue: spec.issue, release, role, seed };
  const { code, signal } = await runLogged(process.execPath, args, log, 30 * 60_000);
  const summaryFile = path.join(reportDir, 'verdict.json');
  if (!existsSync(summaryFile)) return { ...base, result: 'error', kinds: [], reason: `the run wrote no verdict.json (${signal ?? `exit ${code}`}): ${tail(log)}`, report: reportDir };
  const findings = findingsOf(JSON.parse(readFileSync(summaryFile, 'utf8')), summaryFile);
  const run: SuiteRun = { ...base, result: classify(findings, spec, role), kinds: findings.kinds, report: reportDir };
  if (findings.firstViolationMs !== undefined) run.firstViolationMs = findings.firstViolationMs;
  if (findings.reason !== undefined) run.reason = findings.reason;
  return run;
}
