// The images test/bin/build-images.sh writes (.cache/images/images.json), read back for the tests: what
// tools/image-build's `inspect` reports about a tarball (config, merged file list), a view of that file
// list that resolves paths and commands the way the kernel and the kubelet would, and a throwaway
// containerd (its own root, state and socket in a temporary folder) that imports the tarballs and runs
// them under runc.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { packageRoot } from '../../src/local/index.ts';
import { ManagedProcess } from '../../src/local/process.ts';

export const imagesManifestPath = path.join(packageRoot, '.cache', 'images', 'images.json');

export interface BuiltImage {
  name: string;
  /** The OCI layout tarball. */
  file: string;
  /** The manifest digest (what containerd reports after the import). */
  digest: string;
  /** The config digest (the image ID the kubelet reports). */
  id: string;
  size: number;
  role: 'operator' | 'etcd' | 'etcd-failpoints' | 'pause';
  /** The spec it was built from (image-build build SPEC rebuilds it). */
  spec: string;
}

export interface ImagesManifest {
  images: BuiltImage[];
  /** The operator (and fault agent) image's name. */
  operator: string;
  /** The test node's sandbox image's name. */
  pause: string;
  /** tools/image-build, as the script built it. */
  builder: string;
}

export class ImagesNotBuiltError extends Error {
  override name = 'ImagesNotBuiltError';
}

export function readImagesManifest(): ImagesManifest {
  if (!existsSync(imagesManifestPath)) {
    throw new ImagesNotBuiltError(`${imagesManifestPath} not found: run \`npm run build:images\` (test/bin/build-images.sh)`);
  }
  return JSON.parse(readFileSync(imagesManifestPath, 'utf8')) as ImagesManifest;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; a non-zero exit is a result, not an error (a command that cannot start is). */
export function runCommand(file: string, args: readonly string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: options.timeoutMs ?? 120_000, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, env: options.env ?? process.env }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') {
        reject(new Error(`${file} ${args.join(' ')} could not run: ${error.message}${stderr ? `\n${stderr}` : ''}`));
        return;
      }
      resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
    });
  });
}

