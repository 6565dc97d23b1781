/**
 * The history format's serializers: one line each (without the newline), exactly as serializeHistory
 * writes them, and serializeHistory itself. Separate from parsing: the probes' segment writer
 * (src/probes/history-writer.ts) streams lines as they happen and must produce the same text.
 */
import type { FaultEvent, History, HistoryMeta, Invocation, Operation, WatchResponse, WatchStream } from '../domain/index.ts';

export function serializeMetaLine(meta: HistoryMeta): string {
  return JSON.stringify(meta);
}

export function serializeOperationLine(op: Operation): string {
  return JSON.stringify(op);
}

/** The line written when an operation is sent; the operation line (same client and call) completes it. */
export function serializeInvokeLine(invocation: Invocation): string {
  const { kind, client, call, request, member } = invocation;
  // Written for every operation sent: the text JSON.stringify makes of { kind, client, call, request, member },
  // without building that object (JSON writes a finite number as String() does).
  if (!Number.isFinite(client) || !Number.isFinite(call)) {
    return JSON.stringify(member === undefined ? { kind, client, call, request } : { kind, client, call, request, member });
  }
  const head = `{"kind":"${kind}","client":${client},"call":${call},"request":${JSON.stringify(request)}`;
  return member === undefined ? `${head}}` : `${head},"member":${JSON.stringify(member)}}`;
}

/** The line that opens a stream: everything but its responses, which get a line each. */
export function serializeWatchOpenLine(stream: WatchStream): string {
  const { responses, ...head } = stream;
  return JSON.stringify({ kind: 'watch', ...head });
}

export function serializeWatchResponseLine(id: number, response: WatchResponse): string {
  // The text JSON.stringify({ kind: 'watch', id, response }) makes, without building that object (a line
  // per response of every watch stream): JSON writes an integer as String() does.
  if (!Number.isSafeInteger(id)) return JSON.stringify({ kind: 'watch', id, response });
  return `{"kind":"watch","id":${id},"response":${JSON.stringify(response)}}`;
}

/** `kind` first, like the other lines, whatever order the event's fields were set in. */
export function serializeFaultLine(event: FaultEvent): string {
  const { kind, ...rest } = event;
  return JSON.stringify({ kind, ...rest });
}

/** The history as JSON Lines (the inverse of parseHistory). */
export function serializeHistory(history: History): string {
  const lines: string[] = [];
  if (history.meta) lines.push(serializeMetaLine(history.meta));
  for (const op of history.operations) lines.push(serializeOperationLine(op));
  for (const w of history.watches) {
    lines.push(serializeWatchOpenLine(w));
    for (const response of w.responses) lines.push(serializeWatchResponseLine(w.id, response));
  }
  for (const event of history.faults ?? []) lines.push(serializeFaultLine(event));
  return `${lines.join('\n')}\n`;
}
