// Load generators: autocannon for saturation, and small clients of our own for fixed-rate latency and SSE.
import http from 'node:http';
import net from 'node:net';
import autocannon from 'autocannon';
import { KEY } from './targets.mjs';

/** Every SSE client socket reads into this buffer; each read is decoded before the next. */
const readBuffer = Buffer.allocUnsafe(64 * 1024);
const nowUs = () => Number(process.hrtime.bigint() / 1000n);
const chatBody = JSON.stringify({ model: 'bench-model', messages: [{ role: 'user', content: 'Hello!' }] });
const authHeaders = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };

/** autocannon options for small chat completions with the bench key, on `connections` connections. */
function chatLoad(port, connections) {
  return { url: `http://127.0.0.1:${port}/v1/chat/completions`, method: 'POST', headers: authHeaders, body: chatBody, connections };
}

/** Requests/s at `connections` concurrent keep-alive connections (autocannon), small non-streaming POSTs. */
export async function saturation(port, seconds, connections = 50) {
  const result = await autocannon({ ...chatLoad(port, connections), duration: seconds });
  return { rps: result.requests.average, total: result.requests.total, errors: result.errors + result.timeouts, non2xx: result.non2xx };
}

/** Sends `count` requests through autocannon as fast as it can (the leak check). */
export async function burst(port, count, connections = 50) {
  const result = await autocannon({ ...chatLoad(port, connections), amount: count });
  return { total: result.requests.total, errors: result.errors + result.timeouts, non2xx: result.non2xx };
}

/** Latencies (µs) of requests sent at a fixed rate over keep-alive connections: no queueing at the client. */
export async function fixedRate(port, rate, seconds) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const latencies = [];
  let errors = 0;
  let inflight = 0;
  const total = Math.round(rate * seconds);
  const start = nowUs();
  let sent = 0;
  await new Promise((resolve) => {
    const fire = () => {
      const t0 = nowUs();
      inflight++;
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/chat/completions', agent, headers: { ...authHeaders, 'content-length': chatBody.length } }, (res) => {
        res.on('data', () => {});
        res.on('end', () => {
          if (res.statusCode === 200) latencies.push(nowUs() - t0);
          else errors++;
          done();
        });
      });
      req.on('error', () => (errors++, done()));
      req.end(chatBody);
    };
    const done = () => {
      inflight--;
      if (sent === total && inflight === 0) resolve();
    };
    const pace = () => {
      const due = Math.min(total, Math.floor(((nowUs() - start) / 1e6) * rate) + 1);
      while (sent < due) (sent++, fire());
      if (sent < total) setTimeout(pace, 1);
    };
    pace();
  });
  agent.destroy();
  return { latencies, errors };
}

const streamBody = (intervalMs, events) => JSON.stringify({ model: 'bench-model', stream: true, messages: [{ role: 'user', content: 'Hello!' }], bench_interval_ms: intervalMs, bench_events: events });

