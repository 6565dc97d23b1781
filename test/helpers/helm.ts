// The real helm of test/bin/build.sh for the chart tests: its config, cache and data in a temporary folder
// of its own, results that never throw for a non-zero exit, and `helm template` parsed into manifests.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { kubeBinaries, packageRoot } from '../../src/local/index.ts';

export const chartDir = path.join(packageRoot, 'charts', 'etcd-robustness-operator');

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Every YAML document of `text` that is not empty; a document with errors fails loudly. */
export function parseManifests<T>(text: string): T[] {
  return parseAllDocuments(text)
    .map((document) => {
      if (document.errors.length > 0) throw new Error(`invalid YAML: ${document.errors.map(String).join('; ')}`);
      return document.toJS() as T | null;
    })
    .filter((manifest): manifest is T => manifest !== null);
}

export class TestHelm {
  /** Its own folder (helm's homes live under it; tests may put files there, e.g. packaged charts). */
  readonly home: string;
  private readonly binary: string;
  private readonly kubeconfigPath: string | undefined;

  constructor(options: { kubeconfigPath?: string } = {}) {
    this.binary = kubeBinaries().helm;
    this.kubeconfigPath = options.kubeconfigPath;
    this.home = mkdtempSync(path.join(os.tmpdir(), 'etcd-robustness-helm-'));
  }

  /** Runs helm; `timeoutMs` (default 60 s) bounds the process, e.g. longer for `install --wait`. */
  run(args: readonly string[], timeoutMs = 60_000): Promise<HelmResult> {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HELM_CACHE_HOME: path.join(this.home, 'cache'),
      HELM_CONFIG_HOME: path.join(this.home, 'config'),
      HELM_DATA_HOME: path.join(this.home, 'data'),
    };
    if (this.kubeconfigPath !== undefined) env['KUBECONFIG'] = this.kubeconfigPath;
    return new Promise((resolve, reject) => {
      execFile(this.binary, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, env }, (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          reject(new Error(`helm could not run: ${error.message}`));
          return;
        }
        resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
      });
    });
  }

  /** `helm template` of `chart` (default: the repository's) as release `ero` in `namespace` (parse it with parseManifests); fails the test on an error. */
  async template(namespace: string, values: readonly string[] = [], chart = chartDir): Promise<string> {
    const result = await this.run(['template', 'ero', chart, '--namespace', namespace, ...values]);
    assert.equal(result.code, 0, `helm template ${values.join(' ')}: ${result.stderr}`);
    return result.stdout;
  }

  close(): void {
    rmSync(this.home, { recursive: true, force: true });
  }
}
