/** etcd's /health endpoint: healthy means the member has a leader and can serve (it needs a quorum). */
export async function memberHealth(endpoint: string, timeoutMs = 1000): Promise<{ healthy: boolean; detail: string }> {
  try {
    const response = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await response.json()) as { health?: string; reason?: string };
    return { healthy: body.health === 'true', detail: `health=${body.health ?? '?'} ${body.reason ?? ''}`.trim() };
  } catch (error) {
    return { healthy: false, detail: (error as Error).message };
  }
}

export async function isHealthy(endpoint: string, timeoutMs = 1000): Promise<boolean> {
  return (await memberHealth(endpoint, timeoutMs)).healthy;
}
