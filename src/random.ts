/**
 * The one seeded source of randomness (mulberry32: small, fast, 32-bit state): traffic, fault schedules,
 * the witness simulation, benchmarks and tests draw from it, so a seed replays a run exactly.
 */
export class Mulberry32 {
  /** The 32-bit state: the witness simulation forks independent streams from it. */
  state: number;

  constructor(seed: number) {
    this.state = seed | 0;
  }

  /** A uniform float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}

/** A seeded uniform [0, 1) generator as a function (the shape the traffic and schedulers draw from). */
export function seededRandom(seed: number): () => number {
  const generator = new Mulberry32(seed);
  return () => generator.next();
}
