/**
 * `etcd-robustness report RUN`: fetches the stored report of a RobustnessRun (src/controller/report-store/)
 * into a folder (history/, verdict.json, report.html), prints where the files are and the verdict, and
 * with --open opens report.html. Exit codes: 0 fetched, 1 no such run or report (or it cannot be
 * fetched), 64 usage error.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { kubeApiFailure } from '../controller/kube-api.ts';
import { ConfigMapReportStore, ReportStoreError, VolumeReportStore } from '../controller/report-store/index.ts';
import type { RobustnessRunResource, RobustnessRunStatus, RunRecord, StoredReportRef } from '../domain/run-resource.ts';
import { robustnessRunPlural } from '../domain/run-resource.ts';
import { robustnessGroup, robustnessVersion } from '../domain/run-spec.ts';
import { exitCodes } from './check.ts';
import { UsageError } from './usage.ts';

export const reportUsage = `Usage: etcd-robustness report RUN [options]

Fetches the stored report of the RobustnessRun RUN (the last run's, or run N's with --run-number) into a
folder: history/ (the recorded history, when it was stored), verdict.json and report.html. Prints where
the files are and the verdict.

Options:
  -n, --namespace NS   The RobustnessRun's namespace (default: the kubeconfig context's, else default).
  --kubeconfig FILE    The kubeconfig to use (default: $KUBECONFIG, else ~/.kube/config).
  --run-number N       The report of run N of a scheduled RobustnessRun (see status.history).
  -o, --output DIR     Where to write the report (default ./RUN-report-N); must not hold a report already.
  --open               Open report.html in a browser (xdg-open), or print its path.
  -h, --help           Show this help.

Exit code: 0 fetched, 1 no such RobustnessRun or no stored report, 64 usage error.
`;

export interface ReportArgs {
  run: string;
  namespace: string | undefined;
  kubeconfig: string | undefined;
  runNumber: number | undefined;
  output: string | undefined;
  open: boolean;
}

export function parseReportArgs(argv: readonly string[]): ReportArgs | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        namespace: { type: 'string', short: 'n' },
        kubeconfig: { type: 'string' },
        'run-number': { type: 'string' },
        output: { type: 'string', short: 'o' },
        open: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  if (positionals.length === 0) throw new UsageError('which RobustnessRun? (etcd-robustness report RUN)');
  if (positionals.length > 1) throw new UsageError(`one RobustnessRun at a time, got ${positionals.length}: ${positionals.join(' ')}`);
  let runNumber: number | undefined;
  if (values['run-number'] !== undefined) {
    runNumber = Number(values['run-number']);
    if (!/^\d+$/.test(values['run-number']) || !Number.isSafeInteger(runNumber) || runNumber < 1) {
      throw new UsageError(`--run-number must be a positive integer, got "${values['run-number']}"`);
    }
  }
  for (const flag of ['namespace', 'kubeconfig', 'output'] as const) {
    if (values[flag] === '') throw new UsageError(`--${flag} must not be empty`);
  }
  return { run: positionals[0]!, namespace: values.namespace, kubeconfig: values.kubeconfig, runNumber, output: values.output, open: values.open };
}

/** Something the user should read (no such run, no report): exit 1 with the message. */
class NotFetched extends Error {}

function loadKubeConfig(file: string | undefined): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (file === undefined) {
    try {
      kubeConfig.loadFromDefault();
    } catch (error) {
      const from = process.env['KUBECONFIG'] === undefined ? '~/.kube/config' : `$KUBECONFIG (${process.env['KUBECONFIG']})`;
      throw new NotFetched(`cannot load the kubeconfig from ${from}: ${(error as Error).message}`);
    }
    // client-node's last resort when it finds no configuration at all.
    if (kubeConfig.getCurrentCluster()?.server === 'http://localhost:8080' && process.env['KUBECONFIG'] === undefined) {
      throw new NotFetched('no kubeconfig found ($KUBECONFIG is not set, no ~/.kube/config, not in a Pod): pass --kubeconfig FILE');
    }
    return kubeConfig;
  }
  try {
    kubeConfig.loadFromFile(file);
  } catch (error) {
    throw new UsageError(`--kubeconfig: cannot load ${file}: ${(error as Error).message}`);
  }
  return kubeConfig;
}

/** The stored report asked for and the run it belongs to. */
function pickReport(id: string, status: RobustnessRunStatus | undefined, runNumber: number | undefined): { ref: StoredReportRef; number: number | undefined } {
  const records: RunRecord[] = [...(status?.lastRun ? [status.lastRun] : []), ...(status?.history ?? [])];
  const phase = `phase ${status?.phase ?? 'not set'}`;
  if (runNumber === undefined) {
    const ref = status?.report ?? status?.lastRun?.report;
    if (!ref) throw new NotFetched(`RobustnessRun ${id} has no stored report yet (${phase})`);
    const number = records.find((r) => r.report?.name === ref.name)?.number ?? (status?.report ? status.runNumber : status?.lastRun?.number);
    return { ref, number };
  }
  const record = records.find((r) => r.number === runNumber && r.report);
  if (record?.report) return { ref: record.report, number: runNumber };
  if (status?.report && status.runNumber === runNumber) return { ref: status.report, number: runNumber };
  const withReports = [...new Set(records.filter((r) => r.report).map((r) => r.number))].sort((a, b) => a - b);
  throw new NotFetched(
    `RobustnessRun ${id} has no stored report for run ${runNumber} (${phase}; ` +
      `${withReports.length === 0 ? 'no run has a stored report' : `runs with a stored report: ${withReports.join(', ')}`})`,
  );
}

