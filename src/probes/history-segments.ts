/**
 * The segment layout of a history directory: a directory of JSON Lines segments (history-000001.jsonl,
 * ...), written as the run goes (history-writer.ts) and read back as one history (history-segment-reader.ts;
 * docs/history-format.md, "Segments"). This module names the segments, lists them, and says which of them
 * form a history that can be read.
 *
 * Every segment starts with a header: the meta line and an opening line for each watch stream still open,
 * so a segment is a valid history file on its own and the segments left after the oldest were deleted
 * (maxSegments) can still be read. When the segments are read together, the header copies are skipped, so
 * the result equals what was written. Invocations are not repeated: an invoke line and the operation line
 * that completes it may sit in two segments, and a segment read alone leaves its open invocation an unknown
 * outcome and takes a completion without its invocation as complete on its own, which both stay valid.
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const segmentPattern = /^history-(\d+)\.jsonl$/;

export function segmentFileName(index: number): string {
  return `history-${String(index).padStart(6, '0')}.jsonl`;
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

export function existingSegments(dir: string): { index: number; name: string }[] {
  return readdirSync(dir)
    .flatMap((name) => {
      const match = segmentPattern.exec(name);
      return match ? [{ index: Number(match[1]), name }] : [];
    })
    .sort((a, b) => a.index - b.index);
}

export interface ReadHistoryDirectoryOptions {
  /**
   * Read what is left after the oldest segments were deleted (maxSegments). Off by default: the end of a
   * history is not a history the checker can judge (the deleted writes are missing), so it would give
   * false violations.
   */
  allowSuffix?: boolean;
}

export function segmentPaths(dir: string, options: ReadHistoryDirectoryOptions): string[] {
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
