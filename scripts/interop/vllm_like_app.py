# A vLLM-like app on real uvicorn, the HTTP server vLLM's API server runs on: the routes the proxy forwards, event
# streams as a StreamingResponse (as vLLM's api_server answers stream=true), and a note per request, per finished or
# cancelled stream and per client disconnect in a JSON-lines file; with prometheus_client installed, /metrics as vLLM
# serves it (Stats below). Run by scripts/interop/uvicorn.mjs and prometheus.mjs. What a chat request's body may ask
# for besides OpenAI's fields: `n_events` and `interval` (a stream's length and pace), `tag` (names its notes), `raise`
# (an exception in the route), `fail_after` (the stream's generator dies after that many), `hang` (seconds without a
# byte before the answer) and `progress` (meanwhile the KV-cache gauge moves, as in a long prefill; without it nothing
# moves, as in a stuck engine), `stall_after` (the stream stops after that many events and never ends: an engine stuck
# mid-generation).
# Usage: python3 vllm_like_app.py PORT KEEP_ALIVE_SECONDS NOTES_FILE httptools|h11 [SERVED_MODEL_NAME]
import asyncio
import json
import re
import sys
import time

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount

try:
    import prometheus_client
except ImportError:
    prometheus_client = None

port, keep_alive, notes_path, http_impl = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
served = sys.argv[5] if len(sys.argv) > 5 else "m"
app = FastAPI()
notes = open(notes_path, "a", buffering=1)


class Stats:
    """vLLM's own metrics as vLLM defines them with prometheus_client (vllm/v1/metrics/loggers.py; a subset): counters
    with `_total` and `_created`, histograms with vLLM's buckets, an info gauge; labels `model_name` and `engine`."""

    def __init__(self):
        labels = ["model_name", "engine"]
        per = dict(model_name=served, engine="0")
        P = prometheus_client
        self.running = P.Gauge("vllm:num_requests_running", "Number of requests in model execution batches.", labels).labels(**per)
        self.waiting = P.Gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", labels).labels(**per)
        self.kv = P.Gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", labels).labels(**per)
        self.prompt = P.Counter("vllm:prompt_tokens", "Number of prefill tokens processed.", labels).labels(**per)
        self.generation = P.Counter("vllm:generation_tokens", "Number of generation tokens processed.", labels).labels(**per)
        self.success = P.Counter("vllm:request_success", "Count of successfully processed requests.", labels + ["finished_reason"])
        self.ttft = P.Histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", labels,
                                buckets=[0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]).labels(**per)
        self.e2e = P.Histogram("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", labels,
                               buckets=[0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0]).labels(**per)
        info = dict(block_size="16", cache_dtype="auto", enable_prefix_caching="True", gpu_memory_utilization="0.9", num_gpu_blocks="27545")
        P.Gauge("vllm:cache_config_info", "Information of the LLMEngine CacheConfig", list(info)).labels(**info).set(1)
        # vLLM's with --enable-lora: no model_name either, and its value a time, so two vLLMs' values differ.
        lora = P.Gauge("vllm:lora_requests_info", "Running stats on lora requests.", ["max_lora", "waiting_lora_adapters", "running_lora_adapters"])
        lora.labels(max_lora="1", waiting_lora_adapters="", running_lora_adapters="").set_to_current_time()
        self.per = per

    def finished(self, started, first, prompt, generated):
        self.prompt.inc(prompt)
        self.generation.inc(generated)
        self.success.labels(**self.per, finished_reason="stop").inc()
        self.ttft.observe(first - started)
        self.e2e.observe(time.monotonic() - started)


stats = None
if prometheus_client is not None:
    stats = Stats()
    # Mounted as vLLM's api_server mounts it (mount_metrics): prometheus_client's ASGI app, with vLLM's workaround for
    # Starlette's redirect of /metrics to /metrics/. Its page also has prometheus_client's own process_* and python_*.
    metrics_route = Mount("/metrics", prometheus_client.make_asgi_app())
    metrics_route.path_regex = re.compile("^/metrics(?P<path>.*)$")
    app.routes.append(metrics_route)


def note(**fields):
    # time.monotonic() is CLOCK_MONOTONIC, as Node's process.hrtime: the driver compares the two.
    notes.write(json.dumps({"t": time.monotonic(), **fields}) + "\n")


@app.get("/health")
async def health():
    return Response(status_code=200)


@app.get("/v1/models")
async def models(request: Request):
    note(ev="models", peer=request.client.port)
    return JSONResponse({"object": "list", "data": [{"id": served, "object": "model", "owned_by": "vllm"}]})


@app.post("/v1/chat/completions")
async def chat(request: Request):
    started = time.monotonic()
    raw = await request.body()
    body = json.loads(raw)
    note(ev="chat", peer=request.client.port, stream=bool(body.get("stream")), size=len(raw), tag=body.get("tag", ""))
    if body.get("raise"):
        # An exception in the route: uvicorn answers 500 itself (as for a vLLM bug outside its error handlers).
        raise RuntimeError("raised on purpose")
    if body.get("hang"):
        until = time.monotonic() + float(body["hang"])
        while time.monotonic() < until:
            if body.get("progress") and stats is not None:
                stats.kv.inc(0.0001)
            await asyncio.sleep(0.1)
    if not body.get("stream"):
        message = {"role": "assistant", "content": "Hello there, friend."}
        usage = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
        if stats is not None:
            stats.finished(started, time.monotonic(), 3, 4)
        return JSONResponse({"id": "chatcmpl-1", "object": "chat.completion", "model": served, "choices": [{"index": 0, "message": message, "finish_reason": "stop"}], "usage": usage})
    events, interval, tag = body.get("n_events", 5), body.get("interval", 0.02), body.get("tag", "")

    async def generate():
        first = None
        if stats is not None:
            stats.running.inc()
        try:
            for i in range(events):
                if i == body.get("stall_after"):
                    await asyncio.sleep(3600)
                if i == body.get("fail_after"):
                    # The generator dies mid-stream (as vLLM's when its engine dies): uvicorn cuts the connection
                    # without the last chunk.
                    raise RuntimeError("engine died on purpose")
                chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": served, "choices": [{"index": 0, "delta": {"content": f" t{i}"}, "finish_reason": None}]}
                yield "data: " + json.dumps(chunk) + "\n\n"
                first = first or time.monotonic()
                await asyncio.sleep(interval)
            yield "data: [DONE]\n\n"
            note(ev="stream-done", tag=tag)
            if stats is not None:
                stats.finished(started, first or time.monotonic(), 3, events)
        except asyncio.CancelledError:
            note(ev="stream-cancelled", tag=tag)
            raise
        finally:
            if stats is not None:
                stats.running.dec()

    async def watch_disconnect():
        # vLLM aborts the request in its engine when the client goes away; here the moment is noted.
        while not await request.is_disconnected():
            await asyncio.sleep(0.005)
        note(ev="disconnected", tag=tag)

    asyncio.ensure_future(watch_disconnect())
    return StreamingResponse(generate(), media_type="text/event-stream")


# proxy_headers=False: the notes keep the proxy's own source port (with True, uvicorn's default, which vLLM keeps, the
# client address comes from the proxy's X-Forwarded-For, port 0), so that reused connections can be counted.
uvicorn.run(app, host="127.0.0.1", port=port, timeout_keep_alive=keep_alive, http=http_impl, log_level="warning", proxy_headers=False)
