/**
 * A long run's history on disk: a directory of JSON Lines segments (history-000001.jsonl, ...), written as
 * the run goes and read back as one history (docs/history-format.md, "Segments").
 *
 * Every segment starts with a header: the meta line and an opening line for each watch stream still open,
 * so a segment is a valid history file on its own and the segments left after the oldest were deleted
 * (maxSegments) can still be read. When the segments are read together, the header copies are skipped, so
 * the result equals what was written. Invocations are not repeated: an invoke line and the operation line
 * that completes it may sit in two segments, and a segment read alone leaves its open invocation an unknown
 * outcome and takes a completion without its invocation as complete on its own, which both stay valid.
 */
import { closeSync, constants, fstatSync, fsyncSync, mkdirSync, openSync, readdirSync, readSync, statSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { HistorySource } from '../checker/stream.ts';
import { HistoryFormatError } from '../checker/history-lines.ts';
import { HistoryParser, type HistoryParserOptions, watchResponsePrefix } from '../checker/parse.ts';
import { serializeFaultLine, serializeInvokeLine, serializeMetaLine, serializeOperationLine, serializeWatchOpenLine, serializeWatchResponseLine } from '../checker/serialize.ts';
import type { FaultEvent, History, HistoryMeta, Invocation, Operation, WatchResponse, WatchStream } from '../domain/index.ts';

export const defaultMaxSegmentBytes = 64 * 1024 * 1024;
/** Buffered lines reach the OS at least this often, so a crash of the process loses at most this much. */
export const flushIntervalMs = 100;
/** Also flush when this much is buffered, which bounds memory at any write rate. */
const maxBufferedBytes = 1024 * 1024;

const segmentPattern = /^history-(\d+)\.jsonl$/;

export function segmentFileName(index: number): string {
  return `history-${String(index).padStart(6, '0')}.jsonl`;
}

/** The directory or a segment could not be created, written, synced or deleted. */
export class HistoryWriteError extends Error {
  override name = 'HistoryWriteError';
  readonly path: string;
  constructor(file: string, action: string, cause: unknown) {
    super(`${file}: cannot ${action}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.path = file;
  }
}

/** A history directory that cannot be read as one history (missing, empty, a segment missing). */
export class HistoryDirectoryError extends Error {
  override name = 'HistoryDirectoryError';
  readonly dir: string;
  constructor(dir: string, problem: string) {
    super(`${dir}: ${problem}`);
    this.dir = dir;
  }
}

export interface HistoryFileWriterOptions {
  /** Start a new segment before one would grow past this (default 64 MiB). */
  maxSegmentBytes?: number;
  /** Keep at most this many segments, deleting the oldest (default: keep all). */
  maxSegments?: number;
}

interface Segment {
  path: string;
  /** -1 once closed: closing a descriptor number twice could close one that was reused meanwhile. */
  fd: number;
  bytes: number;
  /** Lines other than the header, which every segment needs at least one of before it rotates. */
  bodyLines: number;
}

interface OpenStream {
  line: string;
  /** Until a canceled response ends it; only active streams are re-opened in later segments. */
  active: boolean;
}

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}

/** writeSync may write less than asked; loop until the buffer is out. */
function writeAll(fd: number, data: Buffer): void {
  let offset = 0;
  while (offset < data.length) offset += writeSync(fd, data, offset, data.length - offset);
}

function existingSegments(dir: string): { index: number; name: string }[] {
  return readdirSync(dir)
    .flatMap((name) => {
      const match = segmentPattern.exec(name);
      return match ? [{ index: Number(match[1]), name }] : [];
    })
    .sort((a, b) => a.index - b.index);
}

/**
 * Streams a history into segment files. Writes are buffered and reach the OS on flush (every 100 ms, on
 * rotation, when 1 MiB is buffered, and on close); close() also fsyncs. Not safe to share across processes.
 */
export class HistoryFileWriter {
  readonly dir: string;
  readonly maxSegmentBytes: number;
  readonly maxSegments: number;
  private current: Segment;
  private segmentIndex = 1;
  private readonly live: string[];
  private readonly deleted: string[] = [];
  private metaLine: string | undefined;
  private started = false;
  private readonly streams = new Map<number, OpenStream>();
  /**
   * Lines not yet handed to the OS, encoded as they come: one reused buffer, so a flush allocates neither
   * a joined string (large, straight into V8's old space) nor a fresh Buffer.
   */
  private readonly pending = Buffer.allocUnsafe(maxBufferedBytes);
  private pendingBytes = 0;
  private totalBytes = 0;
  private totalLines = 0;
  private failure: HistoryWriteError | undefined;
  private closed = false;
  private readonly timer: NodeJS.Timeout;

  private constructor(dir: string, maxSegmentBytes: number, maxSegments: number, first: Segment) {
    this.dir = dir;
    this.maxSegmentBytes = maxSegmentBytes;
    this.maxSegments = maxSegments;
    this.current = first;
    this.live = [first.path];
    // unref: a forgotten writer must not keep the process alive; close() is what guarantees the data.
    this.timer = setInterval(() => this.flushInBackground(), flushIntervalMs).unref();
  }

  /** Creates `dir` if needed and the first segment. Refuses a directory that already holds segments. */
  static open(dir: string, options: HistoryFileWriterOptions = {}): HistoryFileWriter {
    const maxSegmentBytes = positiveInteger(options.maxSegmentBytes, defaultMaxSegmentBytes, 'maxSegmentBytes');
    const maxSegments = positiveInteger(options.maxSegments, Number.POSITIVE_INFINITY, 'maxSegments');
    try {
      mkdirSync(dir, { recursive: true });
    } catch (error) {
      throw new HistoryWriteError(dir, 'create the history directory', error);
    }
    let existing;
    try {
      existing = existingSegments(dir);
    } catch (error) {
      throw new HistoryWriteError(dir, 'list the history directory', error);
    }
    // Appending to another run's segments would mix two histories into one that fails the check.
    if (existing.length > 0) throw new HistoryWriteError(dir, 'start a history', `it already holds ${existing[0]!.name}`);
    return new HistoryFileWriter(dir, maxSegmentBytes, maxSegments, HistoryFileWriter.createSegment(dir, 1));
  }

  private static createSegment(dir: string, index: number): Segment {
    const file = path.join(dir, segmentFileName(index));
    try {
      // 'wx': never overwrite a segment.
      return { path: file, fd: openSync(file, 'wx'), bytes: 0, bodyLines: 0 };
    } catch (error) {
      throw new HistoryWriteError(file, 'create the segment', error);
    }
  }

  /** Bytes given to the writer, header copies included: after close, the total size of every segment written. */
  get bytesWritten(): number {
    return this.totalBytes;
  }

  /** Lines given to the writer, header copies included. */
  get linesWritten(): number {
    return this.totalLines;
  }

  /** The segments on disk, oldest first. */
  get segments(): readonly string[] {
    return [...this.live];
  }

  /** The segments deleted to respect maxSegments, oldest first: what is left is only the end of the history. */
  get deletedSegments(): readonly string[] {
    return [...this.deleted];
  }

  /** Optional; if written, it must be the first line. Every later segment starts with a copy. */
  writeMeta(meta: HistoryMeta): void {
    this.assertWritable();
    if (this.started) throw new Error('writeMeta must come before any other line of the history');
    this.started = true;
    this.metaLine = serializeMetaLine(meta);
    this.append(this.metaLine, false);
  }

  /**
   * An operation as it is sent, before any answer can arrive: after a crash, the operations in flight are
   * in the history with an unknown outcome. writeOperation (same client and call) completes it. Not
   * repeated in later segments' headers: a reader pairs the two lines across segments.
   */
  writeInvoke(invocation: Invocation): void {
    this.assertWritable();
    this.started = true;
    this.append(serializeInvokeLine(invocation), true);
  }

  /** Returns the line written (without its newline): the live checker's batches reuse the text rather than encode the operation again. */
  writeOperation(op: Operation): string {
    this.assertWritable();
    this.started = true;
    const line = serializeOperationLine(op);
    this.append(line, true);
    return line;
  }

  /** Writes the stream's opening line (id, client, member, request); its responses go through writeWatchResponse. */
  openWatch(stream: WatchStream): void {
    this.assertWritable();
    if (this.streams.has(stream.id)) throw new Error(`watch ${stream.id} is already open`);
    this.started = true;
    const line = serializeWatchOpenLine(stream);
    // Registered after the append: a rotation inside it must not re-open the stream in the header and again below.
    this.append(line, true);
    this.streams.set(stream.id, { line, active: true });
  }

  /** Returns the line written (without its newline), as writeOperation does. */
  writeWatchResponse(streamId: number, response: WatchResponse): string {
    this.assertWritable();
    const stream = this.streams.get(streamId);
    // The line would make the file unreadable ("a response for watch N, which no earlier line opened").
    if (!stream) throw new Error(`watch ${streamId} was never opened (call openWatch first)`);
    const line = serializeWatchResponseLine(streamId, response);
    this.append(line, true);
    // A canceled response is a stream's last; anything after it (not expected) keeps the stream alive.
    stream.active = response.canceled !== true;
    return line;
  }

  /** A fault's injection, verification, heal or failure (a `kind: "fault"` line; not repeated in later segments). */
  writeFault(event: FaultEvent): void {
    this.assertWritable();
    this.started = true;
    this.append(serializeFaultLine(event), true);
  }

  /** Hands buffered lines to the OS (not fsynced: that is close()'s job). */
  flush(): void {
    this.assertWritable();
    this.writePending();
  }

  /** Flushes, fsyncs and closes. Idempotent; rethrows a failure of a background flush. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    try {
      if (!this.failure) {
        this.writePending();
        this.io(this.current.path, 'fsync', () => fsyncSync(this.current.fd));
        this.syncDirectory();
      }
    } finally {
      this.closeSegment(this.current);
    }
    if (this.failure) throw this.failure;
  }

  private assertWritable(): void {
    if (this.failure) throw this.failure;
    if (this.closed) throw new Error(`the history writer for ${this.dir} is closed`);
  }

  private append(line: string, body: boolean): void {
    const bytes = Buffer.byteLength(line) + 1;
    // A segment takes at least one body line, so a line larger than the limit still gets written.
    if (body && this.current.bodyLines > 0 && this.current.bytes + bytes > this.maxSegmentBytes) this.rotate();
    if (this.pendingBytes + bytes > this.pending.length) this.writePending();
    if (bytes > this.pending.length) {
      // Larger than the whole buffer: written on its own (the buffered lines before it went out just above).
      const data = Buffer.from(`${line}\n`);
      this.io(this.current.path, 'write', () => writeAll(this.current.fd, data));
    } else {
      this.pending.write(line, this.pendingBytes);
      this.pending[this.pendingBytes + bytes - 1] = 0x0a;
      this.pendingBytes += bytes;
    }
    this.current.bytes += bytes;
    if (body) this.current.bodyLines++;
    this.totalBytes += bytes;
    this.totalLines++;
    if (this.pendingBytes >= maxBufferedBytes) this.writePending();
  }

  private rotate(): void {
    this.writePending();
    const done = this.current;
    try {
      this.io(done.path, 'fsync', () => fsyncSync(done.fd));
    } finally {
      this.closeSegment(done);
    }
    this.segmentIndex++;
    try {
      this.current = HistoryFileWriter.createSegment(this.dir, this.segmentIndex);
    } catch (error) {
      if (error instanceof HistoryWriteError) this.failure = error;
      throw error;
    }
    this.live.push(this.current.path);
    this.writeHeader();
    this.deleteOldSegments();
  }

  /** The meta and the streams still open, so this segment reads on its own (see the module comment). */
  private writeHeader(): void {
    if (this.metaLine !== undefined) this.append(this.metaLine, false);
    for (const stream of this.streams.values()) if (stream.active) this.append(stream.line, false);
  }

  private deleteOldSegments(): void {
    while (this.live.length > this.maxSegments) {
      const oldest = this.live.shift()!;
      this.io(oldest, 'delete the old segment', () => unlinkSync(oldest));
      this.deleted.push(oldest);
    }
  }

  private writePending(): void {
    if (this.pendingBytes === 0) return;
    // writeSync is done with the bytes when it returns: the buffer is free for the next lines.
    const data = this.pending.subarray(0, this.pendingBytes);
    this.pendingBytes = 0;
    this.io(this.current.path, 'write', () => writeAll(this.current.fd, data));
  }

  private closeSegment(segment: Segment): void {
    if (segment.fd < 0) return;
    const fd = segment.fd;
    segment.fd = -1;
    try {
      closeSync(fd);
    } catch {
      // The descriptor is released either way; close errors after fsync report nothing about the data.
    }
  }

  /** New and deleted segment names survive a machine crash only once the directory is synced. */
  private syncDirectory(): void {
    this.io(this.dir, 'fsync the directory', () => {
      const fd = openSync(this.dir, 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    });
  }

  private flushInBackground(): void {
    if (this.closed || this.failure) return;
    try {
      this.writePending();
    } catch {
      // Kept in this.failure by io(): the next write or close() throws it to someone who can act on it.
    }
  }

  /** Runs a file operation; a failure is kept, so every later call reports the same error. */
  private io(file: string, action: string, run: () => void): void {
    try {
      run();
    } catch (error) {
      this.failure = new HistoryWriteError(file, action, error);
      throw this.failure;
    }
  }
}

export interface ReadHistoryDirectoryOptions {
  /**
   * Read what is left after the oldest segments were deleted (maxSegments). Off by default: the end of a
   * history is not a history the checker can judge (the deleted writes are missing), so it would give
   * false violations.
   */
  allowSuffix?: boolean;
}

function segmentPaths(dir: string, options: ReadHistoryDirectoryOptions): string[] {
  let segments;
  try {
    if (!statSync(dir).isDirectory()) throw new HistoryDirectoryError(dir, 'not a directory');
    segments = existingSegments(dir);
  } catch (error) {
    if (error instanceof HistoryDirectoryError) throw error;
    throw new HistoryDirectoryError(dir, `cannot read the history directory: ${(error as Error).message}`);
  }
  if (segments.length === 0) throw new HistoryDirectoryError(dir, 'no history segments (history-NNNNNN.jsonl) in this directory');
  const first = segments[0]!.index;
  if (first !== 1 && options.allowSuffix !== true) {
    throw new HistoryDirectoryError(
      dir,
      `starts at ${segments[0]!.name}: ${segmentFileName(1)} to ${segmentFileName(first - 1)} were deleted (maxSegments), ` +
        'so only the end of the history is left, which cannot be checked as a whole',
    );
  }
  segments.forEach((s, i) => {
    if (s.index !== first + i) throw new HistoryDirectoryError(dir, `${segmentFileName(first + i)} is missing (the segments are not consecutive)`);
  });
  return segments.map((s) => path.join(dir, s.name));
}

/** Reads a directory written by HistoryFileWriter as the one history its segments form. */
export function readHistoryDirectory(dir: string, options: ReadHistoryDirectoryOptions = {}): History {
  const reader = new SegmentReader(dir);
  const files = segmentPaths(dir, options);
  for (const [i, file] of files.entries()) reader.segment(file, segmentLines(dir, file), i === files.length - 1);
  return reader.finish();
}

/** Each line with whether it is the last (the text after the last newline, which a crash may have cut). */
function* withLast(lines: Iterable<string>): Generator<[string, boolean]> {
  let held: string | undefined;
  for (const line of lines) {
    if (held !== undefined) yield [held, false];
    held = line;
  }
  if (held !== undefined) yield [held, true];
}

/** A segment's lines; an unreadable segment is the directory's error (FILE:LINE errors stay the parser's). */
function* segmentLines(dir: string, file: string): Generator<string> {
  try {
    yield* readLines(file);
  } catch (error) {
    if (error instanceof HistoryFormatError) throw error;
    throw new HistoryDirectoryError(dir, `cannot read ${path.basename(file)}: ${(error as Error).message}`);
  }
}

/** The longest line a history may have (a history line is a few hundred bytes; this catches a wrong file). */
export const maxHistoryLineBytes = 64 * 1024 * 1024;

/** A path that is not a regular file: a FIFO would block the reader, a device would never end. */
export class NotAFileError extends Error {
  override name = 'NotAFileError';
}

export function fileKind(stat: Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSocket()) return 'a socket';
  return 'not a regular file';
}

export interface ReadLinesOptions {
  /** A longer line is a HistoryFormatError naming it (default maxHistoryLineBytes). */
  maxLineBytes?: number;
  /** Bytes read at a time (default 1 MiB). */
  chunkBytes?: number;
}

/**
 * The lines of a regular file, read a chunk at a time: memory holds one chunk and one line whatever the
 * file's size. Lines are split as text.split('\n') splits them (a final newline gives a last, empty
 * line), so line numbers agree with a whole-file read. A FIFO, device or socket is refused before any
 * read (opened non-blocking, so even the open cannot hang).
 */
export function* readLines(file: string, options: ReadLinesOptions = {}): Generator<string> {
  const maxLineBytes = options.maxLineBytes ?? maxHistoryLineBytes;
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new NotAFileError(`${file}: not a regular file (${fileKind(stat)})`);
    const buffer = Buffer.allocUnsafe(options.chunkBytes ?? 1024 * 1024);
    let parts: Buffer[] = [];
    let partBytes = 0;
    let line = 0;
    for (;;) {
      const read = readSync(fd, buffer, 0, buffer.length, null);
      if (read === 0) break;
      let start = 0;
      for (let nl = buffer.indexOf(10, start); nl >= 0 && nl < read; nl = buffer.indexOf(10, start)) {
        line++;
        if (partBytes + nl - start > maxLineBytes) throw tooLong(file, line, maxLineBytes);
        if (parts.length === 0) yield buffer.toString('utf8', start, nl);
        else {
          parts.push(buffer.subarray(start, nl));
          yield Buffer.concat(parts).toString('utf8');
          parts = [];
          partBytes = 0;
        }
        start = nl + 1;
      }
      if (start < read) {
        if (partBytes + read - start > maxLineBytes) throw tooLong(file, line + 1, maxLineBytes);
        parts.push(Buffer.from(buffer.subarray(start, read)));
        partBytes += read - start;
      }
    }
    yield Buffer.concat(parts).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

function tooLong(file: string, line: number, max: number): HistoryFormatError {
  return new HistoryFormatError(file, line, `the line is longer than ${max} bytes (the limit for one history line): not a history file?`);
}

/**
 * One pass over a history file or segment directory for the streaming check (src/checker/stream.ts):
 * read line by line, operations handed out one at a time and not kept.
 */
/** How our writer starts an operation line: never a header (meta or watch opening). */
const operationPrefix = /^\{"client":\d+,"call":/;

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

type Json = Record<string, unknown>;

interface Seen {
  raw: Json;
  file: string;
  line: number;
}

/**
 * Feeds every segment's lines to one HistoryParser (watch streams and clients span segments), skipping the
 * header copies: a meta or a stream's opening line at the top of a later segment. Skipped lines are fed as
 * blank lines, so the parser's line numbers stay those of the concatenated segments and can be mapped back
 * to FILE:LINE.
 */
class SegmentReader {
  private readonly parser: HistoryParser;
  private readonly starts: { file: string; firstLine: number }[] = [];
  private lines = 0;
  private meta: Seen | undefined;
  private readonly opened = new Map<number, Seen>();

  constructor(dir: string, options: HistoryParserOptions = {}) {
    this.parser = new HistoryParser(dir, options);
  }

  get inCallOrder(): boolean {
    return this.parser.inCallOrder;
  }

  get kindMarked(): boolean {
    return this.parser.kindMarked;
  }

  get operationsSeen(): number {
    return this.parser.operationsSeen;
  }

  /**
   * Feeds one segment's lines; each operation goes to onOperation, if given. `last`: the newest segment,
   * whose last line a crash may have cut (see HistoryParser's LineOptions).
   */
  segment(file: string, lines: Iterable<string>, last: boolean, onOperation?: (op: Operation | undefined) => void): void {
    this.starts.push({ file, firstLine: this.lines + 1 });
    let inHeader = this.starts.length > 1;
    let i = 0;
    for (const [line, final] of withLast(lines)) {
      i++;
      this.lines++;
      let skip = false;
      if (inHeader && line.trim() !== '') {
        skip = this.isHeaderCopy(line, file, i);
        inHeader = skip;
      }
      if (!skip) this.rememberFirst(line, file, i);
      const op = this.feed(skip ? '' : line, last && final);
      onOperation?.(op);
    }
  }

  finish(): History {
    let history: History;
    try {
      history = this.parser.finish();
    } catch (error) {
      throw this.relocate(error);
    }
    if (history.tornTail) history.tornTail = this.locate(history.tornTail.line);
    return history;
  }

  private feed(line: string, last: boolean): Operation | undefined {
    try {
      return this.parser.line(line, { last });
    } catch (error) {
      throw this.relocate(error);
    }
  }

  /** A meta or watch opening is parsed here too, but only those: other lines are parsed once, by the parser. */
  private static headerCandidate(line: string): Json | undefined {
    // Our writer's operation and watch response lines (most lines, and long): neither is a header.
    if (watchResponsePrefix.test(line) || operationPrefix.test(line)) return undefined;
    if (!line.includes('"kind"') || !(line.includes('"meta"') || (line.includes('"request"') && line.includes('"watch"')))) return undefined;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      return undefined; // the parser reports it
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
    const json = raw as Json;
    if (json['kind'] === 'meta' || (json['kind'] === 'watch' && json['request'] !== undefined)) return json;
    return undefined;
  }

  private rememberFirst(line: string, file: string, lineNumber: number): void {
    const raw = SegmentReader.headerCandidate(line);
    if (!raw) return;
    if (raw['kind'] === 'meta') this.meta ??= { raw, file, line: lineNumber };
    else if (typeof raw['id'] === 'number' && !this.opened.has(raw['id'])) this.opened.set(raw['id'], { raw, file, line: lineNumber });
  }

  /** True for a copy of the meta or of an earlier stream's opening; a differing copy is an error. */
  private isHeaderCopy(line: string, file: string, lineNumber: number): boolean {
    const raw = SegmentReader.headerCandidate(line);
    if (!raw) return false;
    const original = raw['kind'] === 'meta' ? this.meta : typeof raw['id'] === 'number' ? this.opened.get(raw['id']) : undefined;
    if (!original) return false; // a first meta or opening (for example in the first segment of a suffix)
    if (isDeepStrictEqual(raw, original.raw)) return true;
    const what = raw['kind'] === 'meta' ? 'the meta line differs from' : `watch ${String(raw['id'])} is re-opened differently from`;
    throw new HistoryFormatError(file, lineNumber, `${what} ${original.file}:${original.line} (every segment repeats the same header)`);
  }

  /** The parser numbers the concatenated lines; name the segment and its own line instead. */
  private relocate(error: unknown): unknown {
    if (!(error instanceof HistoryFormatError)) return error;
    const at = this.locate(error.line);
    // finish() names an earlier line in the text as "(line N)", also in concatenated numbering.
    const problem = error.problem.replace(/\(line (\d+)\)/g, (_, n: string) => {
      const other = this.locate(Number(n));
      return `(${other.file}:${other.line})`;
    });
    return new HistoryFormatError(at.file, at.line, problem);
  }

  private locate(globalLine: number): { file: string; line: number } {
    let start = this.starts[0]!;
    for (const s of this.starts) if (s.firstLine <= globalLine) start = s;
    return { file: start.file, line: globalLine - start.firstLine + 1 };
  }
}
