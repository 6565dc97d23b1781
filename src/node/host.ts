/** Running the machine's own tools (ip, nft, iptables, openssl, ctr, mount) for the test node. */
import { execFile } from 'node:child_process';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; never throws for a non-zero exit (only when it cannot be run at all). */
export function run(command: string, args: readonly string[], options: { stdin?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      command,
      args,
      { timeout: options.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024, env: options.env ?? process.env },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          // A timeout kills the child: report it as a failed command with what it printed.
          if (error.killed) {
            resolve({ code: -1, stdout, stderr: `${stderr}\n${command} timed out` });
            return;
          }
          reject(new Error(`${command} could not run: ${error.message}`));
          return;
        }
        resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
      },
    );
    if (options.stdin !== undefined) child.stdin?.end(options.stdin);
  });
}

class HostCommandError extends Error {
  override name = 'HostCommandError';
}

/** Runs a command that must succeed; the error names it with its arguments and stderr. */
export async function runOk(command: string, args: readonly string[], options: { stdin?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    throw new HostCommandError(`${command} ${args.join(' ')} failed (exit ${result.code}): ${result.stderr.trim() || result.stdout.trim()}`);
  }
  return result.stdout;
}
