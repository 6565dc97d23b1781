/**
 * `etcd-robustness witness`: the HTTP witness of two-node clusters (src/witness/). Serves the record in
 * DIR/witness.json until SIGTERM or SIGINT (or, with --exit-with-parent, until the process that started
 * it is gone), then exits 0. Its first line on stdout is `witness listening on http://HOST:PORT`.
 */
import { parseArgs } from 'node:util';
import { logger } from '../log.ts';
import { WitnessFileStore } from '../witness/file-store.ts';
import { WitnessServer } from '../witness/server.ts';
import { untilStopped } from './until-stopped.ts';
import { UsageError } from './usage.ts';

export const witnessUsage = `Usage: etcd-robustness witness --data-dir DIR [--port N] [--bind-address ADDRESS]

Runs the HTTP witness of two-node-plus-witness etcd clusters: one record, written with
compare-and-swap (GET /record, PUT /record, GET /healthz), fsynced to DIR/witness.json before a
write is answered. A corrupt witness.json stops it with an error naming the file; it is never
overwritten.

Options:
  --data-dir DIR            Where the record is kept (created if missing).
  --port N                  The port to listen on (default 0: any free port).
  --bind-address ADDRESS    The address to listen on (default 127.0.0.1).
  --exit-with-parent        Exit when the process that started the witness is gone.
  -h, --help                Show this help.

The first line printed is "witness listening on http://ADDRESS:PORT".
`;

export interface WitnessCommand {
  help: boolean;
  dataDir: string;
  host: string;
  port: number;
  exitWithParent: boolean;
}

export function parseWitnessArgs(argv: readonly string[]): WitnessCommand {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      'data-dir': { type: 'string' },
      port: { type: 'string' },
      'bind-address': { type: 'string' },
      'exit-with-parent': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return { help: true, dataDir: '', host: '', port: 0, exitWithParent: false };
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]!}"`);
  const dataDir = values['data-dir'];
  if (dataDir === undefined || dataDir === '') throw new UsageError('--data-dir is required');
  const portText = values.port ?? '0';
  const port = Number(portText);
  if (!/^\d{1,5}$/.test(portText) || port > 65535) throw new UsageError(`--port: "${portText}" is not a port number (0 to 65535)`);
  const host = values['bind-address'] ?? '127.0.0.1';
  if (host === '') throw new UsageError('--bind-address: must not be empty');
  return { help: false, dataDir, host, port, exitWithParent: values['exit-with-parent'] ?? false };
}

/** Runs the witness until a stop signal; the exit code. A corrupt data file rejects (WitnessFileError). */
export async function runWitness(argv: readonly string[], out: (line: string) => void): Promise<number> {
  const command = parseWitnessArgs(argv);
  if (command.help) {
    out(witnessUsage.trimEnd());
    return 0;
  }
  const store = await WitnessFileStore.open(command.dataDir);
  let server: WitnessServer;
  try {
    server = await WitnessServer.start({ store, host: command.host, port: command.port });
  } catch (error) {
    await store.close();
    throw error;
  }
  out(`witness listening on ${server.url}`);
  const { version, record } = store.snapshot();
  logger.info('witness: serving', { file: store.file, version: version === '' ? 'none' : version, epoch: record?.epoch ?? 0 });

  const why = await untilStopped(command.exitWithParent);
  logger.info(`witness: ${why}: exiting`);
  await server.close();
  out('witness stopped');
  return 0;
}
