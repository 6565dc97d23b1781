/**
 * Reads the JSON Lines history format (docs/history-format.md) into typed values, rejecting anything
 * malformed with `FILE:LINE: what is wrong`. Validation happens here, once, so the model can trust its
 * input: this is the boundary where `unknown` JSON becomes domain types.
 */
import { isDeepStrictEqual } from 'node:util';
import { lazyRangeResponse } from './written-kvs.ts';
import { elidedArray, elideKvs, parseWrittenKvs, writtenRangeEnd, type ElidedKvsFields } from './kvs-elision.ts';
import {
  FieldError,
  HistoryFormatError,
  integer,
  lineFields,
  type Json,
  object,
  omitUndefined,
  onlyFields,
  optInteger,
  optString,
  parseFault,
  parseInvocation,
  parseMeta,
  parseOperation,
  parseWatchRequest,
  parseWatchResponse,
  printable,
  shown,
  unfinished,
} from './history-lines.ts';
import type {
  FaultEvent,
  FaultName,
  History,
  HistoryMeta,
  Invocation,
  Operation,
  RangeResponse,
  TornTail,
  WatchStream,
} from '../domain/index.ts';

/** What HistoryParser.line needs to know about a line besides its text. */
export interface LineOptions {
  /**
   * The text after the history's last newline: nothing follows it. If it is not valid JSON, it is what a
   * crash cut mid-write; it is ignored and reported as `tornTail` instead of rejected.
   */
  last?: boolean;
}


export interface HistoryParserOptions {
  /**
   * Keep the operations (default true). Off, line() still returns each one but finish() returns a history
   * without operations, and memory stays independent of their number (the streaming check, stream.ts). A
   * client's operations are then checked against its previous one only: when a client's operations are
   * not in call order in the file, finish() sets `inCallOrder` to false, and the caller re-reads the
   * history whole to check them (the order is otherwise not required).
   */
  retainOperations?: boolean;
  /**
   * Skip watch response lines as our writer writes them (`{"kind":"watch","id":N,"response":...`) without
   * parsing them: for a later pass of the streaming check over a history an earlier pass validated, which
   * needs only the operations. Most of a history's bytes are watch responses.
   */
  skipWatchResponses?: boolean;
  /**
   * A later pass of the streaming check, over a history an earlier pass validated, which needs only the
   * operations: lines that start with `{"kind":` (never an operation: an operation line has no kind) are
   * skipped unparsed, invoke lines included (the operations an invocation never completed are the first
   * pass's to give), and clients are not followed again.
   */
  operationsOnly?: boolean;
  /**
   * With operationsOnly, on a history whose every non-blank line not starting with `{"kind":` is an
   * operation line (`kindMarked` after a full pass): asked before each such line is parsed, with the
   * operation's index; true skips it unparsed (it still counts in operationsSeen).
   */
  skipOperation?: (index: number, text: string) => boolean;
  /**
   * Validate the kvs arrays of operation lines in our writer's form (see elideKvs) without building them:
   * the operation is returned with those arrays empty, and this is called first with what they held. For
   * the streaming check's first pass, which needs no key-value but only whether any shows a revision or a
   * version (check.ts observedFields): most of a history's bytes are kvs of list reads. Any other line is
   * parsed whole, and every error is the one the whole line gives.
   */
  onElidedKvs?: (fields: ElidedKvsFields) => void;
  /** With onElidedKvs: the key-values whose value is one of these are kept (the observation pass, stream.ts). */
  keepKvValues?: ReadonlySet<string>;
  /**
   * A range read whose one kvs array is in our writer's form (see elideKvs) comes with its key-values as
   * text, parsed on first access (written-kvs.ts lazyRangeResponse): the model compares the text. For the
   * streaming check's last pass. Not with onElidedKvs.
   */
  lazyKvs?: boolean;
}


/** How every line that is not an operation starts, as our writer writes them (kind first). */
export const kindPrefix = '{"kind":';

