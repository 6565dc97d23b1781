/**
 * Reading a manifest's YAML nodes with their positions: sections (mappings whose unknown fields are
 * reported, with a guess at the intended name), fields read through a rule, and every problem collected
 * as a ManifestIssue at `FILE:LINE:COLUMN` so a user can fix a manifest in one pass.
 */
import { isAlias, isMap, isScalar, isSeq } from 'yaml';
import type { Document, LineCounter, Node, YAMLError, YAMLMap } from 'yaml';
import { closest, Collection, describe, Reject } from './manifest-rules.ts';
import type { Rule } from './manifest-rules.ts';

export interface ManifestIssue {
  file: string | undefined;
  /** 1-based; undefined only for runs that were not read from text (defaultRobustnessRun). */
  line: number | undefined;
  column: number | undefined;
  /** Dotted path of the field, e.g. `spec.traffic.qps.target`; empty for YAML syntax errors. */
  path: string;
  problem: string;
}

export function formatManifestIssue(issue: ManifestIssue): string {
  const location = [issue.file, issue.line, issue.column].filter((part) => part !== undefined).join(':');
  return [location, issue.path, issue.problem].filter((part) => part !== '').join(': ');
}

/**
 * Every problem of a manifest, one per line of the message. `file`, `line`, `column`, `path` and
 * `problem` describe the first one (in document order) for callers that only show one.
 */
export class ManifestError extends Error {
  override name = 'ManifestError';
  readonly file: string | undefined;
  readonly line: number | undefined;
  readonly column: number | undefined;
  readonly path: string;
  readonly problem: string;
  readonly issues: readonly ManifestIssue[];
  constructor(issues: readonly [ManifestIssue, ...ManifestIssue[]]) {
    super(issues.map(formatManifestIssue).join('\n'));
    const first = issues[0];
    this.file = first.file;
    this.line = first.line;
    this.column = first.column;
    this.path = first.path;
    this.problem = first.problem;
    this.issues = issues;
  }
}

// ---------------------------------------------------------------------------------------------------
// Reading YAML nodes with their positions

export interface Context {
  doc: Document | undefined;
  lines: LineCounter | undefined;
  file: string | undefined;
  issues: ManifestIssue[];
}

/** One `name: value` of a mapping; `value` is null for a key written without one (`? name`). */
export interface Entry {
  path: string;
  key: Node | undefined;
  value: Node | null;
}

/** A mapping of the manifest whose unknown fields have already been reported. */
export interface Section {
  path: string;
  /** Where a missing field of this section is reported: its key in the parent, or the mapping itself. */
  at: Node | undefined;
  present: boolean;
  entries: ReadonlyMap<string, Entry>;
}

export function join(path: string, name: string): string {
  return path === '' ? name : `${path}.${name}`;
}

export function emptySection(path: string, at: Node | undefined): Section {
  return { path, at, present: false, entries: new Map() };
}

/** `node` undefined means the start of the text: an empty manifest still has a line to point at. */
export function report(ctx: Context, node: Node | undefined, path: string, problem: string): void {
  const offset = node === undefined ? 0 : node.range?.[0];
  const pos = offset === undefined || ctx.lines === undefined ? undefined : ctx.lines.linePos(offset);
  ctx.issues.push({ file: ctx.file, line: pos?.line, column: pos?.col, path, problem });
}

export function resolve(ctx: Context, node: Node | null): Node | null {
  if (node === null || !isAlias(node)) return node;
  return (ctx.doc === undefined ? undefined : node.resolve(ctx.doc)) ?? null;
}

export function isNull(node: Node | null): boolean {
  return node === null || (isScalar(node) && node.value === null);
}

/** An entry that is absent or written as `null`/empty, which Kubernetes also treats as unset. */
export function isAbsent(ctx: Context, entry: Entry | undefined): boolean {
  return entry === undefined || isNull(resolve(ctx, entry.value));
}


export function scalarOf(ctx: Context, node: Node | null): unknown {
  const resolved = resolve(ctx, node);
  if (isMap(resolved)) return new Collection('a mapping');
  if (isSeq(resolved)) return new Collection('a list');
  return isScalar(resolved) ? resolved.value : null;
}

export function unknownField(name: string, allowed: readonly string[]): string {
  const guess = closest(name, allowed);
  if (guess !== undefined) return `unknown field, did you mean "${guess}"?`;
  return allowed.length === 0 ? 'unknown field (this section has no fields)' : `unknown field (allowed: ${allowed.join(', ')})`;
}

