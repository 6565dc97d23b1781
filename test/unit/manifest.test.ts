import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import type { RobustnessRun, RobustnessRunSpec } from '../../src/domain/run-spec.ts';
import { formatDuration } from '../../src/duration.ts';
import { checkRunMembers, defaultFaultsSpec, defaultRobustnessRun, ManifestError, parseRobustnessRun } from '../../src/run/manifest.ts';

/** Four lines, so the `spec:` written after it is line 5 and the first spec field is line 6. */
const head = `apiVersion: etcd.robustness.io/v1alpha1
kind: RobustnessRun
metadata:
  name: demo
`;

function withSpec(body: string): string {
  return `${head}spec:\n${body}`;
}

function parse(text: string, defaultMode: 'exclusive' | 'shared' = 'exclusive'): RobustnessRun {
  return parseRobustnessRun(text, { file: 'run.yaml', defaultMode });
}

function failure(text: string, defaultMode: 'exclusive' | 'shared' = 'exclusive'): ManifestError {
  try {
    parse(text, defaultMode);
  } catch (error) {
    if (error instanceof ManifestError) return error;
    throw error;
  }
  assert.fail('the manifest was accepted');
}

/** Every problem as `LINE:COLUMN PATH`, the part a user navigates by. */
function where(text: string, defaultMode: 'exclusive' | 'shared' = 'exclusive'): string[] {
  return failure(text, defaultMode).issues.map((i) => `${i.line}:${i.column} ${i.path}`);
}

const fullManifest = `# every field, none left to its default
apiVersion: etcd.robustness.io/v1alpha1
kind: RobustnessRun
metadata:
  name: full.run-1
  namespace: robustness
  labels:
    team: storage
spec:
  clusterRef:
    name: main
    namespace: kube-system
  schedule:
    kind: cron
    cron: "30 2 * * MON-FRI"
    historyLimit: 5
    suspend: true
  duration: 1m30s
  timeout: 20m
  mode: shared
  prefix: /robustness/full/
  seed: 12345
  traffic:
    profile: kubernetes
    weights:
      create: 3
      listWatch: 0.5
    keys: 500
    valueSize: 1024
    qps:
      target: 25.5
      burst: 40
      min: 0
    clients:
      perMember: 0
      spread: 3
    requestTimeout: 2s
    compaction:
      enabled: true
      interval: 1m
      allowShared: true
    defragment:
      enabled: false
      interval: 5m
      allowShared: true
  watch:
    enabled: true
    progressNotify: false
    progressInterval: 250ms
    perMember: false
  checks:
    linearizability: true
    watch: false
    hashKV: false
  abortOnViolation: true
  selfTest:
    staleReads:
      member: etcd-2
  faults:
    enabled: true
    allowShared: true
    maxConcurrentFaults: 3
    interval: { min: 2s, max: 5s }
    duration: { min: 500ms, max: 4s }
    recoveryTimeout: 1m
    choices:
      - fault: kill
        weight: 2
        target: follower
      - fault: delay
        weight: 0.5
        target: member
        member: etcd-1
        params: { delayMs: 100 }
      - partition
`;

const fullSpec: RobustnessRunSpec = {
  clusterRef: { name: 'main', namespace: 'kube-system' },
  schedule: { kind: 'cron', cron: '30 2 * * MON-FRI', historyLimit: 5, suspend: true },
  durationMs: 90_000,
  timeoutMs: 1_200_000,
  mode: 'shared',
  prefix: '/robustness/full/',
  seed: 12345,
  traffic: {
    profile: 'kubernetes',
    weights: { create: 3, listWatch: 0.5 },
    keys: 500,
    valueSize: 1024,
    qps: { target: 25.5, burst: 40, min: 0 },
    clients: { perMember: 0, spread: 3 },
    requestTimeoutMs: 2000,
    compaction: { enabled: true, intervalMs: 60_000, allowShared: true },
    defragment: { enabled: false, intervalMs: 300_000, allowShared: true },
  },
  watch: { enabled: true, progressNotify: false, progressIntervalMs: 250, perMember: false },
  checks: { linearizability: true, watch: false, hashKV: false },
  abortOnViolation: true,
  selfTest: { staleReads: { member: 'etcd-2' } },
  faults: {
    maxConcurrentFaults: 3,
    intervalMs: { min: 2000, max: 5000 },
    durationMs: { min: 500, max: 4000 },
    recoveryTimeoutMs: 60_000,
    choices: [
      { fault: 'kill', weight: 2, target: 'follower', params: {} },
      { fault: 'delay', weight: 0.5, target: 'member', member: 'etcd-1', params: { delayMs: 100, jitterMs: 50 } },
      { fault: 'partition', weight: 1, target: 'minority', params: { mode: 'split' } },
    ],
  },
};