async function readRun(kubeConfig: KubeConfig, namespace: string, name: string): Promise<RobustnessRunResource> {
  const api = kubeConfig.makeApiClient(CustomObjectsApi);
  try {
    return (await api.getNamespacedCustomObject({ group: robustnessGroup, version: robustnessVersion, namespace, plural: robustnessRunPlural, name })) as RobustnessRunResource;
  } catch (error) {
    const { status, message } = kubeApiFailure(error);
    if (status === 404) {
      const noCrd = /could not find the requested resource/.test(message) ? ': the RobustnessRun CRD is not installed on this cluster' : '';
      throw new NotFetched(`RobustnessRun ${namespace}/${name} not found${noCrd}`);
    }
    const server = kubeConfig.getCurrentCluster()?.server ?? 'the API server';
    throw new NotFetched(`cannot read RobustnessRun ${namespace}/${name} from ${server}${status === undefined ? '' : `: HTTP ${status}`}: ${message}`);
  }
}

function verdictLine(file: string): string {
  try {
    const summary = JSON.parse(readFileSync(file, 'utf8')) as { verdict?: unknown; reason?: unknown };
    const verdict = typeof summary.verdict === 'string' ? summary.verdict : 'unknown';
    return `verdict: ${verdict}${typeof summary.reason === 'string' ? ` (${summary.reason})` : ''}`;
  } catch (error) {
    return `verdict: cannot read ${file}: ${(error as Error).message}`;
  }
}

function onPath(command: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

/** Opens `file` with the desktop's opener, detached; false when there is none. */
function openInBrowser(file: string): string | undefined {
  const opener = process.platform === 'darwin' ? onPath('open') : onPath('xdg-open');
  if (opener === undefined) return undefined;
  const child = spawn(opener, [file], { detached: true, stdio: 'ignore' });
  child.on('error', () => undefined);
  child.unref();
  return path.basename(opener);
}

/** Runs the command; the exit code. Usage errors are thrown as UsageError. */
export async function runReport(argv: readonly string[], out: (line: string) => void, err: (line: string) => void): Promise<number> {
  const args = parseReportArgs(argv);
  if (args === 'help') {
    out(reportUsage.trimEnd());
    return exitCodes.ok;
  }
  try {
    const kubeConfig = loadKubeConfig(args.kubeconfig);
    const namespace = args.namespace ?? kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace ?? 'default';
    const id = `${namespace}/${args.run}`;
    const run = await readRun(kubeConfig, namespace, args.run);
    const { ref, number } = pickReport(id, run.status, args.runNumber);
    const target = path.resolve(args.output ?? `${args.run}-report${number === undefined ? '' : `-${number}`}`);
    if (existsSync(target) && (!statSync(target).isDirectory() || readdirSync(target).length > 0)) {
      throw new NotFetched(`${target} exists and is not an empty folder; choose another with --output`);
    }
    const which = `RobustnessRun ${id}${number === undefined ? '' : ` run ${number}`}`;
    if (ref.kind === 'volume') {
      out(`${which}: the report is on the operator's report volume at ${ref.name}`);
      try {
        accessSync(path.join(ref.name, 'index.json'), constants.R_OK);
      } catch {
        throw new NotFetched(`${ref.name} is not readable here: copy that folder from where the volume is mounted (its index.json lists the gzip-compressed files)`);
      }
      // The layout is <root>/<namespace>/<run>/<n>: the root is three levels up.
      await new VolumeReportStore({ root: path.resolve(ref.name, '..', '..', '..') }).fetch(namespace, ref, target);
    } else {
      await new ConfigMapReportStore({ kubeConfig }).fetch(namespace, ref, target);
    }
    out(`${which}: fetched the ${ref.kind === 'volume' ? 'report folder' : `ConfigMap ${namespace}/${ref.name}`} (${ref.size} bytes compressed) into ${target}`);
    const verdictFile = path.join(target, 'verdict.json');
    const htmlFile = path.join(target, 'report.html');
    const historyDir = path.join(target, 'history');
    out(`verdict.json: ${verdictFile}`);
    out(existsSync(htmlFile) ? `report.html: ${htmlFile}` : 'report.html: not stored (it did not fit in the ConfigMap)');
    if (existsSync(historyDir)) {
      out(`history: ${historyDir} (${readdirSync(historyDir).length} segments; re-check with: etcd-robustness check ${historyDir})`);
    } else {
      out(ref.truncated ? 'history: not stored (it did not fit in the ConfigMap; the ConfigMap annotation etcd.robustness.io/report-truncated says more)' : 'history: none recorded');
    }
    out(verdictLine(verdictFile));
    if (args.open) {
      if (!existsSync(htmlFile)) out('--open: there is no report.html to open');
      else {
        const opener = openInBrowser(htmlFile);
        out(opener === undefined ? `open ${htmlFile} in a browser (no xdg-open here)` : `opening ${htmlFile} with ${opener}`);
      }
    }
    return exitCodes.ok;
  } catch (error) {
    if (!(error instanceof NotFetched || error instanceof ReportStoreError)) throw error;
    err(`etcd-robustness: report: ${error.message}`);
    return 1;
  }
}

