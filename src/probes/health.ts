/** etcd's /health endpoint: healthy means the member has a leader and can serve (it needs a quorum). */
import type { EtcdClientTls } from '../domain/index.ts';
import { etcdHttp } from './etcd-transport.ts';

export async function memberHealth(endpoint: string, timeoutMs = 1000, tls?: EtcdClientTls): Promise<{ healthy: boolean; detail: string }> {
  try {
    const response = await etcdHttp(`${endpoint}/health`, { tls, timeoutMs });
    const body = JSON.parse(response.text) as { health?: string; reason?: string };
    return { healthy: body.health === 'true', detail: `health=${body.health ?? '?'} ${body.reason ?? ''}`.trim() };
  } catch (error) {
    return { healthy: false, detail: (error as Error).message };
  }
}

export async function isHealthy(endpoint: string, timeoutMs = 1000, tls?: EtcdClientTls): Promise<boolean> {
  return (await memberHealth(endpoint, timeoutMs, tls)).healthy;
}
