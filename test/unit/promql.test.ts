import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { grafanaVariablesOf, metricNamesOf, PromqlReadError, selectorsOf } from '../helpers/promql.ts';

describe('metricNamesOf', () => {
  const cases: [string, string, string[]][] = [
    ['a bare selector', 'up', ['up']],
    ['a name with colons (recording rules)', 'job:http_requests:rate5m', ['job:http_requests:rate5m']],
    ['label matchers are not metrics', 'etcd_robustness_verdict{run="ns/r", cluster!="x", type=~"put|get", check!~"watch.*"}', ['etcd_robustness_verdict']],
    ['a label named like a metric inside braces', 'a{b_total="c_total"}', ['a']],
    ['a range and rate', 'rate(etcd_robustness_operations_total{outcome="ok"}[5m])', ['etcd_robustness_operations_total']],
    ['a subquery', 'max_over_time(rate(x_total[1m])[30m:1m])', ['x_total']],
    ['an offset', 'x_total offset 1h - x_total offset -5m', ['x_total']],
    ['the @ modifier', 'x @ 1609746000 + y @ start() - z @ end()', ['x', 'y', 'z']],
    [
      'histogram_quantile over a sum by',
      'histogram_quantile(0.99, sum by (le, type) (rate(etcd_robustness_operation_duration_seconds_bucket{run=~"$run"}[$__rate_interval])))',
      ['etcd_robustness_operation_duration_seconds_bucket'],
    ],
    ['by after the aggregation body', 'sum(rate(a_total[5m])) by (instance, job)', ['a_total']],
    ['without before the body', 'max without (member) (etcd_robustness_cluster_db_size_bytes)', ['etcd_robustness_cluster_db_size_bytes']],
    ['upper-case keywords', 'SUM BY (job) (a) AND ON (job) b', ['a', 'b']],
    ['aggregation with a space before the parenthesis', 'sum (a)', ['a']],
    [
      'label_replace string arguments',
      'label_replace(etcd_robustness_cluster_member_info, "a", "b", "member", "(.*)")',
      ['etcd_robustness_cluster_member_info'],
    ],
    ['count_values and topk parameters', 'count_values("version", v) + topk(5, w) + quantile(0.9, q)', ['q', 'v', 'w']],
    [
      'on, ignoring, group_left with labels, bool',
      'a / on (cluster, member) group_left (version) b > bool 0 + c * ignoring (x) group_right d',
      ['a', 'b', 'c', 'd'],
    ],
    ['group_left without a label list', 'a * on (x) group_left b', ['a', 'b']],
    ['and, or, unless', 'a and b or c unless d', ['a', 'b', 'c', 'd']],
    ['numbers in every notation', 'a * 1e3 + b / 1E-3 - 0.5 + .5 + 0x1F + Inf - NaN + 1_000', ['a', 'b']],
    ['string literals are not metrics', 'label_join(a, "dst", ",", "up", \'x_total\', `raw\\`)', ['a']],
    ['escaped quotes inside strings', 'a{b="say \\"c_total\\" now"}', ['a']],
    ['Grafana variables are not metrics', 'sum(rate(a_total{cluster=~"$cluster", run=~"${run:regex}"}[$__rate_interval])) / $__interval_ms * ${factor}', ['a_total']],
    ['Grafana variable as a label value without quotes', 'a{cluster=$cluster}', ['a']],
    ['the old [[var]] form', 'rate(a_total[[[interval]]])', ['a_total']],
    ['the __name__ form', '{__name__="etcd_robustness_verdict", run="x"}', ['etcd_robustness_verdict']],
    ['a quoted metric name (Prometheus 3)', '{"etcd.robustness.verdict", run="x"}', ['etcd.robustness.verdict']],
    ['comments', 'a # b_total\n + c', ['a', 'c']],
    ['sorted and unique', 'z + a + z{x="1"} + a', ['a', 'z']],
    ['a multi-line expression', 'sum by (cluster) (\n  changes(\n    etcd_robustness_faults_active[$__interval]\n  )\n) > 0', ['etcd_robustness_faults_active']],
    ['a constant', 'vector(1)', []],
  ];
  for (const [name, expr, expected] of cases) {
    test(name, () => assert.deepEqual(metricNamesOf(expr), expected));
  }

  test('a regex __name__ matcher is refused rather than guessed', () => {
    assert.throws(() => metricNamesOf('{__name__=~"etcd_.*"}'), PromqlReadError);
  });

  test('what Prometheus would reject is an error too (the Prometheus grammar parses it)', () => {
    for (const expr of ['a +', 'rate(a[5x])', 'sum(a', 'a{b=}', 'a b']) {
      assert.throws(() => metricNamesOf(expr), (e: unknown) => e instanceof PromqlReadError && /not valid PromQL/.test(e.message), expr);
    }
  });

  test('an unterminated string, brace or bracket is an error naming the expression', () => {
    for (const expr of ['a{b="c}', 'a{b="c"', 'rate(a[5m)', 'sum by (a b']) {
      assert.throws(() => metricNamesOf(expr), (e: unknown) => e instanceof PromqlReadError && e.message.includes(JSON.stringify(expr)), expr);
    }
  });
});

describe('selectorsOf', () => {
  test('each selector with the labels its matchers test, __name__ left out', () => {
    assert.deepEqual(
      selectorsOf('sum by (type) (rate(a_total{run=~"$run", outcome="ok"}[5m])) / on (run) b + {__name__="c", cluster!=""} + d {x=$v}'),
      [
        { metric: 'a_total', labels: ['run', 'outcome'] },
        { metric: 'b', labels: [] },
        { metric: 'c', labels: ['cluster'] },
        { metric: 'd', labels: ['x'] },
      ],
    );
  });
});

describe('grafanaVariablesOf', () => {
  test('finds every form, inside strings too', () => {
    assert.deepEqual(
      grafanaVariablesOf('sum(rate(a{cluster=~"$cluster",run=~"${run:regex}",x="${datasource}"}[$__rate_interval])) [[old]] [[fmt:csv]]'),
      ['__rate_interval', 'cluster', 'datasource', 'fmt', 'old', 'run'],
    );
  });
  test('none in a plain query', () => assert.deepEqual(grafanaVariablesOf('up{job="x"}'), []));
});
