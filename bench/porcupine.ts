/**
 * Builds and runs bench/porcupine (porcupine, the reference linearizability checker, over our JSON
 * Lines register histories). Needs Go: the machine's own toolchain (GOTOOLCHAIN=local).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const benchDir = path.dirname(new URL(import.meta.url).pathname);
export const porcupineModuleDir = path.join(benchDir, 'porcupine');
export const porcupineBinary = path.join(benchDir, '.bin', 'porcupine-check');

export type PorcupineResult = 'ok' | 'illegal' | 'unknown';

export interface PorcupineLine {
  file: string;
  result: PorcupineResult;
  ns: number;
  rep?: number;
}

const goEnv = (): NodeJS.ProcessEnv => ({ ...process.env, GOTOOLCHAIN: 'local' });

/** The go command's version, or an error that says Go is required. */
export function goVersion(): string {
  try {
    return execFileSync('go', ['env', 'GOVERSION'], { env: goEnv(), encoding: 'utf8' }).trim();
  } catch (error) {
    throw new Error(`Go (1.26 or newer) is required to build the porcupine side of the benchmark: ${(error as Error).message}`, { cause: error });
  }
}

/** The porcupine version bench/porcupine/go.mod requires. */
export function porcupineVersion(): string {
  const goMod = readFileSync(path.join(porcupineModuleDir, 'go.mod'), 'utf8');
  const match = /github\.com\/anishathalye\/porcupine (v\S+)/.exec(goMod);
  if (!match) throw new Error('bench/porcupine/go.mod does not require github.com/anishathalye/porcupine');
  return match[1]!;
}

/** Builds bench/.bin/porcupine-check (Go's build cache makes a rebuild fast); returns its path. */
export function buildPorcupine(): string {
  goVersion();
  mkdirSync(path.dirname(porcupineBinary), { recursive: true });
  execFileSync('go', ['build', '-o', porcupineBinary, '.'], { cwd: porcupineModuleDir, env: goEnv(), stdio: ['ignore', 'inherit', 'inherit'] });
  return porcupineBinary;
}

export interface RunPorcupineOptions {
  /** Check every file this many times (default 1). */
  reps?: number;
  /** Per-history timeout, a Go duration such as "60s" (default: none). */
  timeout?: string;
}

/** Runs the built binary over the files; returns its lines in order. */
export function runPorcupine(files: string[], options: RunPorcupineOptions = {}): PorcupineLine[] {
  const args = ['-reps', String(options.reps ?? 1), ...(options.timeout ? ['-timeout', options.timeout] : []), ...files];
  const out = execFileSync(porcupineBinary, args, { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'inherit'] });
  return out
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as PorcupineLine);
}
