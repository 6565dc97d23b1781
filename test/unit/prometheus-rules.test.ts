// The alert rules (config/prometheus/etcd-robustness.rules.yaml): promtool (Debian's prometheus package)
// checks them and runs their unit tests (test/prometheus/); every alert has a severity, a summary, a
// description and a runbook section in docs/runbooks.md; every alert has a firing and a silent promtool
// case; every metric the expressions read is in the metrics catalog (docs/metrics.md); the chart's copy
// of the file is the file.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { packageRoot } from '../../src/local/index.ts';
import { readCatalog, seriesNames } from '../helpers/metrics-catalog.ts';
import { promtoolBinary, requireBinary } from '../helpers/prometheus.ts';
import { metricNamesOf } from '../helpers/promql.ts';

const rulesFile = path.join(packageRoot, 'config', 'prometheus', 'etcd-robustness.rules.yaml');
const chartCopy = path.join(packageRoot, 'charts', 'etcd-robustness-operator', 'files', 'etcd-robustness.rules.yaml');
const testFile = path.join(packageRoot, 'test', 'prometheus', 'etcd-robustness.rules.test.yaml');
const runbooksFile = path.join(packageRoot, 'docs', 'runbooks.md');
const runbooksUrl = 'https://github.com/etcd-robustness/etcd-robustness-operator/blob/main/docs/runbooks.md';
const severities = ['critical', 'warning', 'info'];

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

interface RuleFile {
  groups: { name: string; rules: Rule[] }[];
}

interface PromtoolTests {
  rule_files: string[];
  tests: { name?: string; alert_rule_test?: { eval_time: string; alertname: string; exp_alerts?: unknown[] | null }[] }[];
}

const rules = (): Rule[] => (parse(readFileSync(rulesFile, 'utf8')) as RuleFile).groups.flatMap((g) => g.rules);
const alerts = (): (Rule & { alert: string })[] => rules().filter((r): r is Rule & { alert: string } => r.alert !== undefined);

function promtool(args: string[]): Promise<{ code: number; output: string }> {
  const binary = requireBinary(promtoolBinary);
  return new Promise((resolve, reject) => {
    execFile(binary, args, { cwd: packageRoot, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') {
        reject(new Error(`${binary} could not run: ${error.message}`));
        return;
      }
      resolve({ code: error ? Number(error.code) : 0, output: `${stdout}${stderr}` });
    });
  });
}

/** GitHub's anchor of a markdown heading: lower case, punctuation dropped, spaces to dashes. */
function githubAnchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

const runbookHeadings = (): string[] =>
  readFileSync(runbooksFile, 'utf8')
    .split('\n')
    .flatMap((line) => {
      const heading = /^#{1,6}\s+(.*)$/.exec(line)?.[1];
      return heading === undefined ? [] : [heading];
    });

