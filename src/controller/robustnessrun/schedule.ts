/**
 * When a RobustnessRun's next run starts (pure). once: one run, ever. cron: at each time of the
 * expression after the last start (missed times are not caught up: one run, then the next time). 
 * continuous: the next run starts when the previous one ended. A suspended schedule starts nothing.
 */
import { Cron } from 'croner';
import type { RobustnessRunStatus, ScheduleSpec } from '../../domain/index.ts';

export interface ScheduleDecision {
  /** A run should start now. */
  due: boolean;
  /** When the next run is due (absent: never, or now). */
  next?: Date;
}

export function nextCronTime(expression: string, after: Date): Date | undefined {
  return new Cron(expression, { paused: true, timezone: 'UTC' }).nextRun(after) ?? undefined;
}

export function scheduleDecision(schedule: ScheduleSpec, status: RobustnessRunStatus | undefined, createdAt: Date, now: Date): ScheduleDecision {
  const runs = status?.runNumber ?? 0;
  if (schedule.suspend) return { due: false };
  switch (schedule.kind) {
    case 'once':
      return { due: runs === 0 };
    case 'continuous':
      return { due: true };
    case 'cron': {
      const lastStart = status?.startTime ? new Date(status.startTime) : createdAt;
      const next = nextCronTime(schedule.cron ?? '', runs === 0 ? createdAt : lastStart);
      if (next === undefined) return { due: false };
      return next.getTime() <= now.getTime() ? { due: true } : { due: false, next };
    }
  }
}
