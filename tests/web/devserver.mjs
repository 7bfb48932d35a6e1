// devserver.mjs - development only: serves web/ from the working tree and proxies every
// other path to a running edmd, so the page can be worked on (and tested) without
// rebuilding the daemon. The real test loads the page from edmd itself.
//
//   node tests/web/devserver.mjs EDMD_URL [PORT_FILE]     (listens on 127.0.0.1, port 0)
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const webDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../server/web');
const upstream = new URL(process.argv[2] || 'http://127.0.0.1:8080');
const portFile = process.argv[3];
const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const name = url.pathname === '/' ? 'index.html' : url.pathname.slice(1);
  const file = path.join(webDir, name);
  if (!name.includes('/') && !name.startsWith('.') && fs.existsSync(file) && fs.statSync(file).isFile()) {
    res.writeHead(200, { 'Content-Type': types[path.extname(name)] || 'application/octet-stream', 'Cache-Control': 'no-store' });
    res.end(fs.readFileSync(file));
    return;
  }
  const up = http.request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers },
    (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
    });
  up.on('error', (e) => { res.writeHead(502); res.end(String(e)); });
  req.pipe(up);
});
server.listen(0, '127.0.0.1', () => {
  const port = server.address().port;
  if (portFile) fs.writeFileSync(portFile, port + '\n');
  console.log('devserver: http://127.0.0.1:' + port + '/ (web/ + proxy to ' + upstream.href + ')');
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
