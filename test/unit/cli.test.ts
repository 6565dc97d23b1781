import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';

const cli = new URL('../../src/cli.ts', import.meta.url).pathname;
const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cli, ...args]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('etcd-robustness CLI', () => {
  test('--version prints the package version', async () => {
    const result = await run(['--version']);
    assert.equal(result.code, 0);
    assert.equal(result.stdout.trim(), version);
  });

  test('--help lists every subcommand', async () => {
    const result = await run(['--help']);
    assert.equal(result.code, 0);
    for (const command of ['run --local', 'check', 'operator', 'agent']) assert.match(result.stdout, new RegExp(`^  ${command}`, 'm'));
  });

  test('an unknown command is a usage error naming it', async () => {
    const result = await run(['frobnicate']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /unknown command "frobnicate"/);
  });

  // run uses check's exit codes: 2 means inconclusive there, so usage errors are 64.
  test('run without --local is refused with a hint', async () => {
    const result = await run(['run']);
    assert.equal(result.code, 64);
    assert.match(result.stderr, /only --local/);
  });

  test('run --local refuses an even member count', async () => {
    const result = await run(['run', '--local', '--members', '2']);
    assert.equal(result.code, 64);
    assert.match(result.stderr, /--members must be 1, 3 or 5, got "2"/);
  });

  test('run --local --etcd-flag refuses a name without "--", one the runtime owns, and a missing "="', async () => {
    const bare = await run(['run', '--local', '--etcd-flag=snapshot-count=10']);
    assert.equal(bare.code, 64);
    assert.match(bare.stderr, /--etcd-flag: an etcd flag must start with "--" \(e\.g\. --snapshot-count=10\), got "snapshot-count=10"/);
    const owned = await run(['run', '--local', '--etcd-flag=--snapshot-count=10', '--etcd-flag=--data-dir=/tmp/x']);
    assert.equal(owned.code, 64);
    assert.match(owned.stderr, /--data-dir is set by the local runtime for each member and cannot be changed/);
    const ambiguous = await run(['run', '--local', '--etcd-flag', '--snapshot-count=10']);
    assert.equal(ambiguous.code, 64);
    assert.match(ambiguous.stderr, /--etcd-flag=-XYZ/);
  });

  test('an unknown option is a usage error naming it', async () => {
    const result = await run(['run', '--local', '--bogus']);
    assert.equal(result.code, 64);
    assert.match(result.stderr, /--bogus/);
  });

  test('run --local with a bad manifest names every problem by file, line and field, before starting anything', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cli-manifest-'));
    try {
      const file = path.join(dir, 'bad.yaml');
      writeFileSync(
        file,
        [
          'apiVersion: etcd.robustness.io/v1alpha1',
          'kind: RobustnessRun',
          'metadata:',
          '  name: bad',
          'spec:',
          '  traffic:',
          '    profile: redis',
          '    qps:',
          '      target: -5',
          '  duraton: 10s',
          '',
        ].join('\n'),
      );
      const result = await run(['run', '--local', file]);
      assert.equal(result.code, 64);
      assert.match(result.stderr, new RegExp(`${file}:7:\\d+: spec\\.traffic\\.profile: .*etcd.*kubernetes`));
      assert.match(result.stderr, new RegExp(`${file}:9:\\d+: spec\\.traffic\\.qps\\.target: .*-5`));
      assert.match(result.stderr, new RegExp(`${file}:10:\\d+: spec\\.duraton`));
      assert.doesNotMatch(result.stdout, /cluster:/, 'no cluster may be started for a bad manifest');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('run --local with a missing manifest file says which file', async () => {
    const result = await run(['run', '--local', '/nonexistent/run.yaml']);
    assert.equal(result.code, 64);
    assert.match(result.stderr, /cannot read \/nonexistent\/run\.yaml/);
  });
});
