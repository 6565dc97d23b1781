/**
 * Packs a run's history directory (segments, docs/history-format.md) into one gzipped JSONL file for the
 * replay bench:
 *
 *   node bench/histories/pack.ts <report>/history bench/histories/<name>.jsonl.gz
 *
 * The segments are concatenated in number order and each later segment's header copies (the meta line
 * and the openings of the streams still open, repeated at its top) are dropped, exactly as the segment
 * reader skips them: the result is one history file, every other line in the order the run wrote it.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

const segmentName = /^history-(\d{6})\.jsonl$/;

/** The meta line or a watch stream's opening: the only lines a segment header repeats. */
function headerKey(line: string): string | undefined {
  if (!line.startsWith('{"kind":"meta"') && !line.startsWith('{"kind":"watch"')) return undefined;
  const raw = JSON.parse(line) as { kind: string; id?: number; request?: unknown };
  if (raw.kind === 'meta') return 'meta';
  return raw.request === undefined ? undefined : `watch ${String(raw.id)}`;
}

/** The lines of the segments as one history, header copies dropped. */
export function concatenateSegments(segments: string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  segments.forEach((text, i) => {
    let inHeader = i > 0;
    for (const line of text.split('\n')) {
      if (line === '') continue;
      const key = headerKey(line);
      if (inHeader && key !== undefined && seen.has(key)) continue;
      inHeader = false;
      if (key !== undefined) seen.add(key);
      out.push(line);
    }
  });
  return out;
}

function main(argv: string[]): void {
  const [dir, target] = argv;
  if (dir === undefined || target === undefined) {
    process.stderr.write('usage: node bench/histories/pack.ts HISTORY_DIR OUT.jsonl.gz\n');
    process.exit(64);
  }
  const names = readdirSync(dir).filter((n) => segmentName.test(n)).sort();
  const lines = concatenateSegments(names.map((n) => readFileSync(path.join(dir, n), 'utf8')));
  const text = `${lines.join('\n')}\n`;
  const gz = gzipSync(text, { level: 9 });
  writeFileSync(target, gz);
  const operations = lines.filter((l) => !l.startsWith('{"kind"')).length;
  process.stdout.write(`${target}: ${names.length} segments, ${lines.length} lines, ${operations} operations, ${text.length} bytes, ${gz.length} gzipped\n`);
}

// Run as a script only: the test imports concatenateSegments.
if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === new URL(import.meta.url).pathname) main(process.argv.slice(2));
