import net from 'node:net';

/**
 * A TCP port free on loopback a moment ago: replicas must know each other's URLs before they start, so their ports
 * are chosen first (the bench and test/replication.test.ts).
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
