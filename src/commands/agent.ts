/**
 * `etcd-robustness agent`: the fault agent beside one etcd member (src/faults/agent.ts). Runs until
 * SIGTERM or SIGINT (or, with --exit-with-parent, until the process that started it is gone), then
 * heals every fault it holds and exits 0.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DurationFormatError, parseDuration } from '../duration.ts';
import { defaultMaxTtlMs, FaultAgent, type FaultAgentOptions, type HostPort } from '../faults/agent.ts';
import { commitSurvivorLog } from '../local/wal-commit.ts';
import { logger } from '../log.ts';
import { isLoopback } from '../loopback.ts';
import { untilStopped } from './until-stopped.ts';
import { UsageError } from './usage.ts';

export const agentUsage = `Usage: etcd-robustness agent --member NAME --data-dir DIR --listen HOST:PORT --token-file FILE [options]

Runs the fault agent beside one etcd member: an HTTPS API (bearer token) that kills or pauses the
member's etcd process, sets gofail failpoints, applies peer network rules in a proxy and fills its
disk. Every fault but kill has a TTL after which the agent heals it by itself. For a two-node-plus-
witness failover it brings its member back alone (etcd-wal-commit, then --force-new-cluster through
tools/etcd-launcher).

Options:
  --member NAME             The member's name.
  --data-dir DIR            The member's etcd data dir (finds its process in /proc).
  --listen HOST:PORT        Where the API listens. Without TLS only a loopback address is allowed.
  --token-file FILE         File holding the bearer token.
  --tls-cert-file FILE      Serve HTTPS with this certificate (PEM)...
  --tls-key-file FILE       ...and its private key.
  --gofail-url URL          The member's gofail HTTP API (for failpoint faults).
  --peer-listen HOST:PORT   Run the peer proxy here (the member's advertised peer address)...
  --peer-target HOST:PORT   ...forwarding to where etcd listens for peers.
  --max-ttl DURATION        The longest TTL a fault may ask for (default 10m).
  --exit-with-parent        Heal and exit when the process that started the agent is gone.
  -h, --help                Show this help.
`;

export function parseHostPort(text: string, flag: string): HostPort {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (!match || port > 65535) throw new UsageError(`${flag}: "${text}" is not HOST:PORT`);
  const host = match[1] ?? match[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port };
}

export interface AgentCommand {
  help: boolean;
  options: FaultAgentOptions;
  exitWithParent: boolean;
}

/** Parses the agent's flags and reads its token file. */
export function parseAgentArgs(argv: readonly string[]): AgentCommand {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      member: { type: 'string' },
      'data-dir': { type: 'string' },
      listen: { type: 'string' },
      'token-file': { type: 'string' },
      'tls-cert-file': { type: 'string' },
      'tls-key-file': { type: 'string' },
      'gofail-url': { type: 'string' },
      'peer-listen': { type: 'string' },
      'peer-target': { type: 'string' },
      'max-ttl': { type: 'string' },
      'exit-with-parent': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const placeholder: FaultAgentOptions = { member: '', dataDir: '', listen: { host: '', port: 0 }, token: '' };
  if (values.help) return { help: true, options: placeholder, exitWithParent: false };
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]!}"`);
  const required = (flag: 'member' | 'data-dir' | 'listen' | 'token-file'): string => {
    const value = values[flag];
    if (value === undefined || value === '') throw new UsageError(`--${flag} is required`);
    return value;
  };
  const member = required('member');
  const dataDir = required('data-dir');
  const listen = parseHostPort(required('listen'), '--listen');
  const tokenFile = required('token-file');
  let token: string;
  try {
    token = readFileSync(tokenFile, 'utf8').trim();
  } catch (error) {
    throw new UsageError(`--token-file: cannot read ${tokenFile}: ${(error as Error).message}`);
  }
  if (token === '') throw new UsageError(`--token-file: ${tokenFile} is empty`);
  let maxTtlMs = defaultMaxTtlMs;
  if (values['max-ttl'] !== undefined) {
    try {
      maxTtlMs = parseDuration(values['max-ttl']);
    } catch (error) {
      if (error instanceof DurationFormatError) throw new UsageError(`--max-ttl: ${error.message}`);
      throw error;
    }
    if (maxTtlMs <= 0) throw new UsageError('--max-ttl: must be more than 0');
  }
  // etcd-wal-commit is found when a recovery asks for it (binaries.json, else the image's copy), so an
  // agent without it still serves faults and answers a recovery with the binary's absence.
  const options: FaultAgentOptions = { member, dataDir, listen, token, maxTtlMs, commitLog: (dir) => commitSurvivorLog(dir) };
  const certFile = values['tls-cert-file'];
  const keyFile = values['tls-key-file'];
  if ((certFile === undefined) !== (keyFile === undefined)) throw new UsageError('--tls-cert-file and --tls-key-file go together');
  if (certFile !== undefined && keyFile !== undefined) options.tls = { cert: readPem(certFile, '--tls-cert-file'), key: readPem(keyFile, '--tls-key-file') };
  if (options.tls === undefined && !isLoopback(listen.host)) {
    throw new UsageError(`--listen: ${listen.host}:${listen.port} is not a loopback address: the bearer token would cross the network in clear; give --tls-cert-file and --tls-key-file, or listen on 127.0.0.1`);
  }
  const gofailUrl = values['gofail-url'];
  if (gofailUrl !== undefined) {
    if (!/^https?:\/\/./.test(gofailUrl)) throw new UsageError(`--gofail-url: "${gofailUrl}" is not an http:// URL`);
    options.gofailUrl = gofailUrl;
  }
  const peerListen = values['peer-listen'];
  const peerTarget = values['peer-target'];
  if ((peerListen === undefined) !== (peerTarget === undefined)) throw new UsageError('--peer-listen and --peer-target go together');
  if (peerListen !== undefined && peerTarget !== undefined) {
    options.peerProxy = { listen: parseHostPort(peerListen, '--peer-listen'), target: parseHostPort(peerTarget, '--peer-target') };
  }
  return { help: false, options, exitWithParent: values['exit-with-parent'] ?? false };
}

function readPem(file: string, flag: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`${flag}: cannot read ${file}: ${(error as Error).message}`);
  }
}

/** Runs the agent until a stop signal; the exit code. */
export async function runAgent(argv: readonly string[], out: (line: string) => void): Promise<number> {
  const command = parseAgentArgs(argv);
  if (command.help) {
    out(agentUsage.trimEnd());
    return 0;
  }
  const agent = await FaultAgent.start(command.options);
  out(`agent for ${agent.member} listening on ${agent.url} (etcd pid ${agent.etcdPid() ?? 'not found yet'})`);

  const why = await untilStopped(command.exitWithParent);
  logger.info(`agent ${agent.member}: ${why}: healing every fault and exiting`);
  const healed = await agent.close();
  out(`agent for ${agent.member} stopped (${healed.length} fault${healed.length === 1 ? '' : 's'} healed)`);
  return 0;
}
