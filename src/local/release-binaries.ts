/**
 * etcd binaries from an explicit folder, such as an old release built by test/bin/build-release.sh
 * (.cache/bin/etcd-<version>/) to reproduce a known bug. Pass the result to
 * `LocalEtcdCluster.start({ binaries })`; binaries.ts keeps serving the pinned current/previous builds.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { BinaryNotFoundError, packageRoot, type EtcdBinaries } from './binaries.ts';

/** Where test/bin/build-release.sh puts the binaries of one release. */
export function releaseBinariesDir(version: string): string {
  return path.join(packageRoot, '.cache', 'bin', `etcd-${version}`);
}

// A release, optionally +<patch>: built from the release's sources with test/bin/etcd-release/patches/<patch>.patch.
const releaseVersion = /^v\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;

/**
 * The version of the binaries in `dir`: the `version` file build-release.sh writes, else a version in
 * the folder's name (etcd-v3.5.4), else "custom".
 */
export function versionOfBinariesDir(dir: string): string {
  const file = path.join(dir, 'version');
  if (existsSync(file)) {
    const text = readFileSync(file, 'utf8').trim();
    if (text !== '') return text;
  }
  const fromName = /(v\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?(?:\+[0-9A-Za-z.-]+)?)$/.exec(path.basename(path.resolve(dir)));
  return fromName?.[1] ?? 'custom';
}

/** etcd, etcdctl and etcdutl in `dir` (all three must exist). */
export function etcdBinariesAt(dir: string, options: { version?: string; hint?: string } = {}): EtcdBinaries {
  const hint = options.hint ?? 'the folder must hold etcd, etcdctl and etcdutl';
  const need = (name: string): string => {
    const file = path.join(dir, name);
    if (!existsSync(file)) throw new BinaryNotFoundError(name, file, hint);
    return file;
  };
  return {
    version: options.version ?? versionOfBinariesDir(dir),
    etcd: need('etcd'),
    etcdctl: need('etcdctl'),
    etcdutl: need('etcdutl'),
  };
}

/**
 * The binaries of one release built by test/bin/build-release.sh, e.g. etcdReleaseBinaries('v3.5.4'), or of a
 * patched one, e.g. etcdReleaseBinaries('v3.5.13+compactBeforeSetFinishedCompact').
 */
export function etcdReleaseBinaries(version: string): EtcdBinaries {
  if (!releaseVersion.test(version)) throw new RangeError(`not an etcd release version: ${JSON.stringify(version)} (expected e.g. v3.5.4)`);
  return etcdBinariesAt(releaseBinariesDir(version), {
    version,
    hint: `run \`bash test/bin/build-release.sh ${version}\` to build it with gofail failpoints`,
  });
}
