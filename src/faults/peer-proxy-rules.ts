/**
 * The peer proxy's pure rule logic (src/faults/peer-proxy.ts): what the link rules do to each direction
 * of a connection, a chunk's hold time, and reading the sender's member id from a request head.
 */
import type { LinkRule } from '../domain/faults.ts';

/** Which way bytes flow on a connection: upstream is remote member → this member (requests). */
export type PeerDirection = 'upstream' | 'downstream';

/** What the rules do to one direction of one connection. */
export interface LinkEffect {
  /** Discard every chunk (connections stay open). */
  blackhole: boolean;
  /** 0..100: the chance that a chunk is discarded. */
  dropPercent: number;
  /** Hold each chunk this long (plus a uniform jitter in ±jitterMs), order kept. */
  delayMs: number;
  jitterMs: number;
}

export const noEffect: Readonly<LinkEffect> = Object.freeze({ blackhole: false, dropPercent: 0, delayMs: 0, jitterMs: 0 });

/** Whether an effect loses bytes (and so corrupts an HTTP stream that goes through it). */
export function isLossy(effect: LinkEffect): boolean {
  return effect.blackhole || effect.dropPercent > 0;
}

/**
 * The rules for the link `from → to`, merged: blackhole if any rule blackholes; drop chances combine
 * as independent losses (1 - Π(1 - p)); delays and jitters add up (two delay faults on one link each
 * add their latency).
 */
export function linkEffect(from: string, to: string, rules: readonly LinkRule[]): LinkEffect {
  let blackhole = false;
  let keep = 1;
  let delayMs = 0;
  let jitterMs = 0;
  for (const rule of rules) {
    if (rule.from !== from || rule.to !== to) continue;
    switch (rule.action) {
      case 'blackhole':
        blackhole = true;
        break;
      case 'drop':
        keep *= 1 - clamp(rule.dropPercent ?? 0, 0, 100) / 100;
        break;
      case 'delay':
        delayMs += Math.max(0, rule.delayMs ?? 0);
        jitterMs += Math.max(0, rule.jitterMs ?? 0);
        break;
    }
  }
  const dropPercent = clamp((1 - keep) * 100, 0, 100);
  return { blackhole, dropPercent: dropPercent < 1e-9 ? 0 : dropPercent, delayMs, jitterMs };
}

/**
 * The effects on a connection to the proxy in front of `proxyMember` that `remoteMember` opened:
 * upstream bytes travel remote → proxy member, downstream bytes proxy member → remote. An unidentified
 * connection (remote undefined) or one from the member itself gets no effect. Rules about other links
 * are ignored.
 */
export function connectionEffects(
  proxyMember: string,
  remoteMember: string | undefined,
  rules: readonly LinkRule[],
): { upstream: LinkEffect; downstream: LinkEffect } {
  if (remoteMember === undefined || remoteMember === proxyMember) return { upstream: { ...noEffect }, downstream: { ...noEffect } };
  return {
    upstream: linkEffect(remoteMember, proxyMember, rules),
    downstream: linkEffect(proxyMember, remoteMember, rules),
  };
}

/** A chunk's hold time under an effect: delayMs plus a uniform jitter in [-jitterMs, +jitterMs], never negative. */
export function chunkDelayMs(effect: LinkEffect, random: () => number): number {
  if (effect.delayMs <= 0 && effect.jitterMs <= 0) return 0;
  const jitter = effect.jitterMs > 0 ? (random() * 2 - 1) * effect.jitterMs : 0;
  return Math.max(0, effect.delayMs + jitter);
}

/** Member id as etcd prints it (types.ID.String(): lowercase hex, no leading zeros) from a decimal or hex id. */
export function memberIdHex(id: string | bigint): string {
  if (typeof id === 'bigint') return id.toString(16);
  const trimmed = id.trim();
  if (/^\d+$/.test(trimmed)) return BigInt(trimmed).toString(16);
  return normalizeHexId(trimmed);
}

/** A hex member id in etcd's form (lowercase, no `0x`, no leading zeros); returned as is when it is not hex. */
export function normalizeHexId(hex: string): string {
  const lower = hex.trim().toLowerCase().replace(/^0x/, '');
  if (!/^[0-9a-f]+$/.test(lower)) return lower;
  return BigInt(`0x${lower}`).toString(16);
}

/**
 * The `X-Server-From` value of an HTTP request head (everything before the blank line), normalized to
 * etcd's id form; undefined when the head has no such header.
 */
export function serverFromHeader(head: string): string | undefined {
  const lines = head.split('\r\n');
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    if (line.slice(0, colon).trim().toLowerCase() !== 'x-server-from') continue;
    const value = line.slice(colon + 1).trim();
    return value === '' ? undefined : normalizeHexId(value);
  }
  return undefined;
}

function clamp(value: number, min: number, max: number): number {
  if (!Number.isFinite(value)) return min;
  return Math.min(max, Math.max(min, value));
}