async function mustRun(file: string, args: readonly string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const result = await runCommand(file, args, options);
  if (result.code !== 0) throw new Error(`${path.basename(file)} ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}

export interface ImageFile {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink';
  /** Permission bits (setuid, setgid and sticky included). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  link?: string;
}

/** The part of an OCI image config the images set. */
export interface ImageConfig {
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  User?: string;
  WorkingDir?: string;
}

export interface ImageInspection {
  names: string[];
  digest: string;
  id: string;
  config: ImageConfig;
  layers: string[];
  files: ImageFile[];
}

/** `image-build inspect`: also checks every blob against its digest. */
export async function inspectImage(builder: string, file: string): Promise<ImageInspection> {
  return JSON.parse(await mustRun(builder, ['inspect', file])) as ImageInspection;
}

/** `image-build extract`: the image's merged file system in `dir`, owners kept (as root). */
export async function extractImage(builder: string, file: string, dir: string): Promise<void> {
  await mustRun(builder, ['extract', file, dir]);
}

/** `image-build build`: writes SPEC's image to OUT and returns its manifest digest. */
export async function buildImage(builder: string, spec: string, out: string): Promise<string> {
  const result = JSON.parse(await mustRun(builder, ['build', spec, out], { env: { ...process.env, SOURCE_DATE_EPOCH: '0' } })) as { digest: string };
  return result.digest;
}

/** An image's file system as its file list, resolved as the kernel would (symbolic links followed inside the image). */
export class ImageFs {
  private readonly files: Map<string, ImageFile>;
  private readonly config: ImageConfig;

  constructor(files: readonly ImageFile[], config: ImageConfig) {
    this.files = new Map(files.map((f) => [f.path, f]));
    this.config = config;
  }

  /** The entry at `file` with every symbolic link on the way followed; undefined when it does not exist. */
  resolve(file: string): ImageFile | undefined {
    let current = path.posix.normalize(file);
    for (let hops = 0; hops < 40; hops++) {
      const parts = current.split('/').filter((p) => p !== '');
      let prefix = '';
      let redirected = false;
      for (let i = 0; i < parts.length; i++) {
        prefix = `${prefix}/${parts[i]!}`;
        const entry = this.files.get(prefix);
        if (entry === undefined) return undefined;
        if (entry.type === 'symlink') {
          const target = entry.link!.startsWith('/') ? entry.link! : path.posix.join(path.posix.dirname(prefix), entry.link!);
          current = path.posix.normalize([target, ...parts.slice(i + 1)].join('/'));
          redirected = true;
          break;
        }
      }
      if (!redirected) return current === '/' ? undefined : this.files.get(current);
    }
    throw new Error(`${file}: too many levels of symbolic links`);
  }

  /** PATH of the image's config (the environment a container starts with). */
  get pathEnv(): string[] {
    const entry = (this.config.Env ?? []).find((e) => e.startsWith('PATH='));
    return entry === undefined ? [] : entry.slice('PATH='.length).split(':');
  }

  /** The file `command` names, looked up on the image's PATH unless it contains a slash (as runc does). */
  lookPath(command: string): ImageFile | undefined {
    if (command.includes('/')) return this.resolve(command);
    for (const dir of this.pathEnv) {
      const found = this.resolve(path.posix.join(dir, command));
      if (found?.type === 'file' && executableBy(found, this.uid, this.gid)) return found;
    }
    return undefined;
  }

  get uid(): number {
    return Number((this.config.User ?? '0').split(':')[0]);
  }

  get gid(): number {
    return Number((this.config.User ?? '0:0').split(':')[1] ?? 0);
  }
}

function permissionClass(file: ImageFile, uid: number, gid: number): number {
  if (uid === file.uid) return (file.mode >> 6) & 7;
  if (gid === file.gid) return (file.mode >> 3) & 7;
  return file.mode & 7;
}

export const executableBy = (file: ImageFile, uid: number, gid: number): boolean => uid === 0 ? (file.mode & 0o111) !== 0 : (permissionClass(file, uid, gid) & 1) !== 0;
export const readableBy = (file: ImageFile, uid: number, gid: number): boolean => uid === 0 || (permissionClass(file, uid, gid) & 4) !== 0;

/** What a container runs: command (else the image's Entrypoint), then args (else, without a command, the image's Cmd). */
export function containerArgv(config: ImageConfig, command: readonly string[] | undefined, args: readonly string[] | undefined): string[] {
  if (command !== undefined && command.length > 0) return [...command, ...(args ?? [])];
  return [...(config.Entrypoint ?? []), ...(args ?? config.Cmd ?? [])];
}

export interface ImageListing {
  name: string;
  digest: string;
}

/**
 * A containerd of its own for one test: root, state, socket, runc root and FIFOs in a temporary folder,
 * no CRI. Containers get a one-level cgroup of their own (runc removes it with the container) so that
 * nothing is left in the machine's cgroup hierarchies. containerd 1.6 puts its shims' sockets in
 * /run/containerd/s whatever its config says: close() removes that folder when this run created it.
 */
export class ThrowawayContainerd {
  readonly dir: string;
  readonly socket: string;
  private readonly process: ManagedProcess;
  private readonly createdRunDir: boolean;
  private readonly containers = new Set<string>();

  private constructor(dir: string, createdRunDir: boolean) {
    this.dir = dir;
    this.socket = path.join(dir, 'containerd.sock');
    this.createdRunDir = createdRunDir;
    const config = path.join(dir, 'config.toml');
    writeFileSync(
      config,
      [
        'version = 2',
        `root = "${path.join(dir, 'root')}"`,
        `state = "${path.join(dir, 'state')}"`,
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
        '[grpc]',
        `  address = "${this.socket}"`,
        '[plugins."io.containerd.internal.v1.opt"]',
        `  path = "${path.join(dir, 'opt')}"`,
        '',
      ].join('\n'),
    );
    this.process = new ManagedProcess('containerd', 'containerd', ['--config', config], {
      logFile: path.join(dir, 'containerd.log'),
      parentDeathSignal: 'SIGKILL',
      exitSignal: 'SIGTERM',
    });
  }

  static async start(): Promise<ThrowawayContainerd> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'etcd-robustness-containerd-'));
    const containerd = new ThrowawayContainerd(dir, !existsSync('/run/containerd'));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (!containerd.process.running) {
        const log = readFileSync(path.join(dir, 'containerd.log'), 'utf8').split('\n').slice(-20).join('\n');
        await containerd.close();
        throw new Error(`containerd exited at start:\n${log}`);
      }
      if (existsSync(containerd.socket) && (await containerd.ctr(['version'])).code === 0) return containerd;
      if (Date.now() > deadline) {
        await containerd.close();
        throw new Error('containerd did not serve its socket within 30 s');
      }
      await sleep(200);
    }
  }

  ctr(args: readonly string[], timeoutMs = 120_000): Promise<CommandResult> {
    return runCommand('ctr', ['--address', this.socket, '--namespace', 'k8s.io', ...args], { timeoutMs });
  }

  async importImage(file: string): Promise<void> {
    const result = await this.ctr(['images', 'import', file], 300_000);
    if (result.code !== 0) throw new Error(`ctr images import ${file} exited ${result.code}: ${result.stderr}`);
  }

  /** `ctr images ls`: every image's name and manifest digest. */
  async images(): Promise<ImageListing[]> {
    const result = await this.ctr(['images', 'ls']);
    if (result.code !== 0) throw new Error(`ctr images ls exited ${result.code}: ${result.stderr}`);
    return result.stdout
      .split('\n')
      .slice(1)
      .filter((line) => line.trim() !== '')
      .map((line) => {
        const [name, , digest] = line.trim().split(/\s+/);
        return { name: name!, digest: digest! };
      });
  }

  private runArgs(image: string, id: string, argv: readonly string[]): string[] {
    this.containers.add(id);
    return [
      'run',
      '--rm',
      // Like the chart's Pods: a read-only root file system with a writable /tmp (an emptyDir there).
      '--read-only',
      '--mount',
      'type=tmpfs,src=tmpfs,dst=/tmp,options=rw:nosuid:nodev:mode=1777',
      `--cgroup=/${id}`,
      `--runc-root=${path.join(this.dir, 'runc')}`,
      `--fifo-dir=${path.join(this.dir, 'fifo')}`,
      image,
      id,
      ...argv,
    ];
  }

  /** Runs argv in a new container of `image` (its config's user, environment and working dir) to its end. */
  async run(image: string, argv: readonly string[], timeoutMs = 60_000): Promise<CommandResult> {
    const id = `ero-images-${randomBytes(4).toString('hex')}`;
    try {
      return await this.ctr(this.runArgs(image, id, argv), timeoutMs);
    } finally {
      await this.remove(id);
    }
  }

  /**
   * Starts `image` with its own entrypoint, waits until its task runs, sends `signal` and returns how
   * the container ended.
   */
  async runAndSignal(image: string, signal: NodeJS.Signals): Promise<CommandResult> {
    const id = `ero-images-${randomBytes(4).toString('hex')}`;
    try {
      const running = this.ctr(this.runArgs(image, id, []), 60_000);
      const deadline = Date.now() + 30_000;
      while (!(await this.ctr(['task', 'ls'])).stdout.split('\n').some((line) => line.startsWith(`${id} `) && line.includes('RUNNING'))) {
        if (Date.now() > deadline) throw new Error(`the container of ${image} did not start within 30 s`);
        await sleep(200);
      }
      const kill = await this.ctr(['task', 'kill', '--signal', signal, id]);
      if (kill.code !== 0) throw new Error(`ctr task kill ${id}: ${kill.stderr}`);
      return await running;
    } finally {
      await this.remove(id);
    }
  }

  /** Kills and deletes a container and its task (a no-op when `ctr run --rm` did already). */
  private async remove(id: string): Promise<void> {
    const tasks = await this.ctr(['task', 'ls', '--quiet']);
    if (tasks.stdout.split('\n').includes(id)) {
      await this.ctr(['task', 'kill', '--signal', 'SIGKILL', id]);
      await this.ctr(['task', 'delete', '--force', id]);
    }
    const containers = await this.ctr(['containers', 'ls', '--quiet']);
    if (containers.stdout.split('\n').includes(id)) await this.ctr(['containers', 'delete', id]);
    this.containers.delete(id);
  }

  /** Stops every container left, then containerd; removes its folder and what it created in /run. */
  async close(): Promise<void> {
    if (this.process.running) {
      for (const id of [...this.containers]) await this.remove(id);
      await this.process.stop(15_000);
    }
    const mounted = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((line) => line.split(' ')[4])
      .filter((mountPoint): mountPoint is string => mountPoint !== undefined && mountPoint.startsWith(`${this.dir}/`));
    if (mounted.length > 0) throw new Error(`containerd left mounts under ${this.dir}: ${mounted.join(', ')}`);
    rmSync(this.dir, { recursive: true, force: true });
    // Another containerd started meanwhile (the test node's) may be about to use the folder.
    if (this.createdRunDir && !containerdRunning()) removeEmptyTree('/run/containerd');
  }
}

/** Whether any containerd process runs on this machine. */
function containerdRunning(): boolean {
  return readdirSync('/proc').some((pid) => {
    if (!/^\d+$/.test(pid)) return false;
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'containerd';
    } catch {
      return false; // exited meanwhile
    }
  });
}

/** Removes `dir` and the empty folders below it; anything with a file in it stays. */
function removeEmptyTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) removeEmptyTree(path.join(dir, entry.name));
  }
  try {
    rmdirSync(dir);
  } catch {
    // Not empty: someone else's (another containerd started meanwhile).
  }
}
