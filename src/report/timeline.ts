import type { CheckReport } from '../checker/index.ts';
import type { FaultEvent, FaultName, History, Operation } from '../domain/index.ts';
// The catalog alone (pure data), not the faults folder's executor and clients.
import { faultDefinition } from '../faults/catalog.ts';
import { formatNumber } from './labels.ts';

// What the timeline draws: the window of operations, the client lanes and the fault spans. Pure.

/** Beyond this the timeline shows a window (around the violation) so the page stays responsive. */
export const MAX_TIMELINE_OPERATIONS = 5000;

export interface TimelineView {
  /** Operation indices drawn, by call time. */
  indices: number[];
  /** The history's first call: times shown are relative to it, whatever the window. */
  origin: number;
  start: number;
  end: number;
  /** Set when only part of the history is drawn. */
  note?: string;
}

export function focusOperation(report: CheckReport): number | undefined {
  const lin = report.linearizability;
  return lin.violation?.unplaceable[0] ?? lin.staleReadViolations?.[0]?.operation;
}

export function timelineView(history: History, report: CheckReport, max = MAX_TIMELINE_OPERATIONS): TimelineView {
  const ops = history.operations;
  const byCall = ops.map((_, i) => i).sort((a, b) => ops[a]!.call - ops[b]!.call || a - b);
  let indices = byCall;
  let note: string | undefined;
  if (byCall.length > max) {
    const focus = focusOperation(report);
    const position = focus === undefined ? -1 : byCall.indexOf(focus);
    const from = position < 0 ? 0 : Math.max(0, Math.min(position - Math.floor(max / 2), byCall.length - max));
    const window = new Set(byCall.slice(from, from + max));
    // Every unplaceable operation belongs in the picture, even one that started long before.
    for (const i of report.linearizability.violation?.unplaceable ?? []) if (i < ops.length) window.add(i);
    indices = byCall.filter((i) => window.has(i));
    const what = position < 0 ? `the first ${formatNumber(max)} by call time` : `${formatNumber(indices.length)} around the violation`;
    note = `The history has ${formatNumber(ops.length)} operations; the timeline shows ${what} (operations that started from the ${ordinal(from + 1)} to the ${ordinal(from + max)}).`;
  }
  let start = Infinity;
  let end = -Infinity;
  for (const i of indices) {
    const op = ops[i]!;
    start = Math.min(start, op.call);
    end = Math.max(end, op.return ?? op.call);
  }
  if (!Number.isFinite(start)) return { indices, origin: 0, start: 0, end: 1, note };
  const origin = ops[byCall[0]!]!.call;
  // Leave room after the last return so unknown-outcome bars visibly run past everything else.
  const pending = indices.some((i) => ops[i]!.return === null);
  const span = Math.max(end - start, 1);
  return { indices, origin, start, end: pending ? end + span * 0.04 : Math.max(end, start + 1), note };
}

function ordinal(n: number): string {
  const suffix = n % 100 >= 11 && n % 100 <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th');
  return `${formatNumber(n)}${suffix}`;
}

/** Places one client's bars in rows so overlapping ones (an unknown outcome runs to the end) stay visible. */
export function packRows(ops: Operation[], indices: number[], end: number): Map<number, number> {
  const rowEnds: number[] = [];
  const rows = new Map<number, number>();
  for (const i of indices) {
    const op = ops[i]!;
    let row = rowEnds.findIndex((rowEnd) => rowEnd <= op.call);
    if (row < 0) row = rowEnds.push(0) - 1;
    rowEnds[row] = op.return ?? end;
    rows.set(i, row);
  }
  return rows;
}

/**
 * The timeline's lanes: one per client with an operation drawn, by client id, each with its drawn
 * operations in call order. A client gets no lane for operations outside the window: every unknown
 * outcome retires a client id, so a long history has many ids and only a few are active at any time.
 */
export function timelineLanes(ops: readonly Operation[], indices: readonly number[]): [client: number, indices: number[]][] {
  const byClient = new Map<number, number[]>();
  for (const i of indices) {
    const op = ops[i];
    if (op === undefined) continue;
    const lane = byClient.get(op.client);
    if (lane === undefined) byClient.set(op.client, [i]);
    else lane.push(i);
  }
  return [...byClient.entries()].sort(([a], [b]) => a - b);
}

// Faults: one band per injection, from its inject line to its heal (or failure), in a lane of its own

export interface FaultSpan {
  id: number;
  fault: FaultName;
  targets: string[];
  params: Record<string, number | string> | undefined;
  start: number;
  /** When it was healed or failed; undefined for an instantaneous fault, or one never healed (drawn to the end). */
  end: number | undefined;
  instantaneous: boolean;
  failed: boolean;
  /** Each phase after the first, with its time and detail, for the tooltip. */
  lines: FaultEvent[];
}

/** Groups fault lines by injection id, in order of their first line. */
export function faultSpans(events: readonly FaultEvent[]): FaultSpan[] {
  const byId = new Map<number, FaultEvent[]>();
  for (const event of events) {
    const lines = byId.get(event.id);
    if (lines === undefined) byId.set(event.id, [event]);
    else lines.push(event);
  }
  return [...byId.entries()].map(([id, lines]) => {
    const first = lines.find((l) => l.phase === 'inject') ?? lines[0]!;
    const closing = lines.filter((l) => l.phase === 'heal' || l.phase === 'failed').map((l) => l.time);
    const targets = [...new Set(lines.flatMap((l) => l.targets))];
    return {
      id,
      fault: first.fault,
      targets,
      params: lines.find((l) => l.params !== undefined)?.params,
      start: Math.min(...lines.map((l) => l.time)),
      end: closing.length === 0 ? undefined : Math.max(...closing),
      instantaneous: faultDefinition(first.fault).instantaneous,
      failed: lines.some((l) => l.phase === 'failed'),
      lines: [...lines].sort((a, b) => a.time - b.time),
    };
  });
}