describe('parseRobustnessRun: valid manifests', () => {
  test('a manifest with every field parses to exactly the spec it describes', () => {
    assert.deepEqual(parse(fullManifest), {
      apiVersion: 'etcd.robustness.io/v1alpha1',
      kind: 'RobustnessRun',
      metadata: { name: 'full.run-1', namespace: 'robustness' },
      spec: fullSpec,
    });
  });

  test('an empty spec in exclusive mode gets the full-speed defaults', () => {
    const { seed, ...spec } = parse(withSpec('  {}\n')).spec;
    assert.ok(Number.isInteger(seed) && seed >= 0 && seed < 2 ** 31);
    assert.deepEqual(spec, {
      schedule: { kind: 'once', historyLimit: 10, suspend: false },
      durationMs: 60_000,
      timeoutMs: 360_000,
      mode: 'exclusive',
      traffic: {
        profile: 'etcd',
        weights: {},
        keys: 10,
        valueSize: 32,
        qps: { target: 200, burst: 200, min: 100 },
        clients: { perMember: 2, spread: 2 },
        requestTimeoutMs: 500,
        compaction: { enabled: false, intervalMs: 10_000, allowShared: false },
        defragment: { enabled: false, intervalMs: 30_000, allowShared: false },
      },
      watch: { enabled: true, progressNotify: true, progressIntervalMs: 1000, perMember: true },
      checks: { linearizability: true, watch: true, hashKV: true },
      abortOnViolation: false,
    });
  });

  test('shared mode (by default or written) is gentle: qps target 10', () => {
    for (const run of [parse(withSpec('  {}\n'), 'shared'), parse(withSpec('  mode: shared\n'))]) {
      assert.equal(run.spec.mode, 'shared');
      assert.deepEqual(run.spec.traffic.qps, { target: 10, burst: 10, min: 5 });
    }
  });

  test('the kubernetes profile compacts by default, except on a shared cluster', () => {
    const kubernetes = '  traffic:\n    profile: kubernetes\n';
    const exclusive = parse(withSpec(kubernetes)).spec.traffic;
    assert.equal(exclusive.compaction.enabled, true);
    assert.equal(exclusive.keys, 50);
    assert.equal(parse(withSpec(kubernetes), 'shared').spec.traffic.compaction.enabled, false);
    const consented = parse(withSpec(`${kubernetes}    compaction:\n      allowShared: true\n`), 'shared').spec.traffic.compaction;
    assert.deepEqual(consented, { enabled: true, intervalMs: 10_000, allowShared: true });
  });

  test('qps burst and min follow the target; a sub-1 target still gets a usable burst', () => {
    assert.deepEqual(parse(withSpec('  traffic:\n    qps:\n      target: 7\n')).spec.traffic.qps, { target: 7, burst: 7, min: 3 });
    assert.deepEqual(parse(withSpec('  traffic:\n    qps:\n      target: 0.5\n')).spec.traffic.qps, { target: 0.5, burst: 1, min: 0 });
  });

  test('timeout defaults to duration + 5m', () => {
    assert.equal(parse(withSpec('  duration: 10m\n')).spec.timeoutMs, 15 * 60_000);
  });

  test('an explicit seed is kept; an absent one is random so runs differ', () => {
    assert.equal(parse(withSpec('  seed: 0\n')).spec.seed, 0);
    const seeds = new Set(Array.from({ length: 5 }, () => parse(withSpec('  {}\n')).spec.seed));
    assert.ok(seeds.size > 1);
  });

  test('staleReads: {} enables the self-test without naming a member', () => {
    assert.deepEqual(parse(withSpec('  selfTest:\n    staleReads: {}\n')).spec.selfTest, { staleReads: {} });
    assert.equal(parse(withSpec('  selfTest: {}\n')).spec.selfTest, undefined);
  });

  test('null fields, comments, a leading --- and anchors read as a user expects', () => {
    const run = parse(`---\n${head}spec:\n  duration: &d 30s\n  timeout:\n  traffic:\n    requestTimeout: *d\n`);
    assert.equal(run.spec.durationMs, 30_000);
    assert.equal(run.spec.timeoutMs, 330_000);
    assert.equal(run.spec.traffic.requestTimeoutMs, 30_000);
  });

  test('defaultRobustnessRun is a manifest named local with only the default faults (two at once; none in shared mode)', () => {
    for (const defaultMode of ['exclusive', 'shared'] as const) {
      const { seed: _a, ...builtIn } = defaultRobustnessRun({ defaultMode }).spec;
      const body = defaultMode === 'exclusive' ? '  faults: {maxConcurrentFaults: 2}\n' : '  {}\n';
      const { seed: _b, ...parsed } = parse(withSpec(body), defaultMode).spec;
      assert.deepEqual(builtIn, parsed);
    }
    assert.equal(defaultRobustnessRun({ defaultMode: 'exclusive' }).spec.faults?.maxConcurrentFaults, 2);
    assert.equal(defaultRobustnessRun({ defaultMode: 'shared' }).spec.faults, undefined);
    assert.equal(defaultRobustnessRun({ defaultMode: 'shared' }).metadata.name, 'local');
    assert.equal(defaultRobustnessRun({ name: 'nightly', defaultMode: 'shared' }).metadata.name, 'nightly');
    assert.throws(() => defaultRobustnessRun({ name: 'Not_A_Name', defaultMode: 'shared' }), ManifestError);
  });

  for (const sample of ['robustnessrun-etcd.yaml', 'robustnessrun-kubernetes.yaml', 'robustnessrun-shared.yaml']) {
    test(`config/samples/${sample} is valid`, () => {
      const file = new URL(`../../config/samples/${sample}`, import.meta.url);
      const run = parseRobustnessRun(readFileSync(file, 'utf8'), { file: sample, defaultMode: 'shared' });
      assert.equal(run.kind, 'RobustnessRun');
      if (sample.includes('etcd')) assert.ok((run.spec.faults?.choices.length ?? 0) > 0, 'the etcd sample shows faults');
      if (sample.includes('shared')) {
        assert.equal(run.spec.faults, undefined);
        assert.equal(run.spec.mode, 'shared');
        assert.ok(run.spec.traffic.qps.target <= 10);
        assert.equal(run.spec.traffic.compaction.enabled, false);
        assert.equal(run.spec.traffic.defragment.enabled, false);
      }
    });
  }
});

