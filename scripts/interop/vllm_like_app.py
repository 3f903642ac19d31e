# A vLLM-like app on real uvicorn, the HTTP server vLLM's API server runs on: the routes the proxy forwards, event
# streams as a StreamingResponse (as vLLM's api_server answers stream=true), and a note per request, per finished or
# cancelled stream and per client disconnect in a JSON-lines file. Run by scripts/interop/uvicorn.mjs. What a chat
# request's body may ask for besides OpenAI's fields: `n_events` and `interval` (a stream's length and pace), `tag`
# (names its notes), `raise` (an exception in the route), `fail_after` (the stream's generator dies after that many).
# Usage: python3 vllm_like_app.py PORT KEEP_ALIVE_SECONDS NOTES_FILE httptools|h11 [SERVED_MODEL_NAME]
import asyncio
import json
import sys
import time

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

port, keep_alive, notes_path, http_impl = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
served = sys.argv[5] if len(sys.argv) > 5 else "m"
app = FastAPI()
notes = open(notes_path, "a", buffering=1)


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
    raw = await request.body()
    body = json.loads(raw)
    note(ev="chat", peer=request.client.port, stream=bool(body.get("stream")), size=len(raw), tag=body.get("tag", ""))
    if body.get("raise"):
        # An exception in the route: uvicorn answers 500 itself (as for a vLLM bug outside its error handlers).
        raise RuntimeError("raised on purpose")
    if not body.get("stream"):
        message = {"role": "assistant", "content": "Hello there, friend."}
        usage = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
        return JSONResponse({"id": "chatcmpl-1", "object": "chat.completion", "model": served, "choices": [{"index": 0, "message": message, "finish_reason": "stop"}], "usage": usage})
    events, interval, tag = body.get("n_events", 5), body.get("interval", 0.02), body.get("tag", "")

    async def generate():
        try:
            for i in range(events):
                if i == body.get("fail_after"):
                    # The generator dies mid-stream (as vLLM's when its engine dies): uvicorn cuts the connection
                    # without the last chunk.
                    raise RuntimeError("engine died on purpose")
                chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": served, "choices": [{"index": 0, "delta": {"content": f" t{i}"}, "finish_reason": None}]}
                yield "data: " + json.dumps(chunk) + "\n\n"
                await asyncio.sleep(interval)
            yield "data: [DONE]\n\n"
            note(ev="stream-done", tag=tag)
        except asyncio.CancelledError:
            note(ev="stream-cancelled", tag=tag)
            raise

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
