import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { BinaryNotFoundError, packageRoot } from '../../src/local/index.ts';
import { etcdBinariesAt, etcdReleaseBinaries, releaseBinariesDir, versionOfBinariesDir } from '../../src/local/release-binaries.ts';

function folderWith(name: string, files: Record<string, string>): { dir: string; cleanup: () => void } {
  const root = mkdtempSync(path.join(os.tmpdir(), 'etcd-robustness-release-'));
  const dir = path.join(root, name);
  mkdirSync(dir);
  for (const [file, text] of Object.entries(files)) writeFileSync(path.join(dir, file), text);
  return { dir, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

const binaries = { etcd: '', etcdctl: '', etcdutl: '' };

test('etcdBinariesAt finds the three binaries and takes the version from the version file', () => {
  const { dir, cleanup } = folderWith('anything', { ...binaries, version: 'v3.5.4\n' });
  try {
    assert.deepEqual(etcdBinariesAt(dir), {
      version: 'v3.5.4',
      etcd: path.join(dir, 'etcd'),
      etcdctl: path.join(dir, 'etcdctl'),
      etcdutl: path.join(dir, 'etcdutl'),
    });
    assert.equal(etcdBinariesAt(dir, { version: 'mine' }).version, 'mine');
  } finally {
    cleanup();
  }
});

test('without a version file the version comes from the folder name, else it is "custom"', () => {
  const named = folderWith('etcd-v3.5.5', binaries);
  const plain = folderWith('bin', binaries);
  try {
    assert.equal(versionOfBinariesDir(named.dir), 'v3.5.5');
    const patched = folderWith('etcd-v3.5.13+compactBeforeSetFinishedCompact', binaries);
    try {
      assert.equal(versionOfBinariesDir(patched.dir), 'v3.5.13+compactBeforeSetFinishedCompact');
    } finally {
      patched.cleanup();
    }
    assert.equal(versionOfBinariesDir(plain.dir), 'custom');
  } finally {
    named.cleanup();
    plain.cleanup();
  }
});

test('a missing binary is reported with its path', () => {
  const { dir, cleanup } = folderWith('etcd-v3.5.4', { etcd: '', etcdctl: '' });
  try {
    assert.throws(
      () => etcdBinariesAt(dir),
      (error: unknown) => error instanceof BinaryNotFoundError && error.searched === path.join(dir, 'etcdutl'),
    );
  } finally {
    cleanup();
  }
});

test('release binaries live in .cache/bin/etcd-<version>; a missing build says how to make it', () => {
  assert.equal(releaseBinariesDir('v3.5.4'), path.join(packageRoot, '.cache', 'bin', 'etcd-v3.5.4'));
  assert.throws(() => etcdReleaseBinaries('3.5.4'), RangeError);
  assert.throws(() => etcdReleaseBinaries('../v3.5.4'), RangeError);
  assert.throws(
    () => etcdReleaseBinaries('v0.0.0-never-built'),
    (error: unknown) => error instanceof BinaryNotFoundError && /build-release\.sh v0\.0\.0-never-built/.test(error.message),
  );  // A patched release (build-release.sh v3.X.Y+<patch>) has a folder of its own.
  assert.equal(releaseBinariesDir('v3.5.13+p'), path.join(packageRoot, '.cache', 'bin', 'etcd-v3.5.13+p'));
  assert.throws(
    () => etcdReleaseBinaries('v0.0.0+never-built'),
    (error: unknown) => error instanceof BinaryNotFoundError && /build-release\.sh v0\.0\.0\+never-built/.test(error.message),
  );
  assert.throws(() => etcdReleaseBinaries('v3.5.13+../x'), RangeError);
});