describe('parseRobustnessRun: errors name the line, column and field', () => {
  test('the message is FILE:LINE:COLUMN: PATH: problem', () => {
    const error = failure(withSpec('  traffic:\n    qps:\n      target: -5\n'));
    assert.equal(error.message, 'run.yaml:8:15: spec.traffic.qps.target: must be a positive number, got -5');
    assert.equal(error.file, 'run.yaml');
    assert.equal(error.line, 8);
    assert.equal(error.column, 15);
    assert.equal(error.path, 'spec.traffic.qps.target');
    assert.equal(error.problem, 'must be a positive number, got -5');
  });

  test('without a file name the location starts with the line', () => {
    assert.throws(() => parseRobustnessRun(withSpec('  seed: -1\n'), { defaultMode: 'shared' }), {
      message: '6:9: spec.seed: must be an integer between 0 and 2147483647, got -1',
    });
  });

  test('an unknown profile lists the allowed ones', () => {
    const error = failure(withSpec('  traffic:\n    profile: etcdd\n'));
    assert.equal(error.message, 'run.yaml:7:14: spec.traffic.profile: must be one of etcd, kubernetes, got "etcdd"');
  });

  test('a missing metadata.name is reported at metadata', () => {
    const error = failure('apiVersion: etcd.robustness.io/v1alpha1\nkind: RobustnessRun\nmetadata:\n  namespace: x\nspec: {}\n');
    assert.deepEqual([error.line, error.path, error.problem], [3, 'metadata.name', 'is required']);
  });

  test('a missing spec, metadata, kind and apiVersion are all reported', () => {
    assert.deepEqual(where('# a comment first\nkind: RobustnessRun\n'), ['2:1 apiVersion', '2:1 metadata', '2:1 spec']);
    assert.deepEqual(where(`${head}spec:\n`), ['5:1 spec']);
  });

  test('an unknown field is named, with a suggestion when it looks like a typo', () => {
    const error = failure(withSpec('  duration: 30s\n  trafic:\n    keys: 5\n'));
    assert.equal(error.message, 'run.yaml:7:3: spec.trafic: unknown field, did you mean "traffic"?');
    assert.match(failure(withSpec('  traffic:\n    colour: red\n')).message, /^run\.yaml:7:5: spec\.traffic\.colour: unknown field \(allowed: profile, weights, /);
    assert.deepEqual(where(`${head}  uid: abc\nspec: {}\nstatus: {}\n`), ['5:3 metadata.uid', '7:1 status']);
  });

  test('wrong types: a quoted number, a list for a mapping, yes for a boolean', () => {
    const error = failure(withSpec('  traffic:\n    keys: "10"\n  watch: []\n  checks:\n    watch: yes\n'));
    assert.deepEqual(
      error.issues.map((i) => `${i.line}:${i.column} ${i.path}: ${i.problem}`),
      [
        '7:11 spec.traffic.keys: must be an integer between 1 and 100000, got "10" (write the number without quotes)',
        '8:10 spec.watch: must be a mapping, got a list',
        '10:12 spec.checks.watch: must be true or false, got "yes"',
      ],
    );
  });

  test('out-of-range numbers', () => {
    assert.deepEqual(
      where(withSpec('  traffic:\n    keys: 0\n    valueSize: 4\n    qps:\n      target: 10\n      burst: 0.5\n      min: 11\n    clients:\n      perMember: 65\n')),
      ['7:11 spec.traffic.keys', '8:16 spec.traffic.valueSize', '11:14 spec.traffic.qps.burst', '12:12 spec.traffic.qps.min', '14:18 spec.traffic.clients.perMember'],
    );
    assert.match(failure(withSpec('  traffic:\n    qps:\n      target: .inf\n')).message, /got Infinity/);
    assert.match(failure(withSpec('  seed: 2147483648\n')).message, /6:9: spec\.seed/);
  });

  test('durations: bad text, a bare number, out of range, timeout not after duration', () => {
    assert.equal(
      failure(withSpec('  duration: 30 sec\n')).message,
      'run.yaml:6:13: spec.duration: must be a duration such as 500ms, 30s, 2m or 1h30m, got "30 sec"',
    );
    assert.equal(
      failure(withSpec('  duration: 30\n')).message,
      'run.yaml:6:13: spec.duration: must be a duration string such as "30s", got 30 (write e.g. "30s")',
    );
    assert.equal(failure(withSpec('  duration: 0s\n')).path, 'spec.duration');
    assert.equal(
      failure(withSpec('  traffic:\n    requestTimeout: 2m\n')).message,
      'run.yaml:7:21: spec.traffic.requestTimeout: must be a duration between 10ms and 1m, got "2m"',
    );
    assert.equal(
      failure(withSpec('  duration: 2m\n  timeout: 2m\n')).message,
      'run.yaml:7:12: spec.timeout: must be a duration longer than spec.duration (2m), got "2m"',
    );
    assert.equal(failure(withSpec('  traffic:\n    compaction:\n      interval: 50ms\n')).path, 'spec.traffic.compaction.interval');
  });

  test('a YAML syntax error has its line and column', () => {
    const error = failure(withSpec('  traffic: [1, 2\n  watch: {}\n'));
    assert.equal(error.message, 'run.yaml:7:3: YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]');
    assert.equal(error.line, 7);
    assert.equal(error.path, '');
    assert.deepEqual(where(withSpec('  seed: 1\n\tmode: shared\n')), ['7:1 ']);
  });

  test('a field given twice is a syntax error at the second one', () => {
    assert.deepEqual(where(withSpec('  seed: 1\n  seed: 2\n')), ['7:3 ']);
  });

  test('two documents are rejected at the start of the second', () => {
    const error = failure(`${withSpec('  {}\n')}---\n${withSpec('  {}\n')}`);
    assert.equal(error.message, 'run.yaml:7:1: a manifest must hold exactly one YAML document; a second one starts here');
  });

  test('an empty file and a non-mapping document are rejected at line 1', () => {
    assert.deepEqual(where(''), ['1:1 ']);
    assert.deepEqual(where('# nothing\n'), ['1:1 ']);
    assert.match(failure('- a\n- b\n').message, /^run\.yaml:1:1: a RobustnessRun manifest must be a mapping .*got a list$/);
  });

  test('apiVersion, kind and names are checked', () => {
    const text = 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: Not_Valid\n  namespace: a.b\nspec:\n  clusterRef: {namespace: x}\n  prefix: run/\n';
    assert.deepEqual(where(text), ['1:13 apiVersion', '2:7 kind', '4:9 metadata.name', '5:14 metadata.namespace', '7:3 spec.clusterRef.name', '8:11 spec.prefix']);
    assert.match(failure(withSpec('  prefix: /\n')).message, /must be a key prefix that starts and ends with "\/" and is not "\/" alone, got "\/"/);
  });

  test('weights: a kind of the other profile, an unknown kind, a negative weight, all zero', () => {
    const error = failure(withSpec('  traffic:\n    profile: kubernetes\n    weights:\n      put: 1\n      create: -1\n      frobnicate: 2\n'));
    assert.deepEqual(
      error.issues.map((i) => `${i.line}:${i.column} ${i.path}: ${i.problem}`),
      [
        '9:7 spec.traffic.weights.put: "put" is an operation of the etcd profile, not kubernetes (allowed for the kubernetes profile: create, update, delete, get, list, listWatch)',
        '10:15 spec.traffic.weights.create: must be a number >= 0, got -1',
        '11:7 spec.traffic.weights.frobnicate: unknown operation kind (allowed for the kubernetes profile: create, update, delete, get, list, listWatch)',
      ],
    );
    // The etcd profile is the default: a kubernetes kind is wrong there too.
    assert.deepEqual(where(withSpec('  traffic:\n    weights: {create: 1}\n')), ['7:15 spec.traffic.weights.create']);
    const allZero = '  traffic:\n    profile: kubernetes\n    weights: {create: 0, update: 0, delete: 0, get: 0, list: 0, listWatch: 0}\n';
    assert.equal(
      failure(withSpec(allZero)).message,
      'run.yaml:8:5: spec.traffic.weights: every operation kind has weight 0: at least one must be positive',
    );
    // Zeros that leave other kinds to the profile's defaults are fine.
    assert.deepEqual(parse(withSpec('  traffic:\n    weights: {put: 0, get: 0}\n')).spec.traffic.weights, { put: 0, get: 0 });
  });

  test('shared mode with compaction or defragmentation written explicitly needs allowShared', () => {
    const body = '  mode: shared\n  traffic:\n    compaction:\n      enabled: true\n    defragment:\n      enabled: true\n';
    const error = failure(withSpec(body), 'exclusive');
    assert.deepEqual(
      error.issues.map((i) => `${i.line}:${i.column} ${i.path}`),
      ['9:16 spec.traffic.compaction.enabled', '11:16 spec.traffic.defragment.enabled'],
    );
    assert.equal(
      error.issues[0]!.problem,
      'compaction rewrites history for every client of a shared cluster; set allowShared: true to allow it',
    );
    assert.match(error.issues[1]!.problem, /set allowShared: true to allow it$/);
    // The same in exclusive mode, or with consent, is fine.
    assert.equal(parse(withSpec(body.replace('shared', 'exclusive'))).spec.traffic.compaction.enabled, true);
    const consent = body.replaceAll('enabled: true\n', 'enabled: true\n      allowShared: true\n');
    assert.equal(parse(withSpec(consent)).spec.traffic.defragment.enabled, true);
  });

  test('schedule: a mapping; cron with kind cron only, window with kind continuous only', () => {
    assert.deepEqual(where(withSpec('  seed: 1\n  schedule: "@daily"\n')), ['7:13 spec.schedule']);
    assert.deepEqual(where(withSpec('  schedule:\n    kind: cron\n')), ['7:11 spec.schedule.cron']);
    assert.equal(
      failure(withSpec('  schedule:\n    kind: cron\n')).problem,
      'is required with kind: cron (a five-field cron expression such as "0 3 * * *")',
    );
    assert.deepEqual(where(withSpec('  schedule:\n    kind: continuous\n')), ['7:11 spec.schedule.window']);
    assert.deepEqual(where(withSpec('  schedule:\n    cron: "0 3 * * *"\n    window: 10m\n')), [
      '7:5 spec.schedule.cron',
      '8:5 spec.schedule.window',
    ]);
    assert.equal(failure(withSpec('  schedule:\n    window: 10m\n')).problem, 'only allowed with kind: continuous (this schedule is once)');
    // An invalid kind says nothing about cron and window: only the kind is reported.
    assert.deepEqual(where(withSpec('  schedule:\n    kind: daily\n    cron: "0 3 * * *"\n')), ['7:11 spec.schedule.kind']);
    assert.deepEqual(where(withSpec('  schedule:\n    historyLimit: 0\n    suspend: "yes"\n')), [
      '7:19 spec.schedule.historyLimit',
      '8:14 spec.schedule.suspend',
    ]);
    assert.deepEqual(parse(withSpec('  schedule:\n    kind: continuous\n    window: 10m\n')).spec.schedule, {
      kind: 'continuous',
      windowMs: 600_000,
      historyLimit: 10,
      suspend: false,
    });
  });

  test('schedule.cron: five fields in range, checked by croner; each problem says which field', () => {
    const cron = (expression: string): string => failure(withSpec(`  schedule:\n    kind: cron\n    cron: ${JSON.stringify(expression)}\n`)).problem;
    assert.equal(cron('not a cron'), 'must be a cron expression of five fields such as "0 3 * * *" (minute hour day-of-month month day-of-week, UTC), got "not a cron"');
    assert.match(cron('* * * * * *'), /^must be a cron expression of five fields/);
    assert.match(cron('@daily'), /^must be a cron expression of five fields/);
    assert.match(cron('61 * * * *'), /^the minute field of "61 \* \* \* \*" must be \*, a value \(0-59\)/);
    assert.match(cron('0 24 * * *'), /^the hour field/);
    assert.match(cron('0 0 0 * *'), /^the day of month field/);
    assert.match(cron('0 0 * 13 *'), /^the month field/);
    assert.match(cron('0 0 * * 8'), /^the day of week field/);
    assert.match(cron('*/0 * * * *'), /^the minute field/);
    assert.match(cron('*/61 * * * *'), /^the minute field/);
    assert.match(cron('5/10 * * * *'), /^the minute field/);
    assert.match(cron('0 0 L * *'), /^the day of month field/);
    assert.match(cron(' 0 0 * * *'), /^must be a cron expression of five fields/);
    // What the pattern lets through and croner refuses, or what never fires.
    assert.equal(cron('5-1 * * * *'), `"5-1 * * * *" is not a valid cron expression: From value is larger than to value: '5-1'`);
    assert.equal(cron('0 0 30 2 *'), '"0 0 30 2 *" never fires (no date matches it)');
    assert.equal(failure(withSpec('  schedule:\n    kind: cron\n    cron: 5\n')).problem, 'must be a five-field cron expression such as "0 3 * * *" (minute hour day-of-month month day-of-week, UTC), got 5');
    for (const valid of ['0 3 * * *', '*/15 * * * *', '0 0-23/2 1,15 JAN-MAR mon-fri', '0  0 * * 7', '59 23 31 12 SUN', '0 */24 */31 */12 */7']) {
      assert.equal(parse(withSpec(`  schedule:\n    kind: cron\n    cron: "${valid}"\n`)).spec.schedule.cron, valid);
    }
  });

  test('checks.hashKV defaults to true and can be turned off', () => {
    assert.equal(parse(withSpec('  checks:\n    hashKV: false\n')).spec.checks.hashKV, false);
    assert.deepEqual(where(withSpec('  checks:\n    hashKv: false\n')), ['7:5 spec.checks.hashKv']);
    assert.equal(failure(withSpec('  checks:\n    hashKv: false\n')).problem, 'unknown field, did you mean "hashKV"?');
  });

  test('cross-field rules: no clients, nothing checked, an empty staleReads', () => {
    const body = '  traffic:\n    clients: {perMember: 0, spread: 0}\n  checks:\n    linearizability: false\n    watch: false\n  selfTest:\n    staleReads:\n';
    assert.deepEqual(where(withSpec(body)), ['7:5 spec.traffic.clients', '8:3 spec.checks', '12:5 spec.selfTest.staleReads']);
  });

  test('several problems in one manifest are all reported, in document order, each on its own line', () => {
    const text = `apiVersion: etcd.robustness.io/v1alpha1
kind: RobustnessRun
metadata:
  name: many
spec:
  duration: forever
  mode: exclusiv
  trafic: {}
  traffic:
    profile: kubernetes
    qps:
      target: -5
  watch:
    enabled: 1
  faults: []
`;
    const error = failure(text);
    assert.deepEqual(error.message.split('\n'), [
      'run.yaml:6:13: spec.duration: must be a duration such as 500ms, 30s, 2m or 1h30m, got "forever"',
      'run.yaml:7:9: spec.mode: must be one of exclusive, shared, got "exclusiv"',
      'run.yaml:8:3: spec.trafic: unknown field, did you mean "traffic"?',
      'run.yaml:12:15: spec.traffic.qps.target: must be a positive number, got -5',
      'run.yaml:14:14: spec.watch.enabled: must be true or false, got 1',
      'run.yaml:15:11: spec.faults: must be a mapping, got a list',
    ]);
    assert.equal(error.issues.length, 6);
    assert.equal(error.line, 6);
  });

  test('non-string field names are rejected', () => {
    assert.deepEqual(where(withSpec('  1: one\n')), ['6:3 spec']);
  });
});

describe('parseRobustnessRun: spec.faults', () => {
  const faults = (body: string, mode: 'exclusive' | 'shared' = 'exclusive'): RobustnessRunSpec['faults'] => parse(withSpec(`  faults:\n${body}`), mode).spec.faults;
  /** `LINE:COLUMN PATH: problem` of every issue. */
  const issues = (body: string, mode: 'exclusive' | 'shared' = 'exclusive'): string[] =>
    failure(withSpec(`  faults:\n${body}`), mode).issues.map((i) => `${i.line}:${i.column} ${i.path}: ${i.problem}`);

  test('no faults key: no faults; faults: {} is the default choices, one at a time', () => {
    assert.equal(parse(withSpec('  seed: 1\n')).spec.faults, undefined);
    const spec = parse(withSpec('  faults: {}\n')).spec.faults;
    assert.deepEqual(spec, defaultFaultsSpec());
    assert.deepEqual(spec, {
      maxConcurrentFaults: 1,
      intervalMs: { min: 3000, max: 6000 },
      durationMs: { min: 1000, max: 3000 },
      recoveryTimeoutMs: 30_000,
      choices: [
        { fault: 'kill', weight: 1, target: 'random', params: {} },
        { fault: 'pause', weight: 1, target: 'random', params: {} },
        { fault: 'blackhole', weight: 1, target: 'random', params: {} },
        { fault: 'delay', weight: 1, target: 'random', params: { delayMs: 75, jitterMs: 50 } },
        { fault: 'partition', weight: 1, target: 'minority', params: { mode: 'split' } },
        { fault: 'leaderTransfer', weight: 1, target: 'follower', params: {} },
        { fault: 'raftBeforeSavePanic', weight: 1, target: 'random', params: {} },
        { fault: 'raftAfterSavePanic', weight: 1, target: 'random', params: {} },
      ],
    });
  });

  test('enabled: false means no faults (the rest is still validated)', () => {
    assert.equal(faults('    enabled: false\n    choices: [kill]\n'), undefined);
    assert.deepEqual(issues('    enabled: false\n    choices: [explode]\n').length, 1);
  });

  test('choices: defaults filled per fault, a bare name is short for {fault: name}', () => {
    const spec = faults('    choices:\n      - drop\n      - fault: drop\n        params: {percent: 10}\n        target: all\n      - fault: leaderTransfer\n        target: member\n        member: m3\n');
    assert.deepEqual(spec?.choices, [
      { fault: 'drop', weight: 1, target: 'random', params: { percent: 50 } },
      { fault: 'drop', weight: 1, target: 'all', params: { percent: 10 } },
      { fault: 'leaderTransfer', weight: 1, target: 'member', member: 'm3', params: {} },
    ]);
  });

  test('compaction faults: revision is trailing by default, latest when written, anything else refused at its line', () => {
    const spec = faults('    choices:\n      - compact\n      - fault: compactBeforeSetFinishedCompactPanic\n        params: {revision: latest}\n');
    assert.deepEqual(spec?.choices, [
      { fault: 'compact', weight: 1, target: 'random', params: { revision: 'trailing' } },
      { fault: 'compactBeforeSetFinishedCompactPanic', weight: 1, target: 'random', params: { revision: 'latest' } },
    ]);
    const body = [
      '    choices:',
      '      - fault: compactAfterCommitBatchPanic',
      '        params: {revision: newest}', // 9
      '      - fault: defragBeforeCopyPanic',
      '        params: {revision: latest}', // 11
      '',
    ].join('\n');
    assert.deepEqual(issues(body), [
      '9:28 spec.faults.choices[0].params.revision: must be one of trailing, latest, got "newest"',
      '11:18 spec.faults.choices[1].params.revision: defragBeforeCopyPanic takes no parameters',
    ]);
  });

  test('interval and duration: one duration for both bounds, or one bound that moves the other only if it must', () => {
    assert.deepEqual(faults('    interval: 4s\n')?.intervalMs, { min: 4000, max: 4000 });
    assert.deepEqual(faults('    interval: {min: 10s}\n')?.intervalMs, { min: 10_000, max: 10_000 });
    assert.deepEqual(faults('    interval: {min: 4s}\n')?.intervalMs, { min: 4000, max: 6000 });
    assert.deepEqual(faults('    duration: {max: 500ms}\n')?.durationMs, { min: 500, max: 500 });
    assert.deepEqual(faults('    duration: {max: 10s}\n')?.durationMs, { min: 1000, max: 10_000 });
  });

  test('shared mode: faults need allowShared: true, unless disabled', () => {
    assert.deepEqual(issues('    maxConcurrentFaults: 1\n', 'shared'), [
      '6:3 spec.faults: fault injection disrupts every client of a shared cluster; set allowShared: true to allow it (or enabled: false)',
    ]);
    assert.equal(faults('    allowShared: true\n', 'shared')?.maxConcurrentFaults, 1);
    assert.equal(faults('    enabled: false\n', 'shared'), undefined);
  });

  test('an unknown fault lists the catalog and suggests the closest name', () => {
    const [first, ...rest] = issues('    choices:\n      - fault: kil\n      - explode\n');
    assert.match(first!, /^8:16 spec\.faults\.choices\[0\]\.fault: must be one of kill, crash, pause, blackhole, delay, drop, partition, .*raftBeforeApplySnapPanic, got "kil" \(did you mean "kill"\?\)$/);
    assert.deepEqual(rest.map((i) => i.split(': ')[0]), ['9:9 spec.faults.choices[1].fault']);
  });

  test('targets: not allowed for the fault, unknown, member required or forbidden', () => {
    const body = [
      '    choices:',
      '      - {fault: leaderTransfer, target: leader}', // 8
      '      - {fault: kill, target: everyone}', // 9
      '      - {fault: kill, target: member}', // 10
      '      - {fault: kill, member: m1}', // 11
      '      - {fault: rollingRestart, target: all}', // 12
      '',
    ].join('\n');
    assert.deepEqual(issues(body), [
      '8:41 spec.faults.choices[0].target: leaderTransfer cannot target "leader" (allowed for leaderTransfer: follower, member)',
      '9:31 spec.faults.choices[1].target: must be one of random, leader, follower, member, minority, majority, all, got "everyone"',
      '10:31 spec.faults.choices[2].member: is required with target: member (the name of the member to hit)',
      '11:23 spec.faults.choices[3].member: only allowed with target: member (this choice targets random)',
    ]);
  });

  test('params: unknown name, wrong type, out of range, each at its own line', () => {
    const body = [
      '    choices:',
      '      - fault: delay',
      '        params:',
      '          delayMs: "100"', // 10
      '          jitterMs: -1', // 11
      '          percent: 5', // 12
      '      - fault: kill',
      '        params: {delayMs: 1}', // 14
      '      - fault: partition',
      '        params: {mode: halves}', // 16
      '      - fault: drop',
      '        params: [1]', // 18
      '',
    ].join('\n');
    assert.deepEqual(issues(body), [
      '10:20 spec.faults.choices[0].params.delayMs: must be an integer between 0 and 10000, got "100" (write the number without quotes)',
      '11:21 spec.faults.choices[0].params.jitterMs: must be an integer between 0 and 10000, got -1',
      '12:11 spec.faults.choices[0].params.percent: unknown parameter of delay (allowed: delayMs, jitterMs)',
      '14:18 spec.faults.choices[1].params.delayMs: kill takes no parameters',
      '16:24 spec.faults.choices[2].params.mode: must be one of isolate, split, asymmetric, got "halves"',
      '18:17 spec.faults.choices[3].params: must be a mapping, got a list',
    ]);
  });

  test('the faults section itself: ranges, counts, durations, types', () => {
    const body = [
      '    maxConcurrentFaults: 6', // 7
      '    interval: {min: 5s, max: 2s}', // 8
      '    duration: [1s]', // 9
      '    recoveryTimeout: 10ms', // 10
      '    choices: []', // 11
      '    colour: red', // 12
      '',
    ].join('\n');
    assert.deepEqual(issues(body), [
      '7:26 spec.faults.maxConcurrentFaults: must be an integer between 1 and 5, got 6',
      '8:30 spec.faults.interval.max: must not be shorter than min (5s), got 2s',
      '9:15 spec.faults.duration: must be a mapping with min and max, or one duration such as "3s", got a list',
      '10:22 spec.faults.recoveryTimeout: must be a duration between 1s and 1h, got "10ms"',
      '11:14 spec.faults.choices: must hold at least one choice (write enabled: false to run without faults, or leave choices out for the default ones)',
      '12:5 spec.faults.colour: unknown field (allowed: enabled, allowShared, maxConcurrentFaults, interval, duration, recoveryTimeout, tolerateFailures, choices)',
    ]);
    assert.deepEqual(issues('    choices: kill\n'), ['7:14 spec.faults.choices: must be a list of fault choices, got "kill"']);
    assert.deepEqual(issues('    choices:\n      - 5\n      - {weight: 0}\n'), [
      '8:9 spec.faults.choices[0]: must be a fault name or a mapping with fault, weight, target, member and params, got 5',
      '9:9 spec.faults.choices[1].fault: is required',
      '9:18 spec.faults.choices[1].weight: must be a positive number, got 0',
    ]);
  });

  test('faults: alone (empty) is an error: it looks like "enabled"', () => {
    assert.deepEqual(where(withSpec('  faults:\n  seed: 1\n')), ['6:3 spec.faults']);
    assert.match(failure(withSpec('  faults:\n')).message, /write faults: \{\} for the default faults/);
  });
});

describe('parseRobustnessRun: properties', () => {
  const knownFields = [
    'duration', 'timeout', 'mode', 'prefix', 'seed', 'traffic', 'watch', 'checks', 'abortOnViolation', 'selfTest',
    'clusterRef', 'profile', 'weights', 'keys', 'valueSize', 'qps', 'clients', 'requestTimeout', 'compaction',
    'defragment', 'target', 'burst', 'min', 'perMember', 'spread', 'enabled', 'interval', 'allowShared', 'staleReads',
    'member', 'name', 'namespace', 'put', 'create', 'linearizability', 'progressInterval', 'faults',
    'maxConcurrentFaults', 'recoveryTimeout', 'choices', 'fault', 'weight', 'params', 'delayMs', 'percent', 'max',
    'schedule', 'kind', 'cron', 'window', 'historyLimit', 'suspend', 'hashKV',
  ];
  const scalar = fc.oneof(
    fc.constantFrom('30s', '1m', '0s', '-1s', 'etcd', 'kubernetes', 'shared', 'exclusive', '/p/', '/', '', '10', 'kill', 'delay', 'member', 'leader', 'cron', 'continuous', '0 3 * * *', '61 * * * *'),
    fc.integer({ min: -10, max: 300_000 }),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.string(),
  );
  // Mostly real field names, so random values reach the deep readers instead of stopping at "unknown field".
  const { value: specArbitrary } = fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      scalar,
      fc.dictionary(fc.oneof(fc.constantFrom(...knownFields), fc.string()), tie('value'), { maxKeys: 6 }),
      fc.array(tie('value'), { maxLength: 3 }),
    ),
  }));

  function onlyManifestErrors(text: string, defaultMode: 'exclusive' | 'shared'): void {
    try {
      parseRobustnessRun(text, { file: 'random.yaml', defaultMode });
    } catch (error) {
      assert.ok(error instanceof ManifestError, `not a ManifestError: ${String(error)}`);
      for (const issue of error.issues) {
        assert.ok(issue.line !== undefined && issue.line >= 1, `no line: ${error.message}`);
        assert.ok(issue.column !== undefined && issue.column >= 1, `no column: ${error.message}`);
      }
    }
  }

  test('random specs give a RobustnessRun or a ManifestError whose every issue has a line', () => {
    fc.assert(
      fc.property(specArbitrary, fc.constantFrom('exclusive' as const, 'shared' as const), (spec, mode) => {
        const text = stringify({ apiVersion: 'etcd.robustness.io/v1alpha1', kind: 'RobustnessRun', metadata: { name: 'p' }, spec });
        onlyManifestErrors(text, mode);
      }),
      { numRuns: 500 },
    );
  });

  test('random text gives a RobustnessRun or a ManifestError', () => {
    const yamlish = fc.array(fc.constantFrom('spec:', '  traffic:', '    qps: ', '[', ']', '{', '}', '- ', '---', ': ', '"', "'", '&a ', '*a', '!!str ', '#', '\n', '  ', 'x', '5'));
    fc.assert(
      fc.property(fc.oneof(fc.string(), yamlish.map((parts) => parts.join(''))), (text) => onlyManifestErrors(`${head}${text}`, 'shared')),
      { numRuns: 500 },
    );
  });

  test('a valid run survives a round trip through YAML', () => {
    const text = stringify({
      apiVersion: 'etcd.robustness.io/v1alpha1',
      kind: 'RobustnessRun',
      metadata: { name: 'round' },
      spec: { duration: formatDuration(fullSpec.durationMs), seed: 7 },
    });
    assert.equal(parse(text).spec.durationMs, 90_000);
  });
});

