/**
 * The local side of a stored report: the files of a report directory to store, gzip-compressed with
 * their size and SHA-256 counted on the way, and the empty folder a fetch restores into.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { ReportStoreError, type ReportIndex } from './stored-report.ts';

export interface SourceFile {
  /** Relative, with `/`: verdict.json, report.html, history/history-000001.jsonl. */
  path: string;
  absolute: string;
  /** Bytes when listed. */
  size: number;
}

const segmentName = /^[-._a-zA-Z0-9]+\.jsonl$/;

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** The files of a report directory to store: verdict.json (required), report.html and the history segments (when there). */
export async function reportFiles(reportDir: string, who: string): Promise<{ verdict: SourceFile; html?: SourceFile; history: SourceFile[] }> {
  try {
    const verdictPath = path.join(reportDir, 'verdict.json');
    if (!(await isFile(verdictPath))) throw new ReportStoreError(who, `no verdict.json in ${reportDir}: not a finished run's report directory`);
    const htmlPath = path.join(reportDir, 'report.html');
    const html = (await isFile(htmlPath)) ? { path: 'report.html', absolute: htmlPath, size: (await stat(htmlPath)).size } : undefined;
    const historyDir = path.join(reportDir, 'history');
    let names: string[] = [];
    try {
      names = (await readdir(historyDir, { withFileTypes: true })).filter((d) => d.isFile() && d.name.endsWith('.jsonl')).map((d) => d.name);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    const odd = names.find((name) => !segmentName.test(name));
    if (odd !== undefined) throw new ReportStoreError(who, `history file name "${odd}" is not a valid key (letters, digits, -, _ and . only)`);
    // Segment names are zero-padded, so name order is history order.
    const history: SourceFile[] = [];
    for (const name of names.sort()) {
      const absolute = path.join(historyDir, name);
      history.push({ path: `history/${name}`, absolute, size: (await stat(absolute)).size });
    }
    return { verdict: { path: 'verdict.json', absolute: verdictPath, size: (await stat(verdictPath)).size }, ...(html ? { html } : {}), history };
  } catch (error) {
    if (error instanceof ReportStoreError) throw error;
    throw new ReportStoreError(who, `cannot read the report directory ${reportDir}: ${(error as Error).message}`, { cause: error });
  }
}

/** Over the byte budget given to compressFile. */
export class OverBudget extends Error {}

export interface Compressed {
  data: Buffer;
  bytes: number;
  sha256: string;
}

/**
 * gzip-compresses a file into `sink` (streaming, off the event loop), hashing and counting the original
 * bytes on the way: what a stored report's index records of each file.
 */
export async function gzipFile(file: string, sink: NodeJS.WritableStream | ((source: AsyncIterable<Buffer>) => Promise<void>)): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  await pipeline(
    createReadStream(file),
    async function* (source: AsyncIterable<Buffer>) {
      for await (const chunk of source) {
        hash.update(chunk);
        bytes += chunk.length;
        yield chunk;
      }
    },
    createGzip({ level: 9 }),
    sink,
  );
  return { bytes, sha256: hash.digest('hex') };
}

/** gzip-compresses a file in memory; throws OverBudget once the output passes `budget`. */
export async function compressFile(file: string, budget: number): Promise<Compressed> {
  const chunks: Buffer[] = [];
  let size = 0;
  const { bytes, sha256 } = await gzipFile(file, async (source) => {
    for await (const chunk of source) {
      size += chunk.length;
      if (size > budget) throw new OverBudget();
      chunks.push(chunk);
    }
  });
  return { data: Buffer.concat(chunks), bytes, sha256 };
}

/** Refuses to restore over a report directory's files: two reports mixed in one folder would be wrong. */
export async function prepareTarget(targetDir: string, index: ReportIndex, who: string): Promise<void> {
  try {
    await mkdir(targetDir, { recursive: true });
    for (const name of ['verdict.json', 'report.html', 'history']) {
      try {
        await stat(path.join(targetDir, name));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw error;
      }
      throw new ReportStoreError(who, `${path.join(targetDir, name)} exists already; restore into an empty folder`);
    }
    if (index.files.some((f) => f.path.startsWith('history/'))) await mkdir(path.join(targetDir, 'history'));
  } catch (error) {
    if (error instanceof ReportStoreError) throw error;
    throw new ReportStoreError(who, `cannot prepare ${targetDir}: ${(error as Error).message}`, { cause: error });
  }
}
