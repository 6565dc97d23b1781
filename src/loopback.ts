/** Loopback addresses: where a server may go without TLS and authentication, since only this machine reaches it. */

/** `localhost`, 127.0.0.0/8 or ::1 (with or without brackets, or as an IPv4-mapped IPv6 address). */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return bare === 'localhost' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare) || bare === '::1' || /^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare);
}