describe('spec.faults.tolerateFailures', () => {
  test('absent: failed faults count (no field in the spec); true: set; a non-boolean: refused with its place', () => {
    assert.equal(parse(withSpec('  faults: {}\n')).spec.faults?.tolerateFailures, undefined);
    assert.equal(parse(withSpec('  faults:\n    tolerateFailures: true\n')).spec.faults?.tolerateFailures, true);
    assert.deepEqual(where(withSpec('  faults:\n    tolerateFailures: maybe\n')), ['7:23 spec.faults.tolerateFailures']);
  });
});

describe('checkRunMembers: the members a run names must exist', () => {
  const run = (body: string): RobustnessRun => parse(withSpec(body));
  const refusal = (r: RobustnessRun, members: string[]): ManifestError => {
    try {
      checkRunMembers(r, members, 'run.yaml');
    } catch (error) {
      if (error instanceof ManifestError) return error;
      throw error;
    }
    assert.fail('accepted');
  };

  test('a fault aimed at a member the cluster does not have is refused, naming the fault and the members that exist', () => {
    const r = run('  faults:\n    choices:\n      - fault: kill\n      - fault: pause\n        target: member\n        member: etcd-99\n');
    const error = refusal(r, ['m1', 'm2', 'm3']);
    assert.equal(error.issues.length, 1);
    assert.equal(error.path, 'spec.faults.choices[1].member');
    assert.equal(error.message, 'run.yaml: spec.faults.choices[1].member: pause targets member "etcd-99", which this cluster does not have (its members: m1, m2, m3)');
  });

  test('every unknown member is named at once, the self-test\'s too; members that exist pass', () => {
    const r = run('  selfTest:\n    staleReads:\n      member: m9\n  faults:\n    choices:\n      - fault: kill\n        target: member\n        member: etcd-1\n      - fault: pause\n        target: member\n        member: m2\n');
    assert.deepEqual(refusal(r, ['m1', 'm2', 'm3']).issues.map((i) => i.path), ['spec.faults.choices[0].member', 'spec.selfTest.staleReads.member']);
    assert.doesNotThrow(() => checkRunMembers(r, ['etcd-1', 'm2', 'm9']));
    assert.doesNotThrow(() => checkRunMembers(run('  faults: {}\n'), []), 'a run that names no member needs none');
  });
});

