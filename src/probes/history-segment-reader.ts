/**
 * Reads a directory of segments (history-segments.ts has the layout) as the one history they form: the
 * header copies at the top of later segments are skipped, and errors name the segment and its own line.
 */
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { HistoryFormatError } from '../checker/history-lines.ts';
import { HistoryParser, type HistoryParserOptions, watchResponsePrefix } from '../checker/parse.ts';
import type { History, Operation } from '../domain/index.ts';
import { readLines, withLast } from './history-line-reader.ts';
import { HistoryDirectoryError, segmentPaths, type ReadHistoryDirectoryOptions } from './history-segments.ts';

/** Reads a directory written by HistoryFileWriter as the one history its segments form. */
export function readHistoryDirectory(dir: string, options: ReadHistoryDirectoryOptions = {}): History {
  const reader = new SegmentReader(dir);
  const files = segmentPaths(dir, options);
  for (const [i, file] of files.entries()) reader.segment(file, segmentLines(dir, file), i === files.length - 1);
  return reader.finish();
}

/** A segment's lines; an unreadable segment is the directory's error (FILE:LINE errors stay the parser's). */
export function* segmentLines(dir: string, file: string): Generator<string> {
  try {
    yield* readLines(file);
  } catch (error) {
    if (error instanceof HistoryFormatError) throw error;
    throw new HistoryDirectoryError(dir, `cannot read ${path.basename(file)}: ${(error as Error).message}`);
  }
}

/** How our writer starts an operation line: never a header (meta or watch opening). */
const operationPrefix = /^\{"client":\d+,"call":/;

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
export class SegmentReader {
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
