/**
 * A real Prometheus server (Debian's `prometheus` package, /usr/bin/prometheus) for end-to-end tests:
 * it scrapes one target every second, evaluates rule files every second, keeps its TSDB in a temporary
 * folder and listens on a free loopback port. Its HTTP API answers alerts and instant queries.
 */
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { freeLoopbackPorts } from '../../src/local/ports.ts';
import { describeExit, logTail, ManagedProcess } from '../../src/local/process.ts';

export const prometheusBinary = '/usr/bin/prometheus';
export const promtoolBinary = '/usr/bin/promtool';

export class PrometheusMissingError extends Error {
  override name = 'PrometheusMissingError';
  constructor(binary: string) {
    super(
      `${binary} is missing: install Debian's prometheus package (apt-get install prometheus), as ` +
        'scripts/install-system-deps.sh does for CI',
    );
  }
}

export class PrometheusApiError extends Error {
  override name = 'PrometheusApiError';
}

/** Fails loudly, naming the package, when a binary of Debian's prometheus package is not installed. */
export function requireBinary(binary: string): string {
  try {
    accessSync(binary, constants.X_OK);
  } catch {
    throw new PrometheusMissingError(binary);
  }
  return binary;
}

export interface PrometheusOptions {
  /** host:port of the one scrape target. */
  target: string;
  metricsPath?: string;
  /** Rule files to load (absolute paths). */
  ruleFiles?: string[];
  /** Also the rules' evaluation interval. Default 1s. */
  scrapeInterval?: string;
  /**
   * Scrape as the chart's ServiceMonitor does the operator's secure endpoint: HTTPS, this bearer token,
   * the (self-signed) certificate not verified.
   */
  secure?: { bearerToken: string };
}

/** One entry of /api/v1/alerts. */
export interface PrometheusAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing';
  activeAt: string;
  value: string;
}

/** One series of an instant query's vector result. */
export interface VectorSample {
  metric: Record<string, string>;
  value: [number, string];
}

interface ApiResponse<T> {
  status: 'success' | 'error';
  data: T;
  errorType?: string;
  error?: string;
}

export class TestPrometheus {
  readonly url: string;
  readonly logFile: string;
  private readonly proc: ManagedProcess;
  private readonly dir: string;

  private constructor(proc: ManagedProcess, dir: string, port: number) {
    this.proc = proc;
    this.dir = dir;
    this.url = `http://127.0.0.1:${port}`;
    this.logFile = path.join(dir, 'prometheus.log');
  }

  static async start(options: PrometheusOptions): Promise<TestPrometheus> {
    const binary = requireBinary(prometheusBinary);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'etcd-robustness-prometheus-'));
    const interval = options.scrapeInterval ?? '1s';
    const job: Record<string, unknown> = { job_name: 'etcd-robustness-operator', metrics_path: options.metricsPath ?? '/metrics', static_configs: [{ targets: [options.target] }] };
    if (options.secure !== undefined) {
      const tokenFile = path.join(dir, 'token');
      writeFileSync(tokenFile, options.secure.bearerToken, { mode: 0o600 });
      Object.assign(job, { scheme: 'https', authorization: { type: 'Bearer', credentials_file: tokenFile }, tls_config: { insecure_skip_verify: true } });
    }
    const config = {
      global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
      rule_files: options.ruleFiles ?? [],
      scrape_configs: [job],
    };
    const configFile = path.join(dir, 'prometheus.yml');
    writeFileSync(configFile, stringify(config));
    const [port] = await freeLoopbackPorts(1);
    const proc = new ManagedProcess(
      'prometheus',
      binary,
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { logFile: path.join(dir, 'prometheus.log'), parentDeathSignal: 'SIGKILL' },
    );
    const prometheus = new TestPrometheus(proc, dir, port!);
    try {
      await prometheus.waitReady(30_000);
    } catch (error) {
      await prometheus.close();
      throw error;
    }
    return prometheus;
  }

  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.proc.running) {
        throw new PrometheusApiError(`prometheus exited (${describeExit(this.proc.exit!)}) before it was ready:\n${logTail(this.logFile)}`);
      }
      try {
        const response = await fetch(`${this.url}/-/ready`, { signal: AbortSignal.timeout(1000) });
        if (response.status === 200) return;
      } catch {
        // Not listening yet.
      }
      if (Date.now() >= deadline) throw new PrometheusApiError(`prometheus was not ready within ${timeoutMs} ms:\n${logTail(this.logFile)}`);
      await sleep(100);
    }
  }

  private async api<T>(pathAndQuery: string): Promise<T> {
    const response = await fetch(`${this.url}${pathAndQuery}`, { signal: AbortSignal.timeout(5000) });
    const body = (await response.json()) as ApiResponse<T>;
    if (response.status !== 200 || body.status !== 'success') {
      throw new PrometheusApiError(`GET ${pathAndQuery}: HTTP ${response.status}, ${body.errorType ?? ''} ${body.error ?? ''}`);
    }
    return body.data;
  }

  /** Active alerts (pending and firing). */
  async alerts(): Promise<PrometheusAlert[]> {
    return (await this.api<{ alerts: PrometheusAlert[] }>('/api/v1/alerts')).alerts;
  }

  /** An instant query that must return a vector. */
  async query(expr: string): Promise<VectorSample[]> {
    const data = await this.api<{ resultType: string; result: VectorSample[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`);
    if (data.resultType !== 'vector') throw new PrometheusApiError(`${expr}: expected a vector, got ${data.resultType}`);
    return data.result;
  }

  /** The health of each scrape target, e.g. ['up'] once the first scrape succeeded. */
  async targetHealth(): Promise<string[]> {
    const data = await this.api<{ activeTargets: { health: string; lastError: string }[] }>('/api/v1/targets');
    return data.activeTargets.map((t) => t.health);
  }

  async close(): Promise<void> {
    await this.proc.stop(5000);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
