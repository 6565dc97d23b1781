import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { BinaryNotFoundError, etcdBinaries } from '../../src/local/index.ts';

test('a folder without etcd is reported with its path and how to build the binaries', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'etcd-robustness-empty-'));
  const saved = process.env['ETCD_ROBUSTNESS_ETCD_DIR'];
  process.env['ETCD_ROBUSTNESS_ETCD_DIR'] = dir;
  try {
    assert.throws(
      () => etcdBinaries(),
      (error: unknown) => error instanceof BinaryNotFoundError && error.searched === path.join(dir, 'etcd') && /npm run build:bins/.test(error.message),
    );
  } finally {
    if (saved === undefined) delete process.env['ETCD_ROBUSTNESS_ETCD_DIR'];
    else process.env['ETCD_ROBUSTNESS_ETCD_DIR'] = saved;
    rmSync(dir, { recursive: true, force: true });
  }
});
