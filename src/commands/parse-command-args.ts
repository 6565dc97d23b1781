/** The flags and operands of one command line, its parse errors turned into usage errors. */
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { UsageError } from './usage.ts';

/**
 * parseArgs with operands allowed; an unknown flag or a missing value is a UsageError prefixed with
 * `command` ("check: Unknown option '--x'"), so that it exits 64 without a stack trace.
 */
export function parseCommandArgs<const T extends ParseArgsOptionsConfig>(command: string, argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, options });
  } catch (error) {
    throw new UsageError(`${command}: ${(error as Error).message}`);
  }
}