function streamRequest(port, body, id) {
  return (
    `POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nauthorization: Bearer ${KEY}\r\ncontent-type: application/json\r\n` +
    `x-bench-id: ${id}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

/**
 * Opens one raw SSE stream: calls onEvent(delayUs, sentUs) for each stamped event, resolves with
 * {ok, ttfbUs, events} when `[DONE]` arrives, the connection fails, or `abortAfterFirst` cuts it.
 */
function openStream(port, body, id, onEvent, { abortAfterFirst = false } = {}) {
  return new Promise((resolve) => {
    const t0 = nowUs();
    let ttfbUs = null;
    let events = 0;
    let carry = '';
    let finished = false;
    const finish = (ok, extra = {}) => {
      if (finished) return;
      finished = true;
      sock.destroy();
      resolve({ ok, t0, ttfbUs, endedAt: nowUs(), events, ...extra });
    };
    const onText = (text) => {
      const t = nowUs();
      if (ttfbUs === null) {
        ttfbUs = t - t0;
        if (!text.startsWith('HTTP/1.1 200')) return finish(false, { status: text.slice(9, 12) });
      }
      const all = carry + text;
      const last = all.lastIndexOf('\n\n');
      if (last < 0) return void (carry = all);
      carry = all.slice(last + 2);
      let i = all.indexOf('"ts":');
      while (i >= 0 && i < last) {
        const end = all.indexOf(',', i);
        const sent = Number(all.slice(i + 5, end));
        events++;
        onEvent(t - sent, sent);
        i = all.indexOf('"ts":', end);
      }
      if (abortAfterFirst && events > 0) return finish(true, { abortedAt: nowUs() });
      if (all.lastIndexOf('[DONE]', last) >= 0) finish(true);
    };
    // Reads land in one shared buffer and are decoded at once (`onread`), without the Readable stream's machinery:
    // the client shares the CPUs with the proxy it measures, so its cost per event is kept low.
    const sock = net.connect({ port, host: '127.0.0.1', onread: { buffer: readBuffer, callback: (n, buf) => void onText(buf.toString('latin1', 0, n)) } });
    sock.setNoDelay(true);
    // Flowing, though no 'data' is emitted: without it a closed connection would never end.
    sock.resume();
    sock.on('connect', () => sock.write(streamRequest(port, body, id)));
    sock.on('end', () => finish(false));
    sock.on('error', () => finish(false));
    sock.on('close', () => finish(false));
  });
}

/**
 * `streams` concurrent SSE streams (opened evenly over `rampMs`), each with `events` events every `intervalMs`.
 * Returns TTFB (µs), errors, and per-event delays (µs, write->read) by when the event was sent: `delays` while all the
 * streams were open (from the last one's response head to the first one's end: `streams` concurrent streams, what the
 * target is about), `opening` before that (streams still being opened), `closing` after (streams ending), and
 * `afterRamp`, every event sent from the planned ramp's end + 200 ms on (the window the record used up to run 68).
 */
export async function sseRun(port, { streams, intervalMs, events, rampMs }) {
  const body = streamBody(intervalMs, events);
  // Every event's delay and send time; split into windows once the round is over (the windows' ends are known then).
  const delaysAll = [];
  const sentAll = [];
  const ttfb = [];
  let errors = 0;
  let allOpenAt = 0;
  let firstEndAt = Infinity;
  const rampEndsAt = nowUs() + rampMs * 1000 + 200_000;
  const onEvent = (delay, sent) => {
    delaysAll.push(delay);
    sentAll.push(sent);
  };
  const runs = [];
  const per = Math.max(1, Math.ceil((streams * 10) / Math.max(10, rampMs)));
  for (let i = 0; i < streams; i++) {
    runs.push(
      openStream(port, body, `s${i}`, onEvent).then((r) => {
        if (r.ttfbUs !== null) {
          ttfb.push(r.ttfbUs);
          allOpenAt = Math.max(allOpenAt, r.t0 + r.ttfbUs);
        }
        firstEndAt = Math.min(firstEndAt, r.endedAt);
        if (!r.ok || r.events !== events) errors++;
      }),
    );
    if ((i + 1) % per === 0) await sleep(10);
  }
  await Promise.all(runs);
  const delays = [];
  const opening = [];
  const closing = [];
  const afterRamp = [];
  for (let i = 0; i < delaysAll.length; i++) {
    const sent = sentAll[i];
    const d = delaysAll[i];
    if (sent < allOpenAt) opening.push(d);
    else if (sent > firstEndAt) closing.push(d);
    else delays.push(d);
    if (sent >= rampEndsAt) afterRamp.push(d);
  }
  return { delays, opening, closing, afterRamp, ttfb, errors, allOpenMs: (allOpenAt - (rampEndsAt - rampMs * 1000 - 200_000)) / 1000, openMs: (firstEndAt - allOpenAt) / 1000 };
}

/** Opens `count` streams, `concurrency` at a time, each cut by the client after its first event. */
export async function abortedStreams(port, count, concurrency) {
  const body = streamBody(20, 1000);
  let next = 0;
  let errors = 0;
  const worker = async () => {
    while (next < count) {
      const id = `a${next++}`;
      const r = await openStream(port, body, id, () => {}, { abortAfterFirst: true });
      if (!r.ok) errors++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { errors };
}

/** Client abort -> upstream close: `count` streams, one at a time; `closedAt(id)` resolves with the upstream's close time (an error after 500 ms). */
export async function abortLatency(port, count, closedAt, tag) {
  const body = streamBody(20, 1000);
  const times = [];
  let errors = 0;
  for (let i = 0; i < count; i++) {
    const id = `${tag}-${i}`;
    const waiting = closedAt(id);
    const r = await openStream(port, body, id, () => {}, { abortAfterFirst: true });
    if (!r.ok) {
      errors++;
      continue;
    }
    const t = await Promise.race([waiting, sleep(500).then(() => null)]);
    if (t === null) errors++;
    else times.push(t - r.abortedAt);
  }
  return { times, errors };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
