import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gitEnv } from './helpers.js';

/**
 * A plain git server for tests: every request runs `git http-backend` (git's own smart-HTTP CGI program) over the
 * bare repositories below `root`, with pushes allowed. `url(name)` is the URL of `root/<name>`. `hang()` makes the
 * server accept requests and never answer them, until `answer()` (for timeouts).
 */
export interface GitHttpServer {
  url(name: string): string;
  hang(): void;
  answer(): void;
  close(): Promise<void>;
}

export async function gitHttpBackend(root: string): Promise<GitHttpServer> {
  let hanging = false;
  const held = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    if (hanging) {
      held.add(res);
      return;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const env: NodeJS.ProcessEnv = {
      ...gitEnv,
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      GATEWAY_INTERFACE: 'CGI/1.1',
      REQUEST_METHOD: req.method,
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.replace(/^\?/, ''),
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      REMOTE_ADDR: '127.0.0.1',
      // http-backend runs receive-pack only for an authenticated user (or with http.receivepack set).
      REMOTE_USER: 'test',
    };
    if (req.headers['content-length']) env.CONTENT_LENGTH = req.headers['content-length'];
    if (req.headers['content-encoding']) env.HTTP_CONTENT_ENCODING = req.headers['content-encoding'];
    if (req.headers['git-protocol']) env.GIT_PROTOCOL = String(req.headers['git-protocol']);
    const cgi = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    req.pipe(cgi.stdin);
    cgi.stdin.on('error', () => {});
    let head = Buffer.alloc(0);
    let headersDone = false;
    cgi.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const text = head.toString('latin1');
      const end = text.search(/\r?\n\r?\n/);
      if (end < 0) return;
      headersDone = true;
      let status = 200;
      for (const line of text.slice(0, end).split(/\r?\n/)) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10);
        else res.setHeader(name, value);
      }
      res.writeHead(status);
      res.write(
        head.subarray(
          Buffer.byteLength(text.slice(0, end), 'latin1') + (/^\r?\n\r?\n/.exec(text.slice(end))?.[0].length ?? 2),
        ),
      );
    });
    cgi.on('close', () => res.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: (name) => `http://127.0.0.1:${port}/${name}`,
    hang: () => {
      hanging = true;
    },
    answer: () => {
      hanging = false;
      for (const res of held) res.destroy();
      held.clear();
    },
    close: async () => {
      for (const res of held) res.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
