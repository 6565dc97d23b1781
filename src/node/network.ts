/**
 * The node's own bridge and its guard. Everything the node's Pods and Services use is on this bridge
 * (10.244.N.0/24, whose .1 is the node's InternalIP) or on loopback; the guard drops whatever would be
 * forwarded from the bridge to any other interface, and the Service CIDR is routed to the bridge so a
 * Service IP that kube-proxy has not programmed yet is never sent to the machine's default route.
 */
import { NodeStartError } from './errors.ts';
import { run, runOk } from './host.ts';
import { bridgePrefix, nodeNetwork, type NodeNetwork } from './layout.ts';

/** The nftables table of the guard: its own table, so removing it touches nothing else. */
const guardTable = 'etcd_robustness_node_guard';

interface IpRoute { dst: string }
interface IpAddrInfo { family: string; local: string; prefixlen: number }
interface IpLink { ifname: string; addr_info?: IpAddrInfo[] }

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}

/** `a.b.c.d/len` as [first, last] address numbers. */
export function cidrRange(cidr: string): [number, number] {
  const [ip, lenText] = cidr.split('/');
  const len = Number(lenText ?? '32');
  const size = 2 ** (32 - len);
  const first = Math.floor(ipv4ToInt(ip ?? '0.0.0.0') / size) * size;
  return [first, first + size - 1];
}

export function cidrsOverlap(a: string, b: string): boolean {
  const [a1, a2] = cidrRange(a);
  const [b1, b2] = cidrRange(b);
  return a1 <= b2 && b1 <= a2;
}

/** Every IPv4 prefix the machine already uses: its addresses' subnets and its routes (but the default route). */
async function usedPrefixes(): Promise<string[]> {
  const links = JSON.parse(await runOk('ip', ['-j', 'addr', 'show'])) as IpLink[];
  const routes = JSON.parse(await runOk('ip', ['-j', '-4', 'route', 'show', 'table', 'main'])) as IpRoute[];
  const addresses = links.flatMap((l) => (l.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`));
  return [...addresses, ...routes.map((r) => r.dst).filter((d) => d !== 'default').map((d) => (d.includes('/') ? d : `${d}/32`))];
}

/** The names of the bridges a test node made (`erk<N>`), whoever made them. */
export async function nodeBridges(): Promise<string[]> {
  const links = JSON.parse(await runOk('ip', ['-j', 'link', 'show', 'type', 'bridge'])) as IpLink[];
  return links.map((l) => l.ifname).filter((name) => new RegExp(`^${bridgePrefix}\\d+$`).test(name));
}

/**
 * The first `erk<N>` / 10.244.N.0/24 that clashes with nothing on the machine. Refuses when another
 * node's bridge exists or when the Service CIDR is already routed somewhere.
 */
export async function chooseNetwork(serviceCidr: string): Promise<NodeNetwork> {
  const existing = await nodeBridges();
  if (existing.length > 0) {
    throw new NodeStartError('network', `another test node's bridge exists (${existing.join(', ')}); only one node runs at a time`);
  }
  const used = await usedPrefixes();
  const serviceClash = used.find((p) => cidrsOverlap(p, serviceCidr));
  if (serviceClash !== undefined) throw new NodeStartError('network', `the Service CIDR ${serviceCidr} overlaps ${serviceClash} on this machine`);
  for (let index = 1; index < 255; index++) {
    const candidate = nodeNetwork(index);
    if (!used.some((p) => cidrsOverlap(p, candidate.podCidr))) return candidate;
  }
  throw new NodeStartError('network', 'every 10.244.N.0/24 (N = 1..254) overlaps an address or route of this machine');
}

async function sysctlSet(name: string, value: string): Promise<void> {
  await runOk('sysctl', ['-q', '-w', `${name}=${value}`]);
}

/** Creates the bridge with the node's address, forwarding on it alone, the Service route and the guard. */
export async function createBridge(network: NodeNetwork, serviceCidr: string): Promise<void> {
  const { bridge } = network;
  await runOk('ip', ['link', 'add', bridge, 'type', 'bridge']);
  // No IPv6 on the bridge: only the addresses chosen here.
  await sysctlSet(`net.ipv6.conf.${bridge}.disable_ipv6`, '1');
  await runOk('ip', ['addr', 'add', `${network.bridgeIp}/24`, 'dev', bridge]);
  await runOk('ip', ['link', 'set', bridge, 'up']);
  // Needed for a Service IP that kube-proxy turns into a Pod address on the same bridge. Only this
  // interface forwards: the machine's net.ipv4.ip_forward stays as it is.
  await sysctlSet(`net.ipv4.conf.${bridge}.forwarding`, '1');
  await runOk('ip', ['route', 'add', serviceCidr, 'dev', bridge, 'src', network.bridgeIp]);
  await runOk('nft', ['-f', '-'], { stdin: guardRuleset(bridge) });
}

/** Drops anything forwarded from the bridge to another interface: Pods never reach the machine's network. */
export function guardRuleset(bridge: string): string {
  return [
    `table inet ${guardTable} {`,
    '  chain forward {',
    '    type filter hook forward priority -10; policy accept;',
    `    iifname "${bridge}" oifname != "${bridge}" counter drop`,
    `    oifname "${bridge}" iifname != "${bridge}" counter drop`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Removes the guard, the veths still attached to the bridge, and the bridge (its route goes with it). */
export async function removeBridge(bridge: string): Promise<void> {
  await run('nft', ['delete', 'table', 'inet', guardTable]);
  const exists = await run('ip', ['link', 'show', 'dev', bridge]);
  if (exists.code !== 0) return;
  const ports = JSON.parse((await run('ip', ['-j', 'link', 'show', 'master', bridge])).stdout || '[]') as IpLink[];
  for (const port of ports) await run('ip', ['link', 'del', port.ifname]);
  await runOk('ip', ['link', 'del', bridge]);
}
