// The comparison baseline the issue names: a bare http-proxy with a keep-alive agent, no auth, no logging.
import http from 'node:http';
import httpProxy from 'http-proxy';

const target = process.argv[2];
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 256, timeout: 4000 });
const proxy = httpProxy.createProxyServer({ target, agent });
proxy.on('error', (_err, _req, res) => {
  if ('headersSent' in res && !res.headersSent) res.writeHead(502).end();
  else res.destroy();
});
const server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => proxy.web(req, res));
server.listen(0, '127.0.0.1', 2048, () => process.send({ type: 'listening', port: server.address().port }));
process.on('disconnect', () => process.exit(0));
