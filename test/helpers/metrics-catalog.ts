/**
 * Reads the metrics catalog (docs/metrics.md): every markdown table row whose first cell is a
 * backticked metric name, under a header row whose first cell is `Metric`. Columns: Metric, Type,
 * Labels (backticked names separated by commas, or `none`), Meaning. The drift, alert and dashboard
 * tests all read the catalog through this one parser.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const catalogPath = fileURLToPath(new URL('../../docs/metrics.md', import.meta.url));

export const metricTypes = ['counter', 'gauge', 'histogram', 'summary'] as const;
export type MetricType = (typeof metricTypes)[number];

export interface CatalogEntry {
  name: string;
  type: MetricType;
  labels: string[];
  meaning: string;
  /** The `##` heading the row is under. */
  section: string;
  /** 1-based line in docs/metrics.md. */
  line: number;
}

export class CatalogFormatError extends Error {
  override name = 'CatalogFormatError';
  constructor(file: string, line: number, message: string) {
    super(`${path.basename(file)}:${line}: ${message}`);
  }
}

/** A row's cells: split on unescaped pipes, `\|` (a pipe inside a cell, as markdown writes it) unescaped. */
const cells = (row: string): string[] =>
  row
    .trim()
    .replace(/^\|/, '')
    .replace(/(?<!\\)\|$/, '')
    .split(/(?<!\\)\|/)
    .map((c) => c.trim().replaceAll('\\|', '|'));

export function parseCatalog(text: string, file = catalogPath): CatalogEntry[] {
  const entries: CatalogEntry[] = [];
  let section = '';
  let inTable = false;
  const lines = text.split('\n');
  lines.forEach((raw, index) => {
    const line = index + 1;
    const heading = /^##+\s+(.*)$/.exec(raw);
    if (heading) {
      section = heading[1]!.trim();
      inTable = false;
      return;
    }
    if (!raw.trim().startsWith('|')) {
      inTable = false;
      return;
    }
    const row = cells(raw);
    if (row[0]?.toLowerCase() === 'metric') {
      inTable = true;
      return;
    }
    if (!inTable || /^:?-+:?$/.test(row[0] ?? '')) return;
    const name = /^`([a-zA-Z_:][a-zA-Z0-9_:]*)`$/.exec(row[0] ?? '')?.[1];
    if (name === undefined) throw new CatalogFormatError(file, line, `the first cell must be a backticked metric name, found "${row[0]}"`);
    if (row.length !== 4) throw new CatalogFormatError(file, line, `${name}: expected 4 cells (Metric | Type | Labels | Meaning), found ${row.length}`);
    const type = row[1]!.toLowerCase();
    if (!(metricTypes as readonly string[]).includes(type)) throw new CatalogFormatError(file, line, `${name}: unknown type "${row[1]}"`);
    const labelCell = row[2]!;
    const labels =
      labelCell === 'none' || labelCell === ''
        ? []
        : labelCell.split(',').map((l) => {
            const label = /^`([a-zA-Z_][a-zA-Z0-9_]*)`$/.exec(l.trim())?.[1];
            if (label === undefined) throw new CatalogFormatError(file, line, `${name}: labels must be backticked names separated by commas, found "${l.trim()}"`);
            return label;
          });
    if (row[3]!.length === 0) throw new CatalogFormatError(file, line, `${name}: the meaning is empty`);
    entries.push({ name, type: type as MetricType, labels, meaning: row[3]!, section, line });
  });
  return entries;
}

export function readCatalog(file = catalogPath): CatalogEntry[] {
  return parseCatalog(readFileSync(file, 'utf8'), file);
}

/**
 * The series names a catalog entry stands for in PromQL: a histogram's `_bucket`, `_sum` and `_count`,
 * a summary's `_sum` and `_count` besides its own name.
 */
export function seriesNames(entry: CatalogEntry): string[] {
  if (entry.type === 'histogram') return [`${entry.name}_bucket`, `${entry.name}_sum`, `${entry.name}_count`];
  if (entry.type === 'summary') return [entry.name, `${entry.name}_sum`, `${entry.name}_count`];
  return [entry.name];
}
