// The bench's fake vLLM: answers chat completions at once, or streams SSE events stamped with their send time.
// Runs as a child of bench/run.mjs (IPC): sends {type:'listening', port}, and {type:'closed', id, t} when a
// client (or proxy) closed a tagged stream before its end. Times are CLOCK_MONOTONIC microseconds, comparable
// across processes on this machine (process.hrtime).
import http from 'node:http';

const nowUs = () => Number(process.hrtime.bigint() / 1000n);
const completion = Buffer.from(
  JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: 1700000000,
    model: 'bench-model',
    choices: [{ index: 0, message: { role: 'assistant', content: 'Hello! How can I help you today?' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 9, completion_tokens: 9, total_tokens: 18 },
  }),
);
const completionHeaders = { 'content-type': 'application/json', 'content-length': completion.length };
const eventHead = 'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","model":"bench-model","ts":';
const eventTail = ',"choices":[{"index":0,"delta":{"content":" token"},"finish_reason":null}]}\n\n';

function stream(req, res, intervalMs, events) {
  const id = req.headers['x-bench-id'];
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  // The head goes now; each event then goes to the socket as one chunk framed here, in one write, as uvicorn (vLLM's
  // server) writes them, and `res.end` writes the last chunk. res.write would cost three writes into a corked socket
  // and a writev per event: on a 2-core machine the fake upstream took as much CPU per event as the proxy measured.
  res.flushHeaders();
  const socket = res.socket;
  let sent = 0;
  const tick = () => {
    if (sent >= events) {
      clearInterval(timer);
      res.end('data: [DONE]\n\n');
      return;
    }
    sent++;
    const event = eventHead + nowUs() + eventTail;
    socket.write(event.length.toString(16) + '\r\n' + event + '\r\n', 'latin1');
  };
  const timer = setInterval(tick, intervalMs);
  tick();
  res.on('close', () => {
    clearInterval(timer);
    if (!res.writableFinished && id !== undefined && process.connected) process.send({ type: 'closed', id, t: nowUs() });
  });
}

const server = http.createServer({ keepAliveTimeout: 5000 }, (req, res) => {
  if (req.method !== 'POST') {
    if (req.url === '/health') return res.end();
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end('{"object":"list","data":[{"id":"bench-model","object":"model"}]}');
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = chunks.length === 1 ? chunks[0].toString() : Buffer.concat(chunks).toString();
    if (!body.includes('"stream":true')) return res.writeHead(200, completionHeaders).end(completion);
    const { bench_interval_ms: interval = 20, bench_events: events = 50 } = JSON.parse(body);
    stream(req, res, interval, events);
  });
});
server.listen(0, '127.0.0.1', 2048, () => process.send({ type: 'listening', port: server.address().port }));
process.on('disconnect', () => process.exit(0));
