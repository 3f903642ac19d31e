#!/usr/bin/env bash
# Replaces vllm.sh + start.sh + the LiteLLM proxy: llmserve finds the GPUs, runs vLLM on 127.0.0.1:3000,
# serves the keyed proxy on 8080 (80 when OPENBAYES_SERVING_PRODUCTION is set), and drives /etc/probe/*.
# exec: llmserve receives SIGTERM itself and stops everything in order.
# Set a real key in the platform's environment: LLMSERVE_MASTER_KEY overrides the placeholder in the file.
exec llmserve start --config litellm.config.yaml --model /input0/DeepSeek-R1-Distill-Qwen-1.5B
