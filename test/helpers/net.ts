/** Loopback ports for the servers tests start (haproxy, PostgreSQL, a fake Hub that must not answer). */
import { createServer } from 'node:net';

/** A port nothing listens on at the moment it is returned: the OS picked it free, and it was released. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}
