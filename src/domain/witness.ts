/**
 * The witness of a two-node-plus-witness EtcdCluster: a small, strongly consistent record outside the
 * pair that says which members may serve in which epoch. Stock etcd has no witness role; the operator
 * keeps this record with compare-and-swap and every failover step is fenced by it.
 * docs/two-node-witness.md has the protocol and its safety argument.
 */

export const witnessPhases = ['paired', 'single', 'failingOver'] as const;
/**
 * paired: `members` are the voters (or a voter and a learner on its way);
 * single: one voter (bootstrap, or after a failover until the replacement joins);
 * failingOver: `survivor` is being brought back alone, `fencedMember` must never serve again.
 */
export type WitnessPhase = (typeof witnessPhases)[number];

export interface WitnessRecord {
  /** Grows by one on every write: a write for epoch N + 1 only succeeds against the record of epoch N. */
  epoch: number;
  /** The operator replica that wrote this epoch (its leader-election identity). */
  owner: string;
  /**
   * The owner's leader-election term (the Lease's transitions when it was acquired). A write with a
   * lower term than the record's is refused: an operator replica that lost its Lease cannot act.
   */
  ownerTerm: number;
  phase: WitnessPhase;
  /** The members allowed to run in this epoch; any other member of the cluster must refuse to start. */
  members: string[];
  /** failingOver: the member brought back as a one-member cluster. */
  survivor?: string;
  /**
   * failingOver: the epoch whose write started this failover. The survivor is recovered once per
   * failover: a replica that takes over a failover half way (a new epoch) does not recover it again.
   */
  failoverEpoch?: number;
  /** Every member fenced so far (never reused names): none may serve again. */
  fenced: string[];
  /** The member the latest failover fenced. */
  fencedMember?: string;
  /** RFC 3339. */
  updatedAt: string;
}

/** A record as read, with the opaque version a compare-and-swap must name. */
export interface VersionedWitnessRecord {
  /** Absent: nothing written yet (version is then ''). */
  record: WitnessRecord | undefined;
  version: string;
}

export type WitnessWriteResult =
  | { ok: true; version: string }
  /** Someone else wrote first (or the term rule refused the write): `current` is what is there now. */
  | { ok: false; current: VersionedWitnessRecord; reason: string };

/**
 * A witness store: a Kubernetes Lease or ConfigMap (resourceVersion preconditions), or the HTTP witness
 * process of the local runtime (fsync before it answers). An object-store witness (a bucket object
 * written with If-Match on its ETag) fits the same interface: `version` is the ETag.
 */
export interface Witness {
  /** Where the record lives, for messages (`lease ns/name`, `http://127.0.0.1:7000`). */
  readonly description: string;
  /** A linearizable read (never a cache). */
  read(): Promise<VersionedWitnessRecord>;
  /**
   * Writes `next` if the stored version is still `expectedVersion` ('' = create) and
   * witnessWriteRefusal allows it. Never partially applied; durable before it answers.
   */
  compareAndSwap(expectedVersion: string, next: WitnessRecord): Promise<WitnessWriteResult>;
  close(): Promise<void>;
}

export class WitnessUnavailableError extends Error {
  override name = 'WitnessUnavailableError';
  readonly witness: string;
  constructor(witness: string, message: string, options?: { cause?: unknown }) {
    super(`witness ${witness}: ${message}`, options);
    this.witness = witness;
  }
}

export class WitnessRecordError extends Error {
  override name = 'WitnessRecordError';
  readonly witness: string;
  constructor(witness: string, message: string) {
    super(`witness ${witness}: invalid record: ${message}`);
    this.witness = witness;
  }
}

/** Validates a record read from a store (a boundary: the JSON may be anything). */
export function parseWitnessRecord(witness: string, value: unknown): WitnessRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new WitnessRecordError(witness, 'not an object');
  const v = value as Record<string, unknown>;
  const int = (key: string): number => {
    const n = v[key];
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new WitnessRecordError(witness, `${key} must be a whole number >= 0`);
    return n;
  };
  const str = (key: string, optional = false): string | undefined => {
    const s = v[key];
    if (s === undefined && optional) return undefined;
    if (typeof s !== 'string' || s === '') throw new WitnessRecordError(witness, `${key} must be a non-empty string`);
    return s;
  };
  const names = (key: string): string[] => {
    const a = v[key];
    if (!Array.isArray(a) || !a.every((x): x is string => typeof x === 'string' && x !== '')) {
      throw new WitnessRecordError(witness, `${key} must be a list of member names`);
    }
    return a;
  };
  const phase = v['phase'];
  if (typeof phase !== 'string' || !(witnessPhases as readonly string[]).includes(phase)) {
    throw new WitnessRecordError(witness, `phase must be one of ${witnessPhases.join(', ')}`);
  }
  const record: WitnessRecord = {
    epoch: int('epoch'),
    owner: str('owner')!,
    ownerTerm: int('ownerTerm'),
    phase: phase as WitnessPhase,
    members: names('members'),
    fenced: names('fenced'),
    updatedAt: str('updatedAt')!,
  };
  const survivor = str('survivor', true);
  if (survivor !== undefined) record.survivor = survivor;
  if (v['failoverEpoch'] !== undefined) record.failoverEpoch = int('failoverEpoch');
  const fencedMember = str('fencedMember', true);
  if (fencedMember !== undefined) record.fencedMember = fencedMember;
  if (record.phase === 'failingOver' && (record.survivor === undefined || record.failoverEpoch === undefined)) {
    throw new WitnessRecordError(witness, 'a failingOver record names its survivor and failoverEpoch');
  }
  return record;
}

/**
 * The rules every store applies to a write besides the version check, so a store cannot be talked into
 * going backwards: the epoch grows by exactly one, and a lower leader-election term never overwrites a
 * higher one (an operator replica that lost its Lease is refused). Returns why a write is refused.
 */
export function witnessWriteRefusal(current: WitnessRecord | undefined, next: WitnessRecord): string | undefined {
  const expectedEpoch = (current?.epoch ?? 0) + 1;
  if (next.epoch !== expectedEpoch) return `epoch ${next.epoch} does not follow epoch ${current?.epoch ?? 0}`;
  if (current !== undefined && next.ownerTerm < current.ownerTerm) {
    return `term ${next.ownerTerm} of ${next.owner} is older than term ${current.ownerTerm} of ${current.owner}`;
  }
  return undefined;
}
