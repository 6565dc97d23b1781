// A runner to be SIGKILLed by test/integration/fault-agent.test.ts: starts a 3-member cluster with
// agents in the data root given as argv[2], pauses m1 and puts a ballast beside m2 (60 s TTLs), prints
// `ready {json}` and waits to be killed; with argv[3] = crash it throws instead, right after.
import path from 'node:path';
import { AgentClient } from '../../src/faults/agent-client.ts';
import { LocalEtcdCluster } from '../../src/local/etcd-cluster.ts';

const root = process.argv[2];
if (root === undefined) throw new Error('usage: agent-runner.ts DATA_ROOT');
const cluster = await LocalEtcdCluster.start({ size: 3, failpoints: true, dataRoot: root, agents: {} });
const agent = (name: string): AgentClient => new AgentClient(cluster.member(name).agentUrl!, cluster.agentToken!);
await agent('m1').inject({ type: 'pause', ttlMs: 60_000 });
await agent('m2').inject({ type: 'diskPressure', bytes: 1 << 20, ttlMs: 60_000 });
const ready = {
  etcd: cluster.members.map((m) => m.pid),
  agents: cluster.members.map((m) => m.agent?.pid),
  ballast: path.join(root, '.etcd-robustness-ballast-m2'),
};
process.stdout.write(`ready ${JSON.stringify(ready)}\n`);
if (process.argv[3] === 'crash') {
  setTimeout(() => {
    throw new Error('the runner crashes on purpose');
  }, 100);
} else {
  setInterval(() => undefined, 60_000);
}
