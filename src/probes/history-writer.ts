/**
 * Writes a history as it happens into a directory of segments (history-segments.ts has the layout):
 * buffered, rotated at a size limit with the header repeated, the oldest segments deleted past a count.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { serializeFaultLine, serializeInvokeLine, serializeMetaLine, serializeOperationLine, serializeWatchOpenLine, serializeWatchResponseLine } from '../checker/serialize.ts';
import type { FaultEvent, HistoryMeta, Invocation, Operation, WatchResponse, WatchStream } from '../domain/index.ts';
import { existingSegments, segmentFileName } from './history-segments.ts';

export const defaultMaxSegmentBytes = 64 * 1024 * 1024;
/** Buffered lines reach the OS at least this often, so a crash of the process loses at most this much. */
export const flushIntervalMs = 100;
/** Also flush when this much is buffered, which bounds memory at any write rate. */
const maxBufferedBytes = 1024 * 1024;

/** The directory or a segment could not be created, written, synced or deleted. */
export class HistoryWriteError extends Error {
  override name = 'HistoryWriteError';
  readonly path: string;
  constructor(file: string, action: string, cause: unknown) {
    super(`${file}: cannot ${action}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.path = file;
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

  /** The meta and the streams still open, so this segment reads on its own (see history-segments.ts). */
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