/** How our writer starts a watch response line (see HistoryParserOptions.skipWatchResponses). */
export const watchResponsePrefix = /^\{"kind":"watch","id":\d+,"response":/;

/** A client's latest operation, for the overlap check of a parser that does not retain operations. */
interface ClientLast {
  call: number;
  return: number | null;
  line: number;
}

/**
 * Incremental parser: feed lines one at a time (the live checker and the CLI stream files through it).
 * An invoke line waits for the operation line that completes it (same client and call); one still open
 * at finish() becomes an operation with an unknown outcome.
 */
export class HistoryParser {
  readonly file: string;
  private readonly retain: boolean;
  private lineNumber = 0;
  private meta: HistoryMeta | undefined;
  private readonly operations: Operation[] = [];
  private readonly operationLines: number[] = [];
  private readonly watches = new Map<number, WatchStream>();
  private readonly faults: FaultEvent[] = [];
  /** The fault each injection id names, so its later lines cannot name another. */
  private readonly faultIds = new Map<number, FaultName>();
  /** Each client's open invocation and its line (a client has at most one: its operations never overlap). */
  private readonly invoked = new Map<number, { invocation: Invocation; line: number }>();
  private torn: TornTail | undefined;
  /** Without retained operations: each client's latest, and the first overlap found (thrown by finish()). */
  private readonly lastByClient = new Map<number, ClientLast>();
  private overlap: HistoryFormatError | undefined;
  private operationCount = 0;
  /** False when some client's operations are not in call order (only without retained operations). */
  inCallOrder = true;
  /**
   * Whether every non-blank line read so far that is not an operation started with `{"kind":` (a torn
   * last line included): then a later pass can tell operation lines by their first bytes (skipOperation).
   */
  kindMarked = true;
  private readonly operationsOnly: boolean;
  private readonly onElidedKvs: ((fields: ElidedKvsFields) => void) | undefined;
  private readonly keepKvValues: ReadonlySet<string> | undefined;
  private readonly skipOperation: ((index: number, text: string) => boolean) | undefined;

  constructor(file = '<history>', options: HistoryParserOptions = {}) {
    this.file = file;
    this.retain = options.retainOperations ?? true;
    this.skipWatchResponses = options.skipWatchResponses ?? false;
    this.operationsOnly = options.operationsOnly ?? false;
    this.skipOperation = this.operationsOnly ? options.skipOperation : undefined;
    this.onElidedKvs = options.onElidedKvs;
    this.keepKvValues = options.keepKvValues;
    this.lazyKvs = options.lazyKvs ?? false;
  }

  private readonly lazyKvs: boolean;

  private readonly skipWatchResponses: boolean;

  /** Operations parsed so far. */
  get operationsSeen(): number {
    return this.operationCount;
  }

  /** Where the torn last line was, if the history ended with one (see LineOptions.last). */
  get tornTail(): TornTail | undefined {
    return this.torn;
  }

  /** The invocations not completed so far, oldest call first: their operations are still in flight. */
  get openInvocations(): Invocation[] {
    return [...this.invoked.values()].map((o) => o.invocation).sort((a, b) => a.call - b.call);
  }

  /** Parses one line; returns the operation it held or completed, if any (an invoke line holds none yet). */
  line(text: string, options: LineOptions = {}): Operation | undefined {
    this.lineNumber++;
    if (text.trim() === '') return undefined;
    if (this.skipWatchResponses && watchResponsePrefix.test(text)) return undefined;
    const marked = text.startsWith(kindPrefix);
    if (this.operationsOnly) {
      if (marked) return undefined;
      if (this.skipOperation?.(this.operationCount, text) === true) {
        this.operationCount++;
        return undefined;
      }
    }
    if (this.torn) throw new HistoryFormatError(this.file, this.torn.line, 'not valid JSON, and not the last line (only a last line can be torn by a crash)');
    if (this.onElidedKvs !== undefined && !marked) {
      const elided = elideKvs(text, this.keepKvValues);
      if (elided !== undefined) {
        let op: Operation | undefined;
        let parsed = false;
        try {
          op = this.interpret(JSON.parse(elided.text), marked);
          parsed = true;
        } catch {
          // The whole line gives the error (or the result) it gives without elision.
        }
        if (parsed) {
          this.onElidedKvs(elided.fields);
          return op;
        }
      }
    }
    if (this.lazyKvs && !marked) {
      const lazy = this.lazyRange(text);
      if (lazy !== undefined) return lazy;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (error) {
      if (options.last === true) {
        this.torn = { file: this.file, line: this.lineNumber };
        if (!marked) this.kindMarked = false;
        return undefined;
      }
      // V8's message quotes the input: escape and shorten it (binary input must not reach a terminal raw).
      throw new HistoryFormatError(this.file, this.lineNumber, `not valid JSON (${printable((error as Error).message, 160)})`);
    }
    return this.interpret(raw, marked);
  }

  /**
   * A range read with its key-values left as text (HistoryParserOptions.lazyKvs), or undefined, having
   * changed nothing, for any other line (which line() then parses whole). Only a line whose one field named
   * kvs is the response's, and a valid array in our writer's form: its text then parses without error.
   */
  private lazyRange(text: string): Operation | undefined {
    const first = text.indexOf('"kvs"');
    if (first < 0 || text.indexOf('"kvs"', first + 5) >= 0 || text.charCodeAt(first + 6) !== 0x5b) return undefined;
    const found = writtenRangeEnd(text, first + 7) ?? elidedArray(text);
    if (found === undefined) return undefined;
    let raw: unknown;
    try {
      raw = JSON.parse(found.elided);
    } catch {
      return undefined;
    }
    // The one "kvs" is the response's field: the array it opens is the one the response holds.
    const r = raw as { request?: { type?: unknown }; response?: { kvs?: unknown } } | null;
    if (typeof r !== 'object' || r === null || r.request?.type !== 'range' || !Array.isArray(r.response?.kvs)) return undefined;
    let op: Operation | undefined;
    try {
      op = this.interpret(raw, false);
    } catch {
      return undefined; // the whole line gives the error, as without lazyKvs (interpret changes nothing when it throws)
    }
    const response = op?.response as RangeResponse | undefined;
    if (op === undefined || response === undefined || !('kvs' in response)) return op;
    const { file, lineNumber } = this;
    op.response = lazyRangeResponse(response, found.kvs, (kvs) => {
      try {
        return parseWrittenKvs(kvs);
      } catch (error) {
        // Only a line the first pass did not read: it validated this one whole.
        throw new HistoryFormatError(file, lineNumber, `its key-values do not parse (${printable((error as Error).message, 160)}): the history changed after the first pass read it`);
      }
    });
    return op;
  }

  /**
   * A parsed line's meaning. With elided kvs (onElidedKvs) it may be called twice for one line: its state
   * changes come only after everything that may throw, and never depend on the kvs.
   */
  private interpret(raw: unknown, marked: boolean): Operation | undefined {
    try {
      const line = object(raw, 'line');
      if (line['kind'] !== undefined && !marked) this.kindMarked = false;
      switch (line['kind']) {
        case undefined:
          return this.operationLine(line);
        case 'invoke':
          this.invokeLine(line);
          return undefined;
        case 'meta':
          if (this.meta) throw new FieldError('a second meta line (a history has at most one)');
          if (this.operationCount > 0 || this.invoked.size > 0) throw new FieldError('the meta line must come before the operations');
          this.meta = parseMeta(line);
          return undefined;
        case 'watch':
          this.watchLine(line);
          return undefined;
        case 'fault':
          this.faultLine(line);
          return undefined;
        default:
          throw new FieldError(`unknown kind ${shown(line['kind'])} (expected no kind, "invoke", "meta", "watch" or "fault")`);
      }
    } catch (error) {
      if (error instanceof FieldError) throw new HistoryFormatError(this.file, this.lineNumber, error.message);
      throw error;
    }
  }

  private operationLine(line: Json): Operation {
    const op = parseOperation(line);
    const open = this.invoked.get(op.client);
    // Without a matching invocation the line is complete on its own (histories written before invoke lines).
    if (open !== undefined && open.invocation.call === op.call) {
      if (!isDeepStrictEqual(open.invocation.request, op.request)) {
        throw new FieldError(`client ${op.client}'s operation called at ${op.call} has a different request from its invocation (line ${open.line})`);
      }
      this.invoked.delete(op.client);
    }
    this.operationCount++;
    if (this.retain) {
      this.operations.push(op);
      this.operationLines.push(this.lineNumber);
    } else if (!this.operationsOnly) this.followClient(op);
    return op;
  }

  private invokeLine(line: Json): void {
    const invocation = parseInvocation(line);
    const open = this.invoked.get(invocation.client);
    if (open !== undefined) {
      throw new FieldError(
        `client ${invocation.client} is invoked at ${invocation.call} while its invocation at ${open.invocation.call} (line ${open.line}) is still open (a client's operations never overlap)`,
      );
    }
    this.invoked.set(invocation.client, { invocation, line: this.lineNumber });
  }

  /** The overlap check of finish(), one operation at a time, for clients whose operations come in call order. */
  private followClient(op: Operation): void {
    const last = this.lastByClient.get(op.client);
    this.lastByClient.set(op.client, { call: op.call, return: op.return, line: this.lineNumber });
    if (last === undefined) return;
    if (op.call < last.call) this.inCallOrder = false;
    else if (this.overlap === undefined && (last.return === null || op.call < last.return)) this.overlap = this.overlapError(op.client, op, this.lineNumber, last, last.line);
  }

  private overlapError(client: number, next: Operation, nextLine: number, prev: { return: number | null }, prevLine: number): HistoryFormatError {
    return new HistoryFormatError(
      this.file,
      nextLine,
      `client ${client} starts an operation at ${next.call} while its previous one (line ${prevLine}) ` +
        (prev.return === null ? 'never returned (continue under a new client id after an unknown outcome)' : `returned only at ${prev.return}`),
    );
  }

  private watchLine(line: Json): void {
    onlyFields(line, lineFields.watch, 'a watch line');
    const id = integer(line['id'], 'id');
    if (line['request'] !== undefined) {
      if (this.watches.has(id)) throw new FieldError(`watch ${id} is opened twice`);
      this.watches.set(
        id,
        omitUndefined({
          id,
          client: optInteger(line['client'], 'client'),
          member: optString(line['member'], 'member'),
          request: parseWatchRequest(line['request']),
          responses: [],
        }),
      );
      return;
    }
    const stream = this.watches.get(id);
    if (!stream) throw new FieldError(`a response for watch ${id}, which no earlier line opened`);
    if (line['response'] === undefined) throw new FieldError('a watch line needs "request" (to open) or "response"');
    stream.responses.push(parseWatchResponse(line['response']));
  }

  private faultLine(line: Json): void {
    const event = parseFault(line);
    const named = this.faultIds.get(event.id);
    if (named !== undefined && named !== event.fault) throw new FieldError(`fault ${event.id} is ${named} on an earlier line, not ${event.fault}`);
    this.faultIds.set(event.id, event.fault);
    this.faults.push(event);
  }

  /**
   * Checks what spans lines (a client's operations never overlap) and returns the history, with an
   * unknown-outcome operation for each invocation never completed.
   */
  finish(): History {
    // A crash left these in flight: each may have taken effect, or not. They come last, also without
    // retained operations (the streaming check takes them from the history finish() returns).
    for (const { invocation, line } of this.invoked.values()) {
      const op = unfinished(invocation);
      this.operationCount++;
      if (!this.retain) this.followClient(op);
      this.operations.push(op);
      this.operationLines.push(line);
    }
    this.invoked.clear();
    if (this.overlap !== undefined && this.inCallOrder) throw this.overlap;
    const byClient = new Map<number, number[]>();
    this.operations.forEach((op, i) => {
      const list = byClient.get(op.client) ?? [];
      list.push(i);
      byClient.set(op.client, list);
    });
    for (const [client, indices] of byClient) {
      indices.sort((a, b) => this.operations[a]!.call - this.operations[b]!.call);
      for (let k = 1; k < indices.length; k++) {
        const prev = this.operations[indices[k - 1]!]!;
        const next = this.operations[indices[k]!]!;
        if (prev.return === null || next.call < prev.return) throw this.overlapError(client, next, this.operationLines[indices[k]!]!, prev, this.operationLines[indices[k - 1]!]!);
      }
    }
    const history: History = { meta: this.meta, operations: this.operations, watches: [...this.watches.values()] };
    // Only when there are some, so histories without faults compare equal to hand-written ones.
    if (this.faults.length > 0) history.faults = this.faults;
    if (this.torn) history.tornTail = this.torn;
    return history;
  }
}

export function parseHistory(text: string, file?: string): History {
  const parser = new HistoryParser(file);
  const lines = text.split('\n');
  // The last element is what follows the last newline: empty unless a crash cut the last line.
  lines.forEach((line, i) => parser.line(line, { last: i === lines.length - 1 }));
  return parser.finish();
}
