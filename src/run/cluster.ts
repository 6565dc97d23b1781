/** The run's admin requests to the cluster: outside the history (not recorded), before and after it. */
import type { Etcd3 } from 'etcd3';
import type { RuntimeMember } from '../domain/index.ts';
import { prefixEnd } from '../domain/index.ts';

/** Reads the cluster's member ids (to name the member that answered each request). */
export async function memberNamesById(admin: Etcd3, members: RuntimeMember[]): Promise<Map<string, string>> {
  const list = await admin.cluster.memberList({}, { deadline: Date.now() + 5000 });
  const names = new Map<string, string>();
  for (const m of list.members) {
    const known = members.find((r) => r.name === m.name || m.clientURLs.includes(r.endpoint));
    names.set(m.ID, known?.name ?? m.name);
  }
  return names;
}

/** Deletes everything under the prefix and returns the revision afterwards (not recorded: outside the history). */
export async function clearPrefix(admin: Etcd3, prefix: string): Promise<number> {
  const deadline = (): { deadline: number } => ({ deadline: Date.now() + 5000 });
  await admin.kv.deleteRange({ key: Buffer.from(prefix), range_end: Buffer.from(prefixEnd(prefix)) }, deadline());
  const read = await admin.kv.range({ key: Buffer.from(prefix), range_end: Buffer.from(prefixEnd(prefix)), count_only: true }, deadline());
  return Number(read.header.revision);
}
