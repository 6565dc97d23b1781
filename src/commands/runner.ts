/**
 * `etcd-robustness runner`: the command of a runner Pod, which the operator starts as a Job for each run
 * of a RobustnessRun (src/controller/robustnessrun/runner-jobs.ts); the work is
 * src/controller/robustnessrun/runner.ts.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { parseDuration } from '../duration.ts';
import { logger, setLogFormat } from '../log.ts';
import { isLoopback } from '../loopback.ts';
import { runInRunnerPod } from '../controller/robustnessrun/runner.ts';
import { defaultImage, loadKubeConfig, metricsCertificate, port, stopSignals } from './operator.ts';
import { UsageError } from './usage.ts';

export const runnerUsage = `Usage: etcd-robustness runner --run NAMESPACE/NAME --run-number N [options]

Drives one run of a RobustnessRun inside a runner Pod: traffic, live checks and faults against its
EtcdCluster, status, Events and the stored report, as the operator marked it. The operator starts it as
a Job; it is not meant to be started by hand. Exits 0 when the run was driven or was not this Pod's to
drive (already ended, another run number), 1 when it could not start.

Options:
  --run NAMESPACE/NAME     the RobustnessRun
  --run-number N           the run the operator marked Running
  --job NAME               the runner Job: the run is driven only while its status names it
  --agent-image IMAGE      image of the fault agent sidecar of members a fault recreates
  --kubeconfig FILE        (default: in-cluster, then KUBECONFIG, then ~/.kube/config)
  --bind-address HOST      address of /metrics and /healthz (default 127.0.0.1; HTTPS with
                           TokenReview and SubjectAccessReview on any other address)
  --metrics-port PORT      (default 8443; 0: any free port)
  --health-port PORT       (default 8081; 0: any free port)
  --linger DURATION        keep /metrics up this long after the run, for a last scrape (default 0s)
  --log-format json|text   (default json)
  -h, --help
`;

export interface RunnerArgs {
  namespace: string;
  name: string;
  runNumber: number;
  /** The Job this Pod belongs to: it drives the run only while status names this Job. */
  job: string | undefined;
  agentImage: string;
  kubeconfig: string | undefined;
  bindAddress: string;
  metricsPort: number;
  healthPort: number;
  lingerMs: number;
  logFormat: 'json' | 'text';
}

export function parseRunnerArgs(argv: string[]): RunnerArgs | 'help' {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      run: { type: 'string' },
      'run-number': { type: 'string' },
      job: { type: 'string' },
      'agent-image': { type: 'string', default: process.env['OPERATOR_IMAGE'] ?? defaultImage },
      kubeconfig: { type: 'string' },
      'bind-address': { type: 'string', default: '127.0.0.1' },
      'metrics-port': { type: 'string', default: '8443' },
      'health-port': { type: 'string', default: '8081' },
      linger: { type: 'string', default: '0s' },
      'log-format': { type: 'string', default: 'json' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const run = values.run;
  if (run === undefined) throw new UsageError('--run NAMESPACE/NAME is required');
  const match = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(run);
  if (!match) throw new UsageError(`--run: "${run}" is not NAMESPACE/NAME`);
  const numberText = values['run-number'];
  if (numberText === undefined) throw new UsageError('--run-number N is required');
  const runNumber = Number(numberText);
  if (!/^[1-9][0-9]*$/.test(numberText) || !Number.isSafeInteger(runNumber)) throw new UsageError(`--run-number: "${numberText}" is not a run number (1, 2, ...)`);
  const logFormat = values['log-format'];
  if (logFormat !== 'json' && logFormat !== 'text') throw new UsageError(`--log-format: "${logFormat}" is not json or text`);
  const metricsPort = port('--metrics-port', values['metrics-port']);
  const healthPort = port('--health-port', values['health-port']);
  let lingerMs: number;
  try {
    lingerMs = parseDuration(values.linger);
  } catch (error) {
    throw new UsageError(`--linger: ${(error as Error).message}`);
  }
  if (metricsPort === healthPort && metricsPort !== 0) throw new UsageError(`--health-port: must differ from --metrics-port (${metricsPort})`);
  return {
    namespace: match[1]!,
    name: match[3]!,
    runNumber,
    job: values.job,
    agentImage: values['agent-image'],
    kubeconfig: values.kubeconfig,
    bindAddress: values['bind-address'],
    metricsPort,
    healthPort,
    lingerMs,
    logFormat,
  };
}

export async function runRunner(argv: string[], out: (line: string) => void): Promise<number> {
  const args = parseRunnerArgs(argv);
  if (args === 'help') {
    out(runnerUsage);
    return 0;
  }
  setLogFormat(args.logFormat);
  const signals = stopSignals();
  try {
    const outcome = await runInRunnerPod({
      kubeConfig: loadKubeConfig(args.kubeconfig),
      namespace: args.namespace,
      name: args.name,
      runNumber: args.runNumber,
      job: args.job,
      agentImage: args.agentImage,
      identity: process.env['POD_NAME'] ?? `${os.hostname()}-${process.pid}`,
      host: args.bindAddress,
      metricsPort: args.metricsPort,
      healthPort: args.healthPort,
      ...(isLoopback(args.bindAddress) ? {} : { tls: await metricsCertificate(undefined) }),
      stopRequested: signals.received,
      lingerMs: args.lingerMs,
    });
    if (outcome.kind === 'skipped') logger.info(`runner: nothing to drive: ${outcome.why}`);
    return 0;
  } finally {
    signals.dispose();
  }
}
