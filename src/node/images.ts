/**
 * The OCI image tarballs of `npm run build:images` (.cache/images/images.json) and their import into the
 * node's containerd, where the kubelet finds them (Pods use them without pulling: there is no registry).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../local/binaries.ts';
import { run } from './host.ts';

export const imagesManifestPath = path.join(packageRoot, '.cache', 'images', 'images.json');

export interface ImageFile {
  /** The image's name and tag, as Pods refer to it. */
  name: string;
  /** The OCI (or docker-archive) tarball. */
  file: string;
  digest: string;
}

export interface ImagesManifest {
  images: ImageFile[];
  /** The name of the pause image (the Pods' sandbox). */
  pause: string;
}

export class ImagesNotBuiltError extends Error {
  override name = 'ImagesNotBuiltError';
}

export class ImageImportError extends Error {
  override name = 'ImageImportError';
}

/** The images `npm run build:images` wrote; fails naming that command when they are missing. */
export function readImagesManifest(file: string = imagesManifestPath): ImagesManifest {
  const hint = 'run `npm run build:images` to build them';
  if (!existsSync(file)) throw new ImagesNotBuiltError(`no images at ${file}: ${hint}`);
  const manifest = JSON.parse(readFileSync(file, 'utf8')) as ImagesManifest;
  for (const image of manifest.images) {
    if (!existsSync(image.file)) throw new ImagesNotBuiltError(`image ${image.name}: ${image.file} is missing: ${hint}`);
  }
  return manifest;
}

/** The manifest's entry for `name`. */
export function imageNamed(manifest: ImagesManifest, name: string): ImageFile {
  const image = manifest.images.find((i) => i.name === name);
  if (!image) throw new ImagesNotBuiltError(`image ${name} is not in the images manifest (${manifest.images.map((i) => i.name).join(', ')})`);
  return image;
}

/** Imports tarballs into containerd's k8s.io namespace (the one the kubelet uses), one after the other. */
export async function importImageFiles(socket: string, files: readonly string[]): Promise<void> {
  for (const file of files) {
    if (!existsSync(file)) throw new ImageImportError(`image tarball ${file} does not exist`);
    const result = await run('ctr', ['--address', socket, '--namespace', 'k8s.io', 'images', 'import', file], { timeoutMs: 300_000 });
    if (result.code !== 0) throw new ImageImportError(`ctr images import ${file} failed (exit ${result.code}): ${(result.stderr || result.stdout).trim()}`);
  }
}
