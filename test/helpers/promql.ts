/**
 * A small PromQL reader for tests that check queries against the metrics catalog (docs/metrics.md):
 * the alert rules and the Grafana dashboard. It does not validate PromQL; it finds the metric names an
 * expression selects, skipping everything that is not one: label matchers inside `{...}`, durations and
 * subqueries inside `[...]`, string and number literals, functions and aggregations (`rate(`,
 * `sum by (a) (`), their `by`/`without` label lists, `on(...)`/`ignoring(...)`/`group_left(...)`,
 * keywords (`bool`, `and`, `or`, `unless`, `offset`, `@`), and Grafana variables (`$cluster`,
 * `${datasource}`, `${run:regex}`, `[[run]]`, `$__rate_interval`).
 */

export class PromqlReadError extends Error {
  override name = 'PromqlReadError';
  constructor(expr: string, position: number, message: string) {
    super(`${message} at offset ${position} of ${JSON.stringify(expr)}`);
  }
}

/** Keywords that stand where an identifier could, case-insensitive in PromQL. */
const keywords = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);
/** Keywords followed by a parenthesised list of label names (optional for group_left/group_right). */
const labelListKeywords = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);

const isIdentStart = (c: string): boolean => /[A-Za-z_:]/.test(c);
const isIdentChar = (c: string): boolean => /[A-Za-z0-9_:]/.test(c);
const isSpace = (c: string): boolean => /\s/.test(c);

/** Index just past a string literal that starts at `start` ("...", '...' or `...`). */
function skipString(expr: string, start: number): number {
  const quote = expr[start]!;
  let i = start + 1;
  while (i < expr.length) {
    const c = expr[i]!;
    if (c === '\\' && quote !== '`') i += 2;
    else if (c === quote) return i + 1;
    else i += 1;
  }
  throw new PromqlReadError(expr, start, 'unterminated string literal');
}

function readString(expr: string, start: number): { value: string; end: number } {
  const end = skipString(expr, start);
  const body = expr.slice(start + 1, end - 1);
  const value = expr[start] === '`' ? body : body.replace(/\\(.)/g, '$1');
  return { value, end };
}

/** Index just past a Grafana variable starting at `start` (`$name`, `${name...}`), or `start` if none. */
function skipVariable(expr: string, start: number): number {
  if (expr[start] !== '$') return start;
  if (expr[start + 1] === '{') {
    const close = expr.indexOf('}', start + 2);
    if (close < 0) throw new PromqlReadError(expr, start, 'unterminated ${...} variable');
    return close + 1;
  }
  let i = start + 1;
  while (i < expr.length && /[A-Za-z0-9_]/.test(expr[i]!)) i += 1;
  if (i === start + 1) throw new PromqlReadError(expr, start, 'a lone "$"');
  return i;
}

function skipSpaceAndComments(expr: string, start: number): number {
  let i = start;
  for (;;) {
    while (i < expr.length && isSpace(expr[i]!)) i += 1;
    if (expr[i] !== '#') return i;
    while (i < expr.length && expr[i] !== '\n') i += 1;
  }
}

/** Index just past the `]` matching the `[` at `start` (nested for Grafana's `[[var]]`). */
function skipBrackets(expr: string, start: number): number {
  let depth = 0;
  for (let i = start; i < expr.length; i += 1) {
    const c = expr[i]!;
    if (c === '"' || c === "'" || c === '`') {
      i = skipString(expr, i) - 1;
    } else if (c === '[') depth += 1;
    else if (c === ']') {
      depth -= 1;
      if (depth === 0) return i + 1;
    }
  }
  throw new PromqlReadError(expr, start, 'unterminated "["');
}

/** Index just past the `)` matching the `(` at `start`: a label list after by/without/on/... */
function skipParens(expr: string, start: number): number {
  let depth = 0;
  for (let i = start; i < expr.length; i += 1) {
    const c = expr[i]!;
    if (c === '"' || c === "'" || c === '`') i = skipString(expr, i) - 1;
    else if (c === '(') depth += 1;
    else if (c === ')') {
      depth -= 1;
      if (depth === 0) return i + 1;
    }
  }
  throw new PromqlReadError(expr, start, 'unterminated "("');
}

/**
 * Reads the label matchers of `{...}` starting at `start`; returns the index past `}` and the metric
 * name the braces select, if any: `{__name__="x"}` or Prometheus 3's quoted name `{"x", a="b"}`.
 */
