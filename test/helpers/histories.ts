// Small builders for hand-written histories in tests.
import assert from 'node:assert/strict';
import { HistoryFormatError } from '../../src/checker/history-lines.ts';
import { parseHistory } from '../../src/checker/parse.ts';
import type { EtcdRequest, EtcdResponse, History, HistoryMeta, KeyValue, Operation } from '../../src/domain/index.ts';
import { HistoryFileWriter, type HistoryFileWriterOptions } from '../../src/probes/history-writer.ts';

export const get = (key: string): EtcdRequest => ({ type: 'range', key });
export const put = (key: string, value: string, lease?: string): EtcdRequest => (lease ? { type: 'put', key, value, lease } : { type: 'put', key, value });
export const del = (key: string): EtcdRequest => ({ type: 'delete', key });

export const kvs = (entries: KeyValue[], revision?: number): EtcdResponse => (revision === undefined ? { kvs: entries } : { kvs: entries, revision });
export const rev = (revision?: number): EtcdResponse => (revision === undefined ? {} : { revision });

export function op(client: number, call: number, ret: number | null, request: EtcdRequest, response?: EtcdResponse): Operation {
  const o: Operation = { client, call, return: ret, request };
  if (response !== undefined) o.response = response;
  return o;
}

export function history(operations: Operation[], meta?: Omit<HistoryMeta, 'kind'>): History {
  return { meta: meta ? { kind: 'meta', ...meta } : undefined, operations, watches: [] };
}

/** Writes a history into `dir` as the segments a run records (meta, operations, then each stream); closed. */
export function writeSegments(dir: string, history: History, options: HistoryFileWriterOptions = {}): HistoryFileWriter {
  const writer = HistoryFileWriter.open(dir, options);
  if (history.meta) writer.writeMeta(history.meta);
  for (const op of history.operations) writer.writeOperation(op);
  for (const stream of history.watches) {
    writer.openWatch(stream);
    for (const response of stream.responses) writer.writeWatchResponse(stream.id, response);
  }
  writer.close();
  return writer;
}

/** The HistoryFormatError a history text is refused with (file name h.jsonl); fails the test when it is accepted. */
export function historyProblem(text: string): string {
  try {
    parseHistory(text, 'h.jsonl');
  } catch (error) {
    if (error instanceof HistoryFormatError) return error.message;
    throw error;
  }
  assert.fail('the history was accepted');
}
