/**
 * Reading a history file line by line: a chunk at a time whatever its size, refusing what is not a regular
 * file and lines too long to be a history's.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { HistoryFormatError } from '../checker/history-lines.ts';

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

/** Each line with whether it is the last (the text after the last newline, which a crash may have cut). */
export function* withLast(lines: Iterable<string>): Generator<[string, boolean]> {
  let held: string | undefined;
  for (const line of lines) {
    if (held !== undefined) yield [held, false];
    held = line;
  }
  if (held !== undefined) yield [held, true];
}
