// The Grafana dashboard (config/grafana/etcd-robustness.json, copied into the chart) without a Grafana:
// it is a valid dashboard (schema version, unique panel ids, a layout without overlaps, the datasource
// variable everywhere), and every query — panel targets, variables, annotations — selects only metrics
// and labels the metrics catalog (docs/metrics.md) lists.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { stringify } from 'yaml';
import { packageRoot } from '../../src/local/index.ts';
import { catalogPath, readCatalog, seriesNames, type CatalogEntry } from '../helpers/metrics-catalog.ts';
import { grafanaVariablesOf, metricNamesOf, selectorsOf } from '../helpers/promql.ts';

const dashboardPath = path.join(packageRoot, 'config', 'grafana', 'etcd-robustness.json');
const chartCopyPath = path.join(packageRoot, 'charts', 'etcd-robustness-operator', 'dashboards', 'etcd-robustness.json');

interface GridPos {
  x: number;
  y: number;
  w: number;
  h: number;
}
interface DataSourceRef {
  type?: string;
  uid?: string;
}
interface Target {
  refId?: string;
  expr?: string;
  datasource?: DataSourceRef;
}
interface Panel {
  id?: number;
  type?: string;
  title?: string;
  gridPos?: GridPos;
  datasource?: DataSourceRef;
  targets?: Target[];
  collapsed?: boolean;
  panels?: Panel[];
}
interface Variable {
  name?: string;
  type?: string;
  query?: string | { query?: string };
  definition?: string;
  datasource?: DataSourceRef;
}
interface Annotation {
  name?: string;
  enable?: boolean;
  expr?: string;
  datasource?: DataSourceRef;
  builtIn?: number;
}
interface Dashboard {
  uid?: string;
  title?: string;
  tags?: string[];
  schemaVersion?: number;
  time?: { from?: string; to?: string };
  refresh?: string;
  panels?: Panel[];
  templating?: { list?: Variable[] };
  annotations?: { list?: Annotation[] };
}

/** The datasource every Prometheus panel, target, variable and annotation must use. */
const datasourceRef = { type: 'prometheus', uid: '${datasource}' };

/** Variables Grafana defines itself. */
const builtInVariables = new Set([
  '__interval',
  '__interval_ms',
  '__rate_interval',
  '__rate_interval_ms',
  '__range',
  '__range_s',
  '__range_ms',
  '__from',
  '__to',
  '__dashboard',
  '__org',
  '__user',
  'timeFilter',
]);

/** Labels Prometheus attaches to every scraped series, whatever the catalog says. */
const targetLabels = ['job', 'instance'];

const dashboardText = readFileSync(dashboardPath, 'utf8');
const dashboard = JSON.parse(dashboardText) as Dashboard;

/** Rows and panels, with the panels nested in collapsed rows. */
function allPanels(): Panel[] {
  return (dashboard.panels ?? []).flatMap((p) => [p, ...(p.panels ?? [])]);
}
const queryPanels = (): Panel[] => allPanels().filter((p) => p.type !== 'row');
const variables = (): Variable[] => dashboard.templating?.list ?? [];
const variableQuery = (v: Variable): string => (typeof v.query === 'string' ? v.query : (v.query?.query ?? ''));

/** Every query of the dashboard, with where it comes from (for failure messages). */
function allQueries(): { where: string; expr: string; kind: 'promql' | 'variable' }[] {
  const queries: { where: string; expr: string; kind: 'promql' | 'variable' }[] = [];
  for (const panel of queryPanels())
    for (const target of panel.targets ?? []) queries.push({ where: `panel "${panel.title}" target ${target.refId}`, expr: target.expr ?? '', kind: 'promql' });
  for (const v of variables()) if (v.type === 'query') queries.push({ where: `variable "${v.name}"`, expr: variableQuery(v), kind: 'variable' });
  for (const a of dashboard.annotations?.list ?? []) if (a.expr !== undefined) queries.push({ where: `annotation "${a.name}"`, expr: a.expr, kind: 'promql' });
  return queries;
}

/**
 * The PromQL inside a variable query: `label_values(<selector>, <label>)` gives the selector and the
 * label it reads; `query_result(<expr>)` the expression.
 */
