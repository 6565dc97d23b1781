/**
 * The metrics catalog (docs/metrics.md) and the code agree, both ways: every metric registered has a
 * row with its type and labels, and every row names a registered metric.
 *
 * Metric sets are found, not listed: every module under src/ that imports prom-client is imported, and
 * its exported classes and functions named `...Metrics`/`...metrics` are called with the registry. A
 * source scan then checks that every metric defined under src/ got registered that way, so a new metric
 * set cannot hide from this test. The upgrade metrics (src/controller/etcdcluster/upgrade-metrics.ts)
 * are being written: until that file exists, the rows of "Upgrade and gate metrics" may name no
 * registered metric; once it exists, they must, like every other row.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Registry } from 'prom-client';
import { ClusterMetrics } from '../../src/controller/etcdcluster/metrics.ts';
import { ControllerMetrics } from '../../src/controller/kit/metrics.ts';
import { probeMetrics, RunMetrics } from '../../src/run/metrics.ts';
import { CatalogFormatError, parseCatalog, readCatalog, type CatalogEntry } from '../helpers/metrics-catalog.ts';

const srcDir = fileURLToPath(new URL('../../src/', import.meta.url));
const upgradeMetricsFile = path.join(srcDir, 'controller/etcdcluster/upgrade-metrics.ts');
const upgradeSection = 'Upgrade and gate metrics';

/** Modules instantiated by name above; every other module importing prom-client is found and called. */
const known = new Set(['run/metrics.ts', 'controller/kit/metrics.ts', 'controller/etcdcluster/metrics.ts']);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(full);
    return e.name.endsWith('.ts') ? [full] : [];
  });
}

const promClientFiles = sourceFiles(srcDir).filter((f) => /from 'prom-client'/.test(readFileSync(f, 'utf8')));

/** Metric names defined in the source: `new Counter|Gauge|Histogram|Summary({ name: '...'`. */
function definedInSource(): Map<string, string> {
  const defined = new Map<string, string>();
  for (const file of promClientFiles) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/new (?:Counter|Gauge|Histogram|Summary)(?:<[^>]*>)?\(\{\s*name:\s*'([^']+)'/g)) defined.set(m[1]!, path.relative(srcDir, file));
  }
  return defined;
}

interface Registered {
  name: string;
  type: string;
  labels: string[];
}

/** prom-client keeps a metric's label names on the object; read them through a checked cast. */
function labelNamesOf(registry: Registry, name: string): string[] {
  const metric: unknown = registry.getSingleMetric(name);
  const labelNames = (metric as { labelNames?: unknown } | undefined)?.labelNames;
  if (!Array.isArray(labelNames) || !labelNames.every((l) => typeof l === 'string')) throw new Error(`${name}: prom-client metric without a labelNames array`);
  return labelNames;
}

/** Calls a module's exported `...Metrics` classes and functions with the registry. */
async function instantiateModule(file: string, registry: Registry): Promise<void> {
  const module = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  for (const [name, value] of Object.entries(module)) {
    if (typeof value !== 'function' || !/metrics$/i.test(name)) continue;
    const isClass = /^class\b/.test(Function.prototype.toString.call(value));
    try {
      if (isClass) new (value as new (registry: Registry) => unknown)(registry);
      else (value as (registry: Registry) => unknown)(registry);
    } catch (error) {
      throw new Error(`${path.relative(srcDir, file)}: ${name}(registry) failed (the drift test calls every exported ...Metrics with a Registry alone): ${(error as Error).message}`, { cause: error });
    }
  }
}

async function registeredMetrics(): Promise<Registered[]> {
  const registry = new Registry();
  probeMetrics(registry);
  new RunMetrics(registry, { run: 'ns/run', cluster: 'ns/cluster' });
  new ControllerMetrics(registry);
  new ClusterMetrics(registry);
  for (const file of promClientFiles) if (!known.has(path.relative(srcDir, file).split(path.sep).join('/'))) await instantiateModule(file, registry);
  return (await registry.getMetricsAsJSON()).map((m) => ({ name: m.name, type: String(m.type), labels: labelNamesOf(registry, m.name) }));
}

const sameLabels = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && [...a].sort().join(',') === [...b].sort().join(',');