export interface SectionRules {
  /** 'any' for mappings whose keys are data (labels). */
  allowed: readonly string[] | 'any';
  /** Fields a later version will accept: a clearer message than "unknown field". */
  reserved?: readonly string[];
  /** Replaces the "unknown field" message, for sections whose keys are data (weights). */
  unknown?: (name: string) => string;
}

export function collectEntries(ctx: Context, map: YAMLMap, path: string, rules: SectionRules): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  for (const pair of map.items) {
    const key = pair.key as Node | null;
    const value = pair.value as Node | null;
    const name = scalarOf(ctx, key);
    const keyNode = key ?? undefined;
    if (typeof name !== 'string') {
      report(ctx, keyNode ?? value ?? undefined, path, `field names must be strings, got ${describe(name)}`);
      continue;
    }
    const fieldPath = join(path, name);
    const allowed = rules.allowed;
    if (rules.reserved?.includes(name) === true) {
      report(ctx, keyNode, fieldPath, 'not supported by this version yet');
    } else if (allowed !== 'any' && !allowed.includes(name)) {
      report(ctx, keyNode, fieldPath, rules.unknown === undefined ? unknownField(name, allowed) : rules.unknown(name));
    } else {
      entries.set(name, { path: fieldPath, key: keyNode, value });
    }
  }
  return entries;
}

/** Reads an optional mapping; a wrong type is reported and read as an empty section so defaults apply. */
export function section(ctx: Context, entry: Entry | undefined, path: string, at: Node | undefined, rules: SectionRules): Section {
  if (entry === undefined || isAbsent(ctx, entry)) return emptySection(path, entry?.key ?? at);
  const map = resolve(ctx, entry.value);
  if (map === null || !isMap(map)) {
    report(ctx, entry.value ?? entry.key, path, `must be a mapping, got ${describe(scalarOf(ctx, entry.value))}`);
    return emptySection(path, entry.key);
  }
  return { path, at: entry.key ?? map, present: true, entries: collectEntries(ctx, map, path, rules) };
}

export function child(ctx: Context, parent: Section, name: string, rules: SectionRules): Section {
  return section(ctx, parent.entries.get(name), join(parent.path, name), parent.at, rules);
}

export function requireSection(ctx: Context, parent: Section, name: string, rules: SectionRules): Section {
  const result = child(ctx, parent, name, rules);
  const entry = parent.entries.get(name);
  if (!result.present && isAbsent(ctx, entry)) report(ctx, entry?.key ?? parent.at, result.path, 'is required');
  return result;
}

export function read<T>(ctx: Context, entry: Entry | undefined, rule: Rule<T>): T | undefined {
  if (entry === undefined || isAbsent(ctx, entry)) return undefined;
  const result = rule(scalarOf(ctx, entry.value));
  if (!(result instanceof Reject)) return result;
  report(ctx, entry.value ?? entry.key, entry.path, result.problem);
  return undefined;
}

export function readRequired<T>(ctx: Context, parent: Section, name: string, rule: Rule<T>): T | undefined {
  const entry = parent.entries.get(name);
  if (parent.present && isAbsent(ctx, entry)) report(ctx, entry?.key ?? parent.at, join(parent.path, name), 'is required');
  return read(ctx, entry, rule);
}

export function field<T>(ctx: Context, s: Section, name: string, rule: Rule<T>): T | undefined {
  return read(ctx, s.entries.get(name), rule);
}

function syntaxProblem(error: YAMLError): string {
  switch (error.code) {
    case 'MULTIPLE_DOCS':
      return 'a manifest must hold exactly one YAML document; a second one starts here';
    case 'DUPLICATE_KEY':
      return 'this field is given twice in the same mapping';
    default:
      return `YAML syntax error: ${error.message}`;
  }
}

export function syntaxIssue(ctx: Context, error: YAMLError): ManifestIssue {
  const pos = ctx.lines?.linePos(error.pos[0]);
  return { file: ctx.file, line: pos?.line, column: pos?.col, path: '', problem: syntaxProblem(error) };
}

function byPosition(a: ManifestIssue, b: ManifestIssue): number {
  return (a.line ?? Infinity) - (b.line ?? Infinity) || (a.column ?? Infinity) - (b.column ?? Infinity);
}

export function failIfIssues(ctx: Context): void {
  const [first, ...rest] = [...ctx.issues].sort(byPosition);
  if (first !== undefined) throw new ManifestError([first, ...rest]);
}