function variablePromql(expr: string): { promql: string; label?: string } {
  const labelValues = /^\s*label_values\(\s*(.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$/s.exec(expr);
  if (labelValues) return { promql: labelValues[1]!, label: labelValues[2]! };
  const queryResult = /^\s*query_result\((.*)\)\s*$/s.exec(expr);
  if (queryResult) return { promql: queryResult[1]! };
  assert.fail(`unsupported variable query ${JSON.stringify(expr)}: use label_values(selector, label) or query_result(expr)`);
}

/**
 * A query as Prometheus receives it: Grafana's interval variables become durations, other variables
 * (inside label values) a plain value.
 */
const substituted = (expr: string): string =>
  expr
    .replace(/\$\{?__(rate_interval|interval|range)\}?/g, '5m')
    .replace(/\$\{[A-Za-z0-9_]+(?::[^}]*)?\}|\$[A-Za-z0-9_]+/g, 'value');

/** promtool's verdict on a set of expressions as recording rules: null when all parse, else its output. */
function promtoolCheck(exprs: string[]): string | null {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'etcd-robustness-grafana-'));
  try {
    const file = path.join(dir, 'queries.yaml');
    writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules: exprs.map((expr, i) => ({ record: `dashboard_query_${i}`, expr })) }] }));
    const result = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8', timeout: 30_000 });
    if (result.error) throw new Error(`promtool (Debian's prometheus package, scripts/install-system-deps.sh) could not run: ${result.error.message}`);
    return result.status === 0 ? null : `${result.stdout}${result.stderr}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const overlaps = (a: GridPos, b: GridPos): boolean => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

describe('Grafana dashboard', () => {
  test('the chart carries a byte-identical copy of config/grafana/etcd-robustness.json', () => {
    assert.ok(existsSync(chartCopyPath), `${chartCopyPath} is missing: helm packages only the chart folder`);
    assert.ok(readFileSync(chartCopyPath).equals(readFileSync(dashboardPath)), `${chartCopyPath} differs from ${dashboardPath}: copy it again`);
  });

  test('is a dashboard: schema version, uid, title, tags, time range, refresh', () => {
    assert.ok(typeof dashboard.schemaVersion === 'number' && dashboard.schemaVersion >= 36, `schemaVersion ${dashboard.schemaVersion}`);
    assert.equal(dashboard.uid, 'etcd-robustness');
    assert.ok(dashboard.title && dashboard.title.length > 0, 'no title');
    assert.ok(dashboard.tags?.includes('etcd'), `tags ${JSON.stringify(dashboard.tags)}`);
    assert.ok(dashboard.time?.from && dashboard.time.to, 'no time range');
    assert.match(dashboard.refresh ?? '', /^\d+[smh]$/);
    assert.ok((dashboard.panels ?? []).length > 0, 'no panels');
  });

  test('panel ids are unique across rows and the panels nested in collapsed rows', () => {
    const ids = allPanels().map((p) => p.id);
    for (const [index, id] of ids.entries()) {
      assert.ok(Number.isInteger(id) && id! > 0, `panel "${allPanels()[index]!.title}" has id ${id}`);
      assert.equal(ids.indexOf(id), index, `panel id ${id} is used twice ("${allPanels()[index]!.title}")`);
    }
  });

  test('every panel has a type, a title and a grid position inside the 24 columns', () => {
    const knownTypes = ['row', 'stat', 'timeseries', 'state-timeline', 'status-history', 'bargauge', 'gauge', 'table', 'heatmap', 'text', 'piechart'];
    for (const panel of allPanels()) {
      assert.ok(panel.title && panel.title.length > 0, `panel ${panel.id} has no title`);
      assert.ok(knownTypes.includes(panel.type ?? ''), `panel "${panel.title}": type ${panel.type}`);
      const g = panel.gridPos;
      assert.ok(g, `panel "${panel.title}" has no gridPos`);
      for (const key of ['x', 'y', 'w', 'h'] as const) assert.ok(Number.isInteger(g[key]) && g[key] >= 0, `panel "${panel.title}": gridPos.${key} = ${g[key]}`);
      assert.ok(g.w > 0 && g.h > 0, `panel "${panel.title}" is empty`);
      assert.ok(g.x + g.w <= 24, `panel "${panel.title}" ends at column ${g.x + g.w} > 24`);
      if (panel.type === 'row') assert.equal(g.w, 24, `row "${panel.title}" must span the width`);
    }
  });

  test('no two panels overlap, and panels nested in a collapsed row sit below it', () => {
    const groups: Panel[][] = [dashboard.panels ?? []];
    for (const row of dashboard.panels ?? []) {
      if (row.type !== 'row') continue;
      if (row.collapsed) {
        assert.ok((row.panels ?? []).length > 0, `collapsed row "${row.title}" holds no panels`);
        groups.push(row.panels ?? []);
        for (const child of row.panels ?? []) assert.ok(child.gridPos!.y > row.gridPos!.y, `panel "${child.title}" is above its row "${row.title}"`);
      } else {
        assert.deepEqual(row.panels ?? [], [], `expanded row "${row.title}" must keep its panels at the top level`);
      }
    }
    for (const group of groups)
      for (const [i, a] of group.entries())
        for (const b of group.slice(i + 1)) assert.ok(!overlaps(a.gridPos!, b.gridPos!), `panels "${a.title}" and "${b.title}" overlap`);
  });

  test('every panel and target uses the datasource variable, and every target has a unique refId and an expr', () => {
    for (const panel of queryPanels()) {
      assert.deepEqual(panel.datasource, datasourceRef, `panel "${panel.title}" datasource`);
      const targets = panel.targets ?? [];
      assert.ok(targets.length > 0, `panel "${panel.title}" has no targets`);
      const refIds = new Set<string>();
      for (const target of targets) {
        assert.ok(target.refId && !refIds.has(target.refId), `panel "${panel.title}": refId ${target.refId} missing or repeated`);
        refIds.add(target.refId);
        assert.ok(typeof target.expr === 'string' && target.expr.trim().length > 0, `panel "${panel.title}" target ${target.refId} has no expr`);
        if (target.datasource !== undefined) assert.deepEqual(target.datasource, datasourceRef, `panel "${panel.title}" target ${target.refId} datasource`);
      }
    }
  });

  test('the datasource variable is a Prometheus datasource picker; query variables use it', () => {
    const ds = variables().find((v) => v.name === 'datasource');
    assert.ok(ds, 'no datasource variable');
    assert.equal(ds.type, 'datasource');
    assert.equal(ds.query, 'prometheus');
    const names = variables().map((v) => v.name);
    assert.equal(new Set(names).size, names.length, `variables repeated: ${names.join(', ')}`);
    for (const name of ['cluster', 'run']) assert.ok(names.includes(name), `no ${name} variable`);
    for (const v of variables().filter((v) => v.type === 'query')) {
      assert.deepEqual(v.datasource, datasourceRef, `variable "${v.name}" datasource`);
      if (v.definition !== undefined) assert.equal(v.definition, variableQuery(v), `variable "${v.name}": definition and query differ`);
    }
  });

  test('every $variable a query uses is defined or built into Grafana', () => {
    const defined = new Set(variables().map((v) => v.name));
    for (const { where, expr } of allQueries())
      for (const name of grafanaVariablesOf(expr)) assert.ok(defined.has(name) || builtInVariables.has(name), `${where} uses $${name}, which is not defined`);
  });

  test('the annotations mark faults (and blocked upgrades) from Prometheus', () => {
    const annotations = (dashboard.annotations?.list ?? []).filter((a) => a.builtIn !== 1);
    for (const a of annotations) {
      assert.deepEqual(a.datasource, datasourceRef, `annotation "${a.name}" datasource`);
      assert.ok(a.expr && a.expr.trim().length > 0, `annotation "${a.name}" has no expr`);
    }
    const faultAnnotations = annotations.filter((a) =>
      metricNamesOf(a.expr!).some((m) => m === 'etcd_robustness_fault_injections_total' || m === 'etcd_robustness_faults_active'),
    );
    assert.ok(faultAnnotations.length > 0, 'no annotation on fault injections or active faults');
    assert.ok(faultAnnotations.every((a) => a.enable === true), 'fault annotations must be on by default');
  });

  test('the panels cover the issue\'s topics', () => {
    const used = new Map<string, string[]>();
    for (const panel of queryPanels())
      for (const target of panel.targets ?? [])
        for (const metric of metricNamesOf(target.expr ?? '')) used.set(metric, [...(used.get(metric) ?? []), panel.title!]);
    const topics: Record<string, string[]> = {
      'run verdict': ['etcd_robustness_verdict'],
      violations: ['etcd_robustness_violations_total'],
      'ops/s by type and outcome': ['etcd_robustness_operations_total'],
      'latency percentiles': ['etcd_robustness_operation_duration_seconds_bucket'],
      availability: ['etcd_robustness_availability_ratio'],
      'unknown outcomes': ['etcd_robustness_unknown_outcome_operations_total'],
      'checker lag': ['etcd_robustness_checker_lag_seconds', 'etcd_robustness_checker_pending_operations', 'etcd_robustness_checker_waiting_for_watch'],
      faults: ['etcd_robustness_faults_active', 'etcd_robustness_fault_injections_total', 'etcd_robustness_fault_to_writable_seconds_bucket'],
      membership: [
        'etcd_robustness_cluster_members',
        'etcd_robustness_cluster_has_leader',
        'etcd_robustness_cluster_quorum',
        'etcd_robustness_cluster_leader_changes_total',
        'etcd_robustness_cluster_member_revision_lag',
        'etcd_robustness_cluster_db_size_bytes',
        'etcd_robustness_cluster_db_quota_bytes',
      ],
      upgrades: [
        'etcd_robustness_upgrade_in_progress',
        'etcd_robustness_upgrade_blocked',
        'etcd_robustness_upgrade_members_upgraded',
        'etcd_robustness_cluster_member_info',
        'etcd_robustness_upgrade_gate_runs_total',
        'etcd_robustness_gate_passing',
      ],
      controllers: ['controller_runtime_reconcile_total', 'controller_runtime_reconcile_errors_total', 'workqueue_depth', 'leader_election_master_status'],
    };
    for (const [topic, metrics] of Object.entries(topics))
      for (const metric of metrics) assert.ok(used.has(metric), `topic "${topic}": no panel queries ${metric}`);

    const exprs = queryPanels().flatMap((p) => (p.targets ?? []).map((t) => ({ title: p.title!, expr: t.expr ?? '' })));
    assert.ok(
      exprs.some((e) => /by \(type, outcome\)/.test(e.expr) && metricNamesOf(e.expr).includes('etcd_robustness_operations_total') && /rate\(/.test(e.expr)),
      'no panel shows the operation rate by type and outcome',
    );
    assert.ok(
      exprs.some((e) => /histogram_quantile\(0\.99,/.test(e.expr) && /rate\(etcd_robustness_operation_duration_seconds_bucket\{/.test(e.expr)),
      'no panel shows the p99 latency from the histogram',
    );
    assert.ok(
      exprs.some((e) => /outcome="ok"/.test(e.expr) && metricNamesOf(e.expr).includes('etcd_robustness_operations_total')),
      'no panel computes availability from the ok outcomes',
    );
    const rated = exprs.filter((e) => /\brate\(|\bincrease\(/.test(e.expr) && !/\$__range\]/.test(e.expr));
    for (const e of rated) assert.match(e.expr, /\[\$__rate_interval\]/, `panel "${e.title}": rate/increase should use $__rate_interval`);
    const table = queryPanels().find((p) => p.type === 'table' && (p.targets ?? []).some((t) => metricNamesOf(t.expr ?? '').includes('etcd_robustness_cluster_member_info')));
    assert.ok(table, 'no table of member versions');
  });
  test('every query parses as PromQL (promtool check rules, Grafana variables substituted)', () => {
    const queries = allQueries().map((q) => ({ ...q, promql: substituted(q.kind === 'variable' ? variablePromql(q.expr).promql : q.expr) }));
    if (promtoolCheck(queries.map((q) => q.promql)) === null) return;
    // Name the queries that do not parse, one promtool run each.
    const failures = queries.flatMap((q) => {
      const output = promtoolCheck([q.promql]);
      return output === null ? [] : [`${q.where}: ${q.promql}\n${output}`];
    });
    assert.ok(failures.length > 0, 'promtool refused the queries together but accepted each one');
    assert.fail(failures.join('\n'));
  });

  describe('queries against the metrics catalog (docs/metrics.md)', () => {
    /** The catalog entry of each series name (a histogram's _bucket, _sum and _count included). */
    function catalogBySeries(): Map<string, CatalogEntry> {
      assert.ok(existsSync(catalogPath), `${catalogPath} is missing: the dashboard's queries cannot be checked without the metrics catalog`);
      return new Map(readCatalog().flatMap((entry) => seriesNames(entry).map((series) => [series, entry] as const)));
    }

    test('every metric a panel, variable or annotation selects is in the catalog, with labels it has', () => {
      const catalog = catalogBySeries();
      const problems: string[] = [];
      for (const { where, expr, kind } of allQueries()) {
        const { promql, label } = kind === 'variable' ? variablePromql(expr) : { promql: expr, label: undefined };
        const selectors = selectorsOf(promql);
        if (selectors.length === 0) problems.push(`${where}: selects no metric (${expr})`);
        for (const { metric, labels } of selectors) {
          const entry = catalog.get(metric);
          if (!entry) {
            problems.push(`${where}: metric ${metric} is not in docs/metrics.md`);
            continue;
          }
          const known = [...entry.labels, ...targetLabels, ...(metric.endsWith('_bucket') ? ['le'] : [])];
          for (const l of [...labels, ...(label === undefined ? [] : [label])])
            if (!known.includes(l)) problems.push(`${where}: ${metric} has no label ${l} in docs/metrics.md (it has ${entry.labels.join(', ') || 'none'})`);
        }
      }
      assert.deepEqual(problems, []);
    });
  });
});
