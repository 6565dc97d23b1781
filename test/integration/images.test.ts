// The images of test/bin/build-images.sh (.cache/images/images.json), read back from their tarballs:
// they carry the names the defaults name (the chart's values, etcdImage() of an EtcdCluster with the CRD
// defaults); every command the chart and memberPod() run exists in its image and is executable by the
// image's non-root user; Node's loader and libraries resolve inside the operator image and Node starts
// there; containerd imports every tarball with its name and digest and runs it under runc with a
// read-only root file system; and the same spec builds the same digest again.
import assert from 'node:assert/strict';
import { chmodSync, closeSync, cpSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { V1Container, V1Deployment } from '@kubernetes/client-node';
import { memberPod } from '../../src/controller/placement/kubernetes-pod.ts';
import { etcdImage, imageLauncherPath, memberPaths } from '../../src/controller/placement/kubernetes-manifests.ts';
import { etcdBinaries } from '../../src/local/index.ts';
import { imageWalCommitPath } from '../../src/local/binaries.ts';
import { parseManifests, TestHelm } from '../helpers/helm.ts';
import {
  buildImage,
  containerArgv,
  executableBy,
  extractImage,
  ImageFs,
  inspectImage,
  readableBy,
  readImagesManifest,
  runCommand,
  ThrowawayContainerd,
  type BuiltImage,
  type ImageInspection,
  type ImagesManifest,
} from '../helpers/images.ts';
import { placementFixtures } from '../helpers/placement-fixtures.ts';

const nonroot = 65532;
const pathEnv = 'PATH=/usr/local/bin:/usr/bin:/bin';

interface Inspected {
  image: BuiltImage;
  inspection: ImageInspection;
  fs: ImageFs;
}

/** What runs in which image: a container of the chart or of memberPod(), or a tool the operator runs. */
interface ImageCommand {
  what: string;
  image: string;
  argv: string[];
  env?: string[];
}

/** The ELF program interpreter (PT_INTERP) of a 64-bit little-endian executable: its dynamic loader. */
function elfInterpreter(file: string): string {
  const fd = openSync(file, 'r');
  try {
    const header = Buffer.alloc(64);
    readSync(fd, header, 0, 64, 0);
    assert.equal(header.toString('latin1', 0, 4), '\x7fELF', `${file} is not an ELF file`);
    assert.equal(header[4], 2, `${file} is not a 64-bit ELF file`);
    const phoff = Number(header.readBigUInt64LE(32));
    const phentsize = header.readUInt16LE(54);
    const phnum = header.readUInt16LE(56);
    const table = Buffer.alloc(phentsize * phnum);
    readSync(fd, table, 0, table.length, phoff);
    for (let i = 0; i < phnum; i++) {
      const entry = table.subarray(i * phentsize, (i + 1) * phentsize);
      if (entry.readUInt32LE(0) !== 3) continue; // PT_INTERP
      const offset = Number(entry.readBigUInt64LE(8));
      const size = Number(entry.readBigUInt64LE(32));
      const interp = Buffer.alloc(size);
      readSync(fd, interp, 0, size, offset);
      return interp.toString('latin1').replace(/\0+$/, '');
    }
    throw new Error(`${file} has no program interpreter (a static executable?)`);
  } finally {
    closeSync(fd);
  }
}

describe('container images (test/bin/build-images.sh)', () => {
  let manifest: ImagesManifest;
  const inspected = new Map<string, Inspected>();
  let deployment: V1Container;
  let agentImage: string;
  const commands: ImageCommand[] = [];
  const etcdVersions: string[] = [];
  let helm: TestHelm | undefined;
  let scratch: string;

  const image = (name: string): Inspected => {
    const found = inspected.get(name);
    assert.ok(found, `images.json has no image ${name}: it has ${[...inspected.keys()].join(', ')}`);
    return found;
  };

  before(async () => {
    scratch = mkdtempSync(path.join(os.tmpdir(), 'etcd-robustness-images-'));
    manifest = readImagesManifest();
    for (const built of manifest.images) {
      const inspection = await inspectImage(manifest.builder, built.file);
      inspected.set(built.name, { image: built, inspection, fs: new ImageFs(inspection.files, inspection.config) });
    }

    // The chart with its default values: the operator Deployment and the agent image it passes on.
    helm = new TestHelm();
    const rendered = parseManifests<{ kind: string }>(await helm.template('etcd-robustness-system'));
    const deploymentObject = rendered.find((m): m is V1Deployment & { kind: string } => m.kind === 'Deployment');
    assert.ok(deploymentObject, 'the chart renders no Deployment');
    deployment = deploymentObject.spec!.template.spec!.containers.find((c) => c.name === 'operator')!;
    assert.ok(deployment, 'the chart Deployment has no operator container');
    const agentFlag = (deployment.args ?? []).find((a) => a.startsWith('--agent-image='));
    assert.ok(agentFlag, `the operator's args pass no --agent-image: ${(deployment.args ?? []).join(' ')}`);
    agentImage = agentFlag.slice('--agent-image='.length);

    commands.push({ what: 'the chart Deployment', image: deployment.image!, argv: containerArgv(image(deployment.image!).inspection.config, deployment.command, deployment.args) });
    commands.push({ what: 'etcd-wal-commit (the operator and agent run it)', image: deployment.image!, argv: [imageWalCommitPath] });

    // Member Pods of an EtcdCluster with the CRD's defaults, for both etcd versions, with and without failpoints.
    for (const series of ['current', 'previous'] as const) etcdVersions.push(etcdBinaries(series).version.replace(/^v/, ''));
    for (const version of etcdVersions) {
      for (const failpoints of [false, true]) {
        const fixtures = placementFixtures('images', { version });
        const cluster = fixtures.etcdCluster('demo', { image: { repository: 'gcr.io/etcd-development/etcd', failpoints, pullPolicy: 'IfNotPresent' } });
        const pod = memberPod(cluster, fixtures.launchOf('demo', 0), { clusterDomain: 'cluster.local', operatorImage: agentImage });
        const installer = pod.spec!.initContainers?.find((c) => c.name === 'etcd-launcher');
        for (const container of [...(pod.spec!.initContainers ?? []), ...pod.spec!.containers]) {
          const config = image(container.image!).inspection.config;
          const env = (container.env ?? []).filter((e) => e.value !== undefined).map((e) => `${e.name}=${e.value!}`);
          const argv = containerArgv(config, container.command, container.args);
          const what = `the ${container.name} container of ${etcdImage(cluster)}'s member Pod`;
          if (argv[0]?.startsWith(`${memberPaths.launcher}/`)) {
            // etcd through the launcher: the launcher is the one the init container copies from its image,
            // and what it starts (after `--`) must be in the etcd image.
            assert.ok(installer, `${what} runs the launcher, but no init container installs it`);
            commands.push({ what: `${what} (the launcher, from ${installer.image!})`, image: installer.image!, argv: [imageLauncherPath, ...argv.slice(1)] });
            commands.push({ what, image: container.image!, argv: argv.slice(argv.indexOf('--') + 1), env });
            continue;
          }
          commands.push({ what, image: container.image!, argv, env });
        }
      }
    }
  });

  after(() => {
    helm?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  test('images.json holds the images the defaults name, each tarball with its name and digest', () => {
    assert.equal(manifest.operator, deployment.image, 'the chart default operator image');
    assert.equal(agentImage, manifest.operator, "the chart's default agent image is the operator image");
    const expected = [manifest.operator, manifest.pause];
    for (const version of etcdVersions) {
      for (const failpoints of [false, true]) {
        const cluster = placementFixtures('images', { version }).etcdCluster('demo', {
          image: { repository: 'gcr.io/etcd-development/etcd', failpoints, pullPolicy: 'IfNotPresent' },
        });
        expected.push(etcdImage(cluster));
      }
    }
    assert.deepEqual(manifest.images.map((i) => i.name).sort(), expected.sort());
    for (const { image: built, inspection } of inspected.values()) {
      assert.deepEqual(inspection.names, [built.name], `${built.file} names its image`);
      assert.match(built.digest, /^sha256:[0-9a-f]{64}$/);
      assert.equal(inspection.digest, built.digest, `${built.file}: the digest images.json records`);
      assert.equal(inspection.id, built.id, `${built.file}: the config digest images.json records`);
    }
  });

  test('every image but pause runs as 65532 with PATH set, a passwd entry for it and a sticky /tmp', () => {
    for (const { image: built, inspection, fs } of inspected.values()) {
      if (built.role === 'pause') continue;
      assert.equal(inspection.config.User, `${nonroot}:${nonroot}`, `${built.name}: User`);
      assert.ok(inspection.config.Env?.includes(pathEnv), `${built.name}: Env ${JSON.stringify(inspection.config.Env)}`);
      const tmp = fs.resolve('/tmp');
      assert.equal(tmp?.type, 'dir', `${built.name}: /tmp`);
      assert.equal(tmp.mode, 0o1777, `${built.name}: /tmp mode`);
      for (const file of ['/etc/passwd', '/etc/group']) {
        const entry = fs.resolve(file);
        assert.equal(entry?.type, 'file', `${built.name}: ${file}`);
        assert.ok(readableBy(entry, nonroot, nonroot), `${built.name}: ${file} readable`);
      }
    }
    const operator = image(manifest.operator);
    assert.equal(operator.inspection.config.WorkingDir, '/app');
    assert.ok(operator.inspection.config.Env?.includes('NODE_ENV=production'));
    // Nothing the operator runs from is writable by it.
    for (const file of operator.inspection.files.filter((f) => f.path.startsWith('/app') || f.path.startsWith('/usr'))) {
      assert.ok(file.uid === 0 && (file.type === 'symlink' || (file.mode & 0o022) === 0), `${file.path} is writable by others (${file.mode.toString(8)}, uid ${file.uid})`);
    }
    for (const { image: built, fs } of inspected.values()) {
      if (built.role !== 'etcd' && built.role !== 'etcd-failpoints') continue;
      const data = fs.resolve('/var/lib/etcd');
      assert.equal(data?.type, 'dir', `${built.name}: /var/lib/etcd`);
      assert.equal(data.uid, nonroot, `${built.name}: /var/lib/etcd owner`);
      assert.equal(data.mode, 0o700, `${built.name}: /var/lib/etcd mode`);
    }
  });

  test('every command the chart, memberPod() and the operator run exists in its image, executable by its user', () => {
    assert.ok(commands.length >= 10, `commands: ${commands.length}`);
    const problems: string[] = [];
    for (const command of commands) {
      const { fs } = image(command.image);
      const override = command.env?.find((e) => e.startsWith('PATH='));
      assert.equal(override, undefined, `${command.what} overrides PATH; resolve it on that PATH`);
      const executable = fs.lookPath(command.argv[0]!);
      if (executable?.type !== 'file' || !executableBy(executable, fs.uid, fs.gid)) {
        problems.push(`${command.what} runs ${JSON.stringify(command.argv.slice(0, 3))}: ${command.argv[0]} is not an executable file on PATH ${fs.pathEnv.join(':')} of ${command.image}`);
        continue;
      }
      // A script run by node must be in the image too (and readable by the image's user).
      if (path.posix.basename(executable.path) === 'node' && command.argv[1] !== undefined && !command.argv[1].startsWith('-')) {
        const script = fs.resolve(command.argv[1]);
        if (script?.type !== 'file' || !readableBy(script, fs.uid, fs.gid)) problems.push(`${command.what} runs node ${command.argv[1]}, which ${command.image} lacks`);
      }
    }
    assert.deepEqual(problems, []);
  });

  test("node's dynamic loader and libraries resolve inside the operator image, and node starts there as 65532", async () => {
    assert.equal(process.getuid?.(), 0, 'extracting with owners and chroot need root');
    const rootfs = path.join(scratch, 'operator');
    await extractImage(manifest.builder, image(manifest.operator).image.file, rootfs);
    const node = image(manifest.operator).fs.lookPath('node');
    assert.ok(node, 'node is on the operator image PATH');
    const loader = elfInterpreter(path.join(rootfs, node.path));
    assert.equal(image(manifest.operator).fs.resolve(loader)?.type, 'file', `the loader ${loader} is in the image`);
    // The image's own loader lists every library node needs (transitively) as it resolves them in the image.
    const listed = await runCommand('chroot', [rootfs, loader, '--list', node.path]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.doesNotMatch(listed.stdout, /not found/, listed.stdout);
    for (const library of ['libstdc++.so.6', 'libgcc_s.so.1', 'libc.so.6', 'libm.so.6']) assert.match(listed.stdout, new RegExp(`${library.replace(/[.+]/g, '\\$&')} => /`), listed.stdout);
    const version = await runCommand('chroot', [`--userspec=${nonroot}:${nonroot}`, rootfs, node.path, '--version']);
    assert.equal(version.code, 0, version.stderr);
    assert.match(version.stdout, /^v24\./);
  });

  describe('in a throwaway containerd, under runc', () => {
    let containerd: ThrowawayContainerd | undefined;

    before(async () => {
      containerd = await ThrowawayContainerd.start();
      for (const built of manifest.images) await containerd.importImage(built.file);
    });

    after(async () => {
      await containerd?.close();
    });

    test('ctr images import keeps every name and digest', async () => {
      const listed = await containerd!.images();
      for (const built of manifest.images) {
        assert.deepEqual(listed.find((i) => i.name === built.name), { name: built.name, digest: built.digest }, `${built.name} after the import: ${JSON.stringify(listed)}`);
      }
    });

    test('the commands start, as 65532 on a read-only root file system', async () => {
      const seen = new Set<string>();
      for (const command of commands) {
        const { fs } = image(command.image);
        const executable = path.posix.basename(fs.lookPath(command.argv[0]!)?.path ?? command.argv[0]!);
        // Run what each container runs up to its subcommand, asking for its usage or version: enough to
        // load every module it imports (the agent and operator commands) or to start the binary.
        const argv =
          executable === 'node'
            ? [...command.argv.slice(0, 3), '--help']
            : executable === 'etcd-wal-commit'
              ? [...command.argv, '--help']
              : executable === 'etcd-launcher'
                ? command.argv.slice(0, 1)
                : [...command.argv.slice(0, 1), '--version'];
        const key = `${command.image} ${argv.join(' ')}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const result = await containerd!.run(command.image, argv);
        if (executable === 'etcd-wal-commit' || executable === 'etcd-launcher') {
          assert.equal(result.code, 2, `${command.what}: ${key}: ${result.stderr}`);
          assert.match(result.stderr, new RegExp(`usage: ${executable}`));
          continue;
        }
        assert.equal(result.code, 0, `${command.what}: ${key} exited ${result.code}: ${result.stderr}`);
        if (executable === 'node') assert.match(result.stdout, /Usage: /, `${key}: ${result.stdout}`);
        else assert.match(result.stdout, new RegExp(`etcd Version: ${command.image.split(':v')[1]!.replace(/\./g, '\\.')}\\b`), `${key}: ${result.stdout}`);
      }
      for (const version of etcdVersions) {
        for (const name of [`gcr.io/etcd-development/etcd:v${version}`, `gcr.io/etcd-development/etcd-failpoints:v${version}`]) {
          for (const tool of ['etcdctl', 'etcdutl']) {
            const result = await containerd!.run(name, [tool, 'version']);
            assert.equal(result.code, 0, `${name} ${tool} version: ${result.stderr}`);
            assert.match(result.stdout, new RegExp(`${tool} version: ${version.replace(/\./g, '\\.')}`), `${name}: ${result.stdout}`);
          }
        }
      }
      // Its user and working dir, a writable /tmp (the chart's emptyDir) and nothing else writable.
      const script = [
        'const fs = require("node:fs");',
        'fs.writeFileSync("/tmp/probe", "x");',
        'let app = "writable";',
        'try { fs.writeFileSync("/app/probe", "x"); } catch (error) { app = error.code; }',
        'console.log(process.getuid(), process.getgid(), process.cwd(), app);',
      ].join(' ');
      const id = await containerd!.run(manifest.operator, ['node', '-e', script]);
      assert.equal(id.code, 0, id.stderr);
      assert.equal(id.stdout.trim(), `${nonroot} ${nonroot} /app EROFS`);
    });

    test('the pause image holds until SIGTERM, then exits 0', async () => {
      const result = await containerd!.runAndSignal(manifest.pause, 'SIGTERM');
      assert.equal(result.code, 0, result.stderr);
    });
  });

  test('the same spec builds the same digest; a changed input another', async () => {
    // The operator, pause and one etcd image: the other etcd images are the same spec with other binaries.
    const kinds = manifest.images.filter((built, i, all) => all.findIndex((other) => other.role === built.role) === i && built.role !== 'etcd');
    for (const built of kinds) {
      const again = await buildImage(manifest.builder, built.spec, path.join(scratch, path.basename(built.file)));
      assert.equal(again, built.digest, `${built.name} rebuilt from ${built.spec}`);
      rmSync(path.join(scratch, path.basename(built.file)));
    }

    // Host timestamps, permissions beyond the execute bit, and the order files were written in leave the
    // digest alone; a changed byte does not.
    const tree = (name: string, order: string[], umask: number, mtime: number): string => {
      const dir = path.join(scratch, name);
      mkdirSync(path.join(dir, 'sub'), { recursive: true });
      for (const file of order) {
        const target = path.join(dir, file);
        writeFileSync(target, `content of ${file}\n`);
        chmodSync(target, (file.endsWith('.sh') ? 0o777 : 0o666) & ~umask);
        utimesSync(target, mtime, mtime);
      }
      return dir;
    };
    const a = tree('a', ['x.txt', 'sub/y.sh', 'sub/z.txt'], 0o022, 1_000_000);
    const b = tree('b', ['sub/z.txt', 'sub/y.sh', 'x.txt'], 0o077, 2_000_000);
    const spec = (dir: string): string => {
      const file = path.join(scratch, `${path.basename(dir)}.spec.json`);
      writeFileSync(file, JSON.stringify({ name: 'localhost/reproducible:1', config: { Cmd: ['/t/sub/y.sh'] }, layers: [{ comment: 'tree', entries: [{ path: '/t', source: dir }] }] }));
      return file;
    };
    const digestA = await buildImage(manifest.builder, spec(a), path.join(scratch, 'a.tar'));
    const digestB = await buildImage(manifest.builder, spec(b), path.join(scratch, 'b.tar'));
    assert.equal(digestB, digestA, 'the same content from another checkout gives the same digest');
    const c = path.join(scratch, 'c');
    cpSync(a, c, { recursive: true });
    writeFileSync(path.join(c, 'sub', 'z.txt'), 'content of sub/z.txT\n');
    const digestC = await buildImage(manifest.builder, spec(c), path.join(scratch, 'c.tar'));
    assert.notEqual(digestC, digestA, 'a changed byte changes the digest');
    // Equal digests are not an accident of a constant: the file modes the spec gives are in the image.
    const listing = (await inspectImage(manifest.builder, path.join(scratch, 'b.tar'))).files;
    assert.deepEqual(
      listing.filter((f) => f.path.startsWith('/t/')).map((f) => `${f.path} ${f.mode.toString(8)}`),
      ['/t/sub 755', '/t/sub/y.sh 755', '/t/sub/z.txt 644', '/t/x.txt 644'],
    );
  });
});
