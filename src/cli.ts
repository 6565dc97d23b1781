#!/usr/bin/env node
import { CheckUsageError, exitCodes, runCheck } from './commands/check.ts';
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

/** Raised for a command line that cannot be run; printed without a stack trace. */
class UsageError extends Error {
  override name = 'UsageError';
}

async function runCommand(argv: string[]): Promise<number> {
  // Loaded on demand: the etcd client and gRPC stack are not needed by check, --help or --version.
  const { runLocal, RunUsageError, ManifestError } = await import('./commands/run.ts');
  try {
    return await runLocal(argv, (line) => process.stdout.write(`${line}\n`));
  } catch (error) {
    if (!(error instanceof RunUsageError || error instanceof ManifestError)) throw error;
    process.stderr.write(`etcd-robustness: ${error.message}\n`);
    return exitCodes.usage;
  }
}

async function agentCommand(argv: string[]): Promise<number> {
  // Loaded on demand, like run: the agent's HTTP server and proxy are not needed by the other commands.
  const { runAgent, AgentUsageError } = await import('./commands/agent.ts');
  try {
    return await runAgent(argv, (line) => process.stdout.write(`${line}\n`));
  } catch (error) {
    if (!(error instanceof AgentUsageError)) throw error;
    process.stderr.write(`etcd-robustness: agent: ${error.message}\n`);
    return exitCodes.usage;
  }
}

async function witnessCommand(argv: string[]): Promise<number> {
  // Loaded on demand, like agent: the witness's HTTP server and file store are not needed by the other commands.
  const { runWitness, WitnessUsageError } = await import('./commands/witness.ts');
  try {
    return await runWitness(argv, (line) => process.stdout.write(`${line}\n`));
  } catch (error) {
    if (!(error instanceof WitnessUsageError)) throw error;
    process.stderr.write(`etcd-robustness: witness: ${error.message}\n`);
    return exitCodes.usage;
  }
}

async function reportCommand(argv: string[]): Promise<number> {
  // Loaded on demand: the Kubernetes client is not needed by the other commands.
  const { runReport, ReportUsageError } = await import('./commands/report.ts');
  try {
    return await runReport(argv, (line) => process.stdout.write(`${line}\n`), (line) => process.stderr.write(`${line}\n`));
  } catch (error) {
    if (!(error instanceof ReportUsageError)) throw error;
    process.stderr.write(`etcd-robustness: report: ${error.message}\n`);
    return exitCodes.usage;
  }
}

async function operatorCommand(command: 'operator' | 'dev', argv: string[]): Promise<number> {
  // Loaded on demand: the controllers and the Kubernetes client are not needed by the other commands.
  const { runOperator, runDev, OperatorUsageError } = await import('./commands/operator.ts');
  const out = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  try {
    return await (command === 'operator' ? runOperator(argv, out) : runDev(argv, out));
  } catch (error) {
    if (!(error instanceof OperatorUsageError)) throw error;
    process.stderr.write(`etcd-robustness: ${command}: ${error.message}\n`);
    return exitCodes.usage;
  }
}

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
    case 'run':
      return runCommand(rest);
    case 'check':
      try {
        return runCheck(
          rest,
          (line) => process.stdout.write(`${line}\n`),
          (line) => process.stderr.write(`${line}\n`),
        );
      } catch (error) {
        if (!(error instanceof CheckUsageError)) throw error;
        process.stderr.write(`etcd-robustness: ${error.message}\n`);
        return exitCodes.usage;
      }
    case 'agent':
      return agentCommand(rest);
    case 'witness':
      return witnessCommand(rest);
    case 'report':
      return reportCommand(rest);
    case 'operator':
    case 'dev':
      return operatorCommand(command, rest);
    default:
      throw new UsageError(`unknown command "${command}" (see etcd-robustness --help)`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const err = error instanceof Error ? error : new Error(String(error));
    const usage = err instanceof UsageError || String((err as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS');
    // Errors carry their context in the message; the stack is for debugging this program itself.
    const detail = process.env['LOG_LEVEL'] === 'debug' ? (err.stack ?? err.message) : err.message;
    process.stderr.write(`etcd-robustness: ${detail}\n`);
    process.exitCode = usage ? 2 : 1;
  },
);
