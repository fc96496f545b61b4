import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PoolApp } from './pool-app.js';

/**
 * The test application as a cluster would change it: a loopback HTTP endpoint the kubectl
 * stand-in calls (its scenario's `control`) when poolctl sends a change, so that a test can prove
 * a change brought the application back rather than that an argv was recorded.
 *
 *   POST /restart        `rollout restart`: every replica restarts with the build it runs (a
 *                        leaking one leaks again, with an empty pool);
 *   POST /undo           `rollout undo`: every replica restarts with the previous build, without
 *                        the leak;
 *   POST /scale?replicas=N  `scale --replicas=N`: replicas started or stopped until N run.
 *
 * Each answers once the replicas listen again, as `rollout status` returns once the rollout is
 * done. `changes` lists what was asked, in order.
 */
export interface PoolAppControl {
  url: string;
  changes: string[];
  close(): Promise<void>;
}

export async function startPoolAppControl(app: PoolApp): Promise<PoolAppControl> {
  const changes: string[] = [];
  const apply = async (url: URL): Promise<void> => {
    if (url.pathname === '/restart') {
      for (const r of app.replicas()) await app.restart(r.name, { leak: r.leak });
    } else if (url.pathname === '/undo') {
      for (const r of app.replicas()) await app.restart(r.name, { leak: false });
    } else if (url.pathname === '/scale') {
      const n = Number(url.searchParams.get('replicas'));
      if (!Number.isInteger(n) || n < 0) throw new Error(`bad replica count ${String(n)}`);
      await app.scale(n);
    } else {
      throw new Error(`no such change: ${url.pathname}`);
    }
  };
  // One change at a time, as a Deployment rolls out one rollout at a time.
  let queue: Promise<unknown> = Promise.resolve();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://control');
    changes.push(`${url.pathname.slice(1)}${url.search}`);
    const done = queue.then(() => apply(url));
    queue = done.catch(() => {});
    done.then(
      () => res.writeHead(200).end('ok\n'),
      (error: Error) => res.writeHead(500).end(`${error.message}\n`),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    changes,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