function readMatchers(expr: string, start: number): { end: number; names: string[]; labels: string[] } {
  const names: string[] = [];
  const labels: string[] = [];
  let i = start + 1;
  for (;;) {
    i = skipSpaceAndComments(expr, i);
    const c = expr[i];
    if (c === undefined) throw new PromqlReadError(expr, start, 'unterminated "{"');
    if (c === '}') return { end: i + 1, names, labels };
    if (c === ',') {
      i += 1;
      continue;
    }
    let label: string;
    if (c === '"' || c === "'" || c === '`') {
      const s = readString(expr, i);
      label = s.value;
      i = s.end;
    } else if (isIdentStart(c)) {
      const from = i;
      while (i < expr.length && isIdentChar(expr[i]!)) i += 1;
      label = expr.slice(from, i);
    } else if (c === '$') {
      i = skipVariable(expr, i);
      label = '';
    } else {
      throw new PromqlReadError(expr, i, `unexpected "${c}" in label matchers`);
    }
    i = skipSpaceAndComments(expr, i);
    const op = /^(=~|!~|!=|=)/.exec(expr.slice(i))?.[1];
    if (op === undefined) {
      // A bare quoted string is the metric name (Prometheus 3).
      if (label !== '' && (c === '"' || c === "'" || c === '`')) names.push(label);
      else throw new PromqlReadError(expr, i, `expected a matcher operator after label "${label}"`);
      continue;
    }
    i = skipSpaceAndComments(expr, i + op.length);
    const q = expr[i];
    let value = '';
    if (q === '"' || q === "'" || q === '`') {
      const s = readString(expr, i);
      value = s.value;
      i = s.end;
    } else if (q === '$') {
      i = skipVariable(expr, i);
    } else {
      throw new PromqlReadError(expr, i, `expected a quoted value for label "${label}"`);
    }
    if (label === '__name__') {
      if (op !== '=') throw new PromqlReadError(expr, i, `__name__${op}: only an exact __name__ matcher names a metric`);
      names.push(value);
    } else if (label !== '') labels.push(label);
  }
}

/** One vector selector: the metric it names and the labels its matchers test (besides __name__). */
export interface Selector {
  metric: string;
  labels: string[];
}

/** The metric names a PromQL expression selects, sorted and unique. */
export function metricNamesOf(expr: string): string[] {
  return [...new Set(selectorsOf(expr).map((s) => s.metric))].sort();
}

/** Every vector selector of a PromQL expression, in order of appearance. */
export function selectorsOf(expr: string): Selector[] {
  const selectors: Selector[] = [];
  let i = 0;
  while (i < expr.length) {
    i = skipSpaceAndComments(expr, i);
    const c = expr[i];
    if (c === undefined) break;
    if (c === '"' || c === "'" || c === '`') {
      i = skipString(expr, i);
    } else if (c === '$') {
      i = skipVariable(expr, i);
    } else if (c === '[') {
      i = skipBrackets(expr, i);
    } else if (c === '{') {
      const m = readMatchers(expr, i);
      for (const metric of m.names) selectors.push({ metric, labels: m.labels });
      i = m.end;
    } else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(expr[i + 1] ?? ''))) {
      // Numbers (1, 0.5, 1e3, 1e-3, 0x1f) and durations (5m, 1h30m).
      i += 1;
      while (i < expr.length) {
        const d = expr[i]!;
        if (/[A-Za-z0-9_.]/.test(d)) {
          i += 1;
          if ((d === 'e' || d === 'E') && (expr[i] === '+' || expr[i] === '-') && /[0-9]/.test(expr[i + 1] ?? '')) i += 1;
        } else break;
      }
    } else if (isIdentStart(c)) {
      const from = i;
      while (i < expr.length && isIdentChar(expr[i]!)) i += 1;
      const word = expr.slice(from, i);
      const lower = word.toLowerCase();
      const next = skipSpaceAndComments(expr, i);
      if (labelListKeywords.has(lower)) {
        if (expr[next] === '(') i = skipParens(expr, next);
      } else if (keywords.has(lower)) {
        // and/or/unless/bool/offset/Inf/NaN, start()/end() after @.
      } else if (expr[next] === '(' || /^(by|without)\s*\(/i.test(expr.slice(next))) {
        // A function or an aggregation (`sum by (a) (`): its arguments are read as the loop goes on;
        // start() and end() after @ are functions too.
      } else if (expr[next] === '{') {
        const m = readMatchers(expr, next);
        selectors.push({ metric: word, labels: m.labels });
        for (const metric of m.names) selectors.push({ metric, labels: m.labels });
        i = m.end;
      } else {
        selectors.push({ metric: word, labels: [] });
      }
    } else {
      // Operators, parentheses, commas, @.
      i += 1;
    }
  }
  return selectors;
}

/** The Grafana variables an expression refers to: `$name`, `${name}`, `${name:fmt}`, `[[name]]`. */
export function grafanaVariablesOf(expr: string): string[] {
  const vars = new Set<string>();
  for (const m of expr.matchAll(/\$\{([A-Za-z0-9_]+)(?:[:.][^}]*)?\}|\$([A-Za-z0-9_]+)|\[\[([A-Za-z0-9_]+)(?::[^\]]*)?\]\]/g)) {
    vars.add((m[1] ?? m[2] ?? m[3])!);
  }
  return [...vars].sort();
}