describe('alert rules', () => {
  test('promtool check rules accepts the rule file', async () => {
    const { code, output } = await promtool(['check', 'rules', rulesFile]);
    assert.equal(code, 0, output);
    assert.match(output, new RegExp(`SUCCESS: ${rules().length} rules found`), output);
  });

  test('promtool test rules passes on the synthetic series of test/prometheus/', async () => {
    const { code, output } = await promtool(['test', 'rules', testFile]);
    assert.equal(code, 0, output);
    assert.match(output, /SUCCESS/, output);
    // The unit tests load the rule file itself, not a copy.
    const tests = parse(readFileSync(testFile, 'utf8')) as PromtoolTests;
    assert.deepEqual(
      tests.rule_files.map((f) => path.resolve(path.dirname(testFile), f)),
      [rulesFile],
    );
  });

  test('the chart carries the rule file byte for byte (charts/etcd-robustness-operator/files/)', () => {
    assert.ok(
      readFileSync(chartCopy, 'utf8') === readFileSync(rulesFile, 'utf8'),
      `${path.relative(packageRoot, chartCopy)} differs from ${path.relative(packageRoot, rulesFile)}: copy it over`,
    );
  });

  test('alert names are unique', () => {
    const names = alerts().map((a) => a.alert);
    assert.ok(names.length >= 9, names.join(', '));
    assert.deepEqual([...new Set(names)], names);
  });

  test('every alert has a severity, a summary, a description naming its run or cluster, and a runbook section', () => {
    const anchors = new Set(runbookHeadings().map(githubAnchor));
    for (const alert of alerts()) {
      const where = `alert ${alert.alert}`;
      assert.ok(severities.includes(alert.labels?.['severity'] ?? ''), `${where}: severity ${alert.labels?.['severity']} is not one of ${severities.join(', ')}`);
      const annotations = alert.annotations ?? {};
      assert.ok((annotations['summary'] ?? '').trim().length > 0, `${where}: no summary`);
      assert.match(annotations['description'] ?? '', /\{\{ \$labels\.(run|cluster) \}\}/, `${where}: the description names no run or cluster`);
      const url = annotations['runbook_url'] ?? '';
      assert.ok(url.startsWith(`${runbooksUrl}#`), `${where}: runbook_url ${url} is not under ${runbooksUrl}`);
      const anchor = url.slice(runbooksUrl.length + 1);
      assert.equal(anchor, githubAnchor(alert.alert), `${where}: the runbook section is named after the alert`);
      assert.ok(anchors.has(anchor), `${where}: docs/runbooks.md has no heading with anchor #${anchor}`);
    }
  });

  test('every runbook section named like an alert belongs to an alert', () => {
    const names = new Set(alerts().map((a) => a.alert));
    const alertLike = runbookHeadings().filter((h) => /^Etcd[A-Za-z]+$/.test(h));
    assert.deepEqual(alertLike.filter((h) => !names.has(h)), []);
    assert.deepEqual(alertLike.sort(), [...names].sort());
  });

  test('every alert has a promtool case where it fires and one where it stays silent', () => {
    const tests = parse(readFileSync(testFile, 'utf8')) as PromtoolTests;
    const cases = tests.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const { alert } of alerts()) {
      const mine = cases.filter((c) => c.alertname === alert);
      assert.ok(mine.some((c) => (c.exp_alerts ?? []).length > 0), `${alert}: no alert_rule_test expects it to fire`);
      assert.ok(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${alert}: no alert_rule_test expects it to stay silent`);
    }
    const known = new Set(alerts().map((a) => a.alert));
    assert.deepEqual(cases.filter((c) => !known.has(c.alertname)).map((c) => c.alertname), [], 'tests of alerts that do not exist');
  });

  test('every metric the expressions read is in docs/metrics.md (or a record of the same file)', () => {
    const catalog = new Set(readCatalog().flatMap(seriesNames));
    const records = new Set(rules().flatMap((r) => (r.record === undefined ? [] : [r.record])));
    const read = new Set<string>();
    for (const rule of rules()) {
      const names = metricNamesOf(rule.expr);
      assert.ok(names.length > 0 || rule.expr.trim().startsWith('vector('), `${rule.alert ?? rule.record}: reads no metric`);
      for (const name of names) {
        read.add(name);
        assert.ok(catalog.has(name) || records.has(name), `${rule.alert ?? rule.record} reads ${name}, which is neither in docs/metrics.md nor a record`);
      }
    }
    // The extractor sees through the expressions: the names the alerts are built on are found.
    for (const name of ['etcd_robustness_violations_total', 'etcd_robustness_run_active', 'etcd_robustness_cluster_members', 'etcd_robustness_run:availability:ratio_rate10m']) {
      assert.ok(read.has(name), `${name} not found in any expression`);
    }
  });

  test('githubAnchor follows GitHub: lower case, punctuation dropped, spaces to dashes', () => {
    assert.equal(githubAnchor('EtcdClusterNoQuorum'), 'etcdclusternoquorum');
    assert.equal(githubAnchor('Changing thresholds and windows'), 'changing-thresholds-and-windows');
    assert.equal(githubAnchor('What `for: 1m` means, really?'), 'what-for-1m-means-really');
  });
});
