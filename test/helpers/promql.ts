/**
 * PromQL for tests that check queries against the metrics catalog (docs/metrics.md): the alert rules and
 * the Grafana dashboard. Expressions are parsed with the Prometheus project's own grammar
 * (@prometheus-io/lezer-promql, the parser of the Prometheus UI), so a query that Prometheus would reject
 * fails the test; the tests then read the metric names and label matchers from the syntax tree. Grafana
 * variables (`$cluster`, `${run:regex}`, `[[interval]]`, `$__rate_interval`) are not PromQL: they are
 * replaced first by a value of the kind their place needs (a string after a match operator, a duration
 * or number elsewhere); inside string literals they are left alone.
 */
import { parser } from '@prometheus-io/lezer-promql';

export class PromqlReadError extends Error {
  override name = 'PromqlReadError';
  constructor(expr: string, position: number, message: string) {
    super(`${message} at offset ${position} of ${JSON.stringify(expr)}`);
  }
}

type SyntaxNode = ReturnType<typeof parser.parse>['topNode'];

/** One vector selector: the metric it names and the labels its matchers test (besides __name__). */
export interface Selector {
  metric: string;
  labels: string[];
}

const grafanaVariable = /\$\{[A-Za-z0-9_]+(?:[:.][^}]*)?\}|\$[A-Za-z0-9_]+|\[\[[A-Za-z0-9_]+(?::[^\]]*)?\]\]/y;

/**
 * The expression with each Grafana variable outside string literals replaced by a PromQL value of the same
 * length or less (offsets in errors stay close): `"v"` after a match operator, else `5m` (a duration, and a
 * number in Prometheus 3's grammar).
 */
function withoutGrafanaVariables(expr: string): string {
  let out = '';
  let i = 0;
  while (i < expr.length) {
    const c = expr[i]!;
    if (c === '"' || c === "'" || c === '`') {
      const end = stringEnd(expr, i);
      out += expr.slice(i, end);
      i = end;
      continue;
    }
    grafanaVariable.lastIndex = i;
    const m = grafanaVariable.exec(expr);
    if (m) {
      out += /(=|!=|=~|!~)\s*$/.test(out) ? '"v"' : '5m';
      i += m[0].length;
      continue;
    }
    out += c;
    i += 1;
  }
  return out;
}

/** Index just past a string literal that starts at `start` (or the end of the expression: the parser reports it). */
function stringEnd(expr: string, start: number): number {
  const quote = expr[start]!;
  let i = start + 1;
  while (i < expr.length) {
    const c = expr[i]!;
    if (c === '\\' && quote !== '`') i += 2;
    else if (c === quote) return i + 1;
    else i += 1;
  }
  return expr.length;
}

/** A string literal's value ("...", '...' with escapes; `...` raw). */
function stringValue(text: string): string {
  if (text.startsWith('`')) return text.slice(1, -1);
  return text.slice(1, -1).replace(/\\(.)/g, '$1');
}

/** Parses one expression; a syntax error (an error node anywhere in the tree) is a PromqlReadError. */
function parse(expr: string): { top: SyntaxNode; text: string } {
  const text = withoutGrafanaVariables(expr);
  const tree = parser.parse(text);
  let error: number | undefined;
  tree.iterate({
    enter: (node) => {
      if (error === undefined && node.type.isError) error = node.from;
      return error === undefined;
    },
  });
  if (error !== undefined) throw new PromqlReadError(expr, error, 'not valid PromQL');
  return { top: tree.topNode, text };
}

function childrenOf(node: SyntaxNode): SyntaxNode[] {
  const children: SyntaxNode[] = [];
  for (let child = node.firstChild; child !== null; child = child.nextSibling) children.push(child);
  return children;
}

/** One VectorSelector node as a Selector (its name from the identifier, a quoted name or an exact __name__ matcher). */
function selectorOf(node: SyntaxNode, text: string, expr: string): Selector[] {
  const slice = (n: SyntaxNode): string => text.slice(n.from, n.to);
  const names: string[] = [];
  const labels: string[] = [];
  for (const child of childrenOf(node)) {
    if (child.name === 'Identifier') names.push(slice(child));
    if (child.name !== 'LabelMatchers') continue;
    for (const matcher of childrenOf(child)) {
      if (matcher.name === 'QuotedLabelName') {
        names.push(stringValue(slice(matcher.firstChild ?? matcher)));
        continue;
      }
      if (matcher.name !== 'UnquotedLabelMatcher' && matcher.name !== 'QuotedLabelMatcher') continue;
      const [labelNode, opNode, valueNode] = childrenOf(matcher);
      const label = labelNode!.name === 'QuotedLabelName' ? stringValue(slice(labelNode!.firstChild ?? labelNode!)) : slice(labelNode!);
      if (label !== '__name__') {
        labels.push(label);
        continue;
      }
      const op = slice(opNode!);
      if (op !== '=') throw new PromqlReadError(expr, opNode!.from, `__name__${op}: only an exact __name__ matcher names a metric`);
      names.push(stringValue(slice(valueNode!)));
    }
  }
  return names.map((metric) => ({ metric, labels }));
}

/** Every vector selector of a PromQL expression, in order of appearance. */
export function selectorsOf(expr: string): Selector[] {
  const { top, text } = parse(expr);
  const selectors: Selector[] = [];
  const cursor = top.cursor();
  do {
    if (cursor.name === 'VectorSelector') selectors.push(...selectorOf(cursor.node, text, expr));
  } while (cursor.next());
  return selectors;
}

/** The metric names a PromQL expression selects, sorted and unique. */
export function metricNamesOf(expr: string): string[] {
  return [...new Set(selectorsOf(expr).map((s) => s.metric))].sort();
}

/** The Grafana variables an expression refers to: `$name`, `${name}`, `${name:fmt}`, `[[name]]`. */
export function grafanaVariablesOf(expr: string): string[] {
  const vars = new Set<string>();
  for (const m of expr.matchAll(/\$\{([A-Za-z0-9_]+)(?:[:.][^}]*)?\}|\$([A-Za-z0-9_]+)|\[\[([A-Za-z0-9_]+)(?::[^\]]*)?\]\]/g)) {
    vars.add((m[1] ?? m[2] ?? m[3])!);
  }
  return [...vars].sort();
}
