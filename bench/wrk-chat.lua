-- wrk script: the bench's small non-streaming chat completion with the bench's master key (bench/targets.mjs).
wrk.method = "POST"
wrk.body = '{"model":"bench-model","messages":[{"role":"user","content":"Hello!"}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench-master-0123456789abcdef"
