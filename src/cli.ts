#!/usr/bin/env node
import { exitCodes, runCheck } from './commands/check.ts';
import { UsageError } from './commands/usage.ts';
import { packageVersion } from './version.ts';

const usage = `etcd-robustness ${packageVersion}: prove an etcd cluster correct under faults.

Usage:
  etcd-robustness <command> [options]

Commands:
  run --local [FILE]
                Start a local etcd cluster (real processes on 127.0.0.1), drive the
                traffic of the RobustnessRun in FILE (default: etcd profile, 60s),
                check every operation live, serve /metrics and write a report
                (see etcd-robustness run --help).
  check PATH... Re-check recorded histories (files or history folders) offline:
                linearizability and watch guarantees, one line per path
                (--json, --report DIR, --timeout).
  operator      Run the Kubernetes operator: reconciles EtcdCluster and RobustnessRun
                resources, with leader election (see etcd-robustness operator --help).
  dev           Start a local kube-apiserver, install the CRDs and run the operator
                against it with local etcd members; prints the KUBECONFIG for kubectl.
                --runtime=kubernetes: a real single-node cluster with the images of
                npm run build:images, for helm install and the samples.
  report RUN    Fetch the stored report of a RobustnessRun into a folder and print
                its verdict (--namespace, --run-number, --output, --open;
                see etcd-robustness report --help).
  runner --run NAMESPACE/NAME --run-number N
                Drive one run of a RobustnessRun in a runner Pod (the operator starts
                it as a Job; see etcd-robustness runner --help).
  agent --member NAME --data-dir DIR --listen HOST:PORT --token-file FILE
                Run the fault agent beside an etcd member: an authenticated HTTP
                API that kills, pauses, sets failpoints, shapes peer traffic and
                fills the disk, healing each fault at its TTL
                (see etcd-robustness agent --help).
  witness --data-dir DIR [--port N] [--bind-address ADDRESS]
                Run the HTTP witness of two-node etcd clusters: one record written
                with compare-and-swap, fsynced before a write is answered
                (see etcd-robustness witness --help).

Options:
  -h, --help     Show this help.
  -v, --version  Print the version.
`;

const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};
const err = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

/**
 * The commands: each module is loaded on demand (the etcd client, the gRPC stack, the Kubernetes client and
 * the HTTP servers are not needed by the others, nor by --help). `prefix` goes before a usage error's
 * message for commands whose messages do not name the command themselves.
 */
const commands: Record<string, { prefix: string; run: (argv: string[]) => Promise<number> }> = {
  run: {
    prefix: '',
    run: async (argv) => {
      const { runLocal, ManifestError } = await import('./commands/run.ts');
      // A manifest that does not validate is the command line's fault too (exit 64).
      return runLocal(argv, out).catch((error: unknown) => {
        throw error instanceof ManifestError ? new UsageError(error.message, { cause: error }) : error;
      });
    },
  },
  check: { prefix: '', run: async (argv) => Promise.resolve(runCheck(argv, out, err)) },
  agent: { prefix: 'agent: ', run: async (argv) => (await import('./commands/agent.ts')).runAgent(argv, out) },
  witness: { prefix: 'witness: ', run: async (argv) => (await import('./commands/witness.ts')).runWitness(argv, out) },
  report: { prefix: 'report: ', run: async (argv) => (await import('./commands/report.ts')).runReport(argv, out, err) },
  operator: { prefix: 'operator: ', run: async (argv) => (await import('./commands/operator.ts')).runOperator(argv, out) },
  runner: { prefix: 'runner: ', run: async (argv) => (await import('./commands/runner.ts')).runRunner(argv, out) },
  dev: { prefix: 'dev: ', run: async (argv) => (await import('./commands/operator.ts')).runDev(argv, out) },
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(usage);
      return command === undefined ? 2 : 0;
    case '-v':
    case '--version':
      process.stdout.write(`${packageVersion}\n`);
      return 0;
  }
  const entry = commands[command];
  if (entry === undefined) {
    process.stderr.write(`etcd-robustness: unknown command "${command}" (see etcd-robustness --help)\n`);
    return 2;
  }
  try {
    return await entry.run(rest);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`etcd-robustness: ${entry.prefix}${error.message}\n`);
    return exitCodes.usage;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const err = error instanceof Error ? error : new Error(String(error));
    const usage = String((err as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS');
    // Errors carry their context in the message; the stack is for debugging this program itself.
    const detail = process.env['LOG_LEVEL'] === 'debug' ? (err.stack ?? err.message) : err.message;
    process.stderr.write(`etcd-robustness: ${detail}\n`);
    process.exitCode = usage ? 2 : 1;
  },
);
