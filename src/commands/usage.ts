/** A command line that cannot be run: printed without a stack trace, exit code 64 (exitCodes.usage). */
export class UsageError extends Error {
  override name = 'UsageError';
}
