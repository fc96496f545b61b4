import net from 'node:net';

/**
 * True for a host the drill may load without `--allow-remote`: a loopback address
 * (127.0.0.0/8, ::1, IPv4-mapped 127.x), `localhost`, or a unix socket directory. Decided from
 * the text alone: the drill refuses before it resolves or connects anything.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase();
  if (h.startsWith('/')) return true; // unix socket directory (libpq's host=/var/run/postgresql)
  if (h === 'localhost' || h === 'localhost.') return true;
  const bare = h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
  if (net.isIPv4(bare)) return bare.split('.')[0] === '127';
  if (net.isIPv6(bare)) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(bare);
    if (mapped) return mapped[1]!.split('.')[0] === '127';
    // ::1 in any spelling: every group zero but the last, which is 1.
    const blocks = new net.BlockList();
    blocks.addAddress('::1', 'ipv6');
    return blocks.check(bare, 'ipv6');
  }
  return false;
}