describe('spec.watch.reopen', () => {
  test('absent means no reopened watches; {} takes the defaults', () => {
    assert.equal(parse(withSpec('  watch: {}\n')).spec.watch.reopen, undefined);
    assert.equal(parse(withSpec('  watch:\n    reopen:\n')).spec.watch.reopen, undefined);
    assert.deepEqual(parse(withSpec('  watch:\n    reopen: {}\n')).spec.watch.reopen, { intervalMs: 1000, lifetimeMs: 5000, revisionOffset: { min: -100, max: 100 } });
  });

  test('interval, lifetime and offsets are read; a bound left out follows the other', () => {
    const reopen = parse(withSpec('  watch:\n    reopen:\n      interval: 100ms\n      lifetime: 3s\n      revisionOffset: { min: 50, max: 100 }\n')).spec.watch.reopen;
    assert.deepEqual(reopen, { intervalMs: 100, lifetimeMs: 3000, revisionOffset: { min: 50, max: 100 } });
    assert.deepEqual(parse(withSpec('  watch:\n    reopen:\n      revisionOffset: { min: 200 }\n')).spec.watch.reopen?.revisionOffset, { min: 200, max: 200 });
    assert.deepEqual(parse(withSpec('  watch:\n    reopen:\n      revisionOffset: { max: -500 }\n')).spec.watch.reopen?.revisionOffset, { min: -500, max: -500 });
  });

  test('errors name the line, column and field', () => {
    assert.equal(
      failure(withSpec('  watch:\n    reopen:\n      revisionOffset: { min: 10, max: 5 }\n')).message,
      'run.yaml:8:39: spec.watch.reopen.revisionOffset.max: must not be below min (10), got 5',
    );
    assert.equal(
      failure(withSpec('  watch:\n    reopen:\n      revisionOffset:\n        min: 1.5\n')).message,
      'run.yaml:9:14: spec.watch.reopen.revisionOffset.min: must be an integer between -1000000 and 1000000, got 1.5',
    );
    assert.equal(failure(withSpec('  watch:\n    reopen:\n      interval: 5ms\n')).message, 'run.yaml:8:17: spec.watch.reopen.interval: must be a duration between 10ms and 1h, got "5ms"');
    assert.match(failure(withSpec('  watch:\n    reopen:\n      offset: 5\n')).message, /^run\.yaml:8:7: spec\.watch\.reopen\.offset: unknown field/);
  });
});
