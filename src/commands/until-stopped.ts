/**
 * How the long-running commands (agent, witness) wait to be stopped: a stop signal, or, with
 * --exit-with-parent, the process that started them being gone.
 */

/** Resolves with why the command stops: the signal's name or `parent process N is gone`. */
export function untilStopped(exitWithParent: boolean): Promise<string> {
  const parentAtStart = process.ppid;
  return new Promise((resolve) => {
    const stop = (why: string): void => {
      clearInterval(watch);
      resolve(why);
    };
    // The parent's death shows as a new ppid (the orphan is handed to init or a subreaper).
    const watch = exitWithParent
      ? setInterval(() => {
          if (process.ppid !== parentAtStart) stop(`parent process ${parentAtStart} is gone`);
        }, 250)
      : undefined;
    // `on`, not `once`: the parent-death signal can come more than once (the kernel sends it again each
    // time a thread of the dying parent exits after the child was handed to it), and a second SIGTERM
    // with no handler would kill the command in the middle of its clean-up.
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => stop(signal));
  });
}