describe('metrics catalog (docs/metrics.md)', () => {
  test('every metric defined under src/ is registered by this test (no metric set hides from it)', async () => {
    const registered = new Set((await registeredMetrics()).map((m) => m.name));
    const missing = [...definedInSource()].filter(([name]) => !registered.has(name)).map(([name, file]) => `${name} (defined in src/${file})`);
    assert.deepEqual(missing, [], `metrics defined but not registered by calling their module's exported ...Metrics(registry): ${missing.join('; ')}`);
  });

  test('every registered metric has a row with the same type and labels', async () => {
    const catalog = new Map(readCatalog().map((e) => [e.name, e]));
    const problems: string[] = [];
    for (const metric of await registeredMetrics()) {
      const row = catalog.get(metric.name);
      if (!row) {
        problems.push(`${metric.name} (${metric.type}; labels ${metric.labels.join(', ') || 'none'}) is exported but has no row in docs/metrics.md`);
        continue;
      }
      if (row.type !== metric.type) problems.push(`${metric.name}: docs/metrics.md:${row.line} says ${row.type}, the code registers a ${metric.type}`);
      if (!sameLabels(row.labels, metric.labels)) {
        problems.push(`${metric.name}: docs/metrics.md:${row.line} lists labels [${row.labels.join(', ')}], the code has [${metric.labels.join(', ')}]`);
      }
    }
    assert.deepEqual(problems, [], problems.join('\n'));
  });

  test('every catalog row names a registered metric (upgrade rows once upgrade-metrics.ts exists)', async () => {
    const registered = new Set((await registeredMetrics()).map((m) => m.name));
    const pendingUpgradeRows = !existsSync(upgradeMetricsFile);
    const problems = readCatalog()
      .filter((e) => !registered.has(e.name))
      .filter((e) => !(pendingUpgradeRows && e.section === upgradeSection))
      .map((e) => `docs/metrics.md:${e.line}: ${e.name} (section "${e.section}") names no metric the code registers`);
    assert.deepEqual(problems, [], problems.join('\n'));
  });

  test('the catalog has each metric once, under the expected sections, each with a meaning', () => {
    const entries = readCatalog();
    const seen = new Map<string, CatalogEntry>();
    for (const e of entries) {
      const first = seen.get(e.name);
      assert.equal(first, undefined, `${e.name}: rows at lines ${first?.line} and ${e.line}`);
      seen.set(e.name, e);
    }
    const sections = new Set(entries.map((e) => e.section));
    for (const s of ['Run metrics', 'Cluster metrics', upgradeSection, 'Controller metrics']) assert.ok(sections.has(s), `docs/metrics.md has rows under "## ${s}"`);
    assert.deepEqual(
      entries.filter((e) => e.section === upgradeSection).map((e) => e.name),
      [
        'etcd_robustness_upgrade_in_progress',
        'etcd_robustness_upgrade_blocked',
        'etcd_robustness_upgrade_members_upgraded',
        'etcd_robustness_upgrade_gate_runs_total',
        'etcd_robustness_gate_passing',
      ],
    );
    // The pipe in "(passed|failed)" is escaped in the markdown and read back as one cell.
    assert.match(seen.get('etcd_robustness_upgrade_gate_runs_total')?.meaning ?? '', /\(passed\|failed\)/);
  });
});

describe('parseCatalog', () => {
  const header = '## Run metrics\n\n| Metric | Type | Labels | Meaning |\n| --- | --- | --- | --- |\n';

  test('reads names, types, labels, meanings, sections and line numbers', () => {
    const entries = parseCatalog(`${header}| \`a_total\` | counter | \`run\`, \`check\` | Things, a \\| b. |\n| \`b\` | Gauge | none | One. |\n`, 'metrics.md');
    assert.deepEqual(entries, [
      { name: 'a_total', type: 'counter', labels: ['run', 'check'], meaning: 'Things, a | b.', section: 'Run metrics', line: 5 },
      { name: 'b', type: 'gauge', labels: [], meaning: 'One.', section: 'Run metrics', line: 6 },
    ]);
  });

  const malformed: [string, string, RegExp][] = [
    ['an unbackticked name', '| a_total | counter | none | x |', /first cell must be a backticked metric name/],
    ['a missing cell', '| `a_total` | counter | none |', /expected 4 cells .* found 3/],
    ['an extra cell (an unescaped pipe in the meaning)', '| `a_total` | counter | none | a | b |', /expected 4 cells .* found 5/],
    ['an unknown type', '| `a_total` | countr | none | x |', /unknown type "countr"/],
    ['an unbackticked label', '| `a_total` | counter | `run`, check | x |', /labels must be backticked .* "check"/],
    ['an empty meaning', '| `a_total` | counter | none |  |', /the meaning is empty/],
  ];
  for (const [what, row, message] of malformed) {
    test(`rejects ${what} with the file and line`, () => {
      assert.throws(
        () => parseCatalog(`${header}| \`ok\` | gauge | none | fine |\n${row}\n`, '/x/metrics.md'),
        (error: unknown) => {
          assert.ok(error instanceof CatalogFormatError, `a CatalogFormatError, got ${String(error)}`);
          assert.match(error.message, /^metrics\.md:6: /);
          assert.match(error.message, message);
          return true;
        },
      );
    });
  }

  test('tables without a Metric header are not read', () => {
    assert.deepEqual(parseCatalog('## Other\n\n| Alert | Severity |\n| --- | --- |\n| `x` | critical |\n'), []);
  });
});
