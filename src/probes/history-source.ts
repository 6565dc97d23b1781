/** The streaming check's view of a history on disk: a history file or segment directory read in passes. */
import { statSync } from 'node:fs';
import type { HistorySource } from '../checker/stream.ts';
import { HistoryParser, type HistoryParserOptions } from '../checker/parse.ts';
import type { History, Operation } from '../domain/index.ts';
import { readLines, withLast } from './history-line-reader.ts';
import { readHistoryDirectory, SegmentReader, segmentLines } from './history-segment-reader.ts';
import { segmentPaths } from './history-segments.ts';

/**
 * One pass over a history file or segment directory for the streaming check (src/checker/stream.ts):
 * read line by line, operations handed out one at a time and not kept.
 */
export function historySource(file: string): HistorySource {
  const isDirectory = statSync(file).isDirectory();
  // What the first (validating) pass found, for the later ones: the operations finish() made (invocations
  // never completed: later passes skip invoke lines), and whether operation lines are told by their prefix.
  let first: { tail: Operation[]; kindMarked: boolean } | undefined;
  return {
    name: file,
    pass(onOperation, options = {}) {
      const later = options.operationsOnly === true && first !== undefined;
      const parserOptions: HistoryParserOptions = { retainOperations: false };
      if (options.onElidedKvs !== undefined) parserOptions.onElidedKvs = options.onElidedKvs;
      if (options.keepKvValues !== undefined) parserOptions.keepKvValues = options.keepKvValues;
      if (options.lazyKvs === true) parserOptions.lazyKvs = true;
      if (later) {
        parserOptions.operationsOnly = true;
        if (first!.kindMarked && options.skip !== undefined) parserOptions.skipOperation = options.skip;
      }
      let seen: () => number;
      // The index of an operation is the count of operations read so far: skipped ones count too.
      const visit = (op: Operation | undefined): void => {
        if (op !== undefined) onOperation(op, seen() - 1);
      };
      let history: History;
      let inCallOrder: boolean;
      let kindMarked: boolean;
      if (isDirectory) {
        const reader = new SegmentReader(file, parserOptions);
        seen = () => reader.operationsSeen;
        const segments = segmentPaths(file, {});
        for (const [i, segment] of segments.entries()) reader.segment(segment, segmentLines(file, segment), i === segments.length - 1, visit);
        history = reader.finish();
        inCallOrder = reader.inCallOrder;
        kindMarked = reader.kindMarked;
      } else {
        const parser = new HistoryParser(file, parserOptions);
        seen = () => parser.operationsSeen;
        for (const [line, last] of withLast(readLines(file))) visit(parser.line(line, { last }));
        history = parser.finish();
        inCallOrder = parser.inCallOrder;
        kindMarked = parser.kindMarked;
      }
      // Without retained operations, finish() returns only those it makes itself (an invocation never
      // completed, with invoke lines): they come last, in every pass alike.
      const tail = later ? first!.tail : history.operations;
      let index = seen() - (later ? 0 : tail.length);
      for (const op of tail) onOperation(op, index++);
      if (!later) first = { tail, kindMarked };
      return { history: { ...history, operations: [] }, inCallOrder, operations: index };
    },
    load() {
      if (isDirectory) return readHistoryDirectory(file);
      const parser = new HistoryParser(file);
      for (const [line, last] of withLast(readLines(file))) parser.line(line, { last });
      return parser.finish();
    },
  };
}
