/**
 * The simulation's only source of randomness: a seeded PRNG (mulberry32), so a seed replays exactly.
 * Independent streams (network, faults, workload, raft timers, operators) are forked by label, so adding
 * a draw to one stream does not shift the others.
 */
import { Mulberry32 } from '../../src/random.ts';

/** splitmix32: spreads a seed (or a seed and a label) over 32 bits. */
function mix(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

function hashLabel(label: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export class Random {
  private readonly generator: Mulberry32;

  constructor(seed: number) {
    this.generator = new Mulberry32(mix(seed >>> 0));
  }

  /** A uniform float in [0, 1). */
  next(): number {
    return this.generator.next();
  }

  /** A whole number in [lo, hi). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('Random.pick: no items');
    return items[this.int(0, items.length)]!;
  }

  /** An independent stream for `label`, drawn from this one's current state (deterministic). */
  fork(label: string): Random {
    return new Random(mix(this.generator.state ^ hashLabel(label)));
  }
}

/** FNV-1a over 32-bit words and strings: the event log's digest (determinism checks). */
export class Digest {
  private h = 0x811c9dc5;

  word(n: number): void {
    let x = n | 0;
    for (let i = 0; i < 4; i++) {
      this.h = Math.imul(this.h ^ (x & 0xff), 0x01000193);
      x >>>= 8;
    }
  }

  text(s: string): void {
    for (let i = 0; i < s.length; i++) this.h = Math.imul(this.h ^ s.charCodeAt(i), 0x01000193);
    this.word(s.length);
  }

  get value(): string {
    return (this.h >>> 0).toString(16).padStart(8, '0');
  }
}
